using Akka.Actor;
using Akka.Event;
using ActorNvme.Actors.Connection;
using ActorNvme.Actors.Controller;
using ActorNvme.Actors.Discovery;
using ActorNvme.Actors.Settings;
using ActorNvme.Actors.Subsystem;
using ControllerMessages = ActorNvme.Actors.Controller.Controller;
using SubsystemMessages = ActorNvme.Actors.Subsystem.Subsystem;

namespace ActorNvme.Actors.Host;

/// <summary>The root actor behind <see cref="NvmeHost"/>.</summary>
public sealed class NvmeHostActor : ReceiveActor, IWithTimers
{
    private readonly NvmeHostSettings _settings;
    private readonly IAdminConnector _connector;
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly Dictionary<string, IActorRef> _discoveries = new(StringComparer.Ordinal);
    private readonly Dictionary<string, AttachedChild> _attached = new(StringComparer.Ordinal);
    private readonly Dictionary<string, BlockDeviceInfo> _devices = new(StringComparer.Ordinal);
    private readonly Dictionary<string, ControllerMessages.StateChanged> _paths = new(StringComparer.Ordinal);
    private readonly Dictionary<string, string> _subsystemNqns = new(StringComparer.Ordinal);

    public NvmeHostActor(NvmeHostSettings settings, IAdminConnector connector)
    {
        _settings = settings;
        _connector = connector;

        Receive<NvmeHost.StartDiscovery>(OnStartDiscovery);
        Receive<NvmeHost.StopDiscovery>(OnStopDiscovery);
        Receive<NvmeHost.GetDiscoveryInfo>(_ => OnGetDiscoveryInfo());
        Receive<NvmeHost.AttachController>(OnAttachController);
        Receive<NvmeHost.DetachController>(OnDetachController);
        Receive<NvmeHost.ResetController>(OnResetController);
        Receive<NvmeHost.ListControllers>(_ => Sender.Tell(ListControllers()));
        Receive<NvmeHost.ListBlockDevices>(_ => Sender.Tell(new NvmeHost.BlockDeviceList(_devices.Values.OrderBy(d => d.Name, StringComparer.Ordinal).ToArray())));
        Receive<BlockDeviceAdded>(e =>
        {
            _devices[e.Device.Name] = e.Device;
            _subsystemNqns[e.Device.Controller] = e.Device.SubsystemNqn;
        });
        Receive<BlockDeviceRemoved>(e => _devices.Remove(e.Device.Name));
        Receive<ControllerMessages.StateChanged>(e =>
        {
            if (e.State == ControllerState.Failed && e.Reason == ControllerActor.StoppedReason)
            {
                _paths.Remove(e.Name); // a stopped path is gone, not failed
            }
            else
            {
                _paths[e.Name] = e;
            }
        });
        Receive<SubsystemMessages.Attached>(OnAttached);
        Receive<AttachDeadline>(OnAttachDeadline);
        Receive<Terminated>(OnTerminated);
    }

    public ITimerScheduler Timers { get; set; } = null!;

    protected override void PreStart()
    {
        Context.System.EventStream.Subscribe(Self, typeof(BlockDeviceAdded));
        Context.System.EventStream.Subscribe(Self, typeof(BlockDeviceRemoved));
        Context.System.EventStream.Subscribe(Self, typeof(ControllerMessages.StateChanged));
    }

    protected override void PostStop()
    {
        Context.System.EventStream.Unsubscribe(Self);
        base.PostStop();
    }

    private NvmeHostSettings SettingsFor(string? hostNqn, ResiliencySettings? resiliency) => (_settings with
    {
        HostNqn = string.IsNullOrWhiteSpace(hostNqn) ? _settings.HostNqn : hostNqn,
        Resiliency = resiliency ?? _settings.Resiliency,
    }).Validated();

    private bool TryValidate(Func<NvmeHostSettings> build, out NvmeHostSettings settings)
    {
        try
        {
            settings = build();
            return true;
        }
        catch (InvalidNvmeSettingsException e)
        {
            Sender.Tell(new NvmeHost.Failed(HostErrorKind.InvalidParameter, e.Message));
            settings = null!;
            return false;
        }
    }

    private bool TryName(string name, string what)
    {
        if (string.IsNullOrWhiteSpace(name) || name.Any(c => !(char.IsAsciiLetterOrDigit(c) || c is '_' or '-')))
        {
            Sender.Tell(new NvmeHost.Failed(HostErrorKind.InvalidParameter, $"{what} name '{name}' must be non-empty letters, digits, '_' or '-'"));
            return false;
        }

        if (_discoveries.ContainsKey(name) || _attached.ContainsKey(name))
        {
            Sender.Tell(new NvmeHost.Failed(HostErrorKind.AlreadyExists, $"a discovery service or controller named '{name}' already exists"));
            return false;
        }

        return true;
    }

    private void OnStartDiscovery(NvmeHost.StartDiscovery request)
    {
        if (!TryName(request.Name, "discovery") || !TryValidate(() => SettingsFor(request.HostNqn, request.Resiliency), out var settings))
        {
            return;
        }

        var options = new DiscoveryOptions(request.Name, request.Address, settings);
        var service = Context.ActorOf(DiscoveryService.Props(options, _connector), $"discovery-{request.Name}");
        Context.Watch(service);
        _discoveries[request.Name] = service;
        _log.Info("discovery service {0} started for {1}", request.Name, request.Address);
        if (!request.WaitForAttach)
        {
            Sender.Tell(new NvmeHost.DiscoveryStarted(request.Name, []));
            return;
        }

        // The service answers the original sender directly; the host stays free meanwhile.
        var timeout = request.AttachTimeout ?? TimeSpan.FromSeconds(30);
        var replyTo = Sender;
        service.Ask<object>(new DiscoveryService.WaitForAttach(timeout), timeout + TimeSpan.FromSeconds(5))
            .PipeTo(replyTo, success: reply => reply switch
            {
                DiscoveryService.AttachCompleted done => new NvmeHost.DiscoveryStarted(request.Name, done.Devices),
                DiscoveryService.AttachTimedOut late => new NvmeHost.Failed(HostErrorKind.Timeout, $"discovery {request.Name}: {late.Detail}"),
                _ => new NvmeHost.Failed(HostErrorKind.Failed, $"discovery {request.Name}: unexpected answer {reply}"),
            }, failure: e => new NvmeHost.Failed(HostErrorKind.Timeout, $"discovery {request.Name}: {e.Message}"));
    }

    private void OnStopDiscovery(NvmeHost.StopDiscovery request)
    {
        if (!_discoveries.Remove(request.Name, out var service))
        {
            Sender.Tell(new NvmeHost.Failed(HostErrorKind.NotFound, $"no discovery service named '{request.Name}'"));
            return;
        }

        Context.Stop(service);
        Sender.Tell(new NvmeHost.DiscoveryStopped(request.Name));
    }

    private void OnGetDiscoveryInfo()
    {
        var services = _discoveries.Values.ToArray();
        var replyTo = Sender;
        Task.WhenAll(services.Select(s => s.Ask<DiscoveryService.Info>(DiscoveryService.GetInfo.Instance, TimeSpan.FromSeconds(5))))
            .PipeTo(replyTo, success: infos => new NvmeHost.DiscoveryInfoList(infos), failure: e => new NvmeHost.Failed(HostErrorKind.Timeout, $"discovery info: {e.Message}"));
    }

    private void OnAttachController(NvmeHost.AttachController request)
    {
        if (!TryName(request.Name, "controller") || !TryValidate(() => SettingsFor(request.HostNqn, request.Resiliency), out var settings))
        {
            return;
        }

        var options = new SubsystemOptions(request.Name, request.SubsystemNqn, [request.Address], settings);
        var subsystem = Context.ActorOf(SubsystemMessages.Props(options, _connector), request.Name);
        Context.Watch(subsystem);
        _attached[request.Name] = new AttachedChild(subsystem, Sender);
        _subsystemNqns[request.Name] = request.SubsystemNqn;
        Timers.StartSingleTimer(("attach", request.Name), new AttachDeadline(request.Name, request.AttachTimeout ?? _settings.ConnectTimeout * 2), request.AttachTimeout ?? _settings.ConnectTimeout * 2);
    }

    private void OnAttached(SubsystemMessages.Attached message)
    {
        if (_attached.TryGetValue(message.Name, out var child) && child.WaitingForAttach is { } replyTo)
        {
            replyTo.Tell(new NvmeHost.ControllerAttached(message.Name, message.Devices));
            child.WaitingForAttach = null;
            Timers.Cancel(("attach", message.Name));
        }
    }

    private void OnAttachDeadline(AttachDeadline deadline)
    {
        if (_attached.TryGetValue(deadline.Name, out var child) && child.WaitingForAttach is { } replyTo)
        {
            // As SPDK does: a controller that cannot be attached in time is not left behind.
            string lastState = _paths.Where(p => p.Key.StartsWith(deadline.Name + "/", StringComparison.Ordinal)).Select(p => $"{p.Value.State}: {p.Value.Reason}").FirstOrDefault() ?? "no state reported";
            replyTo.Tell(new NvmeHost.Failed(HostErrorKind.Timeout, $"controller {deadline.Name} not attached within {deadline.Timeout.TotalSeconds:0.###}s ({lastState})"));
            child.WaitingForAttach = null;
            child.Actor.Tell(new SubsystemMessages.Detach("attach timed out"));
        }
    }

    private void OnDetachController(NvmeHost.DetachController request)
    {
        if (!_attached.TryGetValue(request.Name, out var child))
        {
            Sender.Tell(new NvmeHost.Failed(HostErrorKind.NotFound, $"no controller named '{request.Name}' (controllers found by discovery are removed with stop_discovery)"));
            return;
        }

        child.Actor.Tell(new SubsystemMessages.Detach("detached by request"));
        Sender.Tell(new NvmeHost.ControllerDetached(request.Name));
    }

    private void OnResetController(NvmeHost.ResetController request)
    {
        IActorRef? subsystem = _attached.TryGetValue(request.Name, out var child) ? child.Actor : null;
        if (subsystem is null)
        {
            // A controller found by discovery lives under its discovery service.
            foreach (var discovery in _discoveries.Values)
            {
                var candidate = Context.System.ActorSelection(discovery.Path / request.Name);
                candidate.Tell(SubsystemMessages.ResetPaths.Instance);
            }

            if (!_subsystemNqns.ContainsKey(request.Name))
            {
                Sender.Tell(new NvmeHost.Failed(HostErrorKind.NotFound, $"no controller named '{request.Name}'"));
                return;
            }
        }
        else
        {
            subsystem.Tell(SubsystemMessages.ResetPaths.Instance);
        }

        Sender.Tell(new NvmeHost.ControllerResetStarted(request.Name));
    }

    private NvmeHost.ControllerList ListControllers()
    {
        var byController = _paths.Values
            .GroupBy(p => p.Name.Split('/')[0], StringComparer.Ordinal)
            .Select(g => new NvmeHost.ControllerSummary(
                g.Key,
                _subsystemNqns.TryGetValue(g.Key, out var nqn) ? nqn : string.Empty,
                _attached.ContainsKey(g.Key) ? "attach" : "discovery",
                g.Select(p => new NvmeHost.PathSummary(p.Name, p.State, p.Reason)).OrderBy(p => p.Path, StringComparer.Ordinal).ToArray()))
            .OrderBy(c => c.Name, StringComparer.Ordinal)
            .ToArray();
        return new NvmeHost.ControllerList(byController);
    }

    private void OnTerminated(Terminated message)
    {
        foreach (var (name, _) in _discoveries.Where(d => d.Value.Equals(message.ActorRef)).ToArray())
        {
            _discoveries.Remove(name);
        }

        foreach (var (name, child) in _attached.Where(a => a.Value.Actor.Equals(message.ActorRef)).ToArray())
        {
            _attached.Remove(name);
            child.WaitingForAttach?.Tell(new NvmeHost.Failed(HostErrorKind.Failed, $"controller {name} stopped before it was attached"));
        }
    }

    private sealed record AttachDeadline(string Name, TimeSpan Timeout);

    private sealed class AttachedChild(IActorRef actor, IActorRef? waitingForAttach)
    {
        public IActorRef Actor { get; } = actor;

        public IActorRef? WaitingForAttach { get; set; } = waitingForAttach;
    }
}
