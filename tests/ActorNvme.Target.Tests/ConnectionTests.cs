using ActorNvme.Protocol.Data;
using ActorNvme.Protocol.Nvme;
using ActorNvme.Protocol.Tcp;

namespace ActorNvme.Target.Tests;

public sealed class ConnectionTests
{
    [Theory]
    [MemberData(nameof(Transports.Both), MemberType = typeof(Transports))]
    public async Task ICResp_grants_the_digests_asked_with_default_MAXH2CDATA_and_CPDA_0(string transport)
    {
        await using var t = TestTarget.Create(transport);
        foreach (var digests in new[] { DigestOptions.None, DigestOptions.Header, DigestOptions.Data, DigestOptions.Both })
        {
            await using var client = await t.ConnectAsync();
            var response = await client.InitializeAsync(digests);
            Assert.Equal(digests, response.Digests);
            Assert.Equal(128u * 1024, response.MaxH2CData);
            Assert.Equal(0, response.ControllerPduDataAlignment);
            Assert.Equal(0, response.PduFormatVersion);
        }
    }

    [Fact]
    public async Task MAXH2CDATA_is_configurable()
    {
        await using var t = TestTarget.Create(options: new TargetOptions { MaxH2CData = 8192 });
        await using var client = await t.ConnectAsync();
        Assert.Equal(8192u, (await client.InitializeAsync()).MaxH2CData);
    }

    [Theory]
    [MemberData(nameof(Transports.Both), MemberType = typeof(Transports))]
    public async Task Admin_connect_allocates_distinct_controller_ids(string transport)
    {
        await using var t = TestTarget.Create(transport);
        await using var a = await t.ConnectAsync();
        await using var b = await t.ConnectAsync();
        await a.InitializeAsync();
        await b.InitializeAsync();
        var ra = await a.ConnectAsync(TestTarget.Nqn);
        var rb = await b.ConnectAsync(TestTarget.Nqn);
        Assert.True(ra.Status.IsSuccess);
        Assert.True(rb.Status.IsSuccess);
        Assert.NotEqual(0u, ra.Completion.Dw0);
        Assert.NotEqual(ra.Completion.Dw0, rb.Completion.Dw0);
        Assert.Equal(1, ra.Completion.SqHead);
        Assert.Equal(2, t.Subsystem.ControllerCount);
    }

    [Fact]
    public async Task Connect_with_SQ_flow_control_disabled_answers_SQHD_FFFF()
    {
        await using var t = TestTarget.Create();
        await using var client = await t.ConnectAsync();
        await client.InitializeAsync();
        var result = await client.ConnectAsync(TestTarget.Nqn, disableSqFlow: true);
        Assert.True(result.Status.IsSuccess);
        Assert.Equal(0xFFFF, result.Completion.SqHead);
    }

    [Fact]
    public async Task Connect_to_an_unknown_subsystem_is_invalid_parameters_pointing_at_SUBNQN()
    {
        await using var t = TestTarget.Create();
        await using var client = await t.ConnectAsync();
        await client.InitializeAsync();
        var result = await client.ConnectAsync("nqn.2024-01.io.actornvme:nope");
        AssertFabricsStatus(result, FabricsStatus.ConnectInvalidParameters);
        Assert.Equal((1u << 16) | 256, result.Completion.Dw0);
    }

    [Fact]
    public async Task Connect_from_a_host_not_allowed_is_invalid_host()
    {
        await using var t = TestTarget.Create();
        t.Subsystem.SetAllowAnyHost(false);
        t.Subsystem.AllowHost("nqn.2014-08.org.nvmexpress:uuid:someone-else");
        await using var client = await t.ConnectAsync();
        await client.InitializeAsync();
        var result = await client.ConnectAsync(TestTarget.Nqn);
        AssertFabricsStatus(result, FabricsStatus.ConnectInvalidHost);
        Assert.Equal((1u << 16) | 512, result.Completion.Dw0);

        t.Subsystem.AllowHost(RawClient.HostNqn);
        Assert.True((await client.ConnectAsync(TestTarget.Nqn)).Status.IsSuccess);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(33)]
    public async Task Connect_with_SQSIZE_out_of_bounds_is_invalid_parameters_pointing_at_SQSIZE(int queueSize)
    {
        await using var t = TestTarget.Create();
        await using var client = await t.ConnectAsync();
        await client.InitializeAsync();
        var sqe = FabricsCommands.Connect(0, 2, 0);
        sqe.Cdw11 = (uint)(queueSize - 1);
        var result = await client.CommandAsync(sqe, inCapsule: RawClient.ConnectData(TestTarget.Nqn));
        AssertFabricsStatus(result, FabricsStatus.ConnectInvalidParameters);
        Assert.Equal(44u, result.Completion.Dw0);
    }

    [Fact]
    public async Task Admin_connect_with_a_static_controller_id_is_refused()
    {
        await using var t = TestTarget.Create();
        await using var client = await t.ConnectAsync();
        await client.InitializeAsync();
        var result = await client.ConnectAsync(TestTarget.Nqn, controllerId: 1);
        AssertFabricsStatus(result, FabricsStatus.ConnectInvalidParameters);
        Assert.Equal((1u << 16) | 16, result.Completion.Dw0);
    }

    [Fact]
    public async Task Connect_with_a_record_format_other_than_0_is_incompatible_format()
    {
        await using var t = TestTarget.Create();
        await using var client = await t.ConnectAsync();
        await client.InitializeAsync();
        var sqe = FabricsCommands.Connect(0, 32, 0);
        sqe.Cdw10 |= 1;
        var result = await client.CommandAsync(sqe, inCapsule: RawClient.ConnectData(TestTarget.Nqn));
        AssertFabricsStatus(result, FabricsStatus.IncompatibleFormat);
    }

    [Fact]
    public async Task Io_queue_connect_checks_controller_id_queue_id_and_duplicates()
    {
        await using var t = TestTarget.Create();
        var (admin, io, id) = await t.ConnectIoAsync();
        await using var _ = admin;
        await using var __ = io;

        await using var wrongController = await t.ConnectAsync();
        await wrongController.InitializeAsync();
        var r = await wrongController.ConnectAsync(TestTarget.Nqn, 2, 32, 0, (ushort)(id + 100));
        AssertFabricsStatus(r, FabricsStatus.ConnectInvalidParameters);
        Assert.Equal((1u << 16) | 16, r.Completion.Dw0);

        var wrongHost = await wrongController.ConnectAsync(TestTarget.Nqn, 2, 32, 0, id, hostNqn: "nqn.2014-08.org.nvmexpress:uuid:other");
        AssertFabricsStatus(wrongHost, FabricsStatus.ConnectInvalidParameters);

        var tooHigh = await wrongController.ConnectAsync(TestTarget.Nqn, 99, 32, 0, id);
        AssertFabricsStatus(tooHigh, FabricsStatus.ConnectInvalidParameters);
        Assert.Equal(42u, tooHigh.Completion.Dw0);

        var tooDeep = await wrongController.ConnectAsync(TestTarget.Nqn, 2, 129, 0, id);
        AssertFabricsStatus(tooDeep, FabricsStatus.ConnectInvalidParameters);
        Assert.Equal(44u, tooDeep.Completion.Dw0);

        var duplicate = await wrongController.ConnectAsync(TestTarget.Nqn, 1, 32, 0, id);
        Assert.Equal(GenericStatus.CommandSequenceError, (GenericStatus)duplicate.Status.Code);

        var ok = await wrongController.ConnectAsync(TestTarget.Nqn, 2, 32, 0, id);
        Assert.True(ok.Status.IsSuccess);
        Assert.Equal(id, (ushort)ok.Completion.Dw0);
    }

    [Fact]
    public async Task A_command_before_Connect_is_an_invalid_opcode()
    {
        await using var t = TestTarget.Create();
        await using var client = await t.ConnectAsync();
        await client.InitializeAsync();
        var result = await client.CommandAsync(AdminCommands.KeepAlive());
        Assert.Equal(NvmeStatus.Generic(GenericStatus.InvalidOpcode, true), result.Status);
    }

    [Fact]
    public async Task Admin_commands_wait_for_CC_EN_and_CSTS_RDY()
    {
        await using var t = TestTarget.Create();
        await using var client = await t.ConnectAsync();
        await client.InitializeAsync();
        await client.ConnectAsync(TestTarget.Nqn);
        var early = await client.CommandAsync(AdminCommands.KeepAlive());
        Assert.Equal(NvmeStatus.Generic(GenericStatus.CommandSequenceError, true), early.Status);
        await client.EnableAsync();
        Assert.True((await client.CommandAsync(AdminCommands.KeepAlive())).Status.IsSuccess);
    }

    [Fact]
    public async Task Properties_report_CAP_VS_and_follow_CC_EN_and_CC_SHN()
    {
        await using var t = TestTarget.Create();
        await using var client = await t.ConnectAsync();
        await client.InitializeAsync();
        await client.ConnectAsync(TestTarget.Nqn);

        var cap = await client.CommandAsync(FabricsCommands.PropertyGet(0x00, true));
        Assert.Equal(127ul, cap.Completion.Result64 & 0xFFFF); // MQES
        Assert.NotEqual(0ul, cap.Completion.Result64 & (1ul << 37)); // CSS: NVM
        var vs = await client.CommandAsync(FabricsCommands.PropertyGet(0x08, false));
        Assert.Equal(0x00010300u, vs.Completion.Dw0);
        var csts = await client.CommandAsync(FabricsCommands.PropertyGet(ControllerStatus.Offset, false));
        Assert.Equal(0u, csts.Completion.Dw0);

        await client.EnableAsync();
        var cc = await client.CommandAsync(FabricsCommands.PropertyGet(ControllerConfiguration.Offset, false));
        Assert.Equal(1u, cc.Completion.Dw0 & 1);

        await client.CommandAsync(FabricsCommands.PropertySet(ControllerConfiguration.Offset, ControllerConfiguration.ForFabrics.Enabled.WithShutdown(ShutdownNotification.Normal).Value, false));
        csts = await client.CommandAsync(FabricsCommands.PropertyGet(ControllerStatus.Offset, false));
        Assert.Equal(2u, (csts.Completion.Dw0 >> 2) & 3); // SHST: complete

        var bad = await client.CommandAsync(FabricsCommands.PropertySet(0x08, 0, false));
        Assert.Equal(NvmeStatus.Generic(GenericStatus.InvalidField, true), bad.Status);
    }

    [Fact]
    public async Task CC_EN_with_unsupported_entry_sizes_sets_CSTS_CFS()
    {
        await using var t = TestTarget.Create();
        await using var client = await t.ConnectAsync();
        await client.InitializeAsync();
        await client.ConnectAsync(TestTarget.Nqn);
        await client.CommandAsync(FabricsCommands.PropertySet(ControllerConfiguration.Offset, new ControllerConfiguration { Enable = true }.Value, false)); // SQE/CQE sizes left 0
        var csts = await client.CommandAsync(FabricsCommands.PropertyGet(ControllerStatus.Offset, false));
        Assert.Equal(2u, csts.Completion.Dw0 & 3);
    }

    [Fact]
    public async Task Closing_the_admin_queue_tears_the_controller_down_with_its_io_queues()
    {
        await using var t = TestTarget.Create();
        var (admin, io, _) = await t.ConnectIoAsync();
        await using var __ = io;
        admin.Close();
        await admin.DisposeAsync();
        var (end, _) = await io.ReceiveUntilClosedAsync();
        Assert.NotEqual(ReceiveKind.Timeout, end);
        Assert.Equal(0, t.Subsystem.ControllerCount);
    }

    internal static void AssertFabricsStatus(CommandResult result, FabricsStatus expected)
    {
        Assert.Equal(StatusCodeType.CommandSpecific, result.Status.Type);
        Assert.Equal((byte)expected, result.Status.Code);
        Assert.True(result.Status.DoNotRetry);
    }
}
