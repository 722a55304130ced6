using System.Collections.Concurrent;

namespace ActorNvme.Transport.RawSocket;

/// <summary>
/// The raw-socket connections' receive and send buffers, shared by all of them. Not ArrayPool.Shared:
/// that pool also keeps one array of each size per thread that ever returned one, so with buffers
/// returned on many thread-pool threads it held tens of MiB for thousands of idle queue pairs. This
/// one keeps at most <see cref="MaxRetainedPerSize"/> arrays of each size; a busy queue pair keeps its
/// receive buffer and finds a send buffer here, so renting allocates nothing once warm.
/// </summary>
internal static class TransportBufferPool
{
    /// <summary>Arrays kept per size: enough for the busy queue pairs of a process, bounded for idle ones.</summary>
    public static int MaxRetainedPerSize { get; } = Math.Max(64, 8 * Environment.ProcessorCount);

    private static readonly ConcurrentDictionary<int, Bucket> Buckets = new();

    /// <summary>An array of at least <paramref name="size"/> bytes, a power of two (contents undefined).</summary>
    public static byte[] Rent(int size)
    {
        size = (int)Math.Min(System.Numerics.BitOperations.RoundUpToPowerOf2((uint)Math.Max(size, 4096)), Array.MaxLength);
        var bucket = Buckets.GetOrAdd(size, static _ => new Bucket());
        if (bucket.Arrays.TryDequeue(out var array))
        {
            Interlocked.Decrement(ref bucket.Count);
            return array;
        }

        return GC.AllocateUninitializedArray<byte>(size);
    }

    /// <summary>Takes <paramref name="array"/> back, or lets the collector have it when enough of its size are kept.</summary>
    public static void Return(byte[] array)
    {
        ArgumentNullException.ThrowIfNull(array);
        if (array.Length == 0 || !Buckets.TryGetValue(array.Length, out var bucket))
        {
            return;
        }

        if (Interlocked.Increment(ref bucket.Count) > MaxRetainedPerSize)
        {
            Interlocked.Decrement(ref bucket.Count);
            return;
        }

        bucket.Arrays.Enqueue(array);
    }

    /// <summary>Arrays of <paramref name="size"/> kept now (tests).</summary>
    public static int Retained(int size) => Buckets.TryGetValue(size, out var bucket) ? Volatile.Read(ref bucket.Count) : 0;

    private sealed class Bucket
    {
        public readonly ConcurrentQueue<byte[]> Arrays = new();
        public int Count;
    }
}
