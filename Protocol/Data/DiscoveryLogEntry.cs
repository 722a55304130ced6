using System.Buffers.Binary;

namespace ActorNvme.Protocol.Data;

/// <summary>
/// One Discovery log page entry (1024 bytes). Of TSAS only the first byte is kept, which for TCP is SECTYPE;
/// the other 255 bytes are written as zero. TRSVCID and TRADDR are ASCII, SUBNQN UTF-8, all NUL padded on write.
/// </summary>
public readonly record struct DiscoveryLogEntry
{
    /// <summary>Size of an entry in bytes.</summary>
    public const int Size = 1024;

    /// <summary>Field sizes of the text fields.</summary>
    public const int TransportServiceIdLength = 32, SubsystemNqnLength = 256, TransportAddressLength = 256;

    /// <summary>CNTLID value meaning "dynamic controller model: any controller".</summary>
    public const ushort DynamicControllerId = 0xFFFF;

    /// <summary>TRTYPE (0).</summary>
    public TransportType TransportType { get; init; }

    /// <summary>ADRFAM (1).</summary>
    public NvmeAddressFamily AddressFamily { get; init; }

    /// <summary>SUBTYPE (2).</summary>
    public SubsystemType SubsystemType { get; init; }

    /// <summary>TREQ (3).</summary>
    public TransportRequirements TransportRequirements { get; init; }

    /// <summary>PORTID (4): NVM subsystem port id.</summary>
    public ushort PortId { get; init; }

    /// <summary>CNTLID (6): controller id; 0xFFFF for the dynamic controller model.</summary>
    public ushort ControllerId { get; init; }

    /// <summary>ASQSZ (8): maximum admin submission queue size.</summary>
    public ushort AdminMaxSqSize { get; init; }

    /// <summary>EFLAGS (10).</summary>
    public DiscoveryEntryFlags Flags { get; init; }

    /// <summary>TRSVCID (32, 32 bytes): transport service id, for TCP the port number as text.</summary>
    public string TransportServiceId { get => field ?? string.Empty; init; }

    /// <summary>SUBNQN (256, 256 bytes): subsystem NQN.</summary>
    public string SubsystemNqn { get => field ?? string.Empty; init; }

    /// <summary>TRADDR (512, 256 bytes): transport address, for TCP the IP address as text.</summary>
    public string TransportAddress { get => field ?? string.Empty; init; }

    /// <summary>TSAS byte 0 (768): for TCP, SECTYPE.</summary>
    public TcpSecurityType SecurityType { get; init; }

    /// <summary>Decodes one entry from the first 1024 bytes of <paramref name="source"/>.</summary>
    public static bool TryRead(ReadOnlySpan<byte> source, out DiscoveryLogEntry value, out DataError error)
    {
        if (source.Length < Size)
        {
            value = default;
            error = DataError.TooShort("discovery log entry", source.Length, Size);
            return false;
        }

        value = new DiscoveryLogEntry
        {
            TransportType = (TransportType)source[0],
            AddressFamily = (NvmeAddressFamily)source[1],
            SubsystemType = (SubsystemType)source[2],
            TransportRequirements = (TransportRequirements)source[3],
            PortId = BinaryPrimitives.ReadUInt16LittleEndian(source[4..]),
            ControllerId = BinaryPrimitives.ReadUInt16LittleEndian(source[6..]),
            AdminMaxSqSize = BinaryPrimitives.ReadUInt16LittleEndian(source[8..]),
            Flags = (DiscoveryEntryFlags)BinaryPrimitives.ReadUInt16LittleEndian(source[10..]),
            TransportServiceId = WireText.ReadAscii(source.Slice(32, TransportServiceIdLength)),
            SubsystemNqn = WireText.ReadUtf8(source.Slice(256, SubsystemNqnLength)),
            TransportAddress = WireText.ReadAscii(source.Slice(512, TransportAddressLength)),
            SecurityType = (TcpSecurityType)source[768],
        };
        error = DataError.None;
        return true;
    }

    /// <summary>Decodes, throwing <see cref="NvmeDataException"/> on error.</summary>
    public static DiscoveryLogEntry Read(ReadOnlySpan<byte> source) =>
        TryRead(source, out var value, out var error) ? value : throw new NvmeDataException(error);

    /// <summary>Encodes the entry into the first 1024 bytes; throws <see cref="NvmeDataException"/> when a text field does not fit.</summary>
    public void WriteTo(Span<byte> destination)
    {
        DataGuard.Destination(destination, Size, "discovery log entry");
        var d = destination[..Size];
        d.Clear();
        d[0] = (byte)TransportType;
        d[1] = (byte)AddressFamily;
        d[2] = (byte)SubsystemType;
        d[3] = (byte)TransportRequirements;
        BinaryPrimitives.WriteUInt16LittleEndian(d[4..], PortId);
        BinaryPrimitives.WriteUInt16LittleEndian(d[6..], ControllerId);
        BinaryPrimitives.WriteUInt16LittleEndian(d[8..], AdminMaxSqSize);
        BinaryPrimitives.WriteUInt16LittleEndian(d[10..], (ushort)Flags);
        WireText.WriteAscii(TransportServiceId, d.Slice(32, TransportServiceIdLength), 0, "TRSVCID");
        WireText.WriteUtf8(SubsystemNqn, d.Slice(256, SubsystemNqnLength), "SUBNQN");
        WireText.WriteAscii(TransportAddress, d.Slice(512, TransportAddressLength), 0, "TRADDR");
        d[768] = (byte)SecurityType;
    }
}
