using System.Buffers.Binary;
using ActorNvme.Protocol.Data;
using ActorNvme.Protocol.Nvme;
using ActorNvme.Transport;

namespace ActorNvme.Target.Tests;

public sealed class DiscoveryTests
{
    private const uint DiscoveryAen = 0x0070F002;

    private static string Field(byte[] page, int offset, int length)
    {
        var span = page.AsSpan(offset, length);
        int end = span.IndexOf((byte)0);
        return System.Text.Encoding.ASCII.GetString(end < 0 ? span : span[..end]).TrimEnd();
    }

    private static async Task<byte[]> ReadLogAsync(RawClient client)
    {
        var header = await client.GetLogPageAsync(0x70, 1024);
        Assert.True(header.Status.IsSuccess, header.Status.ToString());
        ulong records = BinaryPrimitives.ReadUInt64LittleEndian(header.Data.AsSpan(8));
        var full = await client.GetLogPageAsync(0x70, (uint)(1024 * (1 + (int)records)));
        return full.Data;
    }

    [Theory]
    [MemberData(nameof(Transports.Both), MemberType = typeof(Transports))]
    public async Task Discovery_log_lists_current_discovery_subsystem_every_linked_listener_and_referrals(string transport)
    {
        await using var t = TestTarget.Create(transport);
        var second = TestTarget.AddListener(t.Target, t.Network, transport);
        var other = t.Target.AddSubsystem(new NvmSubsystemOptions("nqn.2024-01.io.actornvme:other") { LinkToAllListeners = false });
        other.Link(second);
        var hidden = t.Target.AddSubsystem(new NvmSubsystemOptions("nqn.2024-01.io.actornvme:hidden") { AllowAnyHost = false });
        Assert.NotNull(hidden);
        t.Target.AddReferral(new TransportAddress("127.0.0.1", 8009));

        await using var client = await t.ConnectAsync();
        await client.SetUpAdminAsync(TestTarget.DiscoveryNqn);
        var log = await ReadLogAsync(client);
        ulong generation = BinaryPrimitives.ReadUInt64LittleEndian(log);
        Assert.Equal(t.Target.DiscoveryGeneration, generation);
        Assert.Equal(5ul, BinaryPrimitives.ReadUInt64LittleEndian(log.AsSpan(8)));
        var entries = Enumerable.Range(0, 5).Select(i => (
            Subtype: log[1024 * (i + 1) + 2],
            Port: BinaryPrimitives.ReadUInt16LittleEndian(log.AsSpan(1024 * (i + 1) + 4)),
            Service: Field(log, 1024 * (i + 1) + 32, 32),
            Nqn: Field(log, 1024 * (i + 1) + 256, 256),
            Address: Field(log, 1024 * (i + 1) + 512, 256))).ToList();

        Assert.Equal((3, TestTarget.DiscoveryNqn), (entries[0].Subtype, entries[0].Nqn));
        Assert.Equal(t.Listener.PortId, entries[0].Port);
        Assert.Equal((2, TestTarget.Nqn, t.Listener.PortId), (entries[1].Subtype, entries[1].Nqn, entries[1].Port));
        Assert.Equal(t.Listener.Address.Port.ToString(System.Globalization.CultureInfo.InvariantCulture), entries[1].Service);
        Assert.Equal(t.Listener.Address.Host, entries[1].Address);
        Assert.Equal((2, TestTarget.Nqn, second.PortId), (entries[2].Subtype, entries[2].Nqn, entries[2].Port));
        Assert.Equal((2, other.Nqn, second.PortId), (entries[3].Subtype, entries[3].Nqn, entries[3].Port));
        Assert.Equal((1, TestTarget.DiscoveryNqn, "8009"), (entries[4].Subtype, entries[4].Nqn, entries[4].Service));
        Assert.Equal(3, log[1024 + 0]); // TRTYPE TCP

        // The shared decoder agrees.
        var decoded = DiscoveryLogPage.Read(log);
        Assert.Equal(SubsystemType.CurrentDiscovery, decoded.Entries[0].SubsystemType);
        Assert.Equal(TransportRequirements.SqFlowControlDisableSupported, decoded.Entries[1].TransportRequirements);
        Assert.Equal(other.Nqn, decoded.Entries[3].SubsystemNqn);

        // LPO: the third entry alone, read at its offset.
        var third = await client.GetLogPageAsync(0x70, 1024, offset: 3 * 1024);
        Assert.Equal(log.AsSpan(3 * 1024, 1024).ToArray(), third.Data);
    }

    [Theory]
    [MemberData(nameof(Transports.Both), MemberType = typeof(Transports))]
    public async Task Unlink_changes_the_log_sends_the_AEN_drops_controllers_and_refuses_connects_through_that_listener(string transport)
    {
        await using var t = TestTarget.Create(transport);
        await using var discovery = await t.ConnectAsync();
        await discovery.SetUpAdminAsync(TestTarget.DiscoveryNqn);
        Assert.True((await discovery.CommandAsync(AdminCommands.SetAsyncEventConfiguration(1u << 31))).Status.IsSuccess);
        await ReadLogAsync(discovery);
        await discovery.SendCommandAsync(AdminCommands.AsynchronousEventRequest());

        await using var nvm = await t.ConnectAsync();
        await nvm.SetUpAdminAsync(TestTarget.Nqn);

        ulong before = t.Target.DiscoveryGeneration;
        t.Faults.UnlinkSubsystem(TestTarget.Nqn, t.Listener);
        Assert.True(t.Target.DiscoveryGeneration > before);

        var aen = await discovery.WaitUnsolicitedAsync(RawClient.Deadline);
        Assert.NotNull(aen);
        Assert.Equal(DiscoveryAen, aen.Value.Dw0);

        var (end, _) = await nvm.ReceiveUntilClosedAsync();
        Assert.NotEqual(ReceiveKind.Timeout, end);

        var log = await ReadLogAsync(discovery);
        Assert.Equal(1ul, BinaryPrimitives.ReadUInt64LittleEndian(log.AsSpan(8))); // only the current discovery subsystem

        await using var again = await t.ConnectAsync();
        await again.InitializeAsync();
        var refused = await again.ConnectAsync(TestTarget.Nqn);
        ConnectionTests.AssertFabricsStatus(refused, FabricsStatus.ConnectInvalidParameters);

        // Relink: the log was read, so the next change is reported again.
        await discovery.SendCommandAsync(AdminCommands.AsynchronousEventRequest());
        t.Faults.RelinkSubsystem(TestTarget.Nqn, t.Listener);
        Assert.Equal(DiscoveryAen, (await discovery.WaitUnsolicitedAsync(RawClient.Deadline))!.Value.Dw0);
        Assert.Equal(2ul, BinaryPrimitives.ReadUInt64LittleEndian((await ReadLogAsync(discovery)).AsSpan(8)));
        Assert.True((await again.ConnectAsync(TestTarget.Nqn)).Status.IsSuccess);
    }

    [Fact]
    public async Task Without_the_async_event_configuration_bit_no_discovery_AEN_is_sent()
    {
        await using var t = TestTarget.Create();
        await using var discovery = await t.ConnectAsync();
        await discovery.SetUpAdminAsync(TestTarget.DiscoveryNqn);
        await discovery.SendCommandAsync(AdminCommands.AsynchronousEventRequest());
        t.Target.AddSubsystem("nqn.2024-01.io.actornvme:new");
        Assert.Null(await discovery.WaitUnsolicitedAsync(TimeSpan.FromMilliseconds(300)));
    }

    [Fact]
    public async Task A_change_without_an_outstanding_AER_is_reported_by_the_next_AER_once()
    {
        await using var t = TestTarget.Create();
        await using var discovery = await t.ConnectAsync();
        await discovery.SetUpAdminAsync(TestTarget.DiscoveryNqn);
        await discovery.CommandAsync(AdminCommands.SetAsyncEventConfiguration(1u << 31));
        t.Target.AddSubsystem("nqn.2024-01.io.actornvme:a");
        t.Target.AddSubsystem("nqn.2024-01.io.actornvme:b");
        var first = await discovery.CommandAsync(AdminCommands.AsynchronousEventRequest());
        Assert.Equal(DiscoveryAen, first.Completion.Dw0);
        await discovery.SendCommandAsync(AdminCommands.AsynchronousEventRequest());
        t.Target.AddSubsystem("nqn.2024-01.io.actornvme:c");
        Assert.Null(await discovery.WaitUnsolicitedAsync(TimeSpan.FromMilliseconds(300))); // masked until the log is read
        await ReadLogAsync(discovery);
        t.Target.AddSubsystem("nqn.2024-01.io.actornvme:d");
        Assert.Equal(DiscoveryAen, (await discovery.WaitUnsolicitedAsync(RawClient.Deadline))!.Value.Dw0);
    }

    [Fact]
    public async Task Removing_and_re_adding_a_listener_changes_the_generation()
    {
        await using var t = TestTarget.Create();
        var second = TestTarget.AddListener(t.Target, t.Network, "memory");
        ulong g0 = t.Target.DiscoveryGeneration;
        await t.Target.RemoveListenerAsync(second);
        Assert.True(t.Target.DiscoveryGeneration > g0);
        ulong g1 = t.Target.DiscoveryGeneration;
        var referral = t.Target.AddReferral(new TransportAddress("127.0.0.1", 8010));
        Assert.True(t.Target.DiscoveryGeneration > g1);
        ulong g2 = t.Target.DiscoveryGeneration;
        t.Target.RemoveReferral(referral);
        Assert.True(t.Target.DiscoveryGeneration > g2);
        ulong g3 = t.Target.DiscoveryGeneration;
        t.Target.RemoveSubsystem(TestTarget.Nqn);
        Assert.True(t.Target.DiscoveryGeneration > g3);
    }
}
