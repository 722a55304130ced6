namespace ActorNvme.Protocol.Data;

/// <summary>
/// Offsets of the controller registers that NVMe over Fabrics exposes as properties (Property Get/Set),
/// and their sizes.
/// </summary>
public static class ControllerRegister
{
    /// <summary>CAP: Controller Capabilities (8 bytes).</summary>
    public const uint Capabilities = 0x00;

    /// <summary>VS: Version (4 bytes).</summary>
    public const uint Version = 0x08;

    /// <summary>CC: Controller Configuration (4 bytes).</summary>
    public const uint Configuration = 0x14;

    /// <summary>CSTS: Controller Status (4 bytes).</summary>
    public const uint Status = 0x1C;

    /// <summary>NSSR: NVM Subsystem Reset (4 bytes).</summary>
    public const uint SubsystemReset = 0x20;

    /// <summary>Size in bytes of the property at <paramref name="offset"/>: 8 for CAP, 4 for the others.</summary>
    public static int SizeOf(uint offset) => offset == Capabilities ? 8 : 4;
}
