using System.Buffers.Binary;

namespace ActorNvme.Protocol.Data;

/// <summary>CSTS.SHST: shutdown status.</summary>
public enum ShutdownStatus : byte
{
    /// <summary>Normal operation, no shutdown requested.</summary>
    Normal = 0,

    /// <summary>Shutdown processing occurring.</summary>
    Occurring = 1,

    /// <summary>Shutdown processing complete.</summary>
    Complete = 2,
}

/// <summary>CSTS, the Controller Status property (offset 0x1C, 4 bytes).</summary>
public readonly record struct ControllerStatus
{
    /// <summary>Register offset.</summary>
    public const uint Offset = ControllerRegister.Status;

    /// <summary>Property size in bytes.</summary>
    public const int Size = 4;

    /// <summary>Creates the register from its raw value.</summary>
    public ControllerStatus(uint value) => Value = value;

    /// <summary>The raw value.</summary>
    public uint Value { get; init; }

    /// <summary>RDY, bit 0: ready.</summary>
    public bool Ready
    {
        get => Bits.Get(Value, 0, 1) != 0;
        init => Value = Bits.Set(Value, 0, 1, value ? 1UL : 0UL, "CSTS.RDY");
    }

    /// <summary>CFS, bit 1: controller fatal status.</summary>
    public bool FatalStatus
    {
        get => Bits.Get(Value, 1, 1) != 0;
        init => Value = Bits.Set(Value, 1, 1, value ? 1UL : 0UL, "CSTS.CFS");
    }

    /// <summary>SHST, bits 3:2: shutdown status.</summary>
    public ShutdownStatus ShutdownStatus
    {
        get => (ShutdownStatus)Bits.Get(Value, 2, 2);
        init => Value = Bits.Set(Value, 2, 2, (ulong)value, "CSTS.SHST");
    }

    /// <summary>NSSRO, bit 4: NVM subsystem reset occurred.</summary>
    public bool SubsystemResetOccurred
    {
        get => Bits.Get(Value, 4, 1) != 0;
        init => Value = Bits.Set(Value, 4, 1, value ? 1UL : 0UL, "CSTS.NSSRO");
    }

    /// <summary>PP, bit 5: processing paused.</summary>
    public bool ProcessingPaused
    {
        get => Bits.Get(Value, 5, 1) != 0;
        init => Value = Bits.Set(Value, 5, 1, value ? 1UL : 0UL, "CSTS.PP");
    }

    /// <summary>Decodes the 4-byte little-endian value.</summary>
    public static bool TryRead(ReadOnlySpan<byte> source, out ControllerStatus value, out DataError error)
    {
        if (source.Length < Size)
        {
            value = default;
            error = DataError.TooShort("CSTS", source.Length, Size);
            return false;
        }

        value = new ControllerStatus(BinaryPrimitives.ReadUInt32LittleEndian(source));
        error = DataError.None;
        return true;
    }

    /// <summary>Decodes, throwing <see cref="NvmeDataException"/> on error.</summary>
    public static ControllerStatus Read(ReadOnlySpan<byte> source) =>
        TryRead(source, out var value, out var error) ? value : throw new NvmeDataException(error);

    /// <summary>Encodes the 4-byte little-endian value.</summary>
    public void WriteTo(Span<byte> destination)
    {
        DataGuard.Destination(destination, Size, "CSTS");
        BinaryPrimitives.WriteUInt32LittleEndian(destination, Value);
    }
}
