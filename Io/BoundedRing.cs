using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace ActorNvme.Io;

/// <summary>
/// A bounded multi-producer multi-consumer FIFO over a preallocated array (Dmitry Vyukov's design:
/// each cell carries a sequence number that says whose turn it is). Enqueue and dequeue are one
/// compare-and-swap each and allocate nothing, so it serves as the object pool of I/O operations
/// and as the waiting lines of the I/O path.
/// </summary>
/// <remarks>
/// A producer that has claimed a cell but not yet published it makes the ring look empty at that
/// cell to consumers; callers that must not lose a wake-up re-check after they enqueue (see
/// <see cref="IoQueueSet"/> and <see cref="BlockDevice"/>).
/// </remarks>
internal sealed class BoundedRing<T>
    where T : class
{
    private readonly Cell[] _cells;
    private readonly int _mask;
    private RingPositions _positions;

    public BoundedRing(int minimumCapacity)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(minimumCapacity, 1);
        int capacity = (int)Math.Min(1u << 30, System.Numerics.BitOperations.RoundUpToPowerOf2((uint)Math.Max(minimumCapacity, 2)));
        _cells = new Cell[capacity];
        for (int i = 0; i < capacity; i++)
        {
            _cells[i].Sequence = i;
        }

        _mask = capacity - 1;
    }

    public int Capacity => _cells.Length;

    /// <summary>Items in the ring right now (a snapshot; exact only when nobody else is using it).</summary>
    public int Count => (int)Math.Max(0, Volatile.Read(ref _positions.Enqueue) - Volatile.Read(ref _positions.Dequeue));

    public bool IsEmpty => Volatile.Read(ref _positions.Enqueue) == Volatile.Read(ref _positions.Dequeue);

    public bool TryEnqueue(T item)
    {
        long position = Volatile.Read(ref _positions.Enqueue);
        while (true)
        {
            ref var cell = ref _cells[position & _mask];
            long sequence = Volatile.Read(ref cell.Sequence);
            long difference = sequence - position;
            if (difference == 0)
            {
                long seen = Interlocked.CompareExchange(ref _positions.Enqueue, position + 1, position);
                if (seen == position)
                {
                    cell.Item = item;
                    Volatile.Write(ref cell.Sequence, position + 1);
                    return true;
                }

                position = seen;
            }
            else if (difference < 0)
            {
                return false; // full
            }
            else
            {
                position = Volatile.Read(ref _positions.Enqueue);
            }
        }
    }

    public bool TryDequeue([System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out T? item)
    {
        long position = Volatile.Read(ref _positions.Dequeue);
        while (true)
        {
            ref var cell = ref _cells[position & _mask];
            long sequence = Volatile.Read(ref cell.Sequence);
            long difference = sequence - (position + 1);
            if (difference == 0)
            {
                long seen = Interlocked.CompareExchange(ref _positions.Dequeue, position + 1, position);
                if (seen == position)
                {
                    item = cell.Item!;
                    cell.Item = null;
                    Volatile.Write(ref cell.Sequence, position + _mask + 1);
                    return true;
                }

                position = seen;
            }
            else if (difference < 0)
            {
                item = null;
                return false; // empty
            }
            else
            {
                position = Volatile.Read(ref _positions.Dequeue);
            }
        }
    }

    private struct Cell
    {
        public long Sequence;
        public T? Item;
    }
}

/// <summary>The two positions of a <see cref="BoundedRing{T}"/> on their own cache lines, so producers and consumers do not share one (outside the generic type: a generic type cannot have explicit layout).</summary>
[StructLayout(LayoutKind.Explicit, Size = 192)]
internal struct RingPositions
{
    [FieldOffset(64)]
    public long Enqueue;

    [FieldOffset(128)]
    public long Dequeue;
}
