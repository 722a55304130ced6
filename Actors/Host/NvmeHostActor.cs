using ActorNvme.Protocol.Tls;
using ActorNvme.Protocol.Auth;
using Akka.Actor;
using Akka.Event;
using ActorNvme.Actors.Connection;
using ActorNvme.Actors.Discovery;
using ActorNvme.Actors.Settings;
using ActorNvme.Actors.Subsystem;
using ActorNvme.Actors.Supervision;
using ActorNvme.Protocol.Data;
using ActorNvme.Transport;
using SubsystemMessages = ActorNvme.Actors.Subsystem.Subsystem;

namespace ActorNvme.Actors.Host;

/// <summary>
/// The root actor behind <see cref="NvmeHost"/>. Its registry of controllers and block devices is made
/// of the typed reports its subsystems send (directly, or passed up by their discovery service), never
/// of the event stream or of actor names. A name stays taken until the <see cref="Terminated"/> of its
/// previous owner, so a stop followed at once by a start under the same name waits for nothing and
/// breaks nothing. A child that throws is stopped by the supervisor strategy, never restarted in place:
/// a discovery service that failed is started again after reconnect-delay; a subsystem attached by hand
/// likewise, until ctrlr-loss-timeout has passed since its first failure.
/// </summary>
public sealed class NvmeHostActor : ReceiveActor, IWithTimers
{
    private readonly IAdminConnector _connector;
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly Dictionary<string, Child> _discoveries = new(StringComparer.Ordinal);
    private readonly Dictionary<string, Child> _attached = new(StringComparer.Ordinal);
    private readonly Dictionary<IActorRef, Child> _byActor = [];
    private readonly Dictionary<IActorRef, Exception> _failures = [];
    private readonly Dictionary<string, SubsystemMessages.Report> _registry = new(StringComparer.Ordinal);

    // Discovered paths by (subsystem, host, address): granted to one discovery service at a time, so one
    // subsystem is attached once per host whichever services list it. Services refused a path wait here
    // to be told when it is free.
    private readonly Dictionary<PathKey, PathClaim> _pathClaims = [];
    private readonly Dictionary<PathKey, HashSet<IActorRef>> _claimWaiters = [];
    private readonly HashSet<IActorRef> _claimants = [];
    private NvmeHostSettings _settings;
    private ShutdownInProgress? _shutdown;

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
        Receive<NvmeHost.ListBlockDevices>(_ => Sender.Tell(new NvmeHost.BlockDeviceList(_registry.Values.SelectMany(r => r.Devices).OrderBy(d => d.Name, StringComparer.Ordinal).ToArray())));
        Receive<NvmeHost.ToSubsystem>(OnToSubsystem);
        Receive<NvmeHost.Shutdown>(m => OnShutdown(m.Timeout, Sender, settings: null));
        Receive<NvmeHost.Reset>(m => OnShutdown(m.Timeout, Sender, m.Settings));
        Receive<SubsystemMessages.Report>(OnReport);
        Receive<DiscoveryService.ClaimPaths>(OnClaimPaths);
        Receive<DiscoveryService.ReleasePaths>(OnReleasePaths);
        Receive<SubsystemMessages.Attached>(OnAttached);
        Receive<AttachDeadline>(OnAttachDeadline);
        Receive<Respawn>(OnRespawn);
        Receive<ShutdownDeadline>(_ => OnShutdownDeadline());
        Receive<Terminated>(OnTerminated);
    }

    public ITimerScheduler Timers { get; set; } = null!;

    protected override SupervisorStrategy SupervisorStrategy() => new StopAndReportStrategy((child, cause) => _failures[child] = cause);

    private NvmeHostSettings SettingsFor(string? hostNqn, ResiliencySettings? resiliency, DhChapHostCredentials? dhChap, NvmeTlsPsk? tlsPsk = null) => (_settings with
    {
        TlsPsk = tlsPsk ?? _settings.TlsPsk,
        HostNqn = string.IsNullOrWhiteSpace(hostNqn) ? _settings.HostNqn : hostNqn,
        Resiliency = resiliency ?? _settings.Resiliency,
        DhChap = dhChap ?? _settings.DhChap,
    }).Validated();

    private bool Refuse(HostErrorKind kind, string message)
    {
        Sender.Tell(new NvmeHost.Failed(kind, message));
        return false;
    }

    private bool TryValidate(Func<NvmeHostSettings> build, out NvmeHostSettings settings)
    {
        settings = null!;
        try
        {
            settings = build();
        }
        catch (InvalidNvmeSettingsException e)
        {
            return Refuse(HostErrorKind.InvalidParameter, e.Message);
        }

        return Nqn.TryValidate(settings.HostNqn, out var error, "hostnqn") || Refuse(HostErrorKind.InvalidParameter, error.Describe());
    }

    private bool AcceptingNewWork() =>
        _shutdown is null || Refuse(HostErrorKind.Failed, "the host is shutting down; try again when the shutdown has completed");

    private static bool IsValidName(string name) =>
        !string.IsNullOrWhiteSpace(name) && name.Length <= 64 && name.All(c => char.IsAsciiLetterOrDigit(c) || c is '_' or '-');

    /// <summary>A name is free when nothing holds it: no service, no attached controller, no discovered controller, nothing still stopping.</summary>
    private bool TryName(string name, string what)
    {
        if (!IsValidName(name))
        {
            return Refuse(HostErrorKind.InvalidParameter, $"{what} name '{name}' must be 1-64 letters, digits, '_' or '-'");
        }

        if (_discoveries.TryGetValue(name, out var service))
        {
            return Refuse(HostErrorKind.AlreadyExists, service.Stopping ? $"discovery service '{name}' is still stopping" : $"a discovery service named '{name}' already exists");
        }

        if (_attached.TryGetValue(name, out var attached))
        {
            return Refuse(HostErrorKind.AlreadyExists, attached.Stopping ? $"controller '{name}' is still being detached" : $"a controller named '{name}' already exists");
        }

        if (_registry.TryGetValue(name, out var discovered))
        {
            return Refuse(HostErrorKind.AlreadyExists, $"a controller named '{name}' already exists (created by discovery service '{discovered.Origin}')");
        }

        return true;
    }

    private void OnStartDiscovery(NvmeHost.StartDiscovery request)
    {
        if (!AcceptingNewWork() || !TryName(request.Name, "discovery") || !TryValidate(() => SettingsFor(request.HostNqn, request.Resiliency, request.DhChap, request.TlsPsk), out var settings))
        {
            return;
        }

        if (_discoveries.Values.FirstOrDefault(d => d.Discovery is { } other && other.Address == request.Address && other.Settings.HostNqn == settings.HostNqn) is { } same)
        {
            Refuse(HostErrorKind.AlreadyExists, $"discovery service '{same.Name}' already reads {request.Address} for host {settings.HostNqn}");
            return;
        }

        bool secureChannel = request.SecureChannel || settings.DiscoverySecureChannel;
        if (secureChannel && settings.TlsPsk is null)
        {
            Refuse(HostErrorKind.InvalidParameter, $"discovery service '{request.Name}': a secure channel to {request.Address} needs a psk");
            return;
        }

        var child = new Child(request.Name, ChildKind.Discovery) { Discovery = new DiscoveryOptions(request.Name, request.Address, settings, Registry: Self, SecureChannel: secureChannel) };
        _discoveries[request.Name] = child;
        Spawn(child);
        _log.Info("discovery service {0} started for {1}", request.Name, request.Address);
        if (!request.WaitForAttach)
        {
            Sender.Tell(new NvmeHost.DiscoveryStarted(request.Name, []));
            return;
        }

        // The service answers the original sender directly; the host stays free meanwhile.
        var timeout = request.AttachTimeout ?? TimeSpan.FromSeconds(30);
        var replyTo = Sender;
        child.Actor.Ask<object>(new DiscoveryService.WaitForAttach(timeout), timeout + TimeSpan.FromSeconds(5))
            .PipeTo(replyTo, success: reply => reply switch
            {
                DiscoveryService.AttachCompleted done => new NvmeHost.DiscoveryStarted(request.Name, done.Devices, done.Skipped),
                DiscoveryService.AttachTimedOut late => new NvmeHost.Failed(HostErrorKind.Timeout, $"discovery {request.Name}: {late.Detail}"),
                _ => new NvmeHost.Failed(HostErrorKind.Failed, $"discovery {request.Name}: unexpected answer {reply}"),
            }, failure: e => new NvmeHost.Failed(HostErrorKind.Timeout, $"discovery {request.Name}: {e.Message}"));
    }

    private void OnStopDiscovery(NvmeHost.StopDiscovery request)
    {
        if (!_discoveries.TryGetValue(request.Name, out var service))
        {
            Sender.Tell(new NvmeHost.Failed(HostErrorKind.NotFound, $"no discovery service named '{request.Name}'"));
            return;
        }

        // Answered when it has terminated: then its name is free again.
        service.StopWaiters.Add((Sender, new NvmeHost.DiscoveryStopped(request.Name)));
        StopChild(service, "stop_discovery");
    }

    private void OnGetDiscoveryInfo()
    {
        var services = _discoveries.Values.Where(s => !s.Stopping && !s.Actor.IsNobody()).Select(s => s.Actor).ToArray();
        var replyTo = Sender;
        Task.WhenAll(services.Select(s => s.Ask<DiscoveryService.Info>(DiscoveryService.GetInfo.Instance, TimeSpan.FromSeconds(5))))
            .PipeTo(replyTo, success: infos => new NvmeHost.DiscoveryInfoList(infos), failure: e => new NvmeHost.Failed(HostErrorKind.Timeout, $"discovery info: {e.Message}"));
    }

    private void OnAttachController(NvmeHost.AttachController request)
    {
        if (!AcceptingNewWork())
        {
            return;
        }

        if (!Nqn.TryValidate(request.SubsystemNqn, out var nqnError, "subnqn"))
        {
            Refuse(HostErrorKind.InvalidParameter, nqnError.Describe());
            return;
        }

        if (!TryValidate(() => (request.Overrides?.ApplyTo(SettingsFor(request.HostNqn, request.Resiliency, request.DhChap, request.TlsPsk)) ?? SettingsFor(request.HostNqn, request.Resiliency, request.DhChap, request.TlsPsk)).Validated(), out var settings))
        {
            return;
        }

        if (_attached.TryGetValue(request.Name, out var existing) && !existing.Stopping && request.Multipath != MultipathMode.Disable)
        {
            AddPath(existing, request, settings);
            return;
        }

        if (!TryName(request.Name, "controller"))
        {
            return;
        }

        if (FindPath(request.Address, request.SubsystemNqn, settings.HostNqn) is { } holder)
        {
            Refuse(HostErrorKind.AlreadyExists, $"{request.SubsystemNqn} at {request.Address} for host {settings.HostNqn} is attached already, as controller '{holder}'");
            return;
        }

        if (_pathClaims.TryGetValue(new PathKey(request.SubsystemNqn, settings.HostNqn, request.Address), out var claim))
        {
            Refuse(HostErrorKind.AlreadyExists, $"{request.SubsystemNqn} at {request.Address} for host {settings.HostNqn} is attached already by discovery service '{claim.ServiceName}'");
            return;
        }

        var child = new Child(request.Name, ChildKind.Attached)
        {
            Subsystem = new SubsystemOptions(request.Name, request.SubsystemNqn, [request.Address], settings),
            WaitingForAttach = Sender,
        };
        _attached[request.Name] = child;
        Spawn(child);
        var timeout = request.AttachTimeout ?? _settings.ConnectTimeout * 2;
        Timers.StartSingleTimer(("attach", request.Name), new AttachDeadline(request.Name, timeout, null), timeout);
    }

    /// <summary>A further path of a controller attached by hand: same subsystem, same host.</summary>
    private void AddPath(Child existing, NvmeHost.AttachController request, NvmeHostSettings settings)
    {
        var options = existing.Subsystem!;
        if (options.SubsystemNqn != request.SubsystemNqn)
        {
            Refuse(HostErrorKind.Conflict, $"controller '{request.Name}' serves {options.SubsystemNqn}; a path to {request.SubsystemNqn} cannot be added to it");
            return;
        }

        if (options.Settings.HostNqn != settings.HostNqn)
        {
            Refuse(HostErrorKind.Conflict, $"controller '{request.Name}' is attached as host {options.Settings.HostNqn}; a path as host {settings.HostNqn} cannot be added to it");
            return;
        }

        if (request.Overrides is { } overrides && overrides.ApplyTo(options.Settings) != options.Settings)
        {
            Refuse(HostErrorKind.Conflict, $"controller '{request.Name}' runs with digests {options.Settings.Digests}, {options.Settings.IoQueues} I/O queues (0: one per core), SQ flow control disabled {options.Settings.DisableSqFlowControl}; a path cannot differ ({overrides})");
            return;
        }

        if (FindPath(request.Address, request.SubsystemNqn, settings.HostNqn) is { } holder)
        {
            Refuse(holder == request.Name ? HostErrorKind.PathExists : HostErrorKind.AlreadyExists, $"{request.SubsystemNqn} at {request.Address} is a path of controller '{holder}' already");
            return;
        }

        if (existing.WaitingForAttach is not null || existing.Actor.IsNobody())
        {
            Refuse(HostErrorKind.Failed, $"controller '{request.Name}' is not attached yet; add further paths once its first is");
            return;
        }

        existing.Subsystem = options with { Paths = [.. options.Paths, request.Address] };
        existing.WaitingForAttach = Sender;
        existing.AttachingPath = request.Address;
        existing.Actor.Tell(new SubsystemMessages.AddPath(request.Address));
        var timeout = request.AttachTimeout ?? _settings.ConnectTimeout * 2;
        Timers.StartSingleTimer(("attach", request.Name), new AttachDeadline(request.Name, timeout, request.Address), timeout);
    }

    private void OnClaimPaths(DiscoveryService.ClaimPaths claim)
    {
        var granted = new List<TransportAddress>();
        var refused = new List<DiscoveryService.RefusedPath>();
        if (_claimants.Add(claim.Service))
        {
            Context.Watch(claim.Service); // its paths are freed when it terminates, however it ends
        }

        foreach (var address in claim.Addresses.Distinct())
        {
            var key = new PathKey(claim.SubsystemNqn, claim.HostNqn, address);
            if (_shutdown is not null)
            {
                refused.Add(new DiscoveryService.RefusedPath(address, "the host is shutting down", false));
            }
            else if (_pathClaims.TryGetValue(key, out var holder) && !holder.Service.Equals(claim.Service))
            {
                refused.Add(new DiscoveryService.RefusedPath(address, $"also listed by discovery service '{holder.ServiceName}', which attached it (one subsystem path per host)", true));
                WaitForRelease(key, claim.Service);
            }
            else if (holder is null && AttachedByHand(address, claim.SubsystemNqn, claim.HostNqn) is { } byHand)
            {
                refused.Add(new DiscoveryService.RefusedPath(address, $"attached by hand as controller '{byHand.Name}'", false));
                WaitForRelease(key, claim.Service);
            }
            else
            {
                _pathClaims[key] = new PathClaim(claim.Service, claim.ServiceName);
                granted.Add(address);
            }
        }

        Sender.Tell(new DiscoveryService.PathsClaimed(claim.SubsystemNqn, granted, refused));
    }

    private void WaitForRelease(PathKey key, IActorRef service)
    {
        if (!_claimWaiters.TryGetValue(key, out var waiters))
        {
            _claimWaiters[key] = waiters = [];
        }

        waiters.Add(service);
    }

    private void OnReleasePaths(DiscoveryService.ReleasePaths release)
    {
        foreach (var address in release.Addresses)
        {
            var key = new PathKey(release.SubsystemNqn, release.HostNqn, address);
            if (_pathClaims.TryGetValue(key, out var holder) && holder.Service.Equals(release.Service))
            {
                _pathClaims.Remove(key);
                PathFreed(key);
            }
        }
    }

    /// <summary>Tells the services once refused this path that it is free: they read their logs again.</summary>
    private void PathFreed(PathKey key)
    {
        if (_claimWaiters.Remove(key, out var waiters))
        {
            foreach (var waiter in waiters)
            {
                waiter.Tell(new DiscoveryService.PathsReleased(key.SubsystemNqn));
            }
        }
    }

    private void ReleaseClaimsOf(IActorRef service)
    {
        if (!_claimants.Remove(service))
        {
            return;
        }

        foreach (var waiters in _claimWaiters.Values)
        {
            waiters.Remove(service);
        }

        foreach (var key in _pathClaims.Where(c => c.Value.Service.Equals(service)).Select(c => c.Key).ToArray())
        {
            _pathClaims.Remove(key);
            PathFreed(key);
        }
    }

    /// <summary>The controller that has a path to (address, subsystem, host), if any.</summary>
    private string? FindPath(TransportAddress address, string subsystemNqn, string hostNqn) =>
        _registry.Values.FirstOrDefault(r => r.SubsystemNqn == subsystemNqn && r.HostNqn == hostNqn && r.Paths.Any(p => p.Address == address))?.Name
        ?? AttachedByHand(address, subsystemNqn, hostNqn)?.Name;

    /// <summary>The controller attached by hand whose paths include (address, subsystem, host), if any.</summary>
    private Child? AttachedByHand(TransportAddress address, string subsystemNqn, string hostNqn) =>
        _attached.Values.FirstOrDefault(c => c.Subsystem is { } s && s.SubsystemNqn == subsystemNqn && s.Settings.HostNqn == hostNqn && s.Paths.Contains(address));

    private void OnAttached(SubsystemMessages.Attached message)
    {
        if (_attached.TryGetValue(message.Name, out var child) && child.Actor.Equals(message.Subsystem) && child.WaitingForAttach is { } replyTo)
        {
            replyTo.Tell(new NvmeHost.ControllerAttached(message.Name, message.Devices));
            child.WaitingForAttach = null;
            child.AttachingPath = null;
            Timers.Cancel(("attach", message.Name));
        }
    }

    private void OnAttachDeadline(AttachDeadline deadline)
    {
        if (!_attached.TryGetValue(deadline.Name, out var child) || child.WaitingForAttach is not { } replyTo)
        {
            return;
        }

        string lastState = _registry.TryGetValue(deadline.Name, out var report)
            ? string.Join("; ", report.Paths.Where(p => deadline.Path is null || p.Address == deadline.Path).Select(p => $"{p.Address}: {p.State}: {p.Reason}"))
            : "no state reported";
        AbandonAttach(child, replyTo, deadline.Path, new NvmeHost.Failed(HostErrorKind.Timeout, $"controller {deadline.Name} not attached within {deadline.Timeout.TotalSeconds:0.###}s ({lastState})"));
    }

    /// <summary>
    /// A path whose authentication or TLS handshake was refused (<see cref="SubsystemMessages.PathReport.Refusal"/>)
    /// will not attach by waiting (the keys do not change): the attach fails at once with the refusal and the
    /// controller is detached, as SPDK's attach ends, instead of at its deadline.
    /// So does a further path whose port refuses the connection.
    /// </summary>
    private void FailAttachOnFinalRefusal(SubsystemMessages.Report report)
    {
        if (report.Origin is not null || !_attached.TryGetValue(report.Name, out var child) || child.WaitingForAttach is not { } replyTo)
        {
            return;
        }

        // Keys and PSKs are answered here; a Connect with DNR and a refused port are left to the RPC, which answers
        // them from the same controller event with SPDK's errno (EPERM, EINVAL, ECONNREFUSED).
        var refused = report.Paths.FirstOrDefault(p => (child.AttachingPath is null || p.Address == child.AttachingPath)
            && p.IsRefused && p.Refusal is PathRefusal.AuthenticationFailed or PathRefusal.TlsHandshakeFailed);
        if (refused is null && child.AttachingPath is { } adding)
        {
            // A further path whose port refuses the connection is answered at once too (a first path is the
            // RPC's to judge, which knows SPDK's errno for it); the path is not left behind.
            var dead = report.Paths.FirstOrDefault(p => p.Address == adding && p.IsRefused && p.Refusal == PathRefusal.ConnectionRefused);
            if (dead is not null)
            {
                Timers.Cancel(("attach", report.Name));
                AbandonAttach(child, replyTo, adding, new NvmeHost.Failed(HostErrorKind.ConnectionRefused, $"controller {report.Name}: path {dead.Address} not added: {dead.Reason}"), "connection refused");
            }

            return;
        }

        if (refused is null)
        {
            return;
        }

        Timers.Cancel(("attach", report.Name));
        AbandonAttach(child, replyTo, child.AttachingPath, new NvmeHost.Failed(HostErrorKind.Failed, $"controller {report.Name} not attached: {refused.Address}: {refused.Reason}"), $"{refused.Refusal} (refused)");
    }

    private void AbandonAttach(Child child, IActorRef replyTo, TransportAddress? path, NvmeHost.Failed failure, string reason = "attach timed out")
    {
        replyTo.Tell(failure);
        child.WaitingForAttach = null;
        child.AttachingPath = null;
        if (path is { } added)
        {
            // As SPDK does: a path that cannot be attached is not left behind.
            child.Subsystem = child.Subsystem! with { Paths = [.. child.Subsystem.Paths.Where(p => p != added)] };
            child.Actor.Tell(new SubsystemMessages.RemovePath(added, reason));
        }
        else
        {
            child.Actor.Tell(new SubsystemMessages.Detach(reason, RemovalReason.AttachTimedOut));
        }
    }

    private void OnDetachController(NvmeHost.DetachController request)
    {
        if (!_attached.TryGetValue(request.Name, out var child))
        {
            Sender.Tell(new NvmeHost.Failed(HostErrorKind.NotFound, _registry.ContainsKey(request.Name)
                ? $"controller '{request.Name}' was found by discovery; it is removed with stop_discovery"
                : $"no controller named '{request.Name}'"));
            return;
        }

        // Answered when it has terminated (after CC.SHN): then its name is free again.
        child.StopWaiters.Add((Sender, new NvmeHost.ControllerDetached(request.Name)));
        StopChild(child, "detached by request");
    }

    private void OnResetController(NvmeHost.ResetController request)
    {
        if (!_registry.TryGetValue(request.Name, out var report))
        {
            Sender.Tell(new NvmeHost.Failed(HostErrorKind.NotFound, $"no controller named '{request.Name}'"));
            return;
        }

        report.Subsystem.Tell(SubsystemMessages.ResetPaths.Instance);
        Sender.Tell(new NvmeHost.ControllerResetStarted(request.Name));
    }

    private void OnToSubsystem(NvmeHost.ToSubsystem request)
    {
        if (_registry.TryGetValue(request.Name, out var report) && report.Removed is null)
        {
            report.Subsystem.Forward(request.Message);
            return;
        }

        Sender.Tell(new NvmeHost.Failed(HostErrorKind.NotFound, $"No such device: no controller named {request.Name}"));
    }

    private void OnReport(SubsystemMessages.Report report)
    {
        if (report.Removed is not null)
        {
            // Only the current owner of the name may remove it: a late report of an earlier incarnation must not.
            if (_registry.TryGetValue(report.Name, out var current) && current.Subsystem.Equals(report.Subsystem))
            {
                _registry.Remove(report.Name);
                _log.Info("controller {0} removed ({1}: {2})", report.Name, report.Removed, report.RemovalDetail);
            }

            return;
        }

        if (!IsCurrentOwner(report))
        {
            return;
        }

        if (report.Origin is not null && (_attached.ContainsKey(report.Name) || _discoveries.ContainsKey(report.Name)
            || (_registry.TryGetValue(report.Name, out var holder) && !holder.Subsystem.Equals(report.Subsystem))))
        {
            // Names are the host's: a discovered subsystem may not take one that is held already.
            _log.Error("discovery service {0} named a controller '{1}', a name in use; detaching it (it returns under another name)", report.Origin, report.Name);
            report.Subsystem.Tell(new SubsystemMessages.Detach($"the name {report.Name} is in use", RemovalReason.Detached));
            return;
        }

        _registry[report.Name] = report;
        FailAttachOnFinalRefusal(report);
    }

    /// <summary>A report counts only from a subsystem the host still considers alive under that name.</summary>
    private bool IsCurrentOwner(SubsystemMessages.Report report)
    {
        if (report.Origin is null)
        {
            return _attached.TryGetValue(report.Name, out var child) && child.Actor.Equals(report.Subsystem);
        }

        return _discoveries.TryGetValue(report.Origin, out var service) && !service.Stopping && !service.Actor.IsNobody();
    }

    private NvmeHost.ControllerList ListControllers() => new(_registry.Values
        .Select(r => new NvmeHost.ControllerSummary(
            r.Name,
            r.SubsystemNqn,
            r.Origin is null ? "attach" : "discovery",
            r.Paths.Select(p => new NvmeHost.PathSummary(p.Name, p.State, p.Reason, p.Address)).OrderBy(p => p.Path, StringComparer.Ordinal).ToArray(),
            r.HostNqn,
            r.Origin))
        .OrderBy(c => c.Name, StringComparer.Ordinal)
        .ToArray());

    private void Spawn(Child child)
    {
        child.Actor = child.Kind == ChildKind.Discovery
            ? Context.ActorOf(DiscoveryService.Props(child.Discovery!, _connector), $"discovery-{child.Name}")
            : Context.ActorOf(SubsystemMessages.Props(child.Subsystem!, _connector), child.Name);
        Context.Watch(child.Actor);
        _byActor[child.Actor] = child;
    }

    private void StopChild(Child child, string reason)
    {
        if (child.Stopping)
        {
            return;
        }

        child.Stopping = true;
        Timers.Cancel(("respawn", child.Name));
        if (child.Actor.IsNobody())
        {
            Forget(child);
            return;
        }

        if (child.Kind == ChildKind.Discovery)
        {
            child.Actor.Tell(new DiscoveryService.Shutdown(reason));
        }
        else
        {
            child.Actor.Tell(new SubsystemMessages.Detach(reason));
        }
    }

    private void OnTerminated(Terminated message)
    {
        ReleaseClaimsOf(message.ActorRef);
        if (!_byActor.Remove(message.ActorRef, out var child))
        {
            return;
        }

        _failures.Remove(message.ActorRef, out var failure);
        child.Actor = ActorRefs.Nobody;
        DropReportsOf(child, message.ActorRef);
        if (child.Stopping || failure is null || _shutdown is not null)
        {
            // Asked to stop, or ended by its own rules (the last path deleted by ctrlr-loss-timeout).
            Forget(child);
            return;
        }

        // It threw and its supervisor stopped it: a loss, handled by the loss-timeout rules.
        var resiliency = child.Kind == ChildKind.Discovery ? child.Discovery!.Settings.Resiliency : child.Subsystem!.Settings.Resiliency;
        var now = Context.System.Scheduler.Now;
        child.FirstFailureAt ??= now;
        string what = child.Kind == ChildKind.Discovery ? $"discovery service {child.Name}" : $"controller {child.Name}";
        bool expired = resiliency.NeverReconnects
            || (child.Kind == ChildKind.Attached && resiliency.CtrlrLossTimeout > TimeSpan.Zero && now - child.FirstFailureAt.Value >= resiliency.CtrlrLossTimeout);
        if (expired)
        {
            _log.Error("{0} failed ({1}: {2}); not started again (ctrlr-loss-timeout)", what, failure.GetType().Name, failure.Message);
            child.WaitingForAttach?.Tell(new NvmeHost.Failed(HostErrorKind.Failed, $"{what} failed: {failure.Message}"));
            child.WaitingForAttach = null;
            Forget(child);
            return;
        }

        var delay = resiliency.ReconnectDelay > TimeSpan.Zero ? resiliency.ReconnectDelay : TimeSpan.FromSeconds(1);
        _log.Error("{0} failed ({1}: {2}); starting it again in {3:0.###}s", what, failure.GetType().Name, failure.Message, delay.TotalSeconds);
        Timers.StartSingleTimer(("respawn", child.Name), new Respawn(child.Name, child.Kind), delay);
    }

    private void OnRespawn(Respawn message)
    {
        var children = message.Kind == ChildKind.Discovery ? _discoveries : _attached;
        if (_shutdown is null && children.TryGetValue(message.Name, out var child) && !child.Stopping && child.Actor.IsNobody())
        {
            Spawn(child);
        }
    }

    private void DropReportsOf(Child child, IActorRef actor)
    {
        foreach (var report in _registry.Values.Where(r => child.Kind == ChildKind.Discovery ? r.Origin == child.Name : r.Subsystem.Equals(actor)).ToArray())
        {
            _registry.Remove(report.Name);
        }
    }

    private void Forget(Child child)
    {
        (child.Kind == ChildKind.Discovery ? _discoveries : _attached).Remove(child.Name);
        if (child.Subsystem is { } attached)
        {
            foreach (var path in attached.Paths)
            {
                PathFreed(new PathKey(attached.SubsystemNqn, attached.Settings.HostNqn, path));
            }
        }

        Timers.Cancel(("attach", child.Name));
        Timers.Cancel(("respawn", child.Name));
        child.WaitingForAttach?.Tell(new NvmeHost.Failed(HostErrorKind.Failed, $"controller {child.Name} stopped before it was attached"));
        child.WaitingForAttach = null;
        foreach (var (replyTo, answer) in child.StopWaiters)
        {
            replyTo.Tell(answer);
        }

        child.StopWaiters.Clear();
        FinishShutdownWhenEmpty();
    }

    private void OnShutdown(TimeSpan timeout, IActorRef replyTo, NvmeHostSettings? settings)
    {
        if (_shutdown is not null)
        {
            _shutdown.Waiters.Add((replyTo, settings));
            return;
        }

        _shutdown = new ShutdownInProgress();
        _shutdown.Waiters.Add((replyTo, settings));
        _log.Info("shutting down {0} discovery service(s) and {1} attached controller(s)", _discoveries.Count, _attached.Count);
        foreach (var child in _discoveries.Values.Concat(_attached.Values).ToArray())
        {
            StopChild(child, "the host is shutting down");
        }

        Timers.StartSingleTimer("shutdown", ShutdownDeadline.Instance, timeout);
        FinishShutdownWhenEmpty();
    }

    private void OnShutdownDeadline()
    {
        if (_shutdown is null)
        {
            return;
        }

        foreach (var child in _discoveries.Values.Concat(_attached.Values).Where(c => !c.Actor.IsNobody()))
        {
            _shutdown.Forced.Add(child.Kind == ChildKind.Discovery ? $"discovery service {child.Name}" : $"controller {child.Name}");
            Context.Stop(child.Actor);
        }
    }

    private void FinishShutdownWhenEmpty()
    {
        if (_shutdown is null || _discoveries.Count > 0 || _attached.Count > 0)
        {
            return;
        }

        var finished = _shutdown;
        _shutdown = null;
        Timers.Cancel("shutdown");
        _registry.Clear();
        foreach (var (replyTo, settings) in finished.Waiters)
        {
            if (settings is null)
            {
                replyTo.Tell(new NvmeHost.ShutdownCompleted([.. finished.Forced]));
            }
            else
            {
                _settings = settings;
                replyTo.Tell(new NvmeHost.ResetCompleted([.. finished.Forced]));
            }
        }

        _log.Info("shutdown complete{0}", finished.Forced.Count == 0 ? string.Empty : $"; stopped without a clean shutdown: {string.Join(", ", finished.Forced)}");
    }

    private enum ChildKind
    {
        Discovery,
        Attached,
    }

    /// <summary>A name and what holds it. It outlives actor incarnations: a failed child is started again under it.</summary>
    private sealed class Child(string name, ChildKind kind)
    {
        public string Name { get; } = name;

        public ChildKind Kind { get; } = kind;

        public IActorRef Actor { get; set; } = ActorRefs.Nobody;

        public DiscoveryOptions? Discovery { get; init; }

        public SubsystemOptions? Subsystem { get; set; }

        public IActorRef? WaitingForAttach { get; set; }

        /// <summary>The further path an attach waits for (null: the first attach, all its paths).</summary>
        public TransportAddress? AttachingPath { get; set; }

        public bool Stopping { get; set; }

        public DateTimeOffset? FirstFailureAt { get; set; }

        public List<(IActorRef ReplyTo, object Answer)> StopWaiters { get; } = [];
    }

    private sealed class ShutdownInProgress
    {
        public List<(IActorRef ReplyTo, NvmeHostSettings? Settings)> Waiters { get; } = [];

        public List<string> Forced { get; } = [];
    }

    private sealed record AttachDeadline(string Name, TimeSpan Timeout, TransportAddress? Path);

    private readonly record struct PathKey(string SubsystemNqn, string HostNqn, TransportAddress Address);

    private sealed record PathClaim(IActorRef Service, string ServiceName);

    private sealed record Respawn(string Name, ChildKind Kind);

    private sealed record ShutdownDeadline
    {
        public static ShutdownDeadline Instance { get; } = new();
    }
}
