using System.Diagnostics.CodeAnalysis;

namespace ActorNvme.Protocol.Data;

/// <summary>A decoded Discovery log page: its header and every entry.</summary>
/// <param name="Header">The header; its NUMREC equals <c>Entries.Count</c>.</param>
/// <param name="Entries">The entries, in page order.</param>
public sealed record DiscoveryLog(DiscoveryLogHeader Header, IReadOnlyList<DiscoveryLogEntry> Entries);

/// <summary>
/// The Discovery log page (LID 70h): a 1024-byte header and NUMREC entries of 1024 bytes. NUMREC is bounded by
/// <see cref="MaxRecords"/> and by the bytes present before anything is allocated; <see cref="TryReadEntry"/>
/// reads one entry without materializing the others.
/// </summary>
public static class DiscoveryLogPage
{
    /// <summary>The largest NUMREC accepted (a 4 MiB page).</summary>
    public const int MaxRecords = 4096;

    /// <summary>Byte length of a page holding <paramref name="records"/> entries.</summary>
    public static int GetSize(int records)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(records);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(records, MaxRecords);
        return DiscoveryLogHeader.Size + (records * DiscoveryLogEntry.Size);
    }

    /// <summary>
    /// Reads the header and checks that all NUMREC entries are present in <paramref name="source"/>
    /// (else <see cref="DataErrorCode.DiscoveryLogTruncated"/>) and that NUMREC is at most <see cref="MaxRecords"/>; <paramref name="records"/> is then NUMREC. Allocates nothing.
    /// </summary>
    public static bool TryReadHeader(ReadOnlySpan<byte> source, out DiscoveryLogHeader header, out int records, out DataError error)
    {
        records = 0;
        if (!DiscoveryLogHeader.TryRead(source, out header, out error))
        {
            return false;
        }

        int fit = (source.Length - DiscoveryLogHeader.Size) / DiscoveryLogEntry.Size;
        if (header.NumberOfRecords > (ulong)fit)
        {
            error = new DataError(DataErrorCode.DiscoveryLogTruncated, "NUMREC", header.NumberOfRecords, (ulong)fit, 8);
            return false;
        }

        if (header.NumberOfRecords > MaxRecords)
        {
            error = new DataError(DataErrorCode.DiscoveryLogTooManyRecords, "NUMREC", header.NumberOfRecords, MaxRecords, 8);
            return false;
        }

        records = (int)header.NumberOfRecords;
        return true;
    }

    /// <summary>Reads entry <paramref name="index"/> (0-based) of a whole page, after checking the header as <see cref="TryReadHeader"/> does.</summary>
    public static bool TryReadEntry(ReadOnlySpan<byte> source, int index, out DiscoveryLogEntry entry, out DataError error)
    {
        entry = default;
        if (!TryReadHeader(source, out _, out int records, out error))
        {
            return false;
        }

        if (index < 0 || index >= records)
        {
            error = new DataError(DataErrorCode.RecordIndexOutOfRange, "discovery log entry", unchecked((ulong)index), (ulong)records);
            return false;
        }

        return DiscoveryLogEntry.TryRead(source.Slice(DiscoveryLogHeader.Size + (index * DiscoveryLogEntry.Size), DiscoveryLogEntry.Size), out entry, out error);
    }

    /// <summary>Decodes the header and all NUMREC entries (an array of at most <see cref="MaxRecords"/>, sized after the checks).</summary>
    public static bool TryRead(ReadOnlySpan<byte> source, [NotNullWhen(true)] out DiscoveryLog? log, out DataError error)
    {
        log = null;
        if (!TryReadHeader(source, out var header, out int records, out error))
        {
            return false;
        }

        var entries = records == 0 ? [] : new DiscoveryLogEntry[records];
        for (int i = 0; i < records; i++)
        {
            if (!DiscoveryLogEntry.TryRead(source.Slice(DiscoveryLogHeader.Size + (i * DiscoveryLogEntry.Size), DiscoveryLogEntry.Size), out entries[i], out error))
            {
                return false;
            }
        }

        log = new DiscoveryLog(header, entries);
        return true;
    }

    /// <summary>Decodes, throwing <see cref="NvmeDataException"/> on error.</summary>
    public static DiscoveryLog Read(ReadOnlySpan<byte> source) =>
        TryRead(source, out var log, out var error) ? log : throw new NvmeDataException(error);

    /// <summary>Encodes a page with GENCTR <paramref name="generation"/> and the given entries (NUMREC = their count).</summary>
    public static void WriteTo(ulong generation, ReadOnlySpan<DiscoveryLogEntry> entries, Span<byte> destination, ushort recordFormat = 0)
    {
        if (entries.Length > MaxRecords)
        {
            throw new NvmeDataException(new DataError(DataErrorCode.DiscoveryLogTooManyRecords, "NUMREC", (ulong)entries.Length, MaxRecords));
        }

        int size = GetSize(entries.Length);
        DataGuard.Destination(destination, size, "discovery log page");
        new DiscoveryLogHeader(generation, (ulong)entries.Length, recordFormat).WriteTo(destination);
        for (int i = 0; i < entries.Length; i++)
        {
            entries[i].WriteTo(destination.Slice(DiscoveryLogHeader.Size + (i * DiscoveryLogEntry.Size), DiscoveryLogEntry.Size));
        }
    }

    /// <summary>Encodes <paramref name="log"/>'s generation, record format and entries.</summary>
    public static void WriteTo(DiscoveryLog log, Span<byte> destination)
    {
        ArgumentNullException.ThrowIfNull(log);
        var entries = log.Entries as DiscoveryLogEntry[] ?? [.. log.Entries];
        WriteTo(log.Header.GenerationCounter, entries, destination, log.Header.RecordFormat);
    }
}
