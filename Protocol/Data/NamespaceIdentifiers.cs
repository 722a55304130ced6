using System.Buffers.Binary;

namespace ActorNvme.Protocol.Data;

/// <summary>NIDT: namespace identifier type of a namespace identification descriptor.</summary>
public enum NamespaceIdType : byte
{
    /// <summary>End of the list.</summary>
    None = 0,

    /// <summary>IEEE EUI-64, NIDL 8.</summary>
    Eui64 = 1,

    /// <summary>Namespace globally unique identifier, NIDL 16.</summary>
    Nguid = 2,

    /// <summary>UUID, NIDL 16.</summary>
    Uuid = 3,

    /// <summary>Command set identifier, NIDL 1.</summary>
    CommandSet = 4,
}

/// <summary>
/// The Namespace Identification Descriptor list (Identify CNS 03h, 4096 bytes), gathered into one value:
/// each descriptor is NIDT (1 byte), NIDL (1 byte), 2 reserved bytes, then NIDL bytes of NID; the list
/// ends at NIDT 0 or at the end of the data. Unknown types are skipped. EUI64 and NGUID are byte strings
/// read big-endian; the UUID is read as RFC 4122 big-endian. Decoding allocates nothing.
/// </summary>
public readonly record struct NamespaceIdentifiers
{
    /// <summary>Size of the structure in bytes.</summary>
    public const int Size = 4096;

    /// <summary>Size of a descriptor header.</summary>
    public const int DescriptorHeaderSize = 4;

    /// <summary>NIDT 1: EUI-64, when reported.</summary>
    public ulong? Eui64 { get; init; }

    /// <summary>NIDT 2: NGUID, when reported.</summary>
    public UInt128? Nguid { get; init; }

    /// <summary>NIDT 3: UUID, when reported.</summary>
    public Guid? Uuid { get; init; }

    /// <summary>NIDT 4: command set identifier (0 NVM, 2 zoned), when reported.</summary>
    public byte? CommandSet { get; init; }

    /// <summary>The NIDL a known type must carry, or -1 for an unknown type.</summary>
    public static int LengthOf(NamespaceIdType type) => type switch
    {
        NamespaceIdType.Eui64 => 8,
        NamespaceIdType.Nguid => 16,
        NamespaceIdType.Uuid => 16,
        NamespaceIdType.CommandSet => 1,
        _ => -1,
    };

    /// <summary>
    /// Decodes the descriptors in the first 4096 bytes (or fewer, when the data is shorter). Rejects a NIDL
    /// that does not match its NIDT, a descriptor running past the end, and a type appearing twice.
    /// </summary>
    public static bool TryRead(ReadOnlySpan<byte> source, out NamespaceIdentifiers value, out DataError error)
    {
        value = default;
        var s = source.Length > Size ? source[..Size] : source;
        ulong? eui64 = null;
        UInt128? nguid = null;
        Guid? uuid = null;
        byte? csi = null;
        int offset = 0;
        while (offset + DescriptorHeaderSize <= s.Length)
        {
            var type = (NamespaceIdType)s[offset];
            if (type == NamespaceIdType.None)
            {
                break;
            }

            int nidl = s[offset + 1];
            int expected = LengthOf(type);
            if (expected >= 0 && nidl != expected)
            {
                error = new DataError(DataErrorCode.DescriptorLengthMismatch, NidlName(type), (ulong)nidl, (ulong)expected, offset);
                return false;
            }

            int end = offset + DescriptorHeaderSize + nidl;
            if (end > s.Length)
            {
                error = new DataError(DataErrorCode.DescriptorOverrun, NidlName(type), (ulong)nidl, (ulong)s.Length, offset);
                return false;
            }

            var nid = s.Slice(offset + DescriptorHeaderSize, nidl);
            bool duplicate = type switch
            {
                NamespaceIdType.Eui64 => eui64.HasValue,
                NamespaceIdType.Nguid => nguid.HasValue,
                NamespaceIdType.Uuid => uuid.HasValue,
                NamespaceIdType.CommandSet => csi.HasValue,
                _ => false,
            };
            if (duplicate)
            {
                error = new DataError(DataErrorCode.DuplicateDescriptor, TypeName(type), (ulong)type, 0, offset);
                return false;
            }

            switch (type)
            {
                case NamespaceIdType.Eui64:
                    eui64 = BinaryPrimitives.ReadUInt64BigEndian(nid);
                    break;
                case NamespaceIdType.Nguid:
                    nguid = BinaryPrimitives.ReadUInt128BigEndian(nid);
                    break;
                case NamespaceIdType.Uuid:
                    uuid = new Guid(nid, bigEndian: true);
                    break;
                case NamespaceIdType.CommandSet:
                    csi = nid[0];
                    break;
                default:
                    break;
            }

            offset = end;
        }

        value = new NamespaceIdentifiers { Eui64 = eui64, Nguid = nguid, Uuid = uuid, CommandSet = csi };
        error = DataError.None;
        return true;
    }

    /// <summary>Decodes, throwing <see cref="NvmeDataException"/> on error.</summary>
    public static NamespaceIdentifiers Read(ReadOnlySpan<byte> source) =>
        TryRead(source, out var value, out var error) ? value : throw new NvmeDataException(error);

    /// <summary>Encodes the present identifiers in type order and zero-fills the rest of the 4096 bytes.</summary>
    public void WriteTo(Span<byte> destination)
    {
        DataGuard.Destination(destination, Size, "Namespace Identification Descriptors");
        var d = destination[..Size];
        d.Clear();
        int offset = 0;
        if (Eui64 is { } eui64)
        {
            BinaryPrimitives.WriteUInt64BigEndian(Header(d, ref offset, NamespaceIdType.Eui64), eui64);
        }

        if (Nguid is { } nguid)
        {
            BinaryPrimitives.WriteUInt128BigEndian(Header(d, ref offset, NamespaceIdType.Nguid), nguid);
        }

        if (Uuid is { } uuid)
        {
            uuid.TryWriteBytes(Header(d, ref offset, NamespaceIdType.Uuid), bigEndian: true, out _);
        }

        if (CommandSet is { } csi)
        {
            Header(d, ref offset, NamespaceIdType.CommandSet)[0] = csi;
        }
    }

    private static Span<byte> Header(Span<byte> d, ref int offset, NamespaceIdType type)
    {
        int length = LengthOf(type);
        d[offset] = (byte)type;
        d[offset + 1] = (byte)length;
        var nid = d.Slice(offset + DescriptorHeaderSize, length);
        offset += DescriptorHeaderSize + length;
        return nid;
    }

    private static string NidlName(NamespaceIdType type) => type switch
    {
        NamespaceIdType.Eui64 => "NIDL of EUI64 descriptor (NIDT 1)",
        NamespaceIdType.Nguid => "NIDL of NGUID descriptor (NIDT 2)",
        NamespaceIdType.Uuid => "NIDL of UUID descriptor (NIDT 3)",
        NamespaceIdType.CommandSet => "NIDL of CSI descriptor (NIDT 4)",
        _ => "NIDL of descriptor with unknown NIDT",
    };

    private static string TypeName(NamespaceIdType type) => type switch
    {
        NamespaceIdType.Eui64 => "EUI64",
        NamespaceIdType.Nguid => "NGUID",
        NamespaceIdType.Uuid => "UUID",
        NamespaceIdType.CommandSet => "CSI",
        _ => "unknown",
    };
}
