using System.Diagnostics;
using System.Runtime.CompilerServices;

namespace ActorNvme.Io;

/// <summary>What <see cref="IoStatistics.Reset"/> clears, as SPDK's bdev_reset_iostat modes.</summary>
public enum IoStatisticsReset
{
    /// <summary>Everything: counts, bytes, latencies, errors.</summary>
    All,

    /// <summary>Only the minimum and maximum latencies.</summary>
    MaxMin,

    /// <summary>Only the error counts.</summary>
    Errors,

    /// <summary>Nothing.</summary>
    None,
}

/// <summary>One kind of I/O in a <see cref="IoStatisticsSnapshot"/>: completed operations, bytes, latencies (Stopwatch ticks), failed operations.</summary>
public readonly record struct IoKindStatistics(long Operations, long Bytes, long LatencyTicks, long MinLatencyTicks, long MaxLatencyTicks, long Errors);

/// <summary>A block device's counters at one moment; latencies are in <see cref="Stopwatch"/> ticks (<see cref="TickRate"/> per second).</summary>
public sealed record IoStatisticsSnapshot(
    IoKindStatistics Read,
    IoKindStatistics Write,
    IoKindStatistics Unmap,
    IoKindStatistics WriteZeroes,
    IoKindStatistics Flush,
    long TakenAtTicks,
    long AnaRefusals = 0)
{
    public static long TickRate => Stopwatch.Frequency;
}

/// <summary>
/// Counters of one block device, updated by whichever thread completes an I/O (interlocked, no lock):
/// per kind the operations and bytes completed, the sum, minimum and maximum of their latencies, and the
/// operations that failed. Readers take a snapshot; fields may be a few operations apart from each other.
/// </summary>
public sealed class IoStatistics
{
    private const int Kinds = 5;
    private const int Fields = 6; // operations, bytes, latency sum, min, max, errors; padded apart per kind
    private const int Stride = 8;

    private readonly long[] _counters = new long[Kinds * Stride];
    private long _anaRefusals;

    internal IoStatistics()
    {
        for (int kind = 0; kind < Kinds; kind++)
        {
            _counters[(kind * Stride) + 3] = long.MaxValue;
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal void Completed(IoKind kind, long bytes, long latencyTicks)
    {
        if ((int)kind >= Kinds)
        {
            return; // reservation commands: not I/O in the statistics' sense
        }

        int at = (int)kind * Stride;
        Interlocked.Increment(ref _counters[at]);
        Interlocked.Add(ref _counters[at + 1], bytes);
        Interlocked.Add(ref _counters[at + 2], latencyTicks);
        LowerTo(ref _counters[at + 3], latencyTicks);
        RaiseTo(ref _counters[at + 4], latencyTicks);
    }

    internal void Failed(IoKind kind)
    {
        if ((int)kind < Kinds)
        {
            Interlocked.Increment(ref _counters[((int)kind * Stride) + 5]);
        }
    }

    /// <summary>A command came back with an ANA status (inaccessible, persistent loss, change): the target saw it on a path it would not serve.</summary>
    internal void AnaRefused() => Interlocked.Increment(ref _anaRefusals);

    /// <summary>The counters now.</summary>
    public IoStatisticsSnapshot Snapshot() => new(
        Of(IoKind.Read), Of(IoKind.Write), Of(IoKind.Deallocate), Of(IoKind.WriteZeroes), Of(IoKind.Flush), Stopwatch.GetTimestamp(), Volatile.Read(ref _anaRefusals));

    /// <summary>Clears what <paramref name="mode"/> names (SPDK's bdev_reset_iostat).</summary>
    public void Reset(IoStatisticsReset mode)
    {
        for (int kind = 0; kind < Kinds; kind++)
        {
            int at = kind * Stride;
            if (mode == IoStatisticsReset.All)
            {
                for (int field = 0; field < Fields; field++)
                {
                    Volatile.Write(ref _counters[at + field], 0);
                }
            }

            if (mode is IoStatisticsReset.All or IoStatisticsReset.MaxMin)
            {
                Volatile.Write(ref _counters[at + 3], long.MaxValue);
                Volatile.Write(ref _counters[at + 4], 0);
            }

            if (mode == IoStatisticsReset.Errors)
            {
                Volatile.Write(ref _counters[at + 5], 0);
            }
        }

        if (mode is IoStatisticsReset.All or IoStatisticsReset.Errors)
        {
            Volatile.Write(ref _anaRefusals, 0);
        }
    }

    private IoKindStatistics Of(IoKind kind)
    {
        int at = (int)kind * Stride;
        long min = Volatile.Read(ref _counters[at + 3]);
        return new IoKindStatistics(
            Volatile.Read(ref _counters[at]),
            Volatile.Read(ref _counters[at + 1]),
            Volatile.Read(ref _counters[at + 2]),
            min == long.MaxValue ? 0 : min,
            Volatile.Read(ref _counters[at + 4]),
            Volatile.Read(ref _counters[at + 5]));
    }

    private static void LowerTo(ref long field, long value)
    {
        long seen = Volatile.Read(ref field);
        while (value < seen)
        {
            long was = Interlocked.CompareExchange(ref field, value, seen);
            if (was == seen)
            {
                return;
            }

            seen = was;
        }
    }

    private static void RaiseTo(ref long field, long value)
    {
        long seen = Volatile.Read(ref field);
        while (value > seen)
        {
            long was = Interlocked.CompareExchange(ref field, value, seen);
            if (was == seen)
            {
                return;
            }

            seen = was;
        }
    }
}
