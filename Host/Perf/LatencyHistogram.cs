using System.Diagnostics;
using System.Runtime.CompilerServices;

namespace ActorNvme.Host.Perf;

/// <summary>
/// A log-linear latency histogram in <see cref="Stopwatch"/> ticks: values below 32 each have a
/// bucket; above, every power of two is split into 32 buckets (at most ~3% error). Fixed size,
/// so recording allocates nothing. One writer (the I/O loop that owns it); merged after the run.
/// </summary>
internal sealed class LatencyHistogram
{
    private const int SubBucketBits = 5;
    private const int SubBuckets = 1 << SubBucketBits;
    private const int BucketCount = (64 - SubBucketBits + 1) * SubBuckets;

    private readonly long[] _counts = new long[BucketCount];

    public long Count { get; private set; }

    public long Sum { get; private set; }

    public long Min { get; private set; } = long.MaxValue;

    public long Max { get; private set; }

    public void Record(long ticks)
    {
        if (ticks < 0)
        {
            ticks = 0;
        }

        _counts[IndexOf(ticks)]++;
        Count++;
        Sum += ticks;
        if (ticks < Min)
        {
            Min = ticks;
        }

        if (ticks > Max)
        {
            Max = ticks;
        }
    }

    public void Add(LatencyHistogram other)
    {
        for (int i = 0; i < BucketCount; i++)
        {
            _counts[i] += other._counts[i];
        }

        Count += other.Count;
        Sum += other.Sum;
        Min = Math.Min(Min, other.Min);
        Max = Math.Max(Max, other.Max);
    }

    /// <summary>The latency at or below which <paramref name="fraction"/> of the recorded values lie, in ticks (bucket midpoint, clamped to min/max).</summary>
    public double Percentile(double fraction)
    {
        if (Count == 0)
        {
            return 0;
        }

        long rank = Math.Max(1, (long)Math.Ceiling(fraction * Count));
        long seen = 0;
        for (int i = 0; i < BucketCount; i++)
        {
            seen += _counts[i];
            if (seen >= rank)
            {
                var (low, high) = BoundsOf(i);
                return Math.Clamp((low + high) / 2.0, Min, Max);
            }
        }

        return Max;
    }

    /// <summary>The buckets holding values, lowest first: bounds in ticks (inclusive), count, and the fraction of all values at or below the bucket.</summary>
    public IEnumerable<(long Low, long High, long Count, double Cumulative)> NonEmptyBuckets()
    {
        long seen = 0;
        for (int i = 0; i < BucketCount; i++)
        {
            if (_counts[i] == 0)
            {
                continue;
            }

            seen += _counts[i];
            var (low, high) = BoundsOf(i);
            yield return (low, high, _counts[i], (double)seen / Count);
        }
    }

    public double Mean => Count == 0 ? 0 : (double)Sum / Count;

    public static double ToMicroseconds(double ticks) => ticks * 1_000_000.0 / Stopwatch.Frequency;

    internal static int IndexOf(long value)
    {
        if (value < SubBuckets)
        {
            return (int)value;
        }

        int exponent = 63 - System.Numerics.BitOperations.LeadingZeroCount((ulong)value);
        int sub = (int)(value >> (exponent - SubBucketBits)) & (SubBuckets - 1);
        return ((exponent - SubBucketBits + 1) * SubBuckets) + sub;
    }

    internal static (long Low, long High) BoundsOf(int index)
    {
        if (index < SubBuckets)
        {
            return (index, index);
        }

        int exponent = (index / SubBuckets) + SubBucketBits - 1;
        int sub = index % SubBuckets;
        long width = 1L << (exponent - SubBucketBits);
        long low = (long)(SubBuckets + sub) << (exponent - SubBucketBits);
        return (low, low + width - 1);
    }
}
