using Xunit;

namespace ActorNvme.Transport.Tests;

public sealed class CommandIdPoolTests
{
    [Fact]
    public void Every_id_is_rented_once_until_returned()
    {
        var pool = new CommandIdPool(31);
        var rented = new HashSet<int>();
        while (pool.TryRent(out int id))
        {
            Assert.True(rented.Add(id));
        }

        Assert.Equal(Enumerable.Range(0, 31), rented.Order());
        pool.Return(17);
        Assert.True(pool.TryRent(out int again));
        Assert.Equal(17, again);
        Assert.False(pool.TryRent(out _));
    }

    [Fact]
    public void A_freed_id_comes_back_only_after_every_other_free_id()
    {
        var pool = new CommandIdPool(8);
        Assert.True(pool.TryRent(out int first));
        pool.Return(first);

        // Seven other ids are free: they all go out before the one just freed.
        var next = new List<int>();
        for (int i = 0; i < 8; i++)
        {
            Assert.True(pool.TryRent(out int id));
            next.Add(id);
        }

        Assert.Equal(first, next[^1]);
        Assert.DoesNotContain(first, next.Take(7));
        Assert.False(pool.TryRent(out _));
    }

    [Theory]
    [InlineData(int.MaxValue - 100L)]
    [InlineData(uint.MaxValue - 100L)]
    public void Ids_keep_their_order_and_bounds_across_the_wrap_of_the_32_bit_sequences(long firstPosition)
    {
        var pool = new CommandIdPool(8, firstPosition);
        var rented = new Queue<int>();
        for (int i = 0; i < 8; i++)
        {
            Assert.True(pool.TryRent(out int id));
            rented.Enqueue(id);
        }

        Assert.False(pool.TryRent(out _));
        Assert.Equal(Enumerable.Range(0, 8), rented.Order());

        // Far past the wrap: each freed id comes back only after every other free id, and the pool never
        // hands out more ids than it holds nor takes back more than it handed out.
        for (int round = 0; round < 1000; round++)
        {
            int oldest = rented.Dequeue();
            pool.Return(oldest);
            Assert.True(pool.TryRent(out int id));
            Assert.Equal(oldest, id);
            Assert.False(pool.TryRent(out _));
            rented.Enqueue(id);
        }

        pool.Return(rented.Peek());
        var rentedCopy = rented.ToArray();
        foreach (int id in rentedCopy.Skip(1))
        {
            pool.Return(id);
        }

        Assert.Throws<InvalidOperationException>(() => pool.Return(rentedCopy[0]));
    }

    [Fact]
    public async Task Concurrent_renters_never_share_an_id()
    {
        var pool = new CommandIdPool(8);
        var owners = new int[8];
        int conflicts = 0;
        var workers = Enumerable.Range(1, 4).Select(worker => Task.Run(() =>
        {
            for (int i = 0; i < 100_000; i++)
            {
                if (!pool.TryRent(out int id))
                {
                    continue;
                }

                if (Interlocked.CompareExchange(ref owners[id], worker, 0) != 0)
                {
                    Interlocked.Increment(ref conflicts);
                }

                Volatile.Write(ref owners[id], 0);
                pool.Return(id);
            }
        })).ToArray();

        await Task.WhenAll(workers).WaitAsync(TimeSpan.FromSeconds(60));
        Assert.Equal(0, conflicts);
        var all = new List<int>();
        while (pool.TryRent(out int id))
        {
            all.Add(id);
        }

        Assert.Equal(Enumerable.Range(0, 8), all.Order());
    }
}
