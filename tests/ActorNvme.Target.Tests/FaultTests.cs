using System.Buffers.Binary;
using ActorNvme.Protocol.Data;
using ActorNvme.Protocol.Nvme;
using ActorNvme.Protocol.Tcp;

namespace ActorNvme.Target.Tests;

public sealed class FaultTests
{
    [Theory]
    [MemberData(nameof(Transports.Both), MemberType = typeof(Transports))]
    public async Task Blackhole_freezes_connections_and_leaves_new_ones_unserved_until_restored(string transport)
    {
        await using var t = TestTarget.Create(transport);
        await using var client = await t.ConnectAsync();
        await client.SetUpAdminAsync(TestTarget.Nqn);

        t.Faults.Blackhole(t.Listener);
        Assert.True(t.Listener.IsBlackholed);
        var keepAlive = await client.SendCommandAsync(AdminCommands.KeepAlive());
        var silence = await client.ReceiveAsync(TimeSpan.FromSeconds(1));
        Assert.Equal(ReceiveKind.Timeout, silence.Kind); // no answer, and neither FIN nor RST

        await using var late = await t.ConnectAsync(); // the connect itself completes
        var icreq = new byte[ICReq.Size];
        new ICReq(0, 0, DigestOptions.None, 0).WriteTo(icreq);
        await late.SendAsync(icreq);
        Assert.Equal(ReceiveKind.Timeout, (await late.ReceiveAsync(TimeSpan.FromMilliseconds(500))).Kind);

        t.Faults.Restore(t.Listener);
        Assert.True((await client.ReceiveCompletionAsync(keepAlive.CommandId)).Status.IsSuccess);
        Assert.True((await client.CommandAsync(AdminCommands.KeepAlive())).Status.IsSuccess);
        var icresp = await late.ReceiveAsync();
        Assert.Equal(PduType.ICResp, icresp.Type);
    }

    [Fact]
    public async Task A_controller_whose_keep_alive_expires_during_a_blackhole_is_reset_on_restore()
    {
        await using var t = TestTarget.Create();
        await using var client = await t.ConnectAsync();
        await client.SetUpAdminAsync(TestTarget.Nqn, kato: 200);
        t.Faults.Blackhole(t.Listener);
        var deadline = DateTime.UtcNow + RawClient.Deadline;
        while (t.Subsystem.ControllerCount > 0 && DateTime.UtcNow < deadline)
        {
            await Task.Delay(50);
        }

        Assert.Equal(0, t.Subsystem.ControllerCount);
        Assert.Equal(ReceiveKind.Timeout, (await client.ReceiveAsync(TimeSpan.FromMilliseconds(200))).Kind);
        t.Faults.Restore(t.Listener);
        var (end, _) = await client.ReceiveUntilClosedAsync();
        Assert.NotEqual(ReceiveKind.Timeout, end);
    }

    [Theory]
    [MemberData(nameof(Transports.Both), MemberType = typeof(Transports))]
    public async Task Reset_connections_drops_them(string transport)
    {
        await using var t = TestTarget.Create(transport);
        await using var client = await t.ConnectAsync();
        await client.SetUpAdminAsync(TestTarget.Nqn);
        Assert.Equal(1, t.Faults.ResetConnections(t.Listener));
        var (end, _) = await client.ReceiveUntilClosedAsync();
        Assert.True(end is ReceiveKind.Reset or ReceiveKind.Closed, end.ToString());
        if (transport == "tcp")
        {
            Assert.Equal(ReceiveKind.Reset, end);
        }
    }

    [Fact]
    public async Task Delayed_completions_still_arrive()
    {
        await using var t = TestTarget.Create();
        await using var client = await t.ConnectAsync();
        await client.SetUpAdminAsync(TestTarget.Nqn);
        t.Faults.DelayCompletions(TimeSpan.FromMilliseconds(500));
        var keepAlive = await client.SendCommandAsync(AdminCommands.KeepAlive());
        Assert.Equal(ReceiveKind.Timeout, (await client.ReceiveAsync(TimeSpan.FromMilliseconds(100))).Kind);
        Assert.True((await client.ReceiveCompletionAsync(keepAlive.CommandId)).Status.IsSuccess);
        var identify = await client.IdentifyAsync(1);
        Assert.Equal(4096, identify.Data.Length);
        t.Faults.DelayCompletions(TimeSpan.Zero);
        Assert.True((await client.CommandAsync(AdminCommands.KeepAlive(), timeout: TimeSpan.FromSeconds(5))).Status.IsSuccess);
    }

    [Fact]
    public async Task Delayed_reads_return_their_data()
    {
        await using var t = TestTarget.Create();
        var (admin, io, _) = await t.ConnectIoAsync();
        await using var _a = admin;
        await using var _i = io;
        var data = new byte[1024];
        data.AsSpan().Fill(0x5A);
        await io.WriteAsync(1, 0, data, 512, inCapsule: true);
        t.Faults.DelayCompletions(TimeSpan.FromMilliseconds(100), TestTarget.Nqn);
        Assert.Equal(data, (await io.ReadAsync(1, 0, 2, 512)).Data);
    }

    [Fact]
    public async Task Fail_next_N_fails_exactly_N_commands_of_that_opcode()
    {
        await using var t = TestTarget.Create();
        var (admin, io, _) = await t.ConnectIoAsync();
        await using var _a = admin;
        await using var _i = io;
        var status = NvmeStatus.Create(StatusCodeType.MediaAndDataIntegrity, 0x81);
        t.Faults.FailNextIo(NvmOpcode.Read, 2, status);
        Assert.True((await io.CommandAsync(NvmCommands.Flush(1))).Status.IsSuccess);
        Assert.Equal(status, (await io.ReadAsync(1, 0, 1, 512)).Status);
        Assert.Equal(status, (await io.ReadAsync(1, 0, 1, 512)).Status);
        Assert.True((await io.ReadAsync(1, 0, 1, 512)).Status.IsSuccess);

        // Admin opcode 0x02 (Get Log Page) is not NVM opcode 0x02 (Read).
        t.Faults.FailNextAdmin(AdminOpcode.GetLogPage, 1, NvmeStatus.Generic(GenericStatus.InternalError));
        Assert.True((await io.ReadAsync(1, 0, 1, 512)).Status.IsSuccess);
        Assert.Equal(NvmeStatus.Generic(GenericStatus.InternalError), (await admin.GetLogPageAsync(0x01, 64)).Status);

        // A write failed by injection asks for no data.
        t.Faults.FailNextIo(NvmOpcode.Write, 1, NvmeStatus.Generic(GenericStatus.NamespaceWriteProtected, true));
        var write = await io.WriteAsync(1, 0, new byte[4096], 512, inCapsule: false);
        Assert.Empty(write.R2Ts);
        Assert.Equal(GenericStatus.NamespaceWriteProtected, (GenericStatus)write.Status.Code);
    }

    [Theory]
    [MemberData(nameof(Transports.Both), MemberType = typeof(Transports))]
    public async Task A_corrupted_data_digest_is_detected_by_the_host_framer(string transport)
    {
        await using var t = TestTarget.Create(transport);
        var (admin, io, _) = await t.ConnectIoAsync(DigestOptions.Both);
        await using var _a = admin;
        await using var _i = io;
        Assert.True((await io.ReadAsync(1, 0, 8, 512)).AllDigestsValid);
        t.Faults.CorruptNextDataDigest();
        var corrupted = await io.ReadAsync(1, 0, 8, 512);
        Assert.False(corrupted.AllDigestsValid);
        Assert.True((await io.ReadAsync(1, 0, 8, 512)).AllDigestsValid);
    }

    [Theory]
    [MemberData(nameof(Transports.Both), MemberType = typeof(Transports))]
    public async Task Injected_C2HTermReq_reaches_the_host_before_the_connection_closes(string transport)
    {
        await using var t = TestTarget.Create(transport);
        await using var client = await t.ConnectAsync();
        await client.SetUpAdminAsync(TestTarget.Nqn);
        Assert.Equal(1, await t.Faults.SendTermReqAsync(TermReqError.DataTransferOutOfRange, 0, subsystemNqn: TestTarget.Nqn));
        var (end, pdus) = await client.ReceiveUntilClosedAsync();
        Assert.NotEqual(ReceiveKind.Timeout, end);
        var term = Assert.Single(pdus);
        Assert.Equal(PduType.C2HTermReq, term.Type);
        Assert.Equal(TermReqError.DataTransferOutOfRange, term.TermReq.Status);
    }

    [Fact]
    public async Task Adding_and_removing_a_namespace_sends_the_namespace_attribute_AEN_and_fills_the_changed_list()
    {
        await using var t = TestTarget.Create();
        var (admin, io, _) = await t.ConnectIoAsync();
        await using var _a = admin;
        await using var _i = io;
        Assert.True((await admin.CommandAsync(AdminCommands.SetAsyncEventConfiguration(0x900))).Status.IsSuccess);
        await admin.SendCommandAsync(AdminCommands.AsynchronousEventRequest());

        t.Faults.AddNamespace(TestTarget.Nqn, new NamespaceOptions { NamespaceId = 2, SizeBytes = 1 << 20 });
        var aen = await admin.WaitUnsolicitedAsync(RawClient.Deadline);
        Assert.Equal(0x00040002u, aen!.Value.Dw0);
        var changed = await admin.GetLogPageAsync(0x04, 4096);
        Assert.Equal(2u, BinaryPrimitives.ReadUInt32LittleEndian(changed.Data));
        Assert.Equal(0u, BinaryPrimitives.ReadUInt32LittleEndian(changed.Data.AsSpan(4)));
        Assert.Equal(0u, BinaryPrimitives.ReadUInt32LittleEndian((await admin.GetLogPageAsync(0x04, 4096)).Data)); // cleared by the read
        Assert.True((await io.ReadAsync(2, 0, 1, 512)).Status.IsSuccess);

        await admin.SendCommandAsync(AdminCommands.AsynchronousEventRequest());
        Assert.True(t.Faults.RemoveNamespace(TestTarget.Nqn, 1));
        Assert.Equal(0x00040002u, (await admin.WaitUnsolicitedAsync(RawClient.Deadline))!.Value.Dw0);
        Assert.Equal(1u, BinaryPrimitives.ReadUInt32LittleEndian((await admin.GetLogPageAsync(0x04, 4096)).Data));
        Assert.Equal(NvmeStatus.Generic(GenericStatus.InvalidNamespaceOrFormat, true), (await io.ReadAsync(1, 0, 1, 512)).Status);
    }

    [Fact]
    public async Task Changing_an_ANA_state_sends_the_ANA_AEN_and_fails_I_O_with_the_path_status()
    {
        await using var t = TestTarget.Create();
        var (admin, io, _) = await t.ConnectIoAsync();
        await using var _a = admin;
        await using var _i = io;
        await admin.CommandAsync(AdminCommands.SetAsyncEventConfiguration(0x900));
        await admin.SendCommandAsync(AdminCommands.AsynchronousEventRequest());

        t.Faults.SetAnaState(TestTarget.Nqn, 1, AnaState.Inaccessible, t.Listener);
        Assert.Equal(0x000C0302u, (await admin.WaitUnsolicitedAsync(RawClient.Deadline))!.Value.Dw0);
        var ana = await admin.GetLogPageAsync(0x0C, 4096);
        Assert.Equal((byte)AnaState.Inaccessible, ana.Data[32]);
        Assert.Equal(1ul, BinaryPrimitives.ReadUInt64LittleEndian(ana.Data));
        var read = await io.ReadAsync(1, 0, 1, 512);
        Assert.Equal(StatusCodeType.PathRelated, read.Status.Type);
        Assert.Equal((byte)PathStatus.AsymmetricAccessInaccessible, read.Status.Code);

        t.Faults.SetAnaState(TestTarget.Nqn, 1, AnaState.Optimized);
        Assert.True((await io.ReadAsync(1, 0, 1, 512)).Status.IsSuccess);
    }

    [Theory]
    [MemberData(nameof(Transports.Both), MemberType = typeof(Transports))]
    public async Task An_idle_association_is_dropped_when_its_keep_alive_timeout_expires(string transport)
    {
        await using var t = TestTarget.Create(transport);
        await using var client = await t.ConnectAsync();
        await client.SetUpAdminAsync(TestTarget.Nqn, kato: 300);
        var (end, _) = await client.ReceiveUntilClosedAsync(RawClient.Deadline);
        Assert.NotEqual(ReceiveKind.Timeout, end);
        Assert.Equal(0, t.Subsystem.ControllerCount);
    }

    [Fact]
    public async Task A_late_keep_alive_check_waits_one_check_period_before_dropping_the_controller()
    {
        await using var t = TestTarget.Create();
        await using var client = await t.ConnectAsync();
        await client.SetUpAdminAsync(TestTarget.Nqn, kato: 60_000); // checked every 15 s: the test drives the checks
        var controller = Assert.Single(t.Subsystem.Controllers());
        long start = Environment.TickCount64;

        // The process stalled past KATO: the host's Keep Alive may be waiting, unread, behind this check.
        controller.CheckKeepAlive(start + 90_000);
        Assert.Equal(1, t.Subsystem.ControllerCount);

        // A check period of running time later, still nothing from the host: dropped.
        controller.CheckKeepAlive(start + 90_000 + 15_000);
        Assert.Equal(0, t.Subsystem.ControllerCount);
    }

    [Fact]
    public async Task Keep_alives_keep_the_association()
    {
        await using var t = TestTarget.Create();
        await using var client = await t.ConnectAsync();
        await client.SetUpAdminAsync(TestTarget.Nqn, kato: 1000);
        for (int i = 0; i < 6; i++)
        {
            await Task.Delay(200);
            Assert.True((await client.CommandAsync(AdminCommands.KeepAlive())).Status.IsSuccess);
        }

        Assert.Equal(1, t.Subsystem.ControllerCount);
    }

    [Theory]
    [MemberData(nameof(Transports.Both), MemberType = typeof(Transports))]
    public async Task A_listener_taken_down_refuses_connections_and_comes_back_on_the_same_address(string transport)
    {
        await using var t = TestTarget.Create(transport);
        await using var client = await t.ConnectAsync();
        await client.SetUpAdminAsync(TestTarget.Nqn);
        var address = t.Listener.Address;
        await t.Faults.TakeDownListenerAsync(t.Listener);
        Assert.False(t.Listener.IsUp);
        var (end, _) = await client.ReceiveUntilClosedAsync();
        Assert.NotEqual(ReceiveKind.Timeout, end);
        await Assert.ThrowsAnyAsync<Exception>(() => t.ConnectAsync());

        t.Faults.BringUpListener(t.Listener);
        Assert.Equal(address, t.Listener.Address);
        await using var again = await t.ConnectAsync();
        await again.SetUpAdminAsync(TestTarget.Nqn);
    }

    [Fact]
    public async Task Connections_beyond_the_bound_are_closed_at_once()
    {
        await using var t = TestTarget.Create(options: new TargetOptions { MaxConnections = 1 });
        await using var first = await t.ConnectAsync();
        await first.SetUpAdminAsync(TestTarget.Nqn);
        await using var second = await t.ConnectAsync();
        var (end, pdus) = await second.ReceiveUntilClosedAsync();
        Assert.NotEqual(ReceiveKind.Timeout, end);
        Assert.Empty(pdus);
        Assert.True((await first.CommandAsync(AdminCommands.KeepAlive())).Status.IsSuccess);
    }
}
