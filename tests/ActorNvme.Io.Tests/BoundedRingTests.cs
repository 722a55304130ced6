using ActorNvme.Io;

namespace ActorNvme.Io.Tests;

/// <summary>The lock-free line behind the operation pool, the hold line and the wait-for-an-entry line.</summary>
public sealed class BoundedRingTests
{
    private sealed class Item(int value)
    {
        public int Value { get; } = value;
    }

    [Fact]
    public void It_is_first_in_first_out_and_refuses_beyond_its_capacity()
    {
        var ring = new BoundedRing<Item>(3);
        Assert.Equal(4, ring.Capacity);
        for (int i = 0; i < 4; i++)
        {
            Assert.True(ring.TryEnqueue(new Item(i)));
        }

        Assert.False(ring.TryEnqueue(new Item(99)));
        Assert.Equal(4, ring.Count);
        for (int i = 0; i < 4; i++)
        {
            Assert.True(ring.TryDequeue(out var item));
            Assert.Equal(i, item.Value);
        }

        Assert.False(ring.TryDequeue(out _));
        Assert.True(ring.IsEmpty);
    }

    [Fact]
    public async Task Four_producers_and_four_consumers_pass_every_item_exactly_once()
    {
        const int PerProducer = 200_000;
        var ring = new BoundedRing<Item>(64);
        var seen = new int[4 * PerProducer];
        int consumed = 0;
        var producers = Enumerable.Range(0, 4).Select(p => Task.Run(() =>
        {
            for (int i = 0; i < PerProducer; i++)
            {
                var item = new Item((p * PerProducer) + i);
                while (!ring.TryEnqueue(item))
                {
                    Thread.SpinWait(1);
                }
            }
        })).ToArray();
        var consumers = Enumerable.Range(0, 4).Select(_ => Task.Run(() =>
        {
            while (Volatile.Read(ref consumed) < seen.Length)
            {
                if (ring.TryDequeue(out var item))
                {
                    Interlocked.Increment(ref seen[item.Value]);
                    Interlocked.Increment(ref consumed);
                }
                else
                {
                    Thread.SpinWait(1);
                }
            }
        })).ToArray();
        await Task.WhenAll(producers.Concat(consumers)).WaitAsync(TimeSpan.FromMinutes(2));
        Assert.All(seen, count => Assert.Equal(1, count));
    }
}
