using System.Buffers.Binary;

namespace ActorNvme.Target.Encoding;

/// <summary>One discovery log entry as the target reports it.</summary>
internal readonly record struct DiscoveryEntry(byte AddressFamily, byte Subtype, ushort PortId, string ServiceId, string SubsystemNqn, string Address, ushort Flags);

/// <summary>One ANA group descriptor: its state and its namespaces.</summary>
internal readonly record struct AnaGroupDescriptor(uint GroupId, AnaState State, uint[] NamespaceIds);

// Minimal log page encoders for the target. Replaced by Protocol/Data's log page types once branch
// protocol-data lands on main.
internal static class LogPages
{
    public const byte Error = 0x01;
    public const byte ChangedNamespaces = 0x04;
    public const byte Ana = 0x0C;
    public const byte Discovery = 0x70;

    public const int DiscoveryHeaderSize = 1024;
    public const int DiscoveryEntrySize = 1024;
    public const byte TransportTypeTcp = 3;
    public const byte AddressFamilyIPv4 = 1;
    public const byte AddressFamilyIPv6 = 2;
    public const byte AddressFamilyIntraHost = 0xFE;
    public const byte SubtypeReferral = 1;
    public const byte SubtypeNvm = 2;
    public const byte SubtypeCurrentDiscovery = 3;

    /// <summary>TREQ: secure channel not specified; SQ flow control disable supported (as nvmet reports).</summary>
    public const byte TransportRequirements = 0x04;

    /// <summary>EFLAGS of the current-discovery-subsystem entry: duplicate returned information, explicit persistent connections.</summary>
    public const ushort CurrentDiscoveryFlags = 0x0003;

    public const int ErrorEntrySize = 64;
    public const int ChangedNamespaceListSize = 4096;

    public static int DiscoveryLength(int entries) => DiscoveryHeaderSize + (entries * DiscoveryEntrySize);

    public static void WriteDiscovery(Span<byte> d, ulong generation, IReadOnlyList<DiscoveryEntry> entries, ushort adminQueueSize)
    {
        d[..DiscoveryLength(entries.Count)].Clear();
        BinaryPrimitives.WriteUInt64LittleEndian(d, generation);
        BinaryPrimitives.WriteUInt64LittleEndian(d[8..], (ulong)entries.Count);
        BinaryPrimitives.WriteUInt16LittleEndian(d[16..], 0); // RECFMT
        for (int i = 0; i < entries.Count; i++)
        {
            var e = entries[i];
            var s = d.Slice(DiscoveryLength(i), DiscoveryEntrySize);
            s[0] = TransportTypeTcp;
            s[1] = e.AddressFamily;
            s[2] = e.Subtype;
            s[3] = TransportRequirements;
            BinaryPrimitives.WriteUInt16LittleEndian(s[4..], e.PortId);
            BinaryPrimitives.WriteUInt16LittleEndian(s[6..], 0xFFFF); // dynamic controller model
            BinaryPrimitives.WriteUInt16LittleEndian(s[8..], adminQueueSize);
            BinaryPrimitives.WriteUInt16LittleEndian(s[10..], e.Flags);
            TextFields.WriteNulPadded(s.Slice(32, 32), e.ServiceId);
            TextFields.WriteNulPadded(s.Slice(256, 256), e.SubsystemNqn);
            TextFields.WriteNulPadded(s.Slice(512, 256), e.Address);
            s[768] = 0; // TSAS.SECTYPE: none
        }
    }

    public static int AnaLength(IReadOnlyList<AnaGroupDescriptor> groups, bool groupsOnly)
    {
        int length = 16;
        foreach (var g in groups)
        {
            length += 32 + (groupsOnly ? 0 : g.NamespaceIds.Length * 4);
        }

        return length;
    }

    public static void WriteAna(Span<byte> d, ulong changeCount, IReadOnlyList<AnaGroupDescriptor> groups, bool groupsOnly)
    {
        d[..AnaLength(groups, groupsOnly)].Clear();
        BinaryPrimitives.WriteUInt64LittleEndian(d, changeCount);
        BinaryPrimitives.WriteUInt16LittleEndian(d[8..], (ushort)groups.Count);
        int at = 16;
        foreach (var g in groups)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(d[at..], g.GroupId);
            BinaryPrimitives.WriteUInt32LittleEndian(d[(at + 4)..], groupsOnly ? 0u : (uint)g.NamespaceIds.Length);
            BinaryPrimitives.WriteUInt64LittleEndian(d[(at + 8)..], changeCount);
            d[at + 16] = (byte)g.State;
            at += 32;
            if (!groupsOnly)
            {
                foreach (uint nsid in g.NamespaceIds)
                {
                    BinaryPrimitives.WriteUInt32LittleEndian(d[at..], nsid);
                    at += 4;
                }
            }
        }
    }

    /// <summary>Changed namespace list: up to 1024 NSIDs; more than that is reported as a first entry of FFFFFFFFh.</summary>
    public static void WriteChangedNamespaces(Span<byte> d, IReadOnlyList<uint> changed, bool overflow)
    {
        d[..ChangedNamespaceListSize].Clear();
        if (overflow)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(d, 0xFFFFFFFF);
            return;
        }

        for (int i = 0; i < changed.Count && i < ChangedNamespaceListSize / 4; i++)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(d[(i * 4)..], changed[i]);
        }
    }
}

/// <summary>Asynchronous event completion dword 0 values (type 2 = notice).</summary>
internal static class AsyncEvents
{
    public const uint NamespaceAttributeChanged = 0x0004_0002; // info 0x00, log 0x04
    public const uint AnaChange = 0x000C_0302; // info 0x03, log 0x0C
    public const uint DiscoveryLogChange = 0x0070_F002; // info 0xF0, log 0x70

    // Async Event Configuration (feature 0x0B) bits that enable each notice.
    public const uint ConfigNamespaceAttribute = 1u << 8;
    public const uint ConfigAnaChange = 1u << 11;
    public const uint ConfigDiscoveryLogChange = 1u << 31;

    public static byte LogPageOf(uint dw0) => (byte)(dw0 >> 16);

    public static uint ConfigBitOf(uint dw0) => dw0 switch
    {
        NamespaceAttributeChanged => ConfigNamespaceAttribute,
        AnaChange => ConfigAnaChange,
        DiscoveryLogChange => ConfigDiscoveryLogChange,
        _ => 0,
    };
}
