using System.Buffers.Binary;
using System.Text;
using ActorNvme.Protocol.Nvme;
using ActorNvme.Protocol.Tcp;
using Xunit;

namespace ActorNvme.Transport.Tests;

public sealed class CommandTests
{
    [Theory]
    [InlineData(PeerNetwork.Memory, DigestOptions.None)]
    [InlineData(PeerNetwork.Tcp, DigestOptions.None)]
    [InlineData(PeerNetwork.Raw, DigestOptions.None)]
    [InlineData(PeerNetwork.Memory, DigestOptions.Both)]
    [InlineData(PeerNetwork.Tcp, DigestOptions.Both)]
    [InlineData(PeerNetwork.Raw, DigestOptions.Both)]
    public async Task Admin_Identify_round_trip_hands_the_completion_to_the_sink(string kind, DigestOptions digests)
    {
        await using var network = PeerNetwork.Create(kind);
        var (admin, peer, sink) = await Connections.AdminAsync(network, QueuePairOptions.Admin with { Digests = digests });
        await using var adminScope = admin;
        await using var peerScope = peer;
        var identify = Connections.Pattern(4096, 1);
        var buffer = new byte[4096];
        var state = new object();

        Assert.Equal(SubmitStatus.Submitted, admin.TrySubmitRead(AdminCommands.Identify(1), buffer, state, out ushort cid));
        var command = await peer.ReceiveCommandAsync();
        Assert.Equal(cid, command.Command.CommandId);
        Assert.Equal((byte)AdminOpcode.Identify, command.Command.Opcode);
        Assert.Equal(SglDescriptor.Transport(4096), command.Command.DataPointer);
        Assert.Equal(SubmissionQueueEntry.SglFlag, command.Command.Flags);
        Assert.Empty(command.Data);

        await peer.SendC2HDataAsync(cid, 0, identify, last: true, success: false);
        await peer.RespondAsync(cid, dw0: 7);
        var completion = await sink.NextAsync();

        Assert.True(completion.IsSuccess);
        Assert.Equal(cid, completion.CommandId);
        Assert.Same(state, completion.State);
        Assert.Equal(4096, completion.BytesTransferred);
        Assert.Equal(7u, completion.Completion.Dw0);
        Assert.Equal(identify, buffer);
    }

    [Theory]
    [InlineData(PeerNetwork.Memory, DigestOptions.None, 0)]
    [InlineData(PeerNetwork.Tcp, DigestOptions.Both, 0)]
    [InlineData(PeerNetwork.Raw, DigestOptions.Both, 0)]
    [InlineData(PeerNetwork.Memory, DigestOptions.Both, 7)]
    public async Task A_small_write_travels_in_the_capsule_at_the_controller_alignment(string kind, DigestOptions digests, byte cpda)
    {
        await using var network = PeerNetwork.Create(kind);
        var (io, peer) = await Connections.IoAsync(network, QueuePairOptions.Io with { Digests = digests, InCapsuleDataSize = 16384 }, new ICResp(0, cpda, digests, 131072));
        await using var ioScope = io;
        await using var peerScope = peer;
        var data = Connections.Pattern(16384, 2);

        var writing = io.WriteAsync(1, 10, 32, data);
        var command = await peer.ReceiveCommandAsync();
        Assert.Equal(SglDescriptor.InCapsule(16384), command.Command.DataPointer);
        Assert.Equal(data, command.Data);
        Assert.True(command.DataDigestValid);
        Assert.Equal(0, command.Common.DataOffset % ((cpda + 1) * 4));
        await peer.RespondAsync(command.Command.CommandId);

        var result = await writing.Within();
        Assert.True(result.IsSuccess, result.ToString());
        Assert.Equal(16384, result.BytesTransferred);
    }

    [Theory]
    [InlineData(PeerNetwork.Memory, DigestOptions.None)]
    [InlineData(PeerNetwork.Tcp, DigestOptions.Both)]
    [InlineData(PeerNetwork.Raw, DigestOptions.Both)]
    public async Task R2T_is_answered_with_H2CData_split_at_MAXH2CDATA(string kind, DigestOptions digests)
    {
        await using var network = PeerNetwork.Create(kind);
        var (io, peer) = await Connections.IoAsync(network, QueuePairOptions.Io with { Digests = digests, InCapsuleDataSize = 4096 }, new ICResp(0, 0, digests, 4096));
        await using var ioScope = io;
        await using var peerScope = peer;
        var data = Connections.Pattern(20480, 3);

        var writing = io.WriteAsync(1, 0, 40, data);
        var command = await peer.ReceiveCommandAsync();
        ushort cid = command.Command.CommandId;
        Assert.Equal(SglDescriptor.Transport(20480), command.Command.DataPointer);
        Assert.Empty(command.Data);

        // Two R2Ts, the first for 10 KiB (three PDUs: 4 + 4 + 2 KiB), the second for the rest.
        var received = new byte[20480];
        await peer.SendR2TAsync(cid, 5, 0, 10240);
        foreach (var (offset, length, last) in new[] { (0u, 4096, false), (4096u, 4096, false), (8192u, 2048, true) })
        {
            var pdu = await peer.ExpectAsync(PduType.H2CData);
            Assert.Equal(new DataPduHeader(cid, 5, offset, (uint)length), pdu.DataHeader);
            Assert.Equal(last, (pdu.Common.Flags & PduFlags.LastPdu) != 0);
            Assert.True(pdu.DataDigestValid);
            pdu.Data.CopyTo(received, (int)offset);
        }

        await peer.SendR2TAsync(cid, 6, 10240, 10240);
        for (uint offset = 10240; offset < 20480; offset += 4096)
        {
            var pdu = await peer.ExpectAsync(PduType.H2CData);
            Assert.Equal(6, pdu.DataHeader.TransferTag);
            Assert.Equal(offset, pdu.DataHeader.DataOffset);
            Assert.Equal(offset + 4096 >= 20480, (pdu.Common.Flags & PduFlags.LastPdu) != 0);
            pdu.Data.CopyTo(received, (int)offset);
        }

        await peer.RespondAsync(cid);
        Assert.True((await writing.Within()).IsSuccess);
        Assert.Equal(data, received);
    }

    [Theory]
    [InlineData(PeerNetwork.Memory)]
    [InlineData(PeerNetwork.Tcp)]
    [InlineData(PeerNetwork.Raw)]
    public async Task Multi_PDU_C2HData_with_SUCCESS_completes_without_a_CapsuleResp(string kind)
    {
        await using var network = PeerNetwork.Create(kind);
        var (io, peer) = await Connections.IoAsync(network);
        await using var ioScope = io;
        await using var peerScope = peer;
        var data = Connections.Pattern(12288, 4);
        var buffer = new byte[12288];

        var reading = io.ReadAsync(1, 0, 24, buffer);
        var command = await peer.ReceiveCommandAsync();
        ushort cid = command.Command.CommandId;
        await peer.SendC2HDataAsync(cid, 0, data.AsMemory(0, 4096), last: false, success: false);
        await peer.SendC2HDataAsync(cid, 4096, data.AsMemory(4096, 4096), last: false, success: false);
        await peer.SendC2HDataAsync(cid, 8192, data.AsMemory(8192, 4096), last: true, success: true);

        var result = await reading.Within();
        Assert.True(result.IsSuccess, result.ToString());
        Assert.Equal(12288, result.BytesTransferred);
        Assert.Equal(data, buffer);

        // The queue is still healthy afterwards.
        var next = io.SubmitAsync(NvmCommands.Flush(1));
        await peer.RespondAsync((await peer.ReceiveCommandAsync()).Command.CommandId);
        Assert.True((await next.Within()).IsSuccess);
    }

    [Theory]
    [InlineData(PeerNetwork.Memory)]
    [InlineData(PeerNetwork.Tcp)]
    [InlineData(PeerNetwork.Raw)]
    public async Task A_read_of_the_largest_transfer_arrives_in_one_PDU(string kind)
    {
        await using var network = PeerNetwork.Create(kind);
        var (io, peer) = await Connections.IoAsync(network, QueuePairOptions.Io with { Digests = DigestOptions.Data });
        await using var ioScope = io;
        await using var peerScope = peer;
        var data = Connections.Pattern(io.Options.MaxTransferSize, 6);
        var buffer = new byte[data.Length];

        var reading = io.ReadAsync(1, 0, data.Length / 512, buffer);
        var cid = (await peer.ReceiveCommandAsync()).Command.CommandId;
        await peer.SendC2HDataAsync(cid, 0, data, last: true, success: true);

        var result = await reading.Within();
        Assert.True(result.IsSuccess, result.ToString());
        Assert.Equal(data, buffer);
    }

    [Theory]
    [InlineData(PeerNetwork.Memory)]
    [InlineData(PeerNetwork.Tcp)]
    [InlineData(PeerNetwork.Raw)]
    public async Task A_data_digest_error_fails_only_that_command(string kind)
    {
        await using var network = PeerNetwork.Create(kind);
        var (io, peer) = await Connections.IoAsync(network, QueuePairOptions.Io with { Digests = DigestOptions.Both });
        await using var ioScope = io;
        await using var peerScope = peer;
        var first = new byte[4096];
        var second = new byte[4096];
        var data = Connections.Pattern(4096, 5);

        var readingFirst = io.ReadAsync(1, 0, 8, first);
        var readingSecond = io.ReadAsync(1, 8, 8, second);
        var cidFirst = (await peer.ReceiveCommandAsync()).Command.CommandId;
        var cidSecond = (await peer.ReceiveCommandAsync()).Command.CommandId;

        var corrupted = peer.C2HData(cidFirst, 0, data, last: true, success: true);
        corrupted[^1] ^= 0xFF; // the data digest is the last 4 bytes
        await peer.SendAsync(corrupted);
        await peer.SendC2HDataAsync(cidSecond, 0, data, last: true, success: false);
        await peer.RespondAsync(cidSecond);

        var failed = await readingFirst.Within();
        Assert.Equal(CommandOutcome.DataDigestError, failed.Outcome);
        Assert.False(failed.IsSuccess);
        var succeeded = await readingSecond.Within();
        Assert.True(succeeded.IsSuccess, succeeded.ToString());
        Assert.Equal(data, second);
        Assert.False(io.IsClosed);
    }

    [Theory]
    [InlineData(PeerNetwork.Memory)]
    [InlineData(PeerNetwork.Tcp)]
    [InlineData(PeerNetwork.Raw)]
    public async Task A_header_digest_error_sends_H2CTermReq_and_closes(string kind)
    {
        await using var network = PeerNetwork.Create(kind);
        var (io, peer) = await Connections.IoAsync(network, QueuePairOptions.Io with { Digests = DigestOptions.Header });
        await using var ioScope = io;
        await using var peerScope = peer;

        var flushing = io.SubmitAsync(NvmCommands.Flush(1));
        var cid = (await peer.ReceiveCommandAsync()).Command.CommandId;
        var response = peer.Response(cid);
        response[PduSizes.CapsuleResp] ^= 0x01; // the header digest follows the 24-byte header
        await peer.SendAsync(response);

        var closed = await io.Closed.Within();
        Assert.Equal(CloseReason.HeaderDigestError, closed.Reason);
        Assert.Equal(CommandOutcome.ConnectionClosed, (await flushing.Within()).Outcome);
        var termReq = await peer.ExpectAsync(PduType.H2CTermReq);
        Assert.Equal(TermReqError.HeaderDigestError, termReq.TermReq.Status);
        Assert.Equal(response.AsSpan(0, PduSizes.CapsuleResp).ToArray(), termReq.Data);
    }

    [Fact]
    public async Task Fabrics_Connect_carries_queue_id_size_attributes_and_the_1024_byte_data()
    {
        await using var network = PeerNetwork.Create(PeerNetwork.Memory);
        var hostId = Guid.Parse("00112233-4455-6677-8899-aabbccddeeff");
        var parameters = new FabricsConnectParameters(hostId, "nqn.2016-06.io.spdk:cnode1", "nqn.2014-08.org.nvmexpress:uuid:host") { ControllerId = 0x0042, DisableSqFlowControl = true };
        var accepting = network.AcceptAsync();
        var connecting = IoQueuePair.ConnectAsync(network.Transport, network.Address, 3, QueuePairOptions.Io with { QueueSize = 64 }, parameters);
        await using var peer = await accepting;
        await peer.AcceptAsync();

        var connect = await peer.ReceiveCommandAsync();
        var sqe = connect.Command;
        Assert.True(sqe.IsFabrics);
        Assert.Equal(FabricsCommandType.Connect, sqe.FabricsType);
        Assert.Equal(3, FabricsCommands.ConnectQueueId(sqe));
        Assert.Equal(64, FabricsCommands.ConnectQueueSize(sqe));
        Assert.Equal(FabricsCommands.DisableSqFlowControl, FabricsCommands.ConnectAttributes(sqe));
        Assert.Equal(SglDescriptor.InCapsule(1024), sqe.DataPointer);
        Assert.Equal(1024, connect.Data.Length);
        Assert.Equal(hostId.ToByteArray(bigEndian: true), connect.Data[..16]);
        Assert.Equal(0x0042, BinaryPrimitives.ReadUInt16LittleEndian(connect.Data.AsSpan(16)));
        Assert.Equal("nqn.2016-06.io.spdk:cnode1", Encoding.UTF8.GetString(connect.Data.AsSpan(256, 256)).TrimEnd('\0'));
        Assert.Equal("nqn.2014-08.org.nvmexpress:uuid:host", Encoding.UTF8.GetString(connect.Data.AsSpan(512, 256)).TrimEnd('\0'));
        await peer.RespondAsync(sqe.CommandId, dw0: 0x0042);

        await using var io = await connecting.Within();
        Assert.Equal(3, io.QueueId);
    }

    [Fact]
    public async Task A_refused_Fabrics_Connect_closes_with_ConnectRejected()
    {
        await using var network = PeerNetwork.Create(PeerNetwork.Memory);
        var parameters = new FabricsConnectParameters(Guid.NewGuid(), "nqn.2016-06.io.spdk:cnode9", "nqn.2014-08.org.nvmexpress:uuid:host");
        var accepting = network.AcceptAsync();
        var connecting = IoQueuePair.ConnectAsync(network.Transport, network.Address, 1, QueuePairOptions.Io, parameters);
        await using var peer = await accepting;
        await peer.AcceptAsync();
        var connect = await peer.ReceiveCommandAsync();
        await peer.RespondAsync(connect.Command.CommandId, NvmeStatus.Specific((byte)FabricsStatus.ConnectInvalidParameters));

        var rejected = await Assert.ThrowsAsync<ConnectionClosedException>(() => connecting.Within());
        Assert.Equal(CloseReason.ConnectRejected, rejected.Closed.Reason);
        Assert.Contains("connect invalid parameters", rejected.Closed.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Submissions_beyond_the_queue_size_are_refused_without_blocking()
    {
        await using var network = PeerNetwork.Create(PeerNetwork.Memory);
        var (admin, peer, sink) = await Connections.AdminAsync(network, QueuePairOptions.Admin with { QueueSize = 4 });
        await using var adminScope = admin;
        await using var peerScope = peer;

        Assert.Equal(3, admin.Capacity);
        var cids = new List<ushort>();
        for (int i = 0; i < 3; i++)
        {
            Assert.Equal(SubmitStatus.Submitted, admin.TrySubmit(AdminCommands.KeepAlive(), i, out ushort cid));
            cids.Add(cid);
        }

        Assert.Equal(SubmitStatus.QueueFull, admin.TrySubmit(AdminCommands.KeepAlive(), null, out _));
        Assert.Equal(3, cids.Distinct().Count());
        Assert.All(cids, cid => Assert.InRange(cid, 0, 2));

        var first = await peer.ReceiveCommandAsync();
        await peer.RespondAsync(first.Command.CommandId);
        Assert.Equal(first.Command.CommandId, (await sink.NextAsync()).CommandId);

        // Delivered but not released: the owner may not have handled it yet, so the id stays taken.
        Assert.Equal(SubmitStatus.QueueFull, admin.TrySubmit(AdminCommands.KeepAlive(), null, out _));
        Assert.False(admin.Release(cids.First(c => c != first.Command.CommandId)), "an id still outstanding must not be releasable");
        Assert.Equal(SubmitStatus.QueueFull, admin.TrySubmit(AdminCommands.KeepAlive(), null, out _));

        Assert.True(admin.Release(first.Command.CommandId));
        Assert.False(admin.Release(first.Command.CommandId), "a second release of the same completion must change nothing");
        Assert.Equal(SubmitStatus.Submitted, admin.TrySubmit(AdminCommands.KeepAlive(), null, out ushort reused));
        Assert.Equal(first.Command.CommandId, reused);
        Assert.Equal(SubmitStatus.QueueFull, admin.TrySubmit(AdminCommands.KeepAlive(), null, out _));
    }

    [Fact]
    public async Task An_admin_id_is_not_reused_before_release_however_fast_completions_arrive()
    {
        await using var network = PeerNetwork.Create(PeerNetwork.Memory);
        var (admin, peer, sink) = await Connections.AdminAsync(network, QueuePairOptions.Admin with { QueueSize = 8 });
        await using var adminScope = admin;
        await using var peerScope = peer;

        // Like an AER answered at once, over and over, with the owner releasing only later.
        var unreleased = new HashSet<ushort>();
        for (int i = 0; i < admin.Capacity; i++)
        {
            Assert.Equal(SubmitStatus.Submitted, admin.TrySubmit(AdminCommands.AsynchronousEventRequest(), i, out ushort cid));
            Assert.True(unreleased.Add(cid), $"cid {cid} handed out twice before its release");
            await peer.RespondAsync((await peer.ReceiveCommandAsync()).Command.CommandId);
            var completion = await sink.NextAsync();
            Assert.Equal(cid, completion.CommandId);
            Assert.Equal(i, completion.State);
        }

        Assert.Equal(SubmitStatus.QueueFull, admin.TrySubmit(AdminCommands.AsynchronousEventRequest(), null, out _));
        foreach (var cid in unreleased)
        {
            Assert.True(admin.Release(cid));
        }

        var again = new HashSet<ushort>();
        for (int i = 0; i < admin.Capacity; i++)
        {
            Assert.Equal(SubmitStatus.Submitted, admin.TrySubmit(AdminCommands.AsynchronousEventRequest(), null, out ushort cid));
            again.Add(cid);
        }

        Assert.Equal(unreleased.Order(), again.Order());
    }

    [Fact]
    public async Task The_admin_queue_holds_slots_only_until_answers_are_released_and_a_late_answer_is_refused()
    {
        await using var network = PeerNetwork.Create(PeerNetwork.Memory);
        var (admin, peer, sink) = await Connections.AdminAsync(network, QueuePairOptions.Admin with { QueueSize = 8 });
        await using var adminScope = admin;
        await using var peerScope = peer;

        // More keep-alives than ids: the ids rotate through the whole queue, as an idle controller's do.
        ushort released = 0;
        for (int i = 0; i < 3 * admin.Capacity; i++)
        {
            Assert.Equal(SubmitStatus.Submitted, admin.TrySubmit(AdminCommands.KeepAlive(), i, out ushort cid));
            await peer.ReceiveCommandAsync();
            await peer.RespondAsync(cid);
            var completion = await sink.NextAsync();
            Assert.Equal(i, completion.State);
            Assert.Equal(1, admin.SlotsHeld);
            Assert.True(admin.Release(cid));
            Assert.False(admin.Release(cid), "a second release must change nothing");
            Assert.Equal(0, admin.SlotsHeld);
            released = cid;
        }

        // A late answer for a released id finds no slot: refused like any id that is not outstanding.
        await peer.SendAsync(peer.Response(released));
        var closed = await admin.Closed.Within();
        Assert.Equal(CloseReason.UnknownCommandId, closed.Reason);
        Assert.Equal(0, sink.CompletionsAfterClose);
    }

    [Fact]
    public async Task A_second_answer_for_a_delivered_but_unreleased_id_is_a_protocol_error()
    {
        await using var network = PeerNetwork.Create(PeerNetwork.Memory);
        var (admin, peer, sink) = await Connections.AdminAsync(network);
        await using var adminScope = admin;
        await using var peerScope = peer;

        Assert.Equal(SubmitStatus.Submitted, admin.TrySubmit(AdminCommands.KeepAlive(), null, out ushort cid));
        await peer.ReceiveCommandAsync();
        await peer.RespondAsync(cid);
        Assert.True((await sink.NextAsync()).IsSuccess);

        var duplicate = peer.Response(cid);
        await peer.SendAsync(duplicate);
        var closed = await admin.Closed.Within();
        Assert.Equal(CloseReason.UnknownCommandId, closed.Reason);
        var termReq = Assert.Single(await peer.DrainUntilClosedAsync().Within());
        Assert.Equal(PduType.H2CTermReq, termReq.Type);
        Assert.Equal(TermReqError.InvalidHeaderField, termReq.TermReq.Status);
        Assert.Equal(0, sink.CompletionsAfterClose);
    }

    [Fact]
    public async Task An_io_id_is_not_reused_before_the_awaiter_took_its_result()
    {
        await using var network = PeerNetwork.Create(PeerNetwork.Memory);
        var (io, peer) = await Connections.IoAsync(network, QueuePairOptions.Io with { QueueSize = 4 });
        await using var ioScope = io;
        await using var peerScope = peer;

        var buffers = Enumerable.Range(0, io.Capacity).Select(_ => new byte[512]).ToArray();
        var reads = buffers.Select((b, i) => io.ReadAsync(1, (ulong)i, 1, b)).ToArray();
        var cids = new List<ushort>();
        for (int i = 0; i < io.Capacity; i++)
        {
            cids.Add((await peer.ReceiveCommandAsync()).Command.CommandId);
        }

        await peer.SendC2HDataAsync(cids[0], 0, Connections.Pattern(512, 3), last: true, success: true);
        using (var deadline = new CancellationTokenSource(ScriptedPeer.Deadline))
        {
            while (!reads[0].IsCompleted)
            {
                await Task.Delay(5, deadline.Token);
            }
        }

        // Answered, but nobody has taken the result: its id (and slot) must stay out of the pool.
        Assert.Equal(CommandOutcome.QueueFull, (await io.ReadAsync(1, 9, 1, new byte[512]).Within()).Outcome);

        Assert.True((await reads[0].Within()).IsSuccess);
        Assert.Equal(Connections.Pattern(512, 3), buffers[0]);
        var next = io.ReadAsync(1, 10, 1, new byte[512]);
        Assert.Equal(cids[0], (await peer.ReceiveCommandAsync()).Command.CommandId);
        Assert.False(next.IsCompleted);
    }

    [Theory]
    [InlineData(PeerNetwork.Memory)]
    [InlineData(PeerNetwork.Tcp)]
    [InlineData(PeerNetwork.Raw)]
    public async Task When_the_peer_closes_outstanding_commands_fail_before_the_sink_hears_of_the_close(string kind)
    {
        await using var network = PeerNetwork.Create(kind);
        var (admin, peer, sink) = await Connections.AdminAsync(network);
        await using var adminScope = admin;

        Assert.Equal(SubmitStatus.Submitted, admin.TrySubmit(AdminCommands.AsynchronousEventRequest(), "aer", out _));
        Assert.Equal(SubmitStatus.Submitted, admin.TrySubmitRead(AdminCommands.Identify(1), new byte[4096], "identify", out _));
        await peer.ReceiveCommandAsync();
        await peer.ReceiveCommandAsync();
        await peer.DisposeAsync();

        var failures = new[] { await sink.NextAsync(), await sink.NextAsync() };
        Assert.All(failures, f => Assert.Equal(CommandOutcome.ConnectionClosed, f.Outcome));
        Assert.All(failures, f => Assert.Equal(StatusCodeType.PathRelated, f.Status.Type));
        Assert.Equal(["aer", "identify"], failures.Select(f => (string)f.State!).Order());
        var closed = await sink.Closed.Within();
        Assert.Equal(CloseCause.Remote, closed.Cause);
        Assert.Equal(closed, await admin.Closed.Within());
        Assert.Equal(0, sink.CompletionsAfterClose);
        Assert.Equal(SubmitStatus.Closed, admin.TrySubmit(AdminCommands.KeepAlive(), null, out _));
    }

    [Theory]
    [InlineData(PeerNetwork.Memory)]
    [InlineData(PeerNetwork.Tcp)]
    [InlineData(PeerNetwork.Raw)]
    public async Task Many_threads_submit_concurrently_and_every_command_completes_once(string kind)
    {
        await using var network = PeerNetwork.Create(kind);
        var (io, peer) = await Connections.IoAsync(network, QueuePairOptions.Io with { QueueSize = 32 });
        await using var ioScope = io;
        await using var peerScope = peer;
        const int PerWorker = 200;
        const int Workers = 8;

        // A responder that answers every read with its LBA in each byte's place.
        var responding = Task.Run(async () =>
        {
            for (int i = 0; i < PerWorker * Workers; i++)
            {
                var command = (await peer.ReceiveCommandAsync()).Command;
                var data = new byte[512];
                BinaryPrimitives.WriteUInt64LittleEndian(data, NvmCommands.StartLba(command));
                await peer.SendC2HDataAsync(command.CommandId, 0, data, last: true, success: true);
            }
        });

        var workers = Enumerable.Range(0, Workers).Select(worker => Task.Run(async () =>
        {
            var buffer = new byte[512];
            for (int i = 0; i < PerWorker; i++)
            {
                ulong lba = (ulong)((worker * PerWorker) + i);
                IoResult result;
                while ((result = await io.ReadAsync(1, lba, 1, buffer)).Outcome == CommandOutcome.QueueFull)
                {
                    await Task.Yield();
                }

                Assert.True(result.IsSuccess, result.ToString());
                Assert.Equal(lba, BinaryPrimitives.ReadUInt64LittleEndian(buffer));
            }
        })).ToArray();

        await Task.WhenAll(workers).WaitAsync(ScriptedPeer.Deadline);
        await responding.WaitAsync(ScriptedPeer.Deadline);
    }
}
