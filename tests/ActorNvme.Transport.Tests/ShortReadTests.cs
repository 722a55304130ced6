using ActorNvme.Protocol.Nvme;
using ActorNvme.Protocol.Tcp;
using Xunit;

namespace ActorNvme.Transport.Tests;

/// <summary>
/// A read completes successfully only when every byte of its transfer arrived, in order. A controller
/// that says SUCCESS after fewer bytes fails that command with Data Transfer Error and keeps its
/// connection (the PDU stream is still in step); data placed out of order fails the command with
/// Data Transfer Error too, and closes the connection, since nothing after it can be trusted.
/// </summary>
public sealed class ShortReadTests
{
    private const int Length = 4096;

    private static readonly NvmeStatus DataTransferError = NvmeStatus.Generic(GenericStatus.DataTransferError);

    public static TheoryData<string> Networks() => new() { PeerNetwork.Memory, PeerNetwork.Tcp };

    [Theory]
    [MemberData(nameof(Networks))]
    public async Task Short_C2HData_then_a_successful_CapsuleResp_fails_the_read_and_keeps_the_connection(string kind)
    {
        await using var network = PeerNetwork.Create(kind);
        var (io, peer) = await Connections.IoAsync(network);
        await using var ioScope = io;
        await using var peerScope = peer;

        var reading = io.ReadAsync(1, 0, 8, new byte[Length]);
        var cid = (await peer.ReceiveCommandAsync()).Command.CommandId;
        await peer.SendC2HDataAsync(cid, 0, Connections.Pattern(1024, 1), last: false, success: false);
        await peer.SendC2HDataAsync(cid, 1024, Connections.Pattern(1024, 2), last: true, success: false);
        await peer.RespondAsync(cid);

        var result = await reading.Within();
        AssertDataTransferError(result, 2048);
        await AssertStillServes(io, peer);
    }

    [Theory]
    [MemberData(nameof(Networks))]
    public async Task A_successful_CapsuleResp_without_any_C2HData_fails_the_read_and_keeps_the_connection(string kind)
    {
        await using var network = PeerNetwork.Create(kind);
        var (io, peer) = await Connections.IoAsync(network);
        await using var ioScope = io;
        await using var peerScope = peer;

        var reading = io.ReadAsync(1, 0, 8, new byte[Length]);
        var cid = (await peer.ReceiveCommandAsync()).Command.CommandId;
        await peer.RespondAsync(cid, dw0: 0x1234);

        var result = await reading.Within();
        AssertDataTransferError(result, 0);
        Assert.Equal(0x1234u, result.Completion.Dw0);
        await AssertStillServes(io, peer);
    }

    [Theory]
    [MemberData(nameof(Networks))]
    public async Task C2HData_with_SUCCESS_before_every_byte_arrived_fails_the_read_and_keeps_the_connection(string kind)
    {
        await using var network = PeerNetwork.Create(kind);
        var (io, peer) = await Connections.IoAsync(network);
        await using var ioScope = io;
        await using var peerScope = peer;

        var reading = io.ReadAsync(1, 0, 8, new byte[Length]);
        var cid = (await peer.ReceiveCommandAsync()).Command.CommandId;
        await peer.SendC2HDataAsync(cid, 0, Connections.Pattern(1024, 1), last: true, success: true);

        var result = await reading.Within();
        AssertDataTransferError(result, 1024);
        await AssertStillServes(io, peer);
    }

    [Theory]
    [MemberData(nameof(Networks))]
    public async Task Gapped_C2HData_fails_the_read_with_a_data_transfer_error_and_closes_only_its_connection(string kind)
    {
        await using var network = PeerNetwork.Create(kind);
        var (healthy, healthyPeer) = await Connections.IoAsync(network);
        await using var healthyScope = healthy;
        await using var healthyPeerScope = healthyPeer;
        var (io, peer) = await Connections.IoAsync(network);
        await using var ioScope = io;
        await using var peerScope = peer;

        var reading = io.ReadAsync(1, 0, 8, new byte[Length]);
        var bystander = io.ReadAsync(1, 8, 8, new byte[Length]);
        var cid = (await peer.ReceiveCommandAsync()).Command.CommandId;
        await peer.ReceiveCommandAsync();
        await peer.SendC2HDataAsync(cid, 0, Connections.Pattern(1024, 1), last: false, success: false);
        var gapped = peer.C2HData(cid, 2048, Connections.Pattern(2048, 2), last: true, success: true);
        await peer.SendAsync(gapped);

        AssertDataTransferError(await reading.Within(), 1024);
        Assert.Equal(CloseReason.DataOutOfRange, (await io.Closed.Within()).Reason);
        Assert.Equal(CommandOutcome.ConnectionClosed, (await bystander.Within()).Outcome);
        var termReq = Assert.Single(await peer.DrainUntilClosedAsync().Within());
        Assert.Equal(PduType.H2CTermReq, termReq.Type);
        Assert.Equal(TermReqError.DataTransferOutOfRange, termReq.TermReq.Status);

        await AssertStillServes(healthy, healthyPeer);
    }

    [Fact]
    public async Task A_complete_read_in_several_PDUs_still_succeeds()
    {
        await using var network = PeerNetwork.Create(PeerNetwork.Memory);
        var (io, peer) = await Connections.IoAsync(network);
        await using var ioScope = io;
        await using var peerScope = peer;

        var buffer = new byte[Length];
        var reading = io.ReadAsync(1, 0, 8, buffer);
        var cid = (await peer.ReceiveCommandAsync()).Command.CommandId;
        var expected = Connections.Pattern(Length, 5);
        await peer.SendC2HDataAsync(cid, 0, expected.AsMemory(0, 1000), last: false, success: false);
        await peer.SendC2HDataAsync(cid, 1000, expected.AsMemory(1000), last: true, success: false);
        await peer.RespondAsync(cid);

        var result = await reading.Within();
        Assert.True(result.IsSuccess, result.ToString());
        Assert.Equal(Length, result.BytesTransferred);
        Assert.Equal(expected, buffer);
    }

    [Fact]
    public async Task A_failing_status_with_short_data_keeps_the_controller_status()
    {
        await using var network = PeerNetwork.Create(PeerNetwork.Memory);
        var (io, peer) = await Connections.IoAsync(network);
        await using var ioScope = io;
        await using var peerScope = peer;

        var reading = io.ReadAsync(1, 0, 8, new byte[Length]);
        var cid = (await peer.ReceiveCommandAsync()).Command.CommandId;
        var lbaOutOfRange = NvmeStatus.Generic(GenericStatus.LbaOutOfRange, doNotRetry: true);
        await peer.RespondAsync(cid, lbaOutOfRange);

        var result = await reading.Within();
        Assert.False(result.IsSuccess);
        Assert.Equal(lbaOutOfRange, result.Status);
    }

    [Fact]
    public async Task An_admin_read_with_short_data_reaches_the_sink_as_a_data_transfer_error()
    {
        await using var network = PeerNetwork.Create(PeerNetwork.Memory);
        var (admin, peer, sink) = await Connections.AdminAsync(network);
        await using var adminScope = admin;
        await using var peerScope = peer;

        Assert.Equal(SubmitStatus.Submitted, admin.TrySubmitRead(AdminCommands.Identify(1), new byte[Length], null, out ushort cid));
        await peer.ReceiveCommandAsync();
        await peer.SendC2HDataAsync(cid, 0, Connections.Pattern(512, 1), last: true, success: false);
        await peer.RespondAsync(cid);

        var completion = await sink.NextAsync();
        Assert.False(completion.IsSuccess);
        Assert.Equal(CommandOutcome.Completed, completion.Outcome);
        Assert.Equal(DataTransferError, completion.Status);
        Assert.Equal(512, completion.BytesTransferred);
        Assert.False(admin.IsClosed);
    }

    private static void AssertDataTransferError(IoResult result, int bytesReceived)
    {
        Assert.False(result.IsSuccess, result.ToString());
        Assert.Equal(CommandOutcome.Completed, result.Outcome);
        Assert.Equal(StatusCodeType.Generic, result.Status.Type);
        Assert.Equal((byte)GenericStatus.DataTransferError, result.Status.Code);
        Assert.False(result.Status.DoNotRetry);
        Assert.Equal(bytesReceived, result.BytesTransferred);
    }

    /// <summary>The queue pair answers a complete read afterwards, so the connection really stayed usable.</summary>
    private static async Task AssertStillServes(IoQueuePair io, ScriptedPeer peer)
    {
        Assert.False(io.IsClosed);
        var buffer = new byte[512];
        var reading = io.ReadAsync(1, 0, 1, buffer);
        var command = await peer.ReceiveCommandAsync();
        await peer.SendC2HDataAsync(command.Command.CommandId, 0, Connections.Pattern(512, 9), last: true, success: true);
        Assert.True((await reading.Within()).IsSuccess);
        Assert.Equal(Connections.Pattern(512, 9), buffer);
    }
}
