using System.Buffers.Binary;

namespace ActorNvme.Protocol.Data;

/// <summary>
/// The data of the Fabrics Connect command (1024 bytes): HOSTID (16 bytes at 0, UUID big-endian), CNTLID (u16 at 16),
/// SUBNQN (256 at 256), HOSTNQN (256 at 512). Decoding requires both NQN fields to be NUL terminated; use
/// <see cref="Nqn.TryValidate"/> to check their content.
/// </summary>
public readonly record struct ConnectData
{
    /// <summary>Size of the structure in bytes.</summary>
    public const int Size = 1024;

    /// <summary>CNTLID asking for any controller (dynamic controller model).</summary>
    public const ushort DynamicControllerId = 0xFFFF;

    /// <summary>CNTLID asking for any controller (static controller model).</summary>
    public const ushort AnyStaticControllerId = 0xFFFE;

    /// <summary>HOSTID: host identifier.</summary>
    public Guid HostId { get; init; }

    /// <summary>CNTLID: the controller asked for; 0xFFFF for the admin queue in the dynamic model.</summary>
    public ushort ControllerId { get; init; }

    /// <summary>SUBNQN: subsystem NQN.</summary>
    public string SubsystemNqn { get => field ?? string.Empty; init; }

    /// <summary>HOSTNQN: host NQN.</summary>
    public string HostNqn { get => field ?? string.Empty; init; }

    /// <summary>Decodes the first 1024 bytes of <paramref name="source"/>.</summary>
    public static bool TryRead(ReadOnlySpan<byte> source, out ConnectData value, out DataError error)
    {
        value = default;
        if (source.Length < Size)
        {
            error = DataError.TooShort("Connect data", source.Length, Size);
            return false;
        }

        var subnqn = source.Slice(256, Nqn.FieldSize);
        var hostnqn = source.Slice(512, Nqn.FieldSize);
        if (!WireText.IsTerminated(subnqn))
        {
            error = new DataError(DataErrorCode.NqnNotTerminated, "SUBNQN", 0, Nqn.FieldSize, 256);
            return false;
        }

        if (!WireText.IsTerminated(hostnqn))
        {
            error = new DataError(DataErrorCode.NqnNotTerminated, "HOSTNQN", 0, Nqn.FieldSize, 512);
            return false;
        }

        value = new ConnectData
        {
            HostId = new Guid(source[..16], bigEndian: true),
            ControllerId = BinaryPrimitives.ReadUInt16LittleEndian(source[16..]),
            SubsystemNqn = WireText.ReadUtf8(subnqn),
            HostNqn = WireText.ReadUtf8(hostnqn),
        };
        error = DataError.None;
        return true;
    }

    /// <summary>Decodes, throwing <see cref="NvmeDataException"/> on error.</summary>
    public static ConnectData Read(ReadOnlySpan<byte> source) =>
        TryRead(source, out var value, out var error) ? value : throw new NvmeDataException(error);

    /// <summary>Encodes into the first 1024 bytes; both NQNs must pass <see cref="Nqn.TryValidate"/>.</summary>
    public void WriteTo(Span<byte> destination)
    {
        DataGuard.Destination(destination, Size, "Connect data");
        Nqn.Validate(SubsystemNqn, "SUBNQN");
        Nqn.Validate(HostNqn, "HOSTNQN");
        var d = destination[..Size];
        d.Clear();
        HostId.TryWriteBytes(d[..16], bigEndian: true, out _);
        BinaryPrimitives.WriteUInt16LittleEndian(d[16..], ControllerId);
        WireText.WriteUtf8(SubsystemNqn, d.Slice(256, Nqn.FieldSize), "SUBNQN");
        WireText.WriteUtf8(HostNqn, d.Slice(512, Nqn.FieldSize), "HOSTNQN");
    }
}
