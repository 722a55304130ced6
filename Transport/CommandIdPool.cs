using System.Runtime.CompilerServices;

namespace ActorNvme.Transport;

/// <summary>
/// The free command ids of one queue pair: a lock-free stack over a preallocated array. Any thread
/// may rent (submitters) and return (the read loop, or an awaiter collecting its result). The head
/// carries a version in its upper half so a stale compare-and-swap (the ABA case) fails.
/// </summary>
internal sealed class CommandIdPool
{
    private const long Empty = 0;

    // Low 32 bits: index of the top entry + 1 (0 = empty); high 32 bits: version.
    private long _head;
    private readonly int[] _next; // index + 1 of the entry below, 0 at the bottom

    public CommandIdPool(int capacity)
    {
        _next = new int[capacity];
        for (int i = capacity - 1; i >= 0; i--)
        {
            Return(i);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public bool TryRent(out int index)
    {
        while (true)
        {
            long head = Volatile.Read(ref _head);
            int top = (int)(uint)head;
            if (top == Empty)
            {
                index = -1;
                return false;
            }

            int below = Volatile.Read(ref _next[top - 1]);
            long next = (((head >> 32) + 1) << 32) | (uint)below;
            if (Interlocked.CompareExchange(ref _head, next, head) == head)
            {
                index = top - 1;
                return true;
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void Return(int index)
    {
        while (true)
        {
            long head = Volatile.Read(ref _head);
            Volatile.Write(ref _next[index], (int)(uint)head);
            long next = (((head >> 32) + 1) << 32) | (uint)(index + 1);
            if (Interlocked.CompareExchange(ref _head, next, head) == head)
            {
                return;
            }
        }
    }
}
