using Akka.Actor;
using Akka.Configuration;
using Akka.TestKit;
using Akka.TestKit.Xunit2;
using ActorNvme.Actors.Controller;
using ActorNvme.Actors.Settings;
using ActorNvme.Actors.Subsystem;
using ActorNvme.Actors.Tests.Fakes;
using ActorNvme.Transport;
using ControllerMessages = ActorNvme.Actors.Controller.Controller;
using SubsystemMessages = ActorNvme.Actors.Subsystem.Subsystem;

namespace ActorNvme.Actors.Tests;

/// <summary>
/// Loss detection by Keep Alive on virtual time: a Keep Alive unanswered within its own deadline
/// (keep-alive-answer-timeout, at most KATO/2) is a loss, so a dead path is noticed at most
/// KATO/2 + KATO/(2n) after the last answer, n = ceil(KATO/2 / keep-alive-answer-timeout).
/// </summary>
public class KeepAliveSpecs : TestKit
{
    private static readonly TransportAddress Address = new("192.0.2.10", 4420);
    private readonly FakeFabric _fabric = new();

    public KeepAliveSpecs()
        : base(ConfigurationFactory.ParseString("""
            akka.scheduler.implementation = "Akka.TestKit.TestScheduler, Akka.TestKit"
            akka.loglevel = INFO
            """))
    {
    }

    private TestScheduler Clock => (TestScheduler)Sys.Scheduler;

    private IActorRef LiveController(TimeSpan kato, TimeSpan answer)
    {
        var settings = NvmeHostSettings.Default with
        {
            KeepAliveTimeout = kato,
            KeepAliveAnswerTimeout = answer,
            Resiliency = ResiliencySettings.FromSeconds(60, 1, 0),
        };
        var events = CreateTestProbe();
        Sys.EventStream.Subscribe(events.Ref, typeof(BlockDeviceAdded));
        var subsystem = Sys.ActorOf(SubsystemMessages.Props(new SubsystemOptions("nvme0", "nqn.2016-06.io.example:fake", [Address], settings), _fabric), "nvme0");
        events.ExpectMsg<BlockDeviceAdded>(TimeSpan.FromSeconds(10));
        subsystem.Tell(SubsystemMessages.GetStatus.Instance, TestActor);
        return ExpectMsg<SubsystemMessages.Status>(TimeSpan.FromSeconds(5)).Paths.Single().Controller;
    }

    /// <summary>The controller's state once every message sent to it so far (timer ticks included) has been handled.</summary>
    private ControllerState StateOf(IActorRef controller)
    {
        controller.Tell(ControllerMessages.GetStatus.Instance, TestActor);
        return ExpectMsg<ControllerMessages.Status>(TimeSpan.FromSeconds(5)).State;
    }

    /// <summary>Seconds of virtual time, in steps of <paramref name="step"/>, until the controller is no longer Live.</summary>
    private double SecondsUntilLost(IActorRef controller, TimeSpan step, TimeSpan limit)
    {
        var waited = TimeSpan.Zero;
        while (StateOf(controller) == ControllerState.Live)
        {
            Assert.True(waited < limit, $"still Live {waited.TotalSeconds}s after the cable was pulled");
            Clock.Advance(step);
            waited += step;
        }

        return waited.TotalSeconds;
    }

    [Fact]
    public void A_Keep_Alive_unanswered_within_its_own_deadline_is_a_loss_before_the_next_one_is_due()
    {
        // KATO 10 s: a Keep Alive every 5 s, each with a 1 s deadline (n = 5).
        var controller = LiveController(TimeSpan.FromSeconds(10), TimeSpan.FromSeconds(1));
        _fabric.Blackholed = true;

        // The next Keep Alive goes out 5 s after Live and is declared lost 1 s later: 6 s, not 10 s.
        Assert.Equal(6, SecondsUntilLost(controller, TimeSpan.FromMilliseconds(500), TimeSpan.FromSeconds(30)));
    }

    [Fact]
    public void The_deadline_is_at_most_half_of_KATO()
    {
        // An answer timeout longer than KATO/2 is cut to KATO/2: worst case KATO, as a Keep Alive every KATO/2 allows.
        var controller = LiveController(TimeSpan.FromSeconds(2), TimeSpan.FromSeconds(5));
        _fabric.Blackholed = true;

        Assert.Equal(2, SecondsUntilLost(controller, TimeSpan.FromMilliseconds(250), TimeSpan.FromSeconds(30)));
    }

    [Fact]
    public void An_answer_queued_behind_late_ticks_after_a_stall_of_the_host_is_not_a_loss()
    {
        // KATO 2 s: a Keep Alive every 1 s, each with a 1 s deadline (one tick per send).
        var controller = LiveController(TimeSpan.FromSeconds(2), TimeSpan.FromSeconds(1));
        _fabric.HoldKeepAlives = true;
        Clock.Advance(TimeSpan.FromSeconds(1)); // the Keep Alive goes out; its answer is on its way
        Assert.Equal(ControllerState.Live, StateOf(controller));

        // The process stalls for 3 s: the ticks of that time are handled late, one after another, and only then
        // the answer that was already waiting behind them. A stall passes on the machine's clock too.
        Thread.Sleep(TimeSpan.FromSeconds(2));
        Clock.Advance(TimeSpan.FromSeconds(3));
        Assert.Equal(ControllerState.Live, StateOf(controller));
        Assert.Equal(1, _fabric.ReleaseHeldKeepAlives());
        _fabric.HoldKeepAlives = false;

        for (int i = 0; i < 20; i++)
        {
            Clock.Advance(TimeSpan.FromMilliseconds(500));
            Assert.Equal(ControllerState.Live, StateOf(controller));
        }
    }

    [Fact]
    public void A_Keep_Alive_unanswered_after_a_stall_of_the_host_is_still_a_loss_one_tick_later()
    {
        var controller = LiveController(TimeSpan.FromSeconds(2), TimeSpan.FromSeconds(1));
        _fabric.HoldKeepAlives = true; // answers never come: the path is dead
        Clock.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal(ControllerState.Live, StateOf(controller));
        Thread.Sleep(TimeSpan.FromSeconds(2)); // stalled meanwhile, on both clocks: no verdict on the late ticks
        Clock.Advance(TimeSpan.FromSeconds(3));
        Assert.Equal(ControllerState.Live, StateOf(controller));

        // One tick period of running time after the stall, the missing answer is a loss.
        Assert.Equal(1, SecondsUntilLost(controller, TimeSpan.FromMilliseconds(250), TimeSpan.FromSeconds(10)));
    }

    [Fact]
    public void An_answered_Keep_Alive_keeps_the_controller_Live()
    {
        var controller = LiveController(TimeSpan.FromSeconds(2), TimeSpan.FromMilliseconds(300));
        for (int i = 0; i < 40; i++)
        {
            Clock.Advance(TimeSpan.FromMilliseconds(250));
            Assert.Equal(ControllerState.Live, StateOf(controller));
        }
    }
}
