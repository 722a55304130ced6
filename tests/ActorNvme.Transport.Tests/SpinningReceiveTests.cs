using ActorNvme.Transport.RawSocket;
using Xunit;

namespace ActorNvme.Transport.Tests;

/// <summary>
/// The raw-socket receive that polls before it blocks: it must deliver the same answers whether they
/// arrive while it polls or after it fell asleep, and it polls only while commands are outstanding.
/// </summary>
public sealed class SpinningReceiveTests
{
    private static RawSocketTransport Spinning(TimeSpan spin) => new(new RawSocketTransportOptions { SpinBeforeBlocking = spin });

    [Fact]
    public async Task A_queue_pair_awaits_data_only_while_a_command_is_outstanding()
    {
        await using var network = new TcpPeerNetwork(Spinning(TimeSpan.FromMicroseconds(200)));
        var (io, peer) = await Connections.IoAsync(network);
        await using var ioScope = io;
        await using var peerScope = peer;
        IReceiveDemand demand = io;

        Assert.False(demand.AwaitsData);
        var buffer = new byte[4096];
        var reading = io.ReadAsync(1, 0, 8, buffer);
        Assert.True(demand.AwaitsData);

        var command = await peer.ReceiveCommandAsync();
        var data = Connections.Pattern(4096, 3);
        await peer.SendC2HDataAsync(command.Command.CommandId, 0, data, last: true, success: true);
        var result = await reading.Within();

        Assert.True(result.IsSuccess, result.ToString());
        Assert.Equal(data, buffer);

        // The receive thread finishes its bookkeeping just after the awaiter resumes, and this test
        // may be resuming on that very thread: wait elsewhere, so the thread can go on.
        Assert.True(await Task.Run(() => SpinWait.SpinUntil(() => !demand.AwaitsData, ScriptedPeer.Deadline)));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(50)]
    [InlineData(5_000)]
    public async Task Answers_arrive_whether_the_receive_polls_or_sleeps(int spinMicroseconds)
    {
        await using var network = new TcpPeerNetwork(Spinning(TimeSpan.FromMicroseconds(spinMicroseconds)));
        var (io, peer) = await Connections.IoAsync(network);
        await using var ioScope = io;
        await using var peerScope = peer;

        for (int i = 0; i < 6; i++)
        {
            var buffer = new byte[4096];
            var reading = io.ReadAsync(1, (ulong)i, 8, buffer);
            var command = await peer.ReceiveCommandAsync();
            var data = Connections.Pattern(4096, 10 + i);

            // Every other answer comes late: the receive has given up polling and sleeps in poll();
            // the others come at once, while it still polls. The data and its completion arrive as
            // two PDUs, so one answer may also straddle the two.
            if (i % 2 == 1)
            {
                await Task.Delay(30);
            }

            await peer.SendC2HDataAsync(command.Command.CommandId, 0, data, last: true, success: false);
            if (i % 3 == 2)
            {
                await Task.Delay(20);
            }

            await peer.RespondAsync(command.Command.CommandId);
            var result = await reading.Within();

            Assert.True(result.IsSuccess, result.ToString());
            Assert.Equal(4096, result.BytesTransferred);
            Assert.Equal(data, buffer);
        }
    }

    [Fact]
    public async Task A_spinning_idle_queue_pair_still_notices_the_peer_closing()
    {
        await using var network = new TcpPeerNetwork(Spinning(TimeSpan.FromMilliseconds(5)));
        var (io, peer) = await Connections.IoAsync(network);
        await using var ioScope = io;

        var buffer = new byte[4096];
        var reading = io.ReadAsync(1, 0, 8, buffer);
        await peer.ReceiveCommandAsync();
        await peer.DisposeAsync();

        var result = await reading.Within();
        Assert.Equal(CommandOutcome.ConnectionClosed, result.Outcome);
        var closed = await io.Closed.WaitAsync(ScriptedPeer.Deadline);
        Assert.Contains(closed.Reason, new[] { CloseReason.PeerClosed, CloseReason.ConnectionReset });
    }
}

/// <summary>Receive threads pinned to the cores a run names (perf -c).</summary>
public sealed class ReceiveThreadPinningTests
{
    [Fact]
    public void A_thread_can_be_pinned_to_an_allowed_core_and_not_to_one_that_does_not_exist()
    {
        if (!OperatingSystem.IsLinux())
        {
            return;
        }

        long allowed = (long)System.Diagnostics.Process.GetCurrentProcess().ProcessorAffinity;
        int core = System.Numerics.BitOperations.TrailingZeroCount(allowed);
        bool pinned = false, pinnedToNothing = true;
        var thread = new Thread(() =>
        {
            pinned = RawSocket.ThreadAffinity.TryPinCurrentThread(core);
            pinnedToNothing = RawSocket.ThreadAffinity.TryPinCurrentThread(5000);
        });
        thread.Start();
        thread.Join();

        Assert.True(pinned);
        Assert.False(pinnedToNothing);
    }

    [Fact]
    public async Task Queue_pairs_on_pinned_receive_threads_complete_their_commands()
    {
        if (!OperatingSystem.IsLinux())
        {
            return;
        }

        long allowed = (long)System.Diagnostics.Process.GetCurrentProcess().ProcessorAffinity;
        int core = System.Numerics.BitOperations.TrailingZeroCount(allowed);
        await using var network = new TcpPeerNetwork(new RawSocket.RawSocketTransport(new RawSocket.RawSocketTransportOptions { ReceiveThreadCores = [core] }));
        var (io, peer) = await Connections.IoAsync(network);
        await using var ioScope = io;
        await using var peerScope = peer;

        var buffer = new byte[4096];
        var reading = io.ReadAsync(1, 0, 8, buffer);
        var command = await peer.ReceiveCommandAsync();
        var data = Connections.Pattern(4096, 5);
        await peer.SendC2HDataAsync(command.Command.CommandId, 0, data, last: true, success: true);

        var result = await reading.Within();
        Assert.True(result.IsSuccess, result.ToString());
        Assert.Equal(data, buffer);
    }
}
