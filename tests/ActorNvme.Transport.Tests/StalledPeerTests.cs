using ActorNvme.Protocol.Nvme;
using ActorNvme.Protocol.Tcp;
using ActorNvme.Transport.RawSocket;

namespace ActorNvme.Transport.Tests;

/// <summary>
/// A controller that asks for write data (R2T) and then stops reading fills the host's socket buffer.
/// That must cost only the data still to go to it: the host's send waits without holding a thread, so
/// the other queue pairs of the same I/O thread and this queue pair's own receives go on, and once the
/// controller reads again every byte arrives.
/// </summary>
public sealed class StalledPeerTests
{
    private const int WriteCount = 8;
    private const int WriteSize = 1024 * 1024; // 8 MiB in all: more than the host's largest send buffer (4 MiB) and the peer's 16 KiB

    public static TheoryData<string> Designs => ["io-thread", "receive-thread"];

    [Theory]
    [MemberData(nameof(Designs))]
    public async Task A_controller_that_stops_reading_write_data_holds_up_neither_a_sibling_queue_pair_nor_its_own_receives_and_loses_nothing(string design)
    {
        var transport = TransportFor(design);
        await using var stalledNetwork = new TcpPeerNetwork(transport, receiveBufferSize: 16 * 1024);
        await using var siblingNetwork = new TcpPeerNetwork(transport);
        var (stalled, stalledPeer) = await Connections.IoAsync(stalledNetwork);
        await using var stalledScope = stalled;
        await using var stalledPeerScope = stalledPeer;
        var (sibling, siblingPeer) = await Connections.IoAsync(siblingNetwork);
        await using var siblingScope = sibling;
        await using var siblingPeerScope = siblingPeer;

        var readBuffer = new byte[4096];
        var read = stalled.ReadAsync(1, 0, 1, readBuffer).AsTask();
        var readCommand = await stalledPeer.ReceiveCommandAsync();
        var (sources, writes, writeCommands) = await StartWritesTheControllerWillNotReadAsync(stalled, stalledPeer);

        // The peer reads nothing from here on; give the host time to fill every buffer on the way.
        await Task.Delay(TimeSpan.FromSeconds(1));

        await AssertServedAsync(sibling, siblingPeer);

        var readData = Connections.Pattern(readBuffer.Length, seed: 99);
        await stalledPeer.SendC2HDataAsync(readCommand.Command.CommandId, 0, readData, last: true, success: true);
        Assert.True((await read.Within()).IsSuccess, "the stalled queue pair's own read did not complete");
        Assert.Equal(readData, readBuffer);
        Assert.All(writes, w => Assert.False(w.IsCompleted));

        // The peer reads again: every write's data arrives whole and in order.
        var received = writeCommands.ToDictionary(id => id, _ => new MemoryStream());
        long total = 0;
        while (total < (long)WriteCount * WriteSize)
        {
            var pdu = await stalledPeer.ExpectAsync(PduType.H2CData);
            Assert.Equal(received[pdu.DataHeader.CommandId].Length, pdu.DataHeader.DataOffset);
            received[pdu.DataHeader.CommandId].Write(pdu.Data);
            total += pdu.Data.Length;
        }

        for (int i = 0; i < WriteCount; i++)
        {
            Assert.Equal(sources[i], received[writeCommands[i]].ToArray());
            await stalledPeer.RespondAsync(writeCommands[i]);
        }

        foreach (var write in writes)
        {
            Assert.True((await write.Within()).IsSuccess);
        }
    }

    [Theory]
    [MemberData(nameof(Designs))]
    public async Task Closing_a_queue_pair_whose_send_waits_for_a_controller_that_stopped_reading_fails_its_commands_and_frees_the_thread(string design)
    {
        var transport = TransportFor(design);
        await using var stalledNetwork = new TcpPeerNetwork(transport, receiveBufferSize: 16 * 1024);
        await using var siblingNetwork = new TcpPeerNetwork(transport);
        var (stalled, stalledPeer) = await Connections.IoAsync(stalledNetwork);
        await using var stalledPeerScope = stalledPeer;
        var (sibling, siblingPeer) = await Connections.IoAsync(siblingNetwork);
        await using var siblingScope = sibling;
        await using var siblingPeerScope = siblingPeer;

        var (_, writes, _) = await StartWritesTheControllerWillNotReadAsync(stalled, stalledPeer);

        await Task.Delay(TimeSpan.FromSeconds(1));
        Assert.All(writes, w => Assert.False(w.IsCompleted));

        await stalled.DisposeAsync().AsTask().WaitAsync(ScriptedPeer.Deadline);
        foreach (var write in writes)
        {
            var result = await write.Within();
            Assert.Equal(CommandOutcome.ConnectionClosed, result.Outcome);
        }

        Assert.Equal(CloseReason.Disposed, (await stalled.Closed.Within()).Reason);
        await AssertServedAsync(sibling, siblingPeer);
    }

    [Fact]
    public async Task A_controller_that_never_reads_again_is_ended_by_the_TCP_user_timeout_and_its_writes_fail()
    {
        var transport = new TcpUserTimeoutTransport(new RawSocketTransport(new RawSocketTransportOptions { IoThreads = 1 }), TimeSpan.FromSeconds(1));
        await using var stalledNetwork = new TcpPeerNetwork(transport, receiveBufferSize: 16 * 1024);
        var (stalled, stalledPeer) = await Connections.IoAsync(stalledNetwork);
        await using var stalledScope = stalled;
        await using var stalledPeerScope = stalledPeer;

        var (_, writes, _) = await StartWritesTheControllerWillNotReadAsync(stalled, stalledPeer);

        // The peer's kernel still answers zero-window probes; only the user timeout ends the wait.
        var closed = await stalled.Closed.Within();
        foreach (var write in writes)
        {
            Assert.Equal(CommandOutcome.ConnectionClosed, (await write.Within()).Outcome);
        }

        Assert.True(closed.Reason == CloseReason.SocketError, $"closed with {closed}");
        Assert.Contains("timed out", closed.Detail, StringComparison.OrdinalIgnoreCase);
    }

    /// <summary>One I/O thread, so that both connections share it; or a receive thread per connection.</summary>
    private static RawSocketTransport TransportFor(string design) =>
        new(design == "io-thread" ? new RawSocketTransportOptions { IoThreads = 1 } : new RawSocketTransportOptions { DedicatedReceiveThreads = true });

    /// <summary>Submits the writes, each with its own pattern, and asks for all their data at once (R2T).</summary>
    private static async Task<(byte[][] Sources, Task<IoResult>[] Writes, ushort[] Commands)> StartWritesTheControllerWillNotReadAsync(IoQueuePair io, ScriptedPeer peer)
    {
        var sources = Enumerable.Range(0, WriteCount).Select(i => Connections.Pattern(WriteSize, seed: i + 1)).ToArray();
        var writes = sources.Select((source, i) => io.WriteAsync(1, (ulong)(i * 256), 256, source).AsTask()).ToArray();
        var commands = new ushort[WriteCount];
        for (int i = 0; i < WriteCount; i++)
        {
            commands[i] = (await peer.ReceiveCommandAsync()).Command.CommandId;
            await peer.SendR2TAsync(commands[i], (ushort)i, 0, WriteSize);
        }

        return (sources, writes, commands);
    }

    private static async Task AssertServedAsync(IoQueuePair sibling, ScriptedPeer peer)
    {
        var flush = sibling.SubmitAsync(NvmCommands.Flush(1)).AsTask();
        await peer.RespondAsync((await peer.ReceiveCommandAsync()).Command.CommandId);
        Assert.True((await flush.Within()).IsSuccess, "the sibling queue pair's command did not complete");
    }
}
