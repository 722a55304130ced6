using Akka.Actor;
using Akka.Configuration;
using Akka.TestKit;
using Akka.TestKit.Xunit2;
using ActorNvme.Actors.Connection;
using ActorNvme.Actors.Controller;
using ActorNvme.Actors.Host;
using ActorNvme.Actors.Settings;
using ActorNvme.Actors.Subsystem;
using ActorNvme.Actors.Tests.Fakes;
using ActorNvme.Io;
using ActorNvme.Protocol.Auth;
using ActorNvme.Protocol.Nvme;
using ActorNvme.Protocol.Tls;
using ActorNvme.Target;
using ActorNvme.Transport;
using ActorNvme.Transport.InMemory;

namespace ActorNvme.Actors.Tests;

/// <summary>
/// How many connection attempts a refused path makes, on virtual time. The rule (the loss-timeout rules, as
/// SPDK's bdev_nvme applies them to a failed reconnect): a refusal — a wrong DH-HMAC-CHAP key, a wrong TLS PSK,
/// a Fabrics Connect answered with DNR — is a loss like any other. From the first loss, one attempt is made per
/// reconnect-delay (jitter only shortens a delay, by at most a tenth), and none once ctrlr-loss-timeout has passed
/// since the first loss: the path is then deleted. ctrlr-loss-timeout 0: no attempt after the refused one. An
/// attach_controller whose path is refused for good answers at once and detaches the controller: one attempt.
/// Every refusal names the subsystem and the step.
/// </summary>
public sealed class RefusalAttemptSpecs : TestKit, IAsyncLifetime
{
    private const string SubsystemNqn = "nqn.2016-06.io.actornvme:refusals";

    private static readonly Config VirtualTime = ConfigurationFactory.ParseString("""
        akka.scheduler.implementation = "Akka.TestKit.TestScheduler, Akka.TestKit"
        akka.loglevel = INFO
        """);

    private static readonly TransportAddress Address = new("192.0.2.30", 4420);

    private readonly InMemoryNetwork _network = new();
    private readonly NvmeTarget _target = new();

    public RefusalAttemptSpecs()
        : base(VirtualTime)
    {
    }

    private TestScheduler Clock => (TestScheduler)Sys.Scheduler;

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync() => await _target.DisposeAsync();

    private static NvmeHostSettings Settings(double lossSeconds, double delaySeconds) => NvmeHostSettings.Default with
    {
        KeepAliveTimeout = TimeSpan.FromSeconds(5),
        ConnectTimeout = TimeSpan.FromSeconds(5),
        IoQueues = 1,
        Resiliency = new ResiliencySettings(TimeSpan.FromSeconds(lossSeconds), TimeSpan.FromSeconds(delaySeconds), TimeSpan.Zero).Validated(),
    };

    /// <summary>
    /// The attempts the rule allows after a refusal at time 0: the refused one, then one per reconnect-delay while
    /// ctrlr-loss-timeout has not passed. Fewest when every delay is whole, most when jitter cut each by a tenth.
    /// </summary>
    private static (int Fewest, int Most) AllowedAttempts(double lossSeconds, double delaySeconds) =>
        lossSeconds == 0
            ? (1, 1)
            : (1 + (int)Math.Floor(lossSeconds / delaySeconds), 1 + (int)Math.Floor(lossSeconds / (delaySeconds * (1 - ReconnectJitter.Fraction))));

    /// <summary>Our Target on the in-memory network, holding <see cref="SubsystemNqn"/> with one namespace.</summary>
    private CountingConnector TargetWithNamespace(bool secureChannel)
    {
        _target.ListenInMemory(_network, Address, secureChannel);
        _target.AddSubsystem(SubsystemNqn).AddNamespace(NamespaceOptions.Ram(1024 * 1024));
        return new CountingConnector(new TransportAdminConnector(new InMemoryTransport(_network)));
    }

    /// <summary>
    /// Starts the subsystem as a child of the test actor (its reports come here), waits for the first refusal, then
    /// advances virtual time a second at a time until the subsystem has stopped, letting each attempt the clock
    /// starts finish (its refusal reported, the next attempt armed) before moving on. Returns the refusal reports.
    /// </summary>
    private List<Subsystem.Subsystem.PathReport> RunUntilGivenUp(IAdminConnector connector, NvmeHostSettings settings, TimeSpan limit)
    {
        var subsystem = ChildActorOf(Subsystem.Subsystem.Props(new SubsystemOptions("nvme0", SubsystemNqn, [Address], settings), connector), "nvme0");
        Watch(subsystem);
        var refusals = new List<Subsystem.Subsystem.PathReport> { NextRefusal(TimeSpan.FromSeconds(30)) };

        var elapsed = TimeSpan.Zero;
        while (true)
        {
            Assert.True(elapsed < limit, $"the subsystem still stood after {limit} of virtual time ({refusals.Count} refusals)");
            Clock.Advance(TimeSpan.FromSeconds(1));
            elapsed += TimeSpan.FromSeconds(1);

            // A due reconnect shows as a report of the path trying again; its refusal (or the removal) follows.
            var next = ReceiveWhile(TimeSpan.FromMilliseconds(300), m => m as Subsystem.Subsystem.Report).OfType<Subsystem.Subsystem.Report>().ToList();
            if (next.Any(r => r.Removed is not null))
            {
                break;
            }

            int trying = next.FindLastIndex(r => r.Paths.Any(p => !p.IsRefused));
            if (trying < 0)
            {
                continue; // nothing was due
            }

            var refused = next.Skip(trying + 1).LastOrDefault(r => r.Paths.Count == 1 && r.Paths[0].IsRefused)
                ?? FishForMessage<Subsystem.Subsystem.Report>(r => r.Removed is not null || (r.Paths.Count == 1 && r.Paths[0].IsRefused), TimeSpan.FromSeconds(30));
            if (refused.Removed is not null)
            {
                break;
            }

            refusals.Add(refused.Paths[0]);
        }

        ExpectTerminated(subsystem, TimeSpan.FromSeconds(30));
        return refusals;
    }

    private Subsystem.Subsystem.PathReport NextRefusal(TimeSpan within) =>
        FishForMessage<Subsystem.Subsystem.Report>(r => r.Removed is null && r.Paths.Count == 1 && r.Paths[0].IsRefused, within).Paths[0];

    private static void AssertAttemptsWithinTheRule(int attempts, double lossSeconds, double delaySeconds)
    {
        var (fewest, most) = AllowedAttempts(lossSeconds, delaySeconds);
        Assert.True(attempts >= fewest && attempts <= most, $"{attempts} connection attempts; ctrlr-loss-timeout {lossSeconds} s with reconnect-delay {delaySeconds} s allows {fewest}..{most}");
    }

    [Fact]
    public void The_rule_the_specs_count_against_allows_one_exact_number_for_their_settings()
    {
        // The settings below are chosen away from the boundaries, so that jitter cannot change the count.
        Assert.Equal((4, 4), AllowedAttempts(35, 10));
        Assert.Equal((1, 1), AllowedAttempts(0, 0));
        Assert.Equal((3, 3), AllowedAttempts(25, 10));
    }

    [Fact]
    public void A_wrong_host_key_is_retried_once_per_reconnect_delay_and_given_up_at_ctrlr_loss_timeout()
    {
        var connector = TargetWithNamespace(secureChannel: false);
        var settings = Settings(35, 10) with { DhChap = new DhChapHostCredentials(DhChapSecret.Parse(DhChapSecret.Generate(32, 1))) { Groups = [DhChapGroupId.Null] } };
        _target.SetDhChapKeys(SubsystemNqn, settings.HostNqn, DhChapSecret.Generate(32, 1));

        var refusals = RunUntilGivenUp(connector, settings, TimeSpan.FromSeconds(120));

        Assert.Equal(4, connector.Attempts);
        Assert.Equal(connector.Attempts, refusals.Count);
        AssertAttemptsWithinTheRule(connector.Attempts, 35, 10);
        Assert.All(refusals, r =>
        {
            Assert.Equal(PathRefusal.AuthenticationFailed, r.Refusal);
            Assert.Contains($"DH-HMAC-CHAP with {SubsystemNqn}", r.Reason, StringComparison.Ordinal);
            Assert.Contains("AUTH_Failure1", r.Reason, StringComparison.Ordinal);
        });

        // Given up: more time brings no further attempt.
        Clock.Advance(TimeSpan.FromMinutes(5));
        Thread.Sleep(300);
        Assert.Equal(4, connector.Attempts);
    }

    [Fact]
    public void A_wrong_psk_is_retried_once_per_reconnect_delay_and_given_up_at_ctrlr_loss_timeout()
    {
        var connector = TargetWithNamespace(secureChannel: true);
        var settings = Settings(25, 10) with { TlsPsk = NvmeTlsPsk.Parse(NvmeTlsPsk.Generate(NvmeTlsPskHash.Sha256)) };
        _target.SetTlsPsk(SubsystemNqn, settings.HostNqn, NvmeTlsPsk.Generate(NvmeTlsPskHash.Sha256));

        var refusals = RunUntilGivenUp(connector, settings, TimeSpan.FromSeconds(120));

        Assert.Equal(3, connector.Attempts);
        Assert.Equal(connector.Attempts, refusals.Count);
        AssertAttemptsWithinTheRule(connector.Attempts, 25, 10);
        Assert.All(refusals, r =>
        {
            Assert.Equal(PathRefusal.TlsHandshakeFailed, r.Refusal);
            Assert.Contains($"TLS handshake with {SubsystemNqn}", r.Reason, StringComparison.Ordinal);
        });
    }

    [Fact]
    public void A_connect_refused_with_dnr_is_retried_once_per_reconnect_delay_and_given_up_at_ctrlr_loss_timeout()
    {
        var fabric = new FakeFabric
        {
            // Connect Invalid Host (SCT 1, SC 0x84) with DNR, as Linux nvmet answers a host not in allowed_hosts.
            Refuse = c => c.IsFabrics && c.FabricsType == FabricsCommandType.Connect ? NvmeStatus.Create(StatusCodeType.CommandSpecific, 0x84, doNotRetry: true) : null,
        };

        var refusals = RunUntilGivenUp(fabric, Settings(35, 10), TimeSpan.FromSeconds(120));

        Assert.Equal(4, fabric.ConnectAttempts);
        Assert.Equal(fabric.ConnectAttempts, refusals.Count);
        AssertAttemptsWithinTheRule(fabric.ConnectAttempts, 35, 10);
        Assert.All(refusals, r =>
        {
            Assert.Equal(PathRefusal.ConnectRejected, r.Refusal);
            Assert.Contains($"Fabrics Connect to {SubsystemNqn} refused", r.Reason, StringComparison.Ordinal);
            Assert.Contains("DNR", r.Reason, StringComparison.Ordinal);
        });
    }

    [Fact]
    public void With_ctrlr_loss_timeout_zero_a_refused_path_is_not_tried_again()
    {
        var connector = TargetWithNamespace(secureChannel: false);
        var settings = Settings(0, 0) with { DhChap = new DhChapHostCredentials(DhChapSecret.Parse(DhChapSecret.Generate(32, 1))) { Groups = [DhChapGroupId.Null] } };
        _target.SetDhChapKeys(SubsystemNqn, settings.HostNqn, DhChapSecret.Generate(32, 1));

        var subsystem = ChildActorOf(Subsystem.Subsystem.Props(new SubsystemOptions("nvme0", SubsystemNqn, [Address], settings), connector), "nvme0");
        Assert.Equal(PathRefusal.AuthenticationFailed, NextRefusal(TimeSpan.FromSeconds(30)).Refusal);
        for (int i = 0; i < 10; i++)
        {
            Clock.Advance(TimeSpan.FromMinutes(1));
            Thread.Sleep(50);
        }

        Assert.Equal(1, connector.Attempts);
        subsystem.Tell(Subsystem.Subsystem.GetStatus.Instance);
        var path = Assert.Single(FishForMessage<Subsystem.Subsystem.Status>(_ => true, TimeSpan.FromSeconds(10)).Paths);
        Assert.False(path.Live); // it stays failed until reset or delete
    }

    [Fact]
    public void A_connect_refused_without_dnr_is_not_a_refusal_for_good()
    {
        var withDnr = new ConnectionClosed(CloseReason.ConnectRejected, "Fabrics Connect refused") { RefusalStatus = NvmeStatus.Create(StatusCodeType.CommandSpecific, 0x84, doNotRetry: true) };
        var withoutDnr = withDnr with { RefusalStatus = NvmeStatus.Create(StatusCodeType.CommandSpecific, 0x82) };
        Assert.Equal(PathRefusal.ConnectRejected, PathRefusals.Of(withDnr));
        Assert.Equal(PathRefusal.None, PathRefusals.Of(withoutDnr));
        Assert.Equal(PathRefusal.None, PathRefusals.Of(new ConnectionClosed(CloseReason.ConnectTimeout, "TCP connect did not finish within 5s")));
        Assert.Equal(PathRefusal.ConnectionRefused, PathRefusals.Of(new ConnectionClosed(CloseReason.ConnectFailed, "TCP connect to 192.0.2.1:4420 failed", new System.Net.Sockets.SocketException((int)System.Net.Sockets.SocketError.ConnectionRefused))));
        Assert.Equal(PathRefusal.None, PathRefusals.Of(new ConnectionClosed(CloseReason.ConnectFailed, "TCP connect to 192.0.2.1:4420 failed: HostUnreachable")));
        Assert.True(PathRefusal.AuthenticationFailed.IsFinal());
        Assert.True(PathRefusal.TlsHandshakeFailed.IsFinal());
        Assert.True(PathRefusal.ConnectRejected.IsFinal());
        Assert.False(PathRefusal.ConnectionRefused.IsFinal());

        var report = new Subsystem.Subsystem.PathReport("nvme0/path", Address, ControllerState.Failed, withDnr.ToString(), PathRefusals.Of(withDnr));
        Assert.True(report.IsRefusedForGood);
        Assert.False((report with { State = ControllerState.Live }).IsRefused);
    }

    [Fact]
    public void Attach_controller_with_a_wrong_key_answers_at_once_naming_the_subsystem_and_the_step_after_one_attempt()
    {
        var connector = TargetWithNamespace(secureChannel: false);
        var settings = Settings(60, 5) with { DhChap = new DhChapHostCredentials(DhChapSecret.Parse(DhChapSecret.Generate(32, 1))) { Groups = [DhChapGroupId.Null] } };
        _target.SetDhChapKeys(SubsystemNqn, settings.HostNqn, DhChapSecret.Generate(32, 1));

        var host = Sys.ActorOf(NvmeHost.Props(settings, connector), NvmeHost.ActorName);
        host.Tell(new NvmeHost.AttachController("nvme0", Address, SubsystemNqn, AttachTimeout: TimeSpan.FromSeconds(60)));
        var failed = ExpectMsg<NvmeHost.Failed>(TimeSpan.FromSeconds(30)); // no virtual time passed: not the attach deadline
        Assert.Contains(SubsystemNqn, failed.Message, StringComparison.Ordinal);
        Assert.Contains("DH-HMAC-CHAP", failed.Message, StringComparison.Ordinal);
        Assert.Contains("AUTH_Failure1", failed.Message, StringComparison.Ordinal);

        // The controller is detached: however long the loss timeout would have run, nothing tries again.
        for (int i = 0; i < 12; i++)
        {
            Clock.Advance(TimeSpan.FromSeconds(10));
            Thread.Sleep(50);
        }

        Assert.Equal(1, connector.Attempts);
        AwaitAssert(
            () =>
            {
                host.Tell(NvmeHost.ListControllers.Instance);
                Assert.Empty(FishForMessage<NvmeHost.ControllerList>(_ => true, TimeSpan.FromSeconds(10)).Controllers);
            },
            TimeSpan.FromSeconds(10));
    }

    /// <summary>Counts the connection attempts (admin queues) the host makes through it.</summary>
    private sealed class CountingConnector(IAdminConnector inner) : IAdminConnector
    {
        private int _attempts;

        public int Attempts => Volatile.Read(ref _attempts);

        public Task<IAdminConnection> ConnectAsync(AdminConnectRequest request, IAdminEvents events, CancellationToken lifetime)
        {
            Interlocked.Increment(ref _attempts);
            return inner.ConnectAsync(request, events, lifetime);
        }

        public IIoQueueConnector IoQueueConnector(NvmeHostSettings settings) => inner.IoQueueConnector(settings);
    }
}
