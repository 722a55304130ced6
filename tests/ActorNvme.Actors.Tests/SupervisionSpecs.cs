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
using ActorNvme.Protocol.Data;
using ActorNvme.Transport;
using ControllerMessages = ActorNvme.Actors.Controller.Controller;

namespace ActorNvme.Actors.Tests;

/// <summary>
/// Every failure of an actor is a loss handled by the loss-timeout rules, never a restart in place; the
/// root never dies of a child's name; identity rules at attach. On virtual time, against the fake fabric.
/// </summary>
public class SupervisionSpecs : TestKit
{
    private const string SubsystemNqn = "nqn.2016-06.io.example:fake";
    private static readonly TransportAddress PathAddress = new("192.0.2.10", 4420);
    private static readonly TransportAddress DiscoveryAddress = new("192.0.2.1", 8009);

    private readonly FakeFabric _fabric = new();
    private readonly TestProbe _events;

    public SupervisionSpecs()
        : base(ConfigurationFactory.ParseString("""
            akka.scheduler.implementation = "Akka.TestKit.TestScheduler, Akka.TestKit"
            akka.loglevel = WARNING
            """))
    {
        _events = CreateTestProbe();
        Sys.EventStream.Subscribe(_events.Ref, typeof(BlockDeviceAdded));
        Sys.EventStream.Subscribe(_events.Ref, typeof(BlockDeviceRemoved));
        Sys.EventStream.Subscribe(_events.Ref, typeof(ControllerMessages.StateChanged));
    }

    private TestScheduler Clock => (TestScheduler)Sys.Scheduler;

    /// <summary>Loss timeout 6 s, reconnect every 1 s: at most 7 controllers can try a path before it is deleted.</summary>
    private static NvmeHostSettings Settings => NvmeHostSettings.Default with
    {
        KeepAliveTimeout = TimeSpan.FromSeconds(2),
        ConnectTimeout = TimeSpan.FromSeconds(5),
        Resiliency = ResiliencySettings.FromSeconds(6, 1, 0),
    };

    private IActorRef StartSubsystem(string name = "nvme0") =>
        Watch(Sys.ActorOf(Subsystem.Subsystem.Props(new SubsystemOptions(name, SubsystemNqn, [PathAddress], Settings), _fabric), name));

    /// <summary>Advances virtual time a step at a time, letting the actors react in between, until <paramref name="condition"/> holds.</summary>
    private void AdvanceUntil(Func<bool> condition, TimeSpan step, TimeSpan limit) =>
        VirtualClock.AdvanceUntil(Clock, condition, step, limit, settle: TimeSpan.FromMilliseconds(300));

    private static bool IsFailure(Subsystem.Subsystem.Report report) =>
        report.Removed is null && report.Paths.Count == 1 && report.Paths[0].State == ControllerState.Failed;

    /// <summary>The first report that matches within <paramref name="within"/> of real time, or null.</summary>
    private Subsystem.Subsystem.Report? TryFishReport(Predicate<Subsystem.Subsystem.Report> match, TimeSpan within)
    {
        var deadline = DateTime.UtcNow + within;
        for (var left = within; left > TimeSpan.Zero; left = deadline - DateTime.UtcNow)
        {
            if (ReceiveOne(left) is Subsystem.Subsystem.Report report && match(report))
            {
                return report;
            }
        }

        return null;
    }

    private void AssertLedgerEmpty() =>
        AwaitAssert(() => Assert.True(OwnershipLedger.Get(Sys).Total.IsEmpty, $"ledger not empty: {string.Join("; ", OwnershipLedger.Get(Sys).Snapshot().Select(p => $"{p.Key}: {p.Value}"))}"), TimeSpan.FromSeconds(10));

    [Theory]
    [InlineData(FaultPoint.Connect)]
    [InlineData(FaultPoint.Initialize)]
    [InlineData(FaultPoint.FabricsConnect)]
    [InlineData(FaultPoint.Property)]
    [InlineData(FaultPoint.Identify)]
    [InlineData(FaultPoint.SetFeatures)]
    public void A_controller_that_always_throws_while_coming_up_is_retried_each_reconnect_delay_and_deleted_at_the_loss_deadline(FaultPoint point)
    {
        _fabric.ThrowAt = point;

        // A child of the test actor, so its reports come here: the clock moves on only once an attempt's
        // failure is reported (the next attempt then armed), however slowly the actors run on this machine.
        var subsystem = ChildActorOf(Subsystem.Subsystem.Props(new SubsystemOptions("nvme0", SubsystemNqn, [PathAddress], Settings), _fabric), "nvme0");
        Watch(subsystem);
        FishForMessage<Subsystem.Subsystem.Report>(IsFailure, TimeSpan.FromSeconds(30));
        var elapsed = TimeSpan.Zero;
        while (true)
        {
            // Each reconnect-delay (jittered to at most 1 s) is due within a 1 s step: an attempt starts, then fails,
            // unless the loss deadline removed the subsystem first.
            Assert.True(elapsed < TimeSpan.FromSeconds(20), $"the subsystem still stood after 20 s of virtual time ({_fabric.Throws} throws)");
            Clock.Advance(TimeSpan.FromSeconds(1));
            elapsed += TimeSpan.FromSeconds(1);

            // A failed connection is reported twice: as the controller's Failed state, then once the subsystem has
            // armed the reconnect timer. If the clock moved between the two, the timer is due a step later: step again.
            var started = TryFishReport(r => r.Removed is not null || !IsFailure(r), TimeSpan.FromSeconds(5));
            if (started is null)
            {
                continue;
            }

            if (started.Removed is not null
                || FishForMessage<Subsystem.Subsystem.Report>(r => r.Removed is not null || IsFailure(r), TimeSpan.FromSeconds(30)).Removed is not null)
            {
                break;
            }
        }

        ExpectTerminated(subsystem, TimeSpan.FromSeconds(30));

        // Not a restart storm: one attempt per reconnect-delay within the 6 s deadline, no more.
        Assert.InRange(_fabric.Throws, 5, 8);
        Assert.InRange(_fabric.ConnectAttempts, _fabric.Throws, _fabric.Throws + 1); // the last one may be stopped by the deadline before it gets that far
        AssertLedgerEmpty();
    }

    [Theory]
    [InlineData(FaultPoint.Connect)]
    [InlineData(FaultPoint.Initialize)]
    [InlineData(FaultPoint.FabricsConnect)]
    [InlineData(FaultPoint.Property)]
    [InlineData(FaultPoint.Identify)]
    [InlineData(FaultPoint.SetFeatures)]
    public void A_controller_that_throws_once_while_coming_up_is_replaced_after_the_reconnect_delay_and_goes_Live(FaultPoint point)
    {
        _fabric.ThrowAt = point;
        _fabric.ThrowsLeft = 1;
        StartSubsystem();
        AwaitCondition(() => _fabric.Throws == 1, TimeSpan.FromSeconds(10));
        while (_events.HasMessages)
        {
            Assert.IsNotType<BlockDeviceAdded>(_events.ReceiveOne(TimeSpan.Zero)); // no device before a controller was Live
        }

        // The subsystem arms its reconnect timer when it has handled the Terminated: step the clock until it fired.
        AdvanceUntil(() => _fabric.ConnectAttempts >= 2, TimeSpan.FromMilliseconds(500), TimeSpan.FromSeconds(5));
        var added = _events.FishForMessage<BlockDeviceAdded>(m => m is BlockDeviceAdded, TimeSpan.FromSeconds(10));
        Assert.Equal("nvme0n1", added.Device.Name);
        Assert.Equal(2, _fabric.ConnectAttempts);
    }

    [Fact]
    public void A_Live_controller_that_throws_is_a_loss_the_next_incarnation_recovers_and_the_block_device_stays()
    {
        _fabric.ThrowAt = FaultPoint.KeepAlive;
        _fabric.ThrowsLeft = 1;
        StartSubsystem();
        var added = _events.FishForMessage<BlockDeviceAdded>(m => m is BlockDeviceAdded, TimeSpan.FromSeconds(10));

        // Keep Alive every KATO/2 = 1 s: the first one throws inside the Live controller.
        AdvanceUntil(() => _fabric.Throws == 1, TimeSpan.FromMilliseconds(500), TimeSpan.FromSeconds(5));
        AdvanceUntil(() => _fabric.ConnectAttempts == 2, TimeSpan.FromMilliseconds(500), TimeSpan.FromSeconds(5));
        _events.FishForMessage<ControllerMessages.StateChanged>(m => m is ControllerMessages.StateChanged { State: ControllerState.Live }, TimeSpan.FromSeconds(10));

        // A loss shorter than ctrlr-loss-timeout keeps the device (and its name).
        Clock.Advance(TimeSpan.FromSeconds(10));
        Thread.Sleep(200);
        while (_events.HasMessages)
        {
            Assert.IsNotType<BlockDeviceRemoved>(_events.ReceiveOne(TimeSpan.Zero));
        }

        Assert.Equal(1, _fabric.Throws);
        Assert.Equal("nvme0n1", added.Device.Name);
    }

    private IActorRef StartHost() => Sys.ActorOf(NvmeHost.Props(Settings, _fabric), NvmeHost.ActorName);

    private static T Ask<T>(IActorRef host, object request) => host.Ask<object>(request, TimeSpan.FromSeconds(10)).GetAwaiter().GetResult() switch
    {
        T reply => reply,
        var other => throw new Xunit.Sdk.XunitException($"expected {typeof(T).Name}, got {other}"),
    };

    [Fact]
    public void Stopping_and_starting_a_discovery_under_one_name_1000_times_never_drops_an_unrelated_controller()
    {
        _fabric.DiscoveryLog = () => DiscoverySpecs.DiscoveryPageOf(1, "nqn.2016-06.io.example:found");
        var host = StartHost();
        Ask<NvmeHost.ControllerAttached>(host, new NvmeHost.AttachController("keep", PathAddress, "nqn.2016-06.io.example:keep"));
        var keepPath = Ask<NvmeHost.ControllerList>(host, NvmeHost.ListControllers.Instance).Controllers.Single(c => c.Name == "keep").Paths.Single();
        Assert.Equal(ControllerState.Live, keepPath.State);
        _events.ReceiveWhile<object>(TimeSpan.FromMilliseconds(200), m => m);

        int attachedByDiscovery = 0;
        for (int i = 0; i < 1000; i++)
        {
            Ask<NvmeHost.DiscoveryStarted>(host, new NvmeHost.StartDiscovery("nvme", DiscoveryAddress));
            if (i % 100 == 0)
            {
                // Now and then the found subsystem gets attached before the stop, so stops meet every stage.
                AwaitCondition(() => Ask<NvmeHost.ControllerList>(host, NvmeHost.ListControllers.Instance).Controllers.Any(c => c.Origin == "discovery" && c.Paths.Any(p => p.State == ControllerState.Live)), TimeSpan.FromSeconds(10));
                attachedByDiscovery++;
            }

            Ask<NvmeHost.DiscoveryStopped>(host, new NvmeHost.StopDiscovery("nvme"));
        }

        Assert.Equal(10, attachedByDiscovery);

        // The unrelated controller never left Live, and is the only thing left.
        while (_events.HasMessages)
        {
            if (_events.ReceiveOne(TimeSpan.Zero) is ControllerMessages.StateChanged { Name: var name, State: var state } && name.StartsWith("keep/", StringComparison.Ordinal))
            {
                Assert.Equal(ControllerState.Live, state);
            }
        }

        var controllers = Ask<NvmeHost.ControllerList>(host, NvmeHost.ListControllers.Instance).Controllers;
        Assert.Equal("keep", Assert.Single(controllers).Name);
        Assert.Equal(ControllerState.Live, controllers[0].Paths.Single().State);
        Assert.Empty(Ask<NvmeHost.DiscoveryInfoList>(host, NvmeHost.GetDiscoveryInfo.Instance).Services);
        AwaitAssert(() => Assert.Equal(["/user/nvme/keep/path-192.0.2.10-4420"], OwnershipLedger.Get(Sys).Snapshot().Keys.ToArray()), TimeSpan.FromSeconds(10));
    }

    [Fact]
    public void Attach_refuses_a_taken_name_a_discovered_name_a_taken_transport_id_and_another_subsystem_under_a_name()
    {
        _fabric.DiscoveryLog = () => DiscoverySpecs.DiscoveryPageOf(1, "nqn.2016-06.io.example:found");
        var host = StartHost();
        Ask<NvmeHost.ControllerAttached>(host, new NvmeHost.AttachController("a", PathAddress, SubsystemNqn));
        Ask<NvmeHost.DiscoveryStarted>(host, new NvmeHost.StartDiscovery("nvme", DiscoveryAddress, WaitForAttach: true, AttachTimeout: TimeSpan.FromSeconds(10)));

        var taken = Ask<NvmeHost.Failed>(host, new NvmeHost.AttachController("a", new TransportAddress("192.0.2.11", 4420), SubsystemNqn));
        Assert.Equal(HostErrorKind.AlreadyExists, taken.Kind);

        var discovered = Ask<NvmeHost.Failed>(host, new NvmeHost.AttachController("nvme0", new TransportAddress("192.0.2.12", 4420), SubsystemNqn, Multipath: MultipathMode.Failover));
        Assert.Equal(HostErrorKind.AlreadyExists, discovered.Kind);
        Assert.Contains("discovery", discovered.Message, StringComparison.Ordinal);

        var sameTransportId = Ask<NvmeHost.Failed>(host, new NvmeHost.AttachController("b", PathAddress, SubsystemNqn));
        Assert.Equal(HostErrorKind.AlreadyExists, sameTransportId.Kind);
        Assert.Contains("'a'", sameTransportId.Message, StringComparison.Ordinal);

        var otherSubsystem = Ask<NvmeHost.Failed>(host, new NvmeHost.AttachController("a", new TransportAddress("192.0.2.11", 4420), "nqn.2016-06.io.example:other", Multipath: MultipathMode.Multipath));
        Assert.Equal(HostErrorKind.Conflict, otherSubsystem.Kind);

        var badNqn = Ask<NvmeHost.Failed>(host, new NvmeHost.AttachController("c", PathAddress, "not-an-nqn"));
        Assert.Equal(HostErrorKind.InvalidParameter, badNqn.Kind);
        Assert.Contains("subnqn", badNqn.Message, StringComparison.Ordinal);

        // Nothing refused changed anything: a, and the discovered nvme0, each with one path.
        var controllers = Ask<NvmeHost.ControllerList>(host, NvmeHost.ListControllers.Instance).Controllers;
        Assert.Equal(["a", "nvme0"], controllers.Select(c => c.Name).ToArray());
        Assert.All(controllers, c => Assert.Single(c.Paths));
    }

    [Fact]
    public void A_second_path_with_the_same_subsystem_is_added_when_multipath_is_asked_for_and_only_once()
    {
        var host = StartHost();
        Ask<NvmeHost.ControllerAttached>(host, new NvmeHost.AttachController("a", PathAddress, SubsystemNqn));
        var second = new TransportAddress("192.0.2.11", 4420);

        Assert.Equal(HostErrorKind.AlreadyExists, Ask<NvmeHost.Failed>(host, new NvmeHost.AttachController("a", second, SubsystemNqn)).Kind);
        Ask<NvmeHost.ControllerAttached>(host, new NvmeHost.AttachController("a", second, SubsystemNqn, Multipath: MultipathMode.Failover));
        Assert.Equal(HostErrorKind.PathExists, Ask<NvmeHost.Failed>(host, new NvmeHost.AttachController("a", second, SubsystemNqn, Multipath: MultipathMode.Failover)).Kind);

        AwaitAssert(() => Assert.Equal(
            [PathAddress, second],
            Ask<NvmeHost.ControllerList>(host, NvmeHost.ListControllers.Instance).Controllers.Single().Paths.Select(p => p.Address).OrderBy(a => a.Host, StringComparer.Ordinal).ToArray()));
    }

    [Fact]
    public void A_discovery_controller_that_throws_is_replaced_and_the_log_is_read_again_while_other_controllers_stay_Live()
    {
        _fabric.DiscoveryLog = () => DiscoverySpecs.DiscoveryPageOf(1, "nqn.2016-06.io.example:found");
        var host = StartHost();
        Ask<NvmeHost.ControllerAttached>(host, new NvmeHost.AttachController("keep", PathAddress, "nqn.2016-06.io.example:keep"));
        Ask<NvmeHost.DiscoveryStarted>(host, new NvmeHost.StartDiscovery("nvme", DiscoveryAddress, WaitForAttach: true, AttachTimeout: TimeSpan.FromSeconds(10)));
        int reads = _fabric.LogReads;

        // Get Log Page throws inside the discovery controller on the next read (a log-change notice).
        _fabric.ThrowAt = FaultPoint.GetLogPage;
        _fabric.ThrowsLeft = 1;
        _fabric.FireAsyncEvent(AsyncEventCompletion.ForNotice(AsyncEventNotice.DiscoveryLogPageChange, (byte)LogPageId.Discovery));
        AwaitCondition(() => _fabric.Throws == 1, TimeSpan.FromSeconds(10));

        AdvanceUntil(() => _fabric.LogReads > reads, TimeSpan.FromMilliseconds(500), TimeSpan.FromSeconds(10));
        var controllers = Ask<NvmeHost.ControllerList>(host, NvmeHost.ListControllers.Instance).Controllers;
        Assert.Equal(["keep", "nvme0"], controllers.Select(c => c.Name).ToArray());
        Assert.Equal(ControllerState.Live, controllers[0].Paths.Single().State);
        Assert.True(Ask<NvmeHost.DiscoveryInfoList>(host, NvmeHost.GetDiscoveryInfo.Instance).Services.Single().DiscoveryControllerLive);
    }

    [Fact]
    public void Shutdown_is_answered_once_every_controller_is_gone_and_the_host_works_afterwards()
    {
        _fabric.DiscoveryLog = () => DiscoverySpecs.DiscoveryPageOf(1, "nqn.2016-06.io.example:found");
        var host = StartHost();
        Ask<NvmeHost.ControllerAttached>(host, new NvmeHost.AttachController("a", PathAddress, SubsystemNqn));
        Ask<NvmeHost.DiscoveryStarted>(host, new NvmeHost.StartDiscovery("nvme", DiscoveryAddress, WaitForAttach: true, AttachTimeout: TimeSpan.FromSeconds(10)));

        var done = Ask<NvmeHost.ShutdownCompleted>(host, new NvmeHost.Shutdown(TimeSpan.FromSeconds(5)));
        Assert.Empty(done.Forced);
        Assert.Empty(Ask<NvmeHost.ControllerList>(host, NvmeHost.ListControllers.Instance).Controllers);
        Assert.Empty(Ask<NvmeHost.BlockDeviceList>(host, NvmeHost.ListBlockDevices.Instance).Devices);
        AssertLedgerEmpty();

        Ask<NvmeHost.ControllerAttached>(host, new NvmeHost.AttachController("a", PathAddress, SubsystemNqn));
    }
}
