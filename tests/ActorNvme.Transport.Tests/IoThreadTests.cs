using ActorNvme.Transport.RawSocket;
using Xunit;

namespace ActorNvme.Transport.Tests;

/// <summary>
/// Raw-socket queue pairs on a bounded set of I/O threads: many queue pairs share few threads, each
/// still gets its own answers, and a closed queue pair leaves its thread.
/// </summary>
public sealed class IoThreadTests
{
    private const int QueuePairs = 200;

    // A shape no other test uses, so that this group's threads serve only this test's queue pairs.
    private const int IoThreads = 3;

    [Fact]
    public async Task Two_hundred_queue_pairs_share_a_bounded_set_of_threads_and_each_gets_its_answers()
    {
        if (!OperatingSystem.IsLinux())
        {
            return;
        }

        int threadsBefore = ProcessThreads();
        await using var network = new TcpPeerNetwork(new RawSocketTransport(new RawSocketTransportOptions { IoThreads = IoThreads, InitialBufferSize = 16 * 1024 }));
        var pairs = new List<(IoQueuePair Io, ScriptedPeer Peer)>();
        try
        {
            for (int i = 0; i < QueuePairs; i++)
            {
                pairs.Add(await Connections.IoAsync(network));
            }

            var group = IoThreadGroup.For(IoThreads, null)!;
            Assert.Equal(IoThreads, group.Threads.Count);
            Assert.Equal(QueuePairs, group.Threads.Sum(t => t.ConnectionCount));
            Assert.All(group.Threads, t => Assert.InRange(t.ConnectionCount, (QueuePairs / IoThreads) - 1, (QueuePairs / IoThreads) + 1));

            // One thread per queue pair would add 200; the thread pool may grow a little under the test's own load.
            Assert.InRange(ProcessThreads() - threadsBefore, int.MinValue, 60);

            // Every queue pair answers its own read with its own data, in an order the peers choose.
            var buffers = new byte[QueuePairs][];
            var reads = new Task<IoResult>[QueuePairs];
            for (int i = 0; i < QueuePairs; i++)
            {
                buffers[i] = new byte[512];
                reads[i] = pairs[i].Io.ReadAsync(1, (ulong)i, 1, buffers[i]).AsTask();
            }

            for (int i = QueuePairs - 1; i >= 0; i--)
            {
                var command = await pairs[i].Peer.ReceiveCommandAsync();
                await pairs[i].Peer.SendC2HDataAsync(command.Command.CommandId, 0, Connections.Pattern(512, i), last: true, success: true);
            }

            for (int i = 0; i < QueuePairs; i++)
            {
                var result = await reads[i].Within();
                Assert.True(result.IsSuccess, result.ToString());
                Assert.Equal(Connections.Pattern(512, i), buffers[i]);
            }
        }
        finally
        {
            foreach (var (io, peer) in pairs)
            {
                await io.DisposeAsync();
                await peer.DisposeAsync();
            }
        }

        var threads = IoThreadGroup.For(IoThreads, null)!.Threads;
        Assert.True(SpinWait.SpinUntil(() => threads.Sum(t => t.ConnectionCount) == 0, ScriptedPeer.Deadline), "closed queue pairs still registered with their I/O threads");
    }

    [Fact]
    public async Task A_peer_closing_ends_only_its_own_queue_pair_on_a_shared_thread()
    {
        if (!OperatingSystem.IsLinux())
        {
            return;
        }

        // One thread serves both: the survivor must keep working after its neighbour's peer left.
        await using var network = new TcpPeerNetwork(new RawSocketTransport(new RawSocketTransportOptions { IoThreads = 1 }));
        var (doomed, doomedPeer) = await Connections.IoAsync(network);
        var (survivor, survivorPeer) = await Connections.IoAsync(network);
        await using var doomedScope = doomed;
        await using var survivorScope = survivor;
        await using var survivorPeerScope = survivorPeer;

        await doomedPeer.DisposeAsync();
        var closed = await doomed.Closed.WaitAsync(ScriptedPeer.Deadline);
        Assert.Contains(closed.Reason, new[] { CloseReason.PeerClosed, CloseReason.ConnectionReset });

        var buffer = new byte[512];
        var reading = survivor.ReadAsync(1, 0, 1, buffer);
        var command = await survivorPeer.ReceiveCommandAsync();
        await survivorPeer.SendC2HDataAsync(command.Command.CommandId, 0, Connections.Pattern(512, 7), last: true, success: true);
        var result = await reading.Within();
        Assert.True(result.IsSuccess, result.ToString());
        Assert.Equal(Connections.Pattern(512, 7), buffer);
    }

    private static int ProcessThreads()
    {
        foreach (string line in File.ReadLines("/proc/self/status"))
        {
            if (line.StartsWith("Threads:", StringComparison.Ordinal))
            {
                return int.Parse(line.AsSpan(8).Trim(), System.Globalization.CultureInfo.InvariantCulture);
            }
        }

        return 0;
    }
}

/// <summary>The refusal near RLIMIT_NOFILE: a clear error naming the limit, not an abort.</summary>
public sealed class DescriptorLimitTests
{
    private static readonly TransportAddress Address = new("127.0.0.1", 4420);

    [Fact]
    public void A_connection_that_leaves_the_reserve_free_is_allowed()
    {
        Assert.Null(DescriptorLimit.Check(descriptor: 1000, softLimit: 20_000, Address));
        Assert.Null(DescriptorLimit.Check(descriptor: 19_000, softLimit: 20_000, Address));
    }

    [Theory]
    [InlineData(19_600, 20_000)]
    [InlineData(19_999, 20_000)]
    [InlineData(1000, 1024)]
    [InlineData(2000, 1024)]
    public void A_connection_into_the_reserve_is_refused_with_EMFILE_naming_the_limit(long descriptor, ulong limit)
    {
        var refusal = DescriptorLimit.Check(descriptor, limit, Address);

        Assert.NotNull(refusal);
        Assert.Equal(CloseReason.ConnectFailed, refusal.Reason);
        Assert.Contains("EMFILE", refusal.Detail, StringComparison.Ordinal);
        Assert.Contains($"RLIMIT_NOFILE = {limit}", refusal.Detail, StringComparison.Ordinal);
        Assert.Contains(Address.ToString(), refusal.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public void The_reserve_is_at_least_64_and_grows_with_the_limit()
    {
        Assert.Equal(64, DescriptorLimit.Reserve(1024));
        Assert.Equal(400, DescriptorLimit.Reserve(20_000));
    }

    [Fact]
    public void An_unlimited_limit_refuses_nothing()
    {
        Assert.Null(DescriptorLimit.Check(descriptor: 1_000_000, softLimit: ulong.MaxValue, Address));
    }
}

/// <summary>The raw-socket buffer pool keeps a bounded number of arrays, however many idle queue pairs return theirs.</summary>
public sealed class TransportBufferPoolTests
{
    [Fact]
    public void Returned_arrays_beyond_the_bound_are_let_go_and_rented_ones_are_reused()
    {
        // A size no connection uses, so that other tests do not share the bucket.
        const int size = 1 << 21;
        var first = TransportBufferPool.Rent(size - 5);
        Assert.Equal(size, first.Length);
        TransportBufferPool.Return(first);
        Assert.Same(first, TransportBufferPool.Rent(size));

        int bound = TransportBufferPool.MaxRetainedPerSize;
        var small = Enumerable.Range(0, bound + 10).Select(_ => TransportBufferPool.Rent(8192)).ToList();
        int before = TransportBufferPool.Retained(8192);
        foreach (var array in small)
        {
            TransportBufferPool.Return(array);
        }

        Assert.True(TransportBufferPool.Retained(8192) <= bound, $"{TransportBufferPool.Retained(8192)} kept, bound {bound} (before {before})");
        Assert.Equal(8192, TransportBufferPool.Rent(5000).Length);
    }
}
