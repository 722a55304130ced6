using System.Buffers.Binary;

namespace ActorNvme.Target.Encoding;

/// <summary>The Identify Controller fields this target reports.</summary>
internal readonly record struct ControllerIdentity
{
    public ushort VendorId { get; init; }
    public string SerialNumber { get; init; }
    public string ModelNumber { get; init; }
    public string FirmwareRevision { get; init; }
    public byte Cmic { get; init; }
    public byte Mdts { get; init; }
    public ushort ControllerId { get; init; }
    public uint Version { get; init; }
    public uint Oaes { get; init; }
    public byte ControllerType { get; init; }
    public byte AbortCommandLimit { get; init; }
    public byte AsyncEventRequestLimit { get; init; }
    public byte LogPageAttributes { get; init; }
    public ushort KeepAliveSupport { get; init; }
    public byte AnaTransitionTime { get; init; }
    public byte AnaCapabilities { get; init; }
    public uint AnaGroupMax { get; init; }
    public uint AnaGroupCount { get; init; }
    public ushort MaxCommands { get; init; }
    public uint NamespaceCount { get; init; }
    public ushort OptionalNvmCommands { get; init; }
    public byte VolatileWriteCache { get; init; }
    public uint SglSupport { get; init; }
    public string SubsystemNqn { get; init; }
    public uint IoCommandCapsuleSize { get; init; }
    public uint IoResponseCapsuleSize { get; init; }
}

// Minimal Identify encoders for the target. Replaced by Protocol/Data's Identify types once branch
// protocol-data lands on main.
internal static class Identify
{
    public const int Size = 4096;

    public const byte CnsNamespace = 0x00;
    public const byte CnsController = 0x01;
    public const byte CnsActiveNamespaces = 0x02;
    public const byte CnsNamespaceDescriptors = 0x03;

    public static void WriteController(Span<byte> d, in ControllerIdentity c)
    {
        d[..Size].Clear();
        BinaryPrimitives.WriteUInt16LittleEndian(d, c.VendorId);
        BinaryPrimitives.WriteUInt16LittleEndian(d[2..], c.VendorId);
        TextFields.WriteAsciiPadded(d.Slice(4, 20), c.SerialNumber);
        TextFields.WriteAsciiPadded(d.Slice(24, 40), c.ModelNumber);
        TextFields.WriteAsciiPadded(d.Slice(64, 8), c.FirmwareRevision);
        d[76] = c.Cmic;
        d[77] = c.Mdts;
        BinaryPrimitives.WriteUInt16LittleEndian(d[78..], c.ControllerId);
        BinaryPrimitives.WriteUInt32LittleEndian(d[80..], c.Version);
        BinaryPrimitives.WriteUInt32LittleEndian(d[92..], c.Oaes);
        d[111] = c.ControllerType;
        d[258] = c.AbortCommandLimit;
        d[259] = c.AsyncEventRequestLimit;
        d[261] = c.LogPageAttributes;
        BinaryPrimitives.WriteUInt16LittleEndian(d[320..], c.KeepAliveSupport);
        d[340] = c.AnaTransitionTime;
        d[341] = c.AnaCapabilities;
        BinaryPrimitives.WriteUInt32LittleEndian(d[342..], c.AnaGroupMax);
        BinaryPrimitives.WriteUInt32LittleEndian(d[346..], c.AnaGroupCount);
        d[512] = 0x66; // SQES: 64-byte entries
        d[513] = 0x44; // CQES: 16-byte entries
        BinaryPrimitives.WriteUInt16LittleEndian(d[514..], c.MaxCommands);
        BinaryPrimitives.WriteUInt32LittleEndian(d[516..], c.NamespaceCount);
        BinaryPrimitives.WriteUInt16LittleEndian(d[520..], c.OptionalNvmCommands);
        d[525] = c.VolatileWriteCache;
        BinaryPrimitives.WriteUInt32LittleEndian(d[536..], c.SglSupport);
        TextFields.WriteNulPadded(d.Slice(768, 256), c.SubsystemNqn);
        BinaryPrimitives.WriteUInt32LittleEndian(d[1792..], c.IoCommandCapsuleSize);
        BinaryPrimitives.WriteUInt32LittleEndian(d[1796..], c.IoResponseCapsuleSize);
        d[1803] = 1; // MSDBD: one SGL descriptor per command
    }

    public static void WriteNamespace(Span<byte> d, TargetNamespace ns)
    {
        d[..Size].Clear();
        ulong blocks = (ulong)ns.BlockCount;
        BinaryPrimitives.WriteUInt64LittleEndian(d, blocks); // NSZE
        BinaryPrimitives.WriteUInt64LittleEndian(d[8..], blocks); // NCAP
        BinaryPrimitives.WriteUInt64LittleEndian(d[16..], blocks); // NUSE
        d[25] = 0; // NLBAF: one format
        d[26] = 0; // FLBAS: format 0
        d[30] = 1; // NMIC: may be shared (multi-path)
        d[33] = 0x09; // DLFEAT: deallocated blocks read as zeros; Write Zeroes may deallocate
        BinaryPrimitives.WriteUInt32LittleEndian(d[92..], ns.AnaGroupId);
        ns.Nguid.CopyTo(d[104..]);
        BinaryPrimitives.WriteUInt32LittleEndian(d[128..], (uint)ns.BlockSizeShift << 16); // LBAF0: LBADS
    }

    /// <summary>Active namespace list: NSIDs greater than <paramref name="after"/>, ascending, at most 1024.</summary>
    public static void WriteActiveNamespaces(Span<byte> d, IEnumerable<uint> sortedNamespaceIds, uint after)
    {
        d[..Size].Clear();
        int i = 0;
        foreach (uint nsid in sortedNamespaceIds)
        {
            if (nsid <= after)
            {
                continue;
            }

            if (i == Size / 4)
            {
                break;
            }

            BinaryPrimitives.WriteUInt32LittleEndian(d[(i * 4)..], nsid);
            i++;
        }
    }

    /// <summary>Namespace identification descriptors: NGUID (type 2), UUID (type 3) and CSI (type 4, NVM).</summary>
    public static void WriteNamespaceDescriptors(Span<byte> d, TargetNamespace ns)
    {
        d[..Size].Clear();
        d[0] = 0x02;
        d[1] = 16;
        ns.Nguid.CopyTo(d[4..]);
        d[20] = 0x03;
        d[21] = 16;
        ns.Uuid.ToByteArray(bigEndian: true).CopyTo(d[24..]);
        d[40] = 0x04;
        d[41] = 1;
        d[44] = 0; // CSI: NVM command set
    }
}
