using System.Buffers.Binary;
using System.Diagnostics.CodeAnalysis;

namespace ActorNvme.Protocol.Data;

/// <summary>ANA state of an ANA group (bits 3:0 of the descriptor's state byte).</summary>
public enum AnaState : byte
{
    /// <summary>Reserved value 0 (not a valid state).</summary>
    Reserved = 0,

    /// <summary>ANA optimized.</summary>
    Optimized = 0x1,

    /// <summary>ANA non-optimized.</summary>
    NonOptimized = 0x2,

    /// <summary>ANA inaccessible.</summary>
    Inaccessible = 0x3,

    /// <summary>ANA persistent loss.</summary>
    PersistentLoss = 0x4,

    /// <summary>ANA change (transition in progress).</summary>
    Change = 0xF,
}

/// <summary>Header of the ANA log page (16 bytes): CHGCNT (u64 at 0), NGRPS (u16 at 8).</summary>
/// <param name="ChangeCount">CHGCNT: change count of the whole page.</param>
/// <param name="GroupCount">NGRPS: number of ANA group descriptors that follow.</param>
public readonly record struct AnaLogHeader(ulong ChangeCount, ushort GroupCount)
{
    /// <summary>Size of the header in bytes.</summary>
    public const int Size = 16;

    /// <summary>Decodes the header.</summary>
    public static bool TryRead(ReadOnlySpan<byte> source, out AnaLogHeader value, out DataError error)
    {
        if (source.Length < Size)
        {
            value = default;
            error = DataError.TooShort("ANA log header", source.Length, Size);
            return false;
        }

        value = new AnaLogHeader(BinaryPrimitives.ReadUInt64LittleEndian(source), BinaryPrimitives.ReadUInt16LittleEndian(source[8..]));
        error = DataError.None;
        return true;
    }

    /// <summary>Encodes the header.</summary>
    public void WriteTo(Span<byte> destination)
    {
        DataGuard.Destination(destination, Size, "ANA log header");
        destination[..Size].Clear();
        BinaryPrimitives.WriteUInt64LittleEndian(destination, ChangeCount);
        BinaryPrimitives.WriteUInt16LittleEndian(destination[8..], GroupCount);
    }
}

/// <summary>
/// The fixed part of an ANA group descriptor (32 bytes): ANAGRPID (u32 at 0), NNSID (u32 at 4), CHGCNT (u64 at 8),
/// state (bits 3:0 of byte 16). NNSID NSIDs of 4 bytes each follow it.
/// </summary>
public readonly record struct AnaGroupDescriptor(uint GroupId, uint NamespaceCount, ulong ChangeCount, AnaState State)
{
    /// <summary>Size of the fixed part in bytes.</summary>
    public const int HeaderSize = 32;

    /// <summary>Decodes the fixed part.</summary>
    public static bool TryRead(ReadOnlySpan<byte> source, out AnaGroupDescriptor value, out DataError error)
    {
        if (source.Length < HeaderSize)
        {
            value = default;
            error = DataError.TooShort("ANA group descriptor", source.Length, HeaderSize);
            return false;
        }

        value = new AnaGroupDescriptor(
            BinaryPrimitives.ReadUInt32LittleEndian(source),
            BinaryPrimitives.ReadUInt32LittleEndian(source[4..]),
            BinaryPrimitives.ReadUInt64LittleEndian(source[8..]),
            (AnaState)(source[16] & 0xF));
        error = DataError.None;
        return true;
    }

    /// <summary>Encodes the fixed part (the NSIDs are written by the caller or by <see cref="AnaLogPage.WriteTo"/>).</summary>
    public void WriteTo(Span<byte> destination)
    {
        DataGuard.Destination(destination, HeaderSize, "ANA group descriptor");
        if ((byte)State > 0xF)
        {
            throw NvmeDataException.OutOfRange("ANA state", (byte)State, 0xF);
        }

        destination[..HeaderSize].Clear();
        BinaryPrimitives.WriteUInt32LittleEndian(destination, GroupId);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[4..], NamespaceCount);
        BinaryPrimitives.WriteUInt64LittleEndian(destination[8..], ChangeCount);
        destination[16] = (byte)State;
    }

    /// <summary>NSID <paramref name="index"/> of the NSID bytes that <see cref="AnaLogReader.TryReadNext"/> returned.</summary>
    public static uint GetNamespaceId(ReadOnlySpan<byte> namespaceIds, int index) =>
        BinaryPrimitives.ReadUInt32LittleEndian(namespaceIds.Slice(index * 4, 4));
}

/// <summary>Walks an ANA log page group by group without allocating; every count is checked against the bytes present.</summary>
public ref struct AnaLogReader
{
    private readonly ReadOnlySpan<byte> _source;
    private int _offset;
    private int _remaining;

    private AnaLogReader(ReadOnlySpan<byte> source, AnaLogHeader header)
    {
        _source = source;
        Header = header;
        _offset = AnaLogHeader.Size;
        _remaining = header.GroupCount;
    }

    /// <summary>The page header.</summary>
    public AnaLogHeader Header { get; }

    /// <summary>Number of group descriptors not read yet.</summary>
    public readonly int RemainingGroups => _remaining;

    /// <summary>Starts reading a page; fails when the header is short or NGRPS descriptors cannot fit.</summary>
    public static bool TryCreate(ReadOnlySpan<byte> source, out AnaLogReader reader, out DataError error)
    {
        reader = default;
        if (!AnaLogHeader.TryRead(source, out var header, out error))
        {
            return false;
        }

        long minimum = AnaLogHeader.Size + ((long)header.GroupCount * AnaGroupDescriptor.HeaderSize);
        if (minimum > source.Length)
        {
            error = new DataError(DataErrorCode.AnaLogTruncated, "NGRPS", header.GroupCount, (ulong)source.Length, 8);
            return false;
        }

        reader = new AnaLogReader(source, header);
        return true;
    }

    /// <summary>
    /// Reads the next group and the bytes of its NNSID NSIDs. Returns false at the end (error None) or when the
    /// group or its NSID list runs past the data (error <see cref="DataErrorCode.AnaLogTruncated"/>).
    /// </summary>
    public bool TryReadNext(out AnaGroupDescriptor descriptor, out ReadOnlySpan<byte> namespaceIds, out DataError error)
    {
        descriptor = default;
        namespaceIds = default;
        error = DataError.None;
        if (_remaining == 0)
        {
            return false;
        }

        var rest = _source[_offset..];
        if (!AnaGroupDescriptor.TryRead(rest, out descriptor, out _))
        {
            error = new DataError(DataErrorCode.AnaLogTruncated, "group descriptor", (ulong)(Header.GroupCount - _remaining), (ulong)_source.Length, _offset);
            _remaining = 0;
            return false;
        }

        long nsidBytes = (long)descriptor.NamespaceCount * 4;
        if (nsidBytes > rest.Length - AnaGroupDescriptor.HeaderSize)
        {
            error = new DataError(DataErrorCode.AnaLogTruncated, "NNSID", descriptor.NamespaceCount, (ulong)_source.Length, _offset + 4);
            descriptor = default;
            _remaining = 0;
            return false;
        }

        namespaceIds = rest.Slice(AnaGroupDescriptor.HeaderSize, (int)nsidBytes);
        _offset += AnaGroupDescriptor.HeaderSize + (int)nsidBytes;
        _remaining--;
        return true;
    }
}

/// <summary>A decoded ANA group: its descriptor fields and NSIDs.</summary>
public sealed record AnaGroup(uint GroupId, ulong ChangeCount, AnaState State, IReadOnlyList<uint> NamespaceIds);

/// <summary>A decoded ANA log page.</summary>
public sealed record AnaLog(ulong ChangeCount, IReadOnlyList<AnaGroup> Groups);

/// <summary>The Asymmetric Namespace Access log page (LID 0Ch): materializing reader and writer.</summary>
public static class AnaLogPage
{
    /// <summary>Decodes the whole page; every array is sized only after its count was checked against the bytes present.</summary>
    public static bool TryRead(ReadOnlySpan<byte> source, [NotNullWhen(true)] out AnaLog? log, out DataError error)
    {
        log = null;
        if (!AnaLogReader.TryCreate(source, out var reader, out error))
        {
            return false;
        }

        var groups = new AnaGroup[reader.Header.GroupCount];
        for (int g = 0; g < groups.Length; g++)
        {
            if (!reader.TryReadNext(out var descriptor, out var nsidBytes, out error))
            {
                return false;
            }

            var nsids = new uint[descriptor.NamespaceCount];
            for (int i = 0; i < nsids.Length; i++)
            {
                nsids[i] = AnaGroupDescriptor.GetNamespaceId(nsidBytes, i);
            }

            groups[g] = new AnaGroup(descriptor.GroupId, descriptor.ChangeCount, descriptor.State, nsids);
        }

        log = new AnaLog(reader.Header.ChangeCount, groups);
        return true;
    }

    /// <summary>Decodes, throwing <see cref="NvmeDataException"/> on error.</summary>
    public static AnaLog Read(ReadOnlySpan<byte> source) =>
        TryRead(source, out var log, out var error) ? log : throw new NvmeDataException(error);

    /// <summary>Byte length of the encoded page.</summary>
    public static int GetSize(AnaLog log)
    {
        ArgumentNullException.ThrowIfNull(log);
        long size = AnaLogHeader.Size;
        foreach (var group in log.Groups)
        {
            size += AnaGroupDescriptor.HeaderSize + (4L * group.NamespaceIds.Count);
        }

        return checked((int)size);
    }

    /// <summary>Encodes the page; throws <see cref="NvmeDataException"/> when there are more than 65535 groups.</summary>
    public static void WriteTo(AnaLog log, Span<byte> destination)
    {
        ArgumentNullException.ThrowIfNull(log);
        if (log.Groups.Count > ushort.MaxValue)
        {
            throw NvmeDataException.OutOfRange("NGRPS", (ulong)log.Groups.Count, ushort.MaxValue);
        }

        int size = GetSize(log);
        DataGuard.Destination(destination, size, "ANA log page");
        new AnaLogHeader(log.ChangeCount, (ushort)log.Groups.Count).WriteTo(destination);
        int offset = AnaLogHeader.Size;
        foreach (var group in log.Groups)
        {
            new AnaGroupDescriptor(group.GroupId, (uint)group.NamespaceIds.Count, group.ChangeCount, group.State).WriteTo(destination[offset..]);
            offset += AnaGroupDescriptor.HeaderSize;
            foreach (uint nsid in group.NamespaceIds)
            {
                BinaryPrimitives.WriteUInt32LittleEndian(destination[offset..], nsid);
                offset += 4;
            }
        }
    }
}
