using Akka.Actor;
using Akka.Configuration;
using Akka.TestKit.Xunit2;
using ActorNvme.Actors.Connection;
using ActorNvme.Actors.Host;
using ActorNvme.Actors.Settings;
using ActorNvme.Actors.Subsystem;
using ActorNvme.Io;
using ActorNvme.Protocol.Tls;
using ActorNvme.Target;
using ActorNvme.Transport;

namespace ActorNvme.Actors.Tests;

/// <summary>
/// Our host over TLS 1.3 with a PSK against our own Target's secure-channel listener, over loopback TCP: discovery
/// on a plain port lists the secure port with TREQ/SECTYPE and the host attaches through TLS; a wrong PSK fails the
/// attach at once naming the subsystem and the TLS handshake.
/// </summary>
public sealed class TargetTlsSpecs : TestKit, IAsyncLifetime
{
    private const string SubsystemNqn = "nqn.2016-06.io.actornvme:tls";
    private static readonly Config RealTime = ConfigurationFactory.ParseString("akka.loglevel = WARNING");

    private readonly NvmeTarget _target = new();
    private readonly string _psk = NvmeTlsPsk.Generate(NvmeTlsPskHash.Sha384);

    public TargetTlsSpecs()
        : base(RealTime)
    {
    }

    private static NvmeHostSettings Settings(string psk) => NvmeHostSettings.Default with
    {
        TlsPsk = NvmeTlsPsk.Parse(psk),
        IoQueues = 2,
        Resiliency = ResiliencySettings.FromSeconds(10, 1, 0),
    };

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync() => await _target.DisposeAsync();

    [Fact]
    public async Task Discovery_lists_the_secure_port_and_the_host_attaches_over_tls_and_reads_back_what_it_wrote()
    {
        var plain = _target.ListenTcp("127.0.0.1", 0);
        var secure = _target.ListenTcp("127.0.0.1", 0, secureChannel: true);
        var subsystem = _target.AddSubsystem(new NvmSubsystemOptions(SubsystemNqn) { LinkToAllListeners = false });
        subsystem.Link(secure);
        subsystem.AddNamespace(NamespaceOptions.Ram(4 * 1024 * 1024));
        var settings = Settings(_psk);
        _target.SetTlsPsk(SubsystemNqn, settings.HostNqn, _psk);

        var events = CreateTestProbe();
        Sys.EventStream.Subscribe(events.Ref, typeof(BlockDeviceAdded));
        var host = Sys.ActorOf(NvmeHost.Props(settings, TransportAdminConnector.Tcp()), NvmeHost.ActorName);
        host.Tell(new NvmeHost.StartDiscovery("nvme", plain.Address, WaitForAttach: true, AttachTimeout: TimeSpan.FromSeconds(30)));
        var started = ExpectMsg<NvmeHost.DiscoveryStarted>(TimeSpan.FromSeconds(40));

        // The discovery controller stays on the plain port; the subsystem, listed with TREQ/SECTYPE, is reached over TLS.
        Assert.Equal("nvme0n1", Assert.Single(started.Devices).Name);
        var device = events.ExpectMsg<BlockDeviceAdded>(TimeSpan.FromSeconds(10)).BlockDevice!;
        Assert.Contains(secure.Address.Port.ToString(System.Globalization.CultureInfo.InvariantCulture), Assert.Single(device.Paths).Key, StringComparison.Ordinal);

        var data = new byte[64 * 1024];
        new Random(5).NextBytes(data);
        await device.WriteAsync(8, data).AsTask().WaitAsync(TimeSpan.FromSeconds(30));
        var back = new byte[data.Length];
        await device.ReadAsync(8, back).AsTask().WaitAsync(TimeSpan.FromSeconds(30));
        Assert.True(data.AsSpan().SequenceEqual(back));
    }

    [Fact]
    public async Task A_discovery_controller_behind_tls_is_read_over_tls_and_its_subsystem_attached()
    {
        var secure = _target.ListenTcp("127.0.0.1", 0, secureChannel: true);
        var subsystem = _target.AddSubsystem(new NvmSubsystemOptions(SubsystemNqn) { LinkToAllListeners = false });
        subsystem.Link(secure);
        subsystem.AddNamespace(NamespaceOptions.Ram(1024 * 1024));
        var settings = Settings(_psk);
        _target.SetTlsPsk(SubsystemNqn, settings.HostNqn, _psk);
        _target.SetTlsPsk(ActorNvme.Protocol.Data.Nqn.Discovery, settings.HostNqn, _psk);

        var events = CreateTestProbe();
        Sys.EventStream.Subscribe(events.Ref, typeof(BlockDeviceAdded));
        var host = Sys.ActorOf(NvmeHost.Props(settings, TransportAdminConnector.Tcp()), NvmeHost.ActorName);

        // Plain TCP to the secure port reads no log; over TLS the log is read and the subsystem attached over TLS too.
        var otherSecure = _target.ListenTcp("127.0.0.1", 0, secureChannel: true);
        host.Tell(new NvmeHost.StartDiscovery("plain", otherSecure.Address, WaitForAttach: true, AttachTimeout: TimeSpan.FromSeconds(3)));
        Assert.IsType<NvmeHost.Failed>(FishForMessage(m => m is NvmeHost.Failed or NvmeHost.DiscoveryStarted, TimeSpan.FromSeconds(30)));

        host.Tell(new NvmeHost.StartDiscovery("nvme", secure.Address, WaitForAttach: true, AttachTimeout: TimeSpan.FromSeconds(30), SecureChannel: true));
        var started = FishForMessage<NvmeHost.DiscoveryStarted>(_ => true, TimeSpan.FromSeconds(40));
        Assert.Equal("nvme0n1", Assert.Single(started.Devices).Name);
        var device = events.FishForMessage<BlockDeviceAdded>(m => m.Device.Name == "nvme0n1", TimeSpan.FromSeconds(10)).BlockDevice!;
        await AssertWriteReadsBackAsync(device, 8192, seed: 9);
    }

    [Fact]
    public void A_secure_channel_discovery_without_a_psk_is_refused_naming_the_psk()
    {
        var host = Sys.ActorOf(NvmeHost.Props(NvmeHostSettings.Default, TransportAdminConnector.Tcp()), NvmeHost.ActorName);
        host.Tell(new NvmeHost.StartDiscovery("nvme", new TransportAddress("127.0.0.1", 4420), SecureChannel: true));
        var refused = ExpectMsg<NvmeHost.Failed>(TimeSpan.FromSeconds(10));
        Assert.Equal(HostErrorKind.InvalidParameter, refused.Kind);
        Assert.Contains("psk", refused.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_wrong_psk_fails_the_attach_at_once_naming_the_subsystem_and_the_tls_handshake()
    {
        var secure = _target.ListenTcp("127.0.0.1", 0, secureChannel: true);
        _target.AddSubsystem(SubsystemNqn).AddNamespace(NamespaceOptions.Ram(1024 * 1024));
        string wrong = NvmeTlsPsk.Generate(NvmeTlsPskHash.Sha384);
        var settings = Settings(wrong);
        _target.SetTlsPsk(SubsystemNqn, settings.HostNqn, _psk);

        var host = Sys.ActorOf(NvmeHost.Props(settings, TransportAdminConnector.Tcp()), NvmeHost.ActorName);
        host.Tell(new NvmeHost.AttachController("nvme0", secure.Address, SubsystemNqn, AttachTimeout: TimeSpan.FromSeconds(60)));
        var failed = ExpectMsg<NvmeHost.Failed>(TimeSpan.FromSeconds(30));
        Assert.Contains("TLS handshake", failed.Message, StringComparison.Ordinal);
        Assert.Contains(SubsystemNqn, failed.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("not attached within", failed.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(wrong.Split(':')[2], failed.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_connect_naming_another_subsystem_than_the_psk_identity_is_refused()
    {
        const string Other = "nqn.2016-06.io.actornvme:other";
        var secure = _target.ListenTcp("127.0.0.1", 0, secureChannel: true);
        _target.AddSubsystem(SubsystemNqn).AddNamespace(NamespaceOptions.Ram(1024 * 1024));
        _target.AddSubsystem(Other).AddNamespace(NamespaceOptions.Ram(1024 * 1024));
        var settings = Settings(_psk);
        _target.SetTlsPsk(SubsystemNqn, settings.HostNqn, _psk);

        // TLS with the PSK of SubsystemNqn, then Connect to Other over that channel.
        var session = new ActorNvme.Transport.Tls.TlsPskSession(NvmeTlsPsk.Parse(_psk), settings.HostNqn, SubsystemNqn);
        var transport = new ActorNvme.Transport.Tls.TlsPskTransport(new ActorNvme.Transport.Tcp.TcpTransport(), session);
        await using var client = await ActorNvme.Transport.BringUp.AdminClient.ConnectAsync(transport, secure.Address, QueuePairOptions.Admin).WaitAsync(TimeSpan.FromSeconds(30));
        var parameters = new ActorNvme.Transport.FabricsConnectParameters(settings.HostId, Other, settings.HostNqn) { KeepAliveMilliseconds = 30_000 };
        var options = new ActorNvme.Transport.BringUp.BringUpOptions(parameters, QueuePairOptions.Admin.QueueSize) { Goal = ActorNvme.Transport.BringUp.BringUpGoal.Identified };
        var error = await Assert.ThrowsAsync<ActorNvme.Transport.BringUp.ControllerBringUpException>(() => client.BringUpAsync(options).WaitAsync(TimeSpan.FromSeconds(30)));
        Assert.Equal(ActorNvme.Transport.BringUp.BringUpFailureKind.Refused, error.Failure.Kind);
    }

    [Fact]
    public void Plain_tcp_to_a_secure_channel_listener_does_not_attach()
    {
        var secure = _target.ListenTcp("127.0.0.1", 0, secureChannel: true);
        _target.AddSubsystem(SubsystemNqn).AddNamespace(NamespaceOptions.Ram(1024 * 1024));
        var settings = NvmeHostSettings.Default with { Resiliency = ResiliencySettings.FromSeconds(10, 1, 0) };

        var host = Sys.ActorOf(NvmeHost.Props(settings, TransportAdminConnector.Tcp()), NvmeHost.ActorName);
        host.Tell(new NvmeHost.AttachController("nvme0", secure.Address, SubsystemNqn, AttachTimeout: TimeSpan.FromSeconds(3)));
        ExpectMsg<NvmeHost.Failed>(TimeSpan.FromSeconds(30));
    }

    [Fact]
    public async Task A_referral_listed_as_secure_is_read_over_tls_and_its_subsystem_attached_over_tls()
    {
        // The first discovery service is on plain TCP and refers to a second whose port requires TLS.
        await using var referred = new NvmeTarget();
        var secure = referred.ListenTcp("127.0.0.1", 0, secureChannel: true);
        referred.AddSubsystem(SubsystemNqn).AddNamespace(NamespaceOptions.Ram(1024 * 1024));
        var settings = Settings(_psk);
        referred.SetTlsPsk(SubsystemNqn, settings.HostNqn, _psk);
        referred.SetTlsPsk(ActorNvme.Protocol.Data.Nqn.Discovery, settings.HostNqn, _psk);
        var plain = _target.ListenTcp("127.0.0.1", 0);
        _target.AddReferral(secure.Address, secureChannel: true);

        var events = CreateTestProbe();
        Sys.EventStream.Subscribe(events.Ref, typeof(BlockDeviceAdded));
        var host = Sys.ActorOf(NvmeHost.Props(settings, TransportAdminConnector.Tcp()), NvmeHost.ActorName);
        host.Tell(new NvmeHost.StartDiscovery("nvme", plain.Address));
        ExpectMsg<NvmeHost.DiscoveryStarted>(TimeSpan.FromSeconds(10));

        var device = events.FishForMessage<BlockDeviceAdded>(m => m.Device.SubsystemNqn == SubsystemNqn, TimeSpan.FromSeconds(40)).BlockDevice!;
        await AssertWriteReadsBackAsync(device, 4096, seed: 3);
    }

    [Fact]
    public void Without_a_psk_a_secure_referral_is_skipped_naming_the_entry()
    {
        var plain = _target.ListenTcp("127.0.0.1", 0);
        var referral = new TransportAddress("127.0.0.1", 1);
        _target.AddReferral(referral, secureChannel: true);
        var settings = NvmeHostSettings.Default with { Resiliency = ResiliencySettings.FromSeconds(10, 1, 0) };

        var host = Sys.ActorOf(NvmeHost.Props(settings, TransportAdminConnector.Tcp()), NvmeHost.ActorName);
        host.Tell(new NvmeHost.StartDiscovery("nvme", plain.Address, WaitForAttach: true, AttachTimeout: TimeSpan.FromSeconds(30)));
        var started = ExpectMsg<NvmeHost.DiscoveryStarted>(TimeSpan.FromSeconds(40));
        var skipped = Assert.Single(started.Skipped!);
        Assert.Equal("127.0.0.1:1", skipped.Address);
        Assert.Contains("DiscoveryReferral entry", skipped.Reason, StringComparison.Ordinal);
        Assert.Contains("requires a secure channel", skipped.Reason, StringComparison.Ordinal);
        Assert.Contains("no psk is configured", skipped.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void Discovery_secure_channel_in_the_settings_reads_a_tls_discovery_port_and_needs_a_psk()
    {
        var secure = _target.ListenTcp("127.0.0.1", 0, secureChannel: true);
        _target.AddSubsystem(SubsystemNqn).AddNamespace(NamespaceOptions.Ram(1024 * 1024));
        var settings = Settings(_psk) with { DiscoverySecureChannel = true };
        _target.SetTlsPsk(SubsystemNqn, settings.HostNqn, _psk);
        _target.SetTlsPsk(ActorNvme.Protocol.Data.Nqn.Discovery, settings.HostNqn, _psk);

        var host = Sys.ActorOf(NvmeHost.Props(settings, TransportAdminConnector.Tcp()), NvmeHost.ActorName);
        host.Tell(new NvmeHost.StartDiscovery("nvme", secure.Address, WaitForAttach: true, AttachTimeout: TimeSpan.FromSeconds(30)));
        Assert.Equal("nvme0n1", Assert.Single(ExpectMsg<NvmeHost.DiscoveryStarted>(TimeSpan.FromSeconds(40)).Devices).Name);

        var withoutPsk = Sys.ActorOf(NvmeHost.Props(NvmeHostSettings.Default with { DiscoverySecureChannel = true }, TransportAdminConnector.Tcp()), "nvme-without-psk");
        withoutPsk.Tell(new NvmeHost.StartDiscovery("other", secure.Address));
        Assert.Contains("needs a psk", ExpectMsg<NvmeHost.Failed>(TimeSpan.FromSeconds(10)).Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_host_set_to_identity_version_1_attaches_to_our_target_and_reads_back()
    {
        var secure = _target.ListenTcp("127.0.0.1", 0, secureChannel: true);
        _target.AddSubsystem(SubsystemNqn).AddNamespace(NamespaceOptions.Ram(1024 * 1024));
        var settings = Settings(_psk) with { TlsIdentityVersion = 1 };
        _target.SetTlsPsk(SubsystemNqn, settings.HostNqn, _psk);

        var events = CreateTestProbe();
        Sys.EventStream.Subscribe(events.Ref, typeof(BlockDeviceAdded));
        var host = Sys.ActorOf(NvmeHost.Props(settings, TransportAdminConnector.Tcp()), NvmeHost.ActorName);
        host.Tell(new NvmeHost.AttachController("nvme0", secure.Address, SubsystemNqn, AttachTimeout: TimeSpan.FromSeconds(30)));
        FishForMessage(m => m is NvmeHost.ControllerAttached, TimeSpan.FromSeconds(40));
        var device = events.FishForMessage<BlockDeviceAdded>(m => m.Device.SubsystemNqn == SubsystemNqn, TimeSpan.FromSeconds(10)).BlockDevice!;
        await AssertWriteReadsBackAsync(device, 4096, seed: 21);
    }

    /// <summary>Writes <paramref name="length"/> random bytes at LBA 0 and asserts they read back identical.</summary>
    private static async Task AssertWriteReadsBackAsync(BlockDevice device, int length, int seed)
    {
        var data = new byte[length];
        new Random(seed).NextBytes(data);
        await device.WriteAsync(0, data).AsTask().WaitAsync(TimeSpan.FromSeconds(30));
        var back = new byte[data.Length];
        await device.ReadAsync(0, back).AsTask().WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(data, back);
    }
}
