using ActorNvme.Protocol.Nvme;

namespace ActorNvme.Transport.Tests;

/// <summary>
/// When the answer a completion continuation runs for is the last PDU buffered, a command that continuation
/// submits leaves at once, not after the read loop's pass has unwound: there is nothing else to batch with,
/// and at queue depth 1 that wait was a quarter of the host's turnaround.
/// </summary>
public sealed class SendOnSubmitTests
{
    [Theory]
    [InlineData(PeerNetwork.Memory)]
    [InlineData(PeerNetwork.Tcp)]
    [InlineData(PeerNetwork.Raw)]
    public async Task A_command_submitted_from_the_continuation_of_the_last_buffered_answer_is_sent_before_the_continuation_returns(string kind)
    {
        await using var network = PeerNetwork.Create(kind);
        var (io, peer) = await Connections.IoAsync(network);
        await using var ioScope = io;
        await using var peerScope = peer;

        var first = io.SubmitAsync(NvmCommands.Flush(1));
        var command = await peer.ReceiveCommandAsync();
        var secondSeen = peer.ReceiveCommandAsync();

        bool? sentBeforeReturning = null;
        ValueTask<IoResult> second = default;
        var continued = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        _ = first.AsTask().ContinueWith(
            _ =>
            {
                // Runs inline on the read loop. Blocking it here is what a test may do: the peer reads on its own.
                second = io.SubmitAsync(NvmCommands.Flush(1));
                sentBeforeReturning = secondSeen.Wait(TimeSpan.FromSeconds(5));
                continued.SetResult();
            },
            CancellationToken.None,
            TaskContinuationOptions.ExecuteSynchronously,
            TaskScheduler.Default);
        await peer.RespondAsync(command.Command.CommandId);
        await continued.Task.WaitAsync(ScriptedPeer.Deadline);

        Assert.True(sentBeforeReturning, "the command waited for the read loop's pass to end");
        var secondCommand = await secondSeen.Within();
        await peer.RespondAsync(secondCommand.Command.CommandId);
        Assert.True((await second.Within()).IsSuccess);
    }
}
