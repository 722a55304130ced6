using Akka.Actor;
using Akka.Configuration;
using Akka.TestKit;
using Akka.TestKit.Xunit2;
using ActorNvme.Actors.Controller;
using ActorNvme.Actors.Settings;
using ActorNvme.Actors.Tests.Fakes;
using ActorNvme.Protocol.Data;
using ActorNvme.Protocol.Nvme;
using ActorNvme.Transport;
using static ActorNvme.Actors.Controller.Controller;

namespace ActorNvme.Actors.Tests;

/// <summary>
/// The controller actor's states on virtual time, against the fake fabric: the test actor is its
/// parent, so it sees every notification the actor sends up.
/// </summary>
public class ControllerSpecs : TestKit
{
    private static readonly Config VirtualTime = ConfigurationFactory.ParseString("""
        akka.scheduler.implementation = "Akka.TestKit.TestScheduler, Akka.TestKit"
        akka.loglevel = INFO
        """);

    private static readonly TransportAddress Address = new("192.0.2.20", 4420);
    private const string SubsystemNqn = "nqn.2016-06.io.example:fake";

    private readonly FakeFabric _fabric = new();

    public ControllerSpecs()
        : base(VirtualTime)
    {
    }

    private TestScheduler Clock => (TestScheduler)Sys.Scheduler;

    private static NvmeHostSettings Settings => NvmeHostSettings.Default with
    {
        KeepAliveTimeout = TimeSpan.FromSeconds(2),
        ConnectTimeout = TimeSpan.FromSeconds(5),
        IoQueues = 1,
    };

    private IActorRef StartController(ControllerRole role = ControllerRole.Nvm) =>
        ChildActorOf(Controller.Controller.Props(new ControllerOptions("c0", Address, role == ControllerRole.Nvm ? SubsystemNqn : Nqn.Discovery, role, Settings), _fabric));

    private List<ControllerState> StatesUntil<T>()
        where T : class
    {
        var states = new List<ControllerState>();
        FishForMessage(m =>
        {
            if (m is StateChanged changed)
            {
                states.Add(changed.State);
            }

            Assert.IsNotType<Lost>(m);
            return m is T;
        }, TimeSpan.FromSeconds(10));
        return states;
    }

    private Lost ExpectLoss() => FishForMessage<Lost>(m => m is Lost, TimeSpan.FromSeconds(10));

    /// <summary>Advances virtual time in steps until the controller sends <typeparamref name="T"/> (a timer armed after an advance still fires at a later one).</summary>
    private T AdvanceUntil<T>()
        where T : class
    {
        for (int i = 0; i < 40; i++)
        {
            Clock.Advance(TimeSpan.FromMilliseconds(500));
            var found = ReceiveWhile<object>(TimeSpan.FromMilliseconds(100), m => m).OfType<T>().FirstOrDefault();
            if (found is not null)
            {
                return found;
            }
        }

        throw new InvalidOperationException($"no {typeof(T).Name} after 20 s of virtual time");
    }

    [Fact]
    public async Task An_NVM_controller_walks_every_state_to_Live_and_reports_what_it_learned()
    {
        var controller = StartController();
        var states = StatesUntil<BecameLive>();

        Assert.Equal(
            [ControllerState.Connecting, ControllerState.Handshake, ControllerState.FabricsConnect, ControllerState.Enabling, ControllerState.Identifying, ControllerState.Configuring, ControllerState.Live],
            states);
        var status = await controller.Ask<Controller.Controller.Status>(GetStatus.Instance, TimeSpan.FromSeconds(5));
        Assert.Equal(ControllerState.Live, status.State);
        Assert.Equal((ushort)1, status.Info!.ControllerId);
        Assert.Equal(NvmeVersion.V1_3_0, status.Info.Version);
        Assert.Equal(512, status.Info.Namespaces.Single().BlockSize);
        Assert.Equal(1, _fabric.IoQueueSets);

        // CC written from the register type: EN, 64-byte SQEs, 16-byte CQEs.
        var cc = new ControllerConfiguration(_fabric.LastConfiguration);
        Assert.Equal(ControllerConfiguration.ForFabrics.Enabled, cc);
    }

    [Fact]
    public void A_discovery_controller_goes_Live_without_namespaces_or_IO_queues()
    {
        StartController(ControllerRole.Discovery);
        var live = FishForMessage<BecameLive>(m => m is BecameLive, TimeSpan.FromSeconds(10));

        Assert.Empty(live.Info.Namespaces);
        Assert.Null(live.IoQueues);
        Assert.Equal(0, _fabric.IoQueueSets);
    }

    [Fact]
    public void CSTS_RDY_that_never_comes_is_a_timeout_naming_the_wait()
    {
        _fabric.NeverReady = true;
        StartController();

        var loss = AdvanceUntil<Lost>();

        Assert.Equal(CloseReason.ConnectTimeout, loss.Reason.Reason);
        Assert.Contains("CSTS.RDY", loss.Reason.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public void CSTS_CFS_is_a_loss_naming_the_fatal_status()
    {
        _fabric.FatalStatus = true;
        StartController();

        var loss = ExpectLoss();

        Assert.Equal(CloseReason.ConnectRejected, loss.Reason.Reason);
        Assert.Contains("CSTS.CFS", loss.Reason.Detail, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("Identify Controller")]
    [InlineData("Identify active namespace list")]
    [InlineData("Property Get CAP")]
    [InlineData("Property Set CC.EN")]
    public void A_refused_bring_up_step_is_a_loss_naming_the_step_and_the_status(string step)
    {
        _fabric.Refuse = command => step switch
        {
            "Identify Controller" when command.Opcode == (byte)AdminOpcode.Identify && (command.Cdw10 & 0xFF) == (uint)IdentifyCns.Controller => NvmeStatus.Generic(GenericStatus.InternalError, true),
            "Identify active namespace list" when command.Opcode == (byte)AdminOpcode.Identify && (command.Cdw10 & 0xFF) == (uint)IdentifyCns.ActiveNamespaceList => NvmeStatus.Generic(GenericStatus.InternalError, true),
            "Property Get CAP" when command.IsFabrics && command.FabricsType == FabricsCommandType.PropertyGet && FabricsCommands.PropertyOffset(command) == ControllerCapabilities.Offset => NvmeStatus.Generic(GenericStatus.InvalidField, true),
            "Property Set CC.EN" when command.IsFabrics && command.FabricsType == FabricsCommandType.PropertySet => NvmeStatus.Generic(GenericStatus.InvalidField, true),
            _ => null,
        };
        StartController();

        var loss = ExpectLoss();

        Assert.Equal(CloseReason.ConnectRejected, loss.Reason.Reason);
        Assert.Contains($"{step} refused by {SubsystemNqn}", loss.Reason.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public void Reset_passes_through_Failed_back_to_Live_without_reporting_a_loss()
    {
        var controller = StartController();
        StatesUntil<BecameLive>();
        int attempts = _fabric.ConnectAttempts;

        controller.Tell(Reset.Instance);
        var states = StatesUntil<BecameLive>();

        Assert.Equal(ControllerState.Failed, states[0]);
        Assert.Equal(ControllerState.Connecting, states[1]);
        Assert.Equal(ControllerState.Live, states[^1]);
        Assert.Equal(attempts + 1, _fabric.ConnectAttempts);
        AwaitAssert(() => Assert.Equal(1, _fabric.OpenConnections), TimeSpan.FromSeconds(5)); // the old association is gone
    }

    [Fact]
    public void Delete_while_Live_writes_CC_SHN_and_stops_when_SHST_says_complete()
    {
        var controller = StartController();
        StatesUntil<BecameLive>();
        Watch(controller);

        controller.Tell(Delete.Instance);

        FishForMessage<StateChanged>(m => m is StateChanged { State: ControllerState.Deleting }, TimeSpan.FromSeconds(10));
        FishForMessage<Terminated>(m => m is Terminated t && t.ActorRef.Equals(controller), TimeSpan.FromSeconds(10));
        var cc = new ControllerConfiguration(_fabric.LastConfiguration);
        Assert.Equal(ShutdownNotification.Normal, cc.ShutdownNotification);
        Assert.True(cc.Enable);
        AwaitAssert(() => Assert.Equal(0, _fabric.OpenConnections), TimeSpan.FromSeconds(5));
    }

    [Fact]
    public async Task Admin_commands_are_refused_before_Live_and_answered_once_Live()
    {
        _fabric.NeverReady = true;
        var controller = StartController();
        FishForMessage<StateChanged>(m => m is StateChanged { State: ControllerState.Enabling }, TimeSpan.FromSeconds(10));

        var refused = await controller.Ask<AdminFailed>(new SubmitAdmin(AdminCommands.KeepAlive(), Tag: "early"), TimeSpan.FromSeconds(5));
        Assert.Equal("early", refused.Tag);
        Assert.Contains("not Live", refused.Reason, StringComparison.Ordinal);

        _fabric.NeverReady = false;
        AdvanceUntil<BecameLive>(); // the next CSTS read says ready
        var answered = await controller.Ask<AdminResult>(new SubmitAdmin(AdminCommands.KeepAlive(), Tag: "live"), TimeSpan.FromSeconds(5));
        Assert.True(answered.IsSuccess);
        Assert.Equal("live", answered.Tag);
    }
}
