using System.Buffers.Binary;
using ActorNvme.Protocol.Nvme;
using ActorNvme.Protocol.Tcp;
using Xunit;

namespace ActorNvme.Transport.Tests;

/// <summary>
/// A peer sends one malformed PDU while a read is outstanding. Its connection must close with the
/// specific reason (after an H2CTermReq), and a second queue pair in the same process must not notice.
/// </summary>
public sealed class HostilePeerTests
{
    public static TheoryData<string, string> Cases()
    {
        var data = new TheoryData<string, string>();
        foreach (var network in new[] { PeerNetwork.Memory, PeerNetwork.Tcp, PeerNetwork.Raw })
        {
            foreach (var name in Hostile.Keys)
            {
                data.Add(network, name);
            }
        }

        return data;
    }

    private static readonly Dictionary<string, (Func<ScriptedPeer, ushort, byte[]> Build, CloseReason Reason, TermReqError? Status)> Hostile = new()
    {
        ["PLEN beyond the maximum"] = ((_, cid) => Header(PduType.C2HData, PduFlags.LastPdu, 24, 24, 0x7FFF_FFF0, cid), CloseReason.PduTooLarge, TermReqError.DataTransferOutOfRange),
        ["HLEN not matching the type"] = ((_, cid) => Header(PduType.CapsuleResp, PduFlags.None, 28, 0, 28, cid), CloseReason.MalformedPdu, TermReqError.InvalidHeaderField),
        ["PDO inside the header"] = ((_, cid) => Header(PduType.C2HData, PduFlags.LastPdu, 24, 8, 24 + 512, cid, dataLength: 512), CloseReason.MalformedPdu, TermReqError.InvalidHeaderField),
        ["unknown PDU type"] = ((_, cid) => Header((PduType)0x0F, PduFlags.None, 24, 0, 24, cid), CloseReason.MalformedPdu, TermReqError.InvalidHeaderField),
        ["a host-to-controller PDU type"] = ((_, cid) => Header(PduType.CapsuleCmd, PduFlags.None, 72, 0, 72, cid), CloseReason.UnexpectedPdu, TermReqError.PduSequenceError),
        ["SUCCESS without LAST_PDU"] = ((peer, cid) => SuccessWithoutLast(peer, cid), CloseReason.SuccessWithoutLastPdu, TermReqError.InvalidHeaderField),
        ["C2HData beyond the buffer"] = ((peer, cid) => peer.C2HData(cid, 0, new byte[8192], last: true, success: true), CloseReason.DataOutOfRange, TermReqError.DataTransferOutOfRange),
        ["C2HData outside the transfer"] = ((peer, cid) => peer.C2HData(cid, 4000, new byte[512], last: true, success: true), CloseReason.DataOutOfRange, TermReqError.DataTransferOutOfRange),
        ["C2HData for an unknown CID"] = ((peer, cid) => peer.C2HData((ushort)(cid + 1), 0, new byte[512], last: true, success: true), CloseReason.UnknownCommandId, TermReqError.InvalidHeaderField),
        ["R2T for an unknown CID"] = ((peer, cid) => peer.ReadyToTransfer(999, 1, 0, 4096), CloseReason.UnknownCommandId, TermReqError.InvalidHeaderField),
        ["R2T for a read"] = ((peer, cid) => peer.ReadyToTransfer(cid, 1, 0, 4096), CloseReason.DataOutOfRange, TermReqError.DataTransferOutOfRange),
        ["CapsuleResp for an unknown CID"] = ((peer, cid) => peer.Response((ushort)(cid + 7)), CloseReason.UnknownCommandId, TermReqError.InvalidHeaderField),
        ["C2HTermReq"] = ((_, _) => TerminationRequest(), CloseReason.PeerTerminated, null),
    };

    // Data placed against the rules: the read itself fails with Data Transfer Error, not as a lost path.
    private static readonly HashSet<string> ReadFailsWithDataTransferError = ["C2HData beyond the buffer", "C2HData outside the transfer"];

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task A_hostile_peer_closes_its_connection_with_the_specific_reason_and_nothing_else(string kind, string hostile)
    {
        var (build, reason, status) = Hostile[hostile];
        await using var network = PeerNetwork.Create(kind);
        var (healthy, healthyPeer) = await Connections.IoAsync(network);
        await using var healthyScope = healthy;
        await using var healthyPeerScope = healthyPeer;
        var (victim, hostilePeer) = await Connections.IoAsync(network);
        await using var victimScope = victim;
        await using var hostilePeerScope = hostilePeer;

        var reading = victim.ReadAsync(1, 0, 8, new byte[4096]);
        var cid = (await hostilePeer.ReceiveCommandAsync()).Command.CommandId;
        var bytes = build(hostilePeer, cid);
        await hostilePeer.SendAsync(bytes);

        var closed = await victim.Closed.Within();
        Assert.Equal(reason, closed.Reason);
        var read = await reading.Within();
        if (ReadFailsWithDataTransferError.Contains(hostile))
        {
            Assert.Equal(CommandOutcome.Completed, read.Outcome);
            Assert.Equal(NvmeStatus.Generic(GenericStatus.DataTransferError), read.Status);
        }
        else
        {
            Assert.Equal(CommandOutcome.ConnectionClosed, read.Outcome);
        }

        var afterwards = await hostilePeer.DrainUntilClosedAsync().Within();
        if (status is { } expected)
        {
            var termReq = Assert.Single(afterwards);
            Assert.Equal(PduType.H2CTermReq, termReq.Type);
            Assert.Equal(expected, termReq.TermReq.Status);
            Assert.Equal(bytes.AsSpan(0, Math.Min(termReq.Data.Length, bytes.Length)).ToArray(), termReq.Data);
        }
        else
        {
            Assert.Empty(afterwards);
        }

        // The other queue pair in this process still works.
        var buffer = new byte[512];
        var healthyRead = healthy.ReadAsync(1, 0, 1, buffer);
        var command = await healthyPeer.ReceiveCommandAsync();
        await healthyPeer.SendC2HDataAsync(command.Command.CommandId, 0, Connections.Pattern(512, 9), last: true, success: true);
        Assert.True((await healthyRead.Within()).IsSuccess);
        Assert.Equal(Connections.Pattern(512, 9), buffer);
        Assert.False(healthy.IsClosed);
    }

    [Fact]
    public async Task The_PLEN_bound_rejects_before_the_body_arrives()
    {
        await using var network = PeerNetwork.Create(PeerNetwork.Memory);
        var (io, peer) = await Connections.IoAsync(network, QueuePairOptions.Io with { MaxTransferSize = 8192 });
        await using var ioScope = io;
        await using var peerScope = peer;

        // Only the 8-byte common header of a 64 KiB C2HData: refused without waiting for the rest.
        var header = Header(PduType.C2HData, PduFlags.LastPdu, 24, 24, 65536 + 24, 0);
        await peer.SendAsync(header.AsMemory(0, CommonHeader.Size));
        Assert.Equal(CloseReason.PduTooLarge, (await io.Closed.Within()).Reason);
    }

    /// <summary>A PDU header with arbitrary fields, followed by <paramref name="dataLength"/> zero bytes.</summary>
    private static byte[] Header(PduType type, PduFlags flags, byte headerLength, byte dataOffset, uint pduLength, ushort cid, int dataLength = 0)
    {
        var bytes = new byte[Math.Max((int)headerLength, 24) + dataLength];
        new CommonHeader(type, flags, headerLength, dataOffset, pduLength).WriteTo(bytes);
        BinaryPrimitives.WriteUInt16LittleEndian(bytes.AsSpan(8), cid);
        BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(16), (uint)dataLength);
        return bytes;
    }

    private static byte[] SuccessWithoutLast(ScriptedPeer peer, ushort cid)
    {
        var bytes = peer.C2HData(cid, 0, new byte[4096], last: true, success: true);
        bytes[1] = (byte)PduFlags.Success;
        return bytes;
    }

    private static byte[] TerminationRequest()
    {
        var bytes = new byte[TermReq.HeaderSize];
        new TermReq(TermReqError.InvalidHeaderField, 4).WriteTo(bytes, PduType.C2HTermReq, default);
        return bytes;
    }
}
