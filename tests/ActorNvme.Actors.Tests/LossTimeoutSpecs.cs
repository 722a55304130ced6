using Akka.Actor;
using Akka.Configuration;
using Akka.TestKit;
using Akka.TestKit.Xunit2;
using ActorNvme.Actors.Connection;
using ActorNvme.Actors.Controller;
using ActorNvme.Actors.Settings;
using ActorNvme.Actors.Subsystem;
using ActorNvme.Actors.Tests.Fakes;
using ActorNvme.Transport;

namespace ActorNvme.Actors.Tests;

/// <summary>
/// The loss-timeout rules of the subsystem actor on virtual time: each deadline is a timer message,
/// so the specs advance the TestScheduler instead of sleeping.
/// </summary>
public class LossTimeoutSpecs : TestKit
{
    private static readonly Config VirtualTime = ConfigurationFactory.ParseString("""
        akka.scheduler.implementation = "Akka.TestKit.TestScheduler, Akka.TestKit"
        akka.loglevel = INFO
        """);

    private static readonly TransportAddress Address = new("192.0.2.10", 4420);

    private readonly FakeFabric _fabric = new();
    private readonly TestProbe _events;

    public LossTimeoutSpecs()
        : base(VirtualTime)
    {
        _events = CreateTestProbe();
        Sys.EventStream.Subscribe(_events.Ref, typeof(BlockDeviceAdded));
        Sys.EventStream.Subscribe(_events.Ref, typeof(BlockDeviceRemoved));
        Sys.EventStream.Subscribe(_events.Ref, typeof(FastIoFailChanged));
        Sys.EventStream.Subscribe(_events.Ref, typeof(Controller.Controller.StateChanged));
    }

    private TestScheduler Clock => (TestScheduler)Sys.Scheduler;

    private static NvmeHostSettings Settings(double lossSeconds, double delaySeconds, double fastIoFailSeconds) =>
        NvmeHostSettings.Default with
        {
            KeepAliveTimeout = TimeSpan.FromSeconds(2),
            ConnectTimeout = TimeSpan.FromSeconds(5),
            Resiliency = new ResiliencySettings(TimeSpan.FromSeconds(lossSeconds), TimeSpan.FromSeconds(delaySeconds), TimeSpan.FromSeconds(fastIoFailSeconds)).Validated(),
        };

    private IActorRef StartSubsystem(NvmeHostSettings settings, string name = "nvme0")
    {
        var subsystem = Sys.ActorOf(Subsystem.Subsystem.Props(new SubsystemOptions(name, "nqn.2016-06.io.example:fake", [Address], settings), _fabric), name);
        Watch(subsystem);
        var added = ExpectEvent<BlockDeviceAdded>();
        Assert.Equal($"{name}n1", added.Device.Name);
        Assert.Equal(512, added.Device.BlockSize);
        return subsystem;
    }

    private T ExpectEvent<T>()
        where T : class =>
        _events.FishForMessage<T>(m => m is T, TimeSpan.FromSeconds(10));

    private void ExpectState(ControllerState state) =>
        _events.FishForMessage<Controller.Controller.StateChanged>(m => m is Controller.Controller.StateChanged s && s.State == state, TimeSpan.FromSeconds(10));

    /// <summary>
    /// Blackholes the fabric and advances virtual time until the keep-alive deadline declares the path
    /// lost, then waits until the subsystem has handled the loss (so its timers are armed before the
    /// spec advances the clock again).
    /// </summary>
    private void PullTheCable(IActorRef subsystem)
    {
        _fabric.Blackholed = true;
        Clock.Advance(TimeSpan.FromSeconds(1)); // Keep Alive sent into the void
        Clock.Advance(TimeSpan.FromSeconds(1)); // still unanswered at the next tick: lost
        ExpectState(ControllerState.Failed);
        AwaitAssert(() => Assert.NotNull(Status(subsystem).Paths.Single().LostAt), TimeSpan.FromSeconds(10));
    }

    /// <summary>
    /// Advances virtual time in steps, letting the actors react between steps (a timer armed by a
    /// reaction is then fired by a later step), until <paramref name="condition"/> holds.
    /// </summary>
    // Real time for the actors to react between steps, generous enough for a loaded CI machine: a whole
    // handshake must fit, or its own step timer would fire.
    private TimeSpan AdvanceUntil(Func<bool> condition, TimeSpan step, TimeSpan limit) =>
        VirtualClock.AdvanceUntil(Clock, condition, step, limit, settle: TimeSpan.FromMilliseconds(500));

    private Subsystem.Subsystem.Status Status(IActorRef subsystem) =>
        subsystem.Ask<Subsystem.Subsystem.Status>(Subsystem.Subsystem.GetStatus.Instance, TimeSpan.FromSeconds(10)).GetAwaiter().GetResult();

    private void AssertLedgerEmpty() =>
        AwaitAssert(() => Assert.True(OwnershipLedger.Get(Sys).Total.IsEmpty, $"ledger not empty: {string.Join("; ", OwnershipLedger.Get(Sys).Snapshot().Select(p => $"{p.Key}: {p.Value}"))}"), TimeSpan.FromSeconds(10));

    [Fact]
    public void Controller_must_reach_Live_and_expose_its_namespace_as_a_block_device()
    {
        var subsystem = StartSubsystem(Settings(10, 2, 0));

        subsystem.Tell(Subsystem.Subsystem.GetStatus.Instance);
        var status = ExpectMsg<Subsystem.Subsystem.Status>();
        Assert.True(Assert.Single(status.Paths).Live);
        Assert.Equal("nvme0n1", Assert.Single(status.Devices).Name);
        AwaitAssert(() => Assert.Equal(1, OwnershipLedger.Get(Sys).Total.Connections));
    }

    [Fact]
    public void Controller_must_reconnect_after_reconnect_delay_and_a_short_flap_keeps_the_name()
    {
        var devices = CreateTestProbe();
        Sys.EventStream.Subscribe(devices.Ref, typeof(BlockDeviceRemoved));
        var subsystem = StartSubsystem(Settings(10, 2, 0));
        Sys.EventStream.Subscribe(devices.Ref, typeof(BlockDeviceAdded));
        PullTheCable(subsystem);
        int attemptsAtLoss = _fabric.ConnectAttempts;

        _fabric.Blackholed = false;
        // Jitter takes up to a tenth off reconnect-delay (ReconnectJitter): nothing before 1.8 s, an attempt by 2 s.
        Clock.Advance(TimeSpan.FromSeconds(1.75));
        Assert.Equal(attemptsAtLoss, _fabric.ConnectAttempts); // not before the delay

        Clock.Advance(TimeSpan.FromSeconds(0.35));
        ExpectState(ControllerState.Live);
        Assert.Equal(attemptsAtLoss + 1, _fabric.ConnectAttempts);

        // The flap was shorter than the loss timeout: the device was never removed nor re-added.
        AwaitAssert(() => Assert.True(Status(subsystem).Paths.Single().Live), TimeSpan.FromSeconds(10));
        Assert.Equal("nvme0n1", Assert.Single(Status(subsystem).Devices).Name);
        devices.ExpectNoMsg(TimeSpan.FromMilliseconds(300));
    }

    [Fact]
    public void Path_must_be_deleted_at_the_deadline_even_while_a_connect_attempt_hangs()
    {
        var subsystem = StartSubsystem(Settings(2, 1, 0));
        PullTheCable(subsystem);

        Clock.Advance(TimeSpan.FromSeconds(1)); // reconnect attempt starts and hangs (blackholed)
        AwaitCondition(() => _fabric.ConnectAttempts >= 2, TimeSpan.FromSeconds(10));

        Clock.Advance(TimeSpan.FromSeconds(1)); // ctrlr-loss-timeout reached while connecting
        var removed = ExpectEvent<BlockDeviceRemoved>();
        Assert.Equal("nvme0n1", removed.Device.Name);
        Assert.Contains("ctrlr-loss-timeout", removed.Reason, StringComparison.Ordinal);
        ExpectTerminated(subsystem, TimeSpan.FromSeconds(10));
        AssertLedgerEmpty();
    }

    [Fact]
    public void Io_must_fail_fast_after_fast_io_fail_timeout_and_stop_failing_when_Live_again()
    {
        var subsystem = StartSubsystem(Settings(10, 1, 3));
        PullTheCable(subsystem);

        Clock.Advance(TimeSpan.FromSeconds(2.9));
        Clock.Advance(TimeSpan.FromSeconds(0.2));
        Assert.True(ExpectEvent<FastIoFailChanged>().FailingFast);

        // The attempt in flight hangs until its step timeout; the next one gets through.
        _fabric.Blackholed = false;
        AdvanceUntil(() => Status(subsystem).Paths.Single().Live, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(30));
        Assert.False(ExpectEvent<FastIoFailChanged>().FailingFast);
    }

    [Fact]
    public void Minus_one_must_reconnect_forever()
    {
        var subsystem = StartSubsystem(Settings(-1, 5, 0));
        _fabric.Refusing = true;
        PullTheCable(subsystem);

        // Five minutes of refused attempts, one every reconnect-delay: the path is never given up.
        var virtualTime = TimeSpan.Zero;
        for (int attempt = 0; attempt < 60; attempt++)
        {
            int before = _fabric.ConnectAttempts;
            var waited = AdvanceUntil(() => _fabric.ConnectAttempts > before, TimeSpan.FromSeconds(5), TimeSpan.FromSeconds(30));
            Assert.True(waited >= TimeSpan.FromSeconds(5), $"attempt {attempt} came after {waited}, sooner than reconnect-delay");
            virtualTime += waited;
        }

        Assert.True(virtualTime >= TimeSpan.FromMinutes(5));

        var status = Status(subsystem);
        Assert.Single(status.Paths);
        Assert.Single(status.Devices);

        _fabric.Refusing = false;
        _fabric.Blackholed = false;
        AdvanceUntil(() => Status(subsystem).Paths.Single().Live, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(30));
    }

    [Fact]
    public void Zero_must_never_reconnect()
    {
        var subsystem = StartSubsystem(Settings(0, 0, 0));
        PullTheCable(subsystem);
        int attempts = _fabric.ConnectAttempts;
        _fabric.Blackholed = false;

        Clock.Advance(TimeSpan.FromHours(1));

        subsystem.Tell(Subsystem.Subsystem.GetStatus.Instance);
        var status = ExpectMsg<Subsystem.Subsystem.Status>();
        Assert.False(Assert.Single(status.Paths).Live);
        Assert.Equal(attempts, _fabric.ConnectAttempts);
        AwaitAssert(() => Assert.Equal(0, OwnershipLedger.Get(Sys).Total.Connections));
    }

    [Fact]
    public void Detach_must_shut_the_controller_down_and_leave_nothing_behind()
    {
        var subsystem = StartSubsystem(Settings(10, 2, 0));

        subsystem.Tell(new Subsystem.Subsystem.Detach("detached by the user"));

        ExpectState(ControllerState.Deleting);
        Assert.Equal("detached by the user", ExpectEvent<BlockDeviceRemoved>().Reason);
        ExpectTerminated(subsystem, TimeSpan.FromSeconds(10));
        AssertLedgerEmpty();
    }
    [Fact]
    public void Controller_must_stay_Live_for_ten_minutes_when_every_asynchronous_event_request_is_answered_at_once()
    {
        // Each AER is completed inside its submission, so its completion reaches the controller while
        // other commands (Keep Alive) are being submitted: an id freed before the controller handled
        // the answer would be taken by the next command and the answer credited to it.
        _fabric.AnswerAsyncEventsAtOnceWith = Protocol.Data.AsyncEventCompletion.ForNotice(Protocol.Data.AsyncEventNotice.NamespaceAttributeChanged, (byte)Protocol.Data.LogPageId.ChangedNamespaceList);
        var states = CreateTestProbe();
        Sys.EventStream.Subscribe(states.Ref, typeof(Controller.Controller.StateChanged));
        var subsystem = StartSubsystem(Settings(10, 2, 0));
        var controller = states.FishForMessage<Controller.Controller.StateChanged>(m => m is Controller.Controller.StateChanged { State: ControllerState.Live }, TimeSpan.FromSeconds(10)).Controller;

        var tenMinutes = TimeSpan.FromMinutes(10);
        var step = TimeSpan.FromSeconds(1);
        for (var elapsed = TimeSpan.Zero; elapsed < tenMinutes; elapsed += step)
        {
            Clock.Advance(step);

            // Two round trips: the first is queued behind the timer messages this step fired, the
            // second behind the completions those produced, so every Keep Alive of this step has been
            // answered and handled before virtual time moves on.
            Assert.Equal(ControllerState.Live, ControllerStatus(controller).State);
            Assert.Equal(ControllerState.Live, ControllerStatus(controller).State);
        }

        Assert.Equal(1, _fabric.ConnectAttempts);
        Assert.Null(ControllerStatus(controller).LastLoss);
        Assert.True(Status(subsystem).Paths.Single().Live);
        Assert.Equal(0, _fabric.StrayReleases);

        // The storm happened, and it stayed bounded: never more requests held than the controller
        // posts, and a bounded number a second rather than as fast as the actor can go round.
        int requests = _fabric.AsyncEventRequests;
        Assert.True(requests > 600, $"only {requests} asynchronous event requests in ten minutes: the spec did not exercise the storm");
        Assert.True(requests <= 4 + (8 * ((int)tenMinutes.TotalSeconds + 1)), $"{requests} asynchronous event requests in ten minutes of virtual time");
        Assert.InRange(_fabric.MaxUnreleasedAsyncEvents, 1, 4);
        var changes = states.ReceiveWhile<Controller.Controller.StateChanged>(TimeSpan.FromMilliseconds(200), m => (Controller.Controller.StateChanged)m);
        Assert.DoesNotContain(changes, c => c.State != ControllerState.Live);
    }

    private static Controller.Controller.Status ControllerStatus(IActorRef controller) =>
        controller.Ask<Controller.Controller.Status>(Controller.Controller.GetStatus.Instance, TimeSpan.FromSeconds(10)).GetAwaiter().GetResult();
}
