using System.Runtime.CompilerServices;

namespace ActorNvme.Transport;

/// <summary>
/// The free command ids of one queue pair, handed out least recently freed first: a bounded lock-free
/// queue (a ring of cells, each with a sequence number) over a preallocated array. Any thread may rent
/// (submitters) and return (the read loop, or an owner releasing an id). First-in-first-out matters for
/// safety, not speed: a freed id waits behind every other free id, so a stale or repeated completion
/// from the target finds its id free (a protocol error) instead of crediting the next command that took
/// it — with a stack, the very next command would get that id.
/// </summary>
internal sealed class CommandIdPool
{
    private readonly Cell[] _cells;
    private readonly long _mask;
    private long _returnPosition;
    private long _rentPosition;

    public CommandIdPool(int capacity)
        : this(capacity, 0)
    {
    }

    /// <param name="capacity">Ids 0..capacity-1, all free.</param>
    /// <param name="firstPosition">The ring's first position (tests start it near the 32-bit wrap of the cells' sequences).</param>
    internal CommandIdPool(int capacity, long firstPosition)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 1);
        ArgumentOutOfRangeException.ThrowIfNegative(firstPosition);
        int size = (int)System.Numerics.BitOperations.RoundUpToPowerOf2((uint)capacity);
        _cells = new Cell[size];
        _mask = size - 1;
        _returnPosition = firstPosition;
        _rentPosition = firstPosition;
        for (long position = firstPosition; position < firstPosition + size; position++)
        {
            _cells[position & _mask].Sequence = unchecked((int)position);
        }

        for (int i = 0; i < capacity; i++)
        {
            Return(i);
        }
    }

    public bool TryRent(out int index)
    {
        var spinner = default(SpinWait);
        while (true)
        {
            long position = Volatile.Read(ref _rentPosition);
            ref var cell = ref _cells[position & _mask];
            int lag = unchecked(Volatile.Read(ref cell.Sequence) - (int)(position + 1));
            if (lag == 0)
            {
                if (Interlocked.CompareExchange(ref _rentPosition, position + 1, position) == position)
                {
                    index = cell.Value;
                    Volatile.Write(ref cell.Sequence, unchecked((int)(position + _mask + 1)));
                    return true;
                }
            }
            else if (lag < 0)
            {
                if (Volatile.Read(ref _returnPosition) <= position)
                {
                    index = -1;
                    return false; // empty
                }

                // A return has claimed this cell but not yet published its id: a moment away.
                spinner.SpinOnce();
            }
        }
    }

    public void Return(int index)
    {
        var spinner = default(SpinWait);
        while (true)
        {
            long position = Volatile.Read(ref _returnPosition);
            ref var cell = ref _cells[position & _mask];
            int lag = unchecked(Volatile.Read(ref cell.Sequence) - (int)position);
            if (lag == 0)
            {
                if (Interlocked.CompareExchange(ref _returnPosition, position + 1, position) == position)
                {
                    cell.Value = index;
                    Volatile.Write(ref cell.Sequence, unchecked((int)(position + 1)));
                    return;
                }
            }
            else if (lag < 0)
            {
                if (position - Volatile.Read(ref _rentPosition) >= _cells.Length)
                {
                    // Full: more returns than rents, which only a double release can cause.
                    throw new InvalidOperationException($"command id {index} returned to a pool that holds every id already");
                }

                // A rent has claimed this cell but not yet marked it free: a moment away.
                spinner.SpinOnce();
            }
        }
    }

    /// <summary>
    /// 8 bytes, not 16 (an I/O queue of 128 entries: 1 KiB less for each of thousands of idle queue pairs):
    /// the sequence keeps the position's low 32 bits. A cell's sequence is never more than the ring's size
    /// away from the position compared with it, so the difference taken in wrapping 32-bit arithmetic is exact.
    /// </summary>
    private struct Cell
    {
        public int Sequence;
        public int Value;
    }
}
