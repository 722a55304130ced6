using Akka.Actor;
using Akka.Event;
using ActorNvme.Actors.Settings;
using ActorNvme.Actors.Connection;
using ActorNvme.Actors.Controller;
using ActorNvme.Io;
using ActorNvme.Actors.Supervision;
using ActorNvme.Protocol.Nvme;
using ActorNvme.Transport;
using ControllerMessages = ActorNvme.Actors.Controller.Controller;

namespace ActorNvme.Actors.Subsystem;

/// <summary>
/// Owns one NVM subsystem's paths (a ControllerActor each) and its block devices, and applies the
/// loss-timeout strategy: from a path's first loss, a deadline timer of its own (ctrlr-loss-timeout)
/// runs regardless of reconnect attempts; the path is reconnected every reconnect-delay; when the
/// deadline fires while the path is not Live, the path is stopped. When the last path has stopped,
/// the block devices are removed and the subsystem stops. A controller that throws is stopped by this
/// actor's supervisor strategy and counts as a loss of its path: a new controller (new incarnation,
/// new generation tags) takes the path over after reconnect-delay, under the same deadline.
/// </summary>
public sealed partial class SubsystemActor : ReceiveActor, IWithTimers
{
    // Replaced only by SetKeys (new DH-HMAC-CHAP keys for the controllers started from then on).
    private SubsystemOptions _options;
    private readonly IAdminConnector _connector;
    private readonly IIoQueueConnector? _ioConnector;
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly Dictionary<string, PathEntry> _paths = new(StringComparer.Ordinal);
    private readonly Dictionary<IActorRef, PathEntry> _byController = [];
    private readonly Dictionary<IActorRef, Exception> _failures = [];
    private readonly Dictionary<uint, BlockDeviceInfo> _devices = [];
    private readonly Dictionary<uint, BlockDeviceOwner> _blockDevices = [];

    // The last ANA state each path's log page gave each namespace: it outlives the path's detach, as get_io_paths shows it.
    private readonly Dictionary<(string Path, uint NamespaceId), Protocol.Data.AnaState> _anaStates = [];
    private bool _failingFast;
    private MultipathPolicy? _policy;
    private RemovalReason _removal = RemovalReason.LossTimeout;
    private string _stopReason = "last path stopped";

    public SubsystemActor(SubsystemOptions options, IAdminConnector connector, IIoQueueConnector? ioConnector = null)
    {
        _options = options;
        _connector = connector;
        _ioConnector = ioConnector;

        Receive<ControllerMessages.BecameLive>(OnPathLive);
        Receive<ControllerMessages.Lost>(OnPathLost);
        Receive<ControllerMessages.StateChanged>(OnPathStateChanged);
        Receive<ControllerMessages.AsyncEvent>(OnAsyncEvent);
        Receive<ControllerMessages.NamespacesChanged>(OnNamespacesChanged);
        Receive<ControllerMessages.AdminResult>(m => m.Tag is AnaLogRead read, m => OnAnaLog((AnaLogRead)m.Tag!, m));
        Receive<ControllerMessages.AdminFailed>(m => m.Tag is AnaLogRead, m => _log.Warning("{0}: reading the ANA log page of {1} failed: {2}", _options.Name, ((AnaLogRead)m.Tag!).Path, m.Reason));
        Receive<ReconnectPath>(OnReconnectPath);
        Receive<LossDeadline>(OnLossDeadline);
        Receive<FastIoFailDeadline>(_ => SetFailingFast(true));
        Receive<Terminated>(OnPathTerminated);
        Receive<Subsystem.AddPath>(m => AddPath(m.Address));
        Receive<Subsystem.RemovePath>(OnRemovePath);
        Receive<Subsystem.Detach>(OnDetach);
        Receive<Subsystem.ResetPaths>(_ => OnResetPaths());
        Receive<Subsystem.GetBlockDevice>(OnGetBlockDevice);
        Receive<DeviceFenced>(OnDeviceFenced);
        Receive<RetryFence>(OnRetryFence);
        Receive<UnfencedHoldbackOver>(OnUnfencedHoldbackOver);
        Receive<ReservationsReleased>(_ => DetachNow());
        Receive<Subsystem.SetMultipathPolicy>(OnSetMultipathPolicy);
        Receive<Subsystem.SetKeys>(OnSetKeys);
        Receive<Subsystem.GetIoPaths>(OnGetIoPaths);
        Receive<Subsystem.GetStatus>(_ => Sender.Tell(new Subsystem.Status(
            _options.Name,
            _options.SubsystemNqn,
            _paths.Values.Select(p => new Subsystem.PathStatus(p.Name, p.Address, p.Live, p.LostAt, p.Controller ?? ActorRefs.Nobody)).ToArray(),
            _devices.Values.ToArray(),
            _failingFast)));
    }

    public ITimerScheduler Timers { get; set; } = null!;

    protected override SupervisorStrategy SupervisorStrategy() => new StopAndReportStrategy((child, cause) => _failures[child] = cause);

    protected override void PreStart()
    {
        foreach (var address in _options.Paths)
        {
            AddPath(address);
        }
    }

    protected override void PostStop()
    {
        RemoveDevices(_stopReason);
        Context.Parent.Tell(BuildReport(_removal, _stopReason));
        base.PostStop();
    }

    private void AddPath(TransportAddress address)
    {
        string name = PathName(address);
        if (_paths.ContainsKey(name))
        {
            return;
        }

        var path = new PathEntry(name, address);
        _paths[name] = path;
        StartController(path);
        _log.Info("{0}: path {1} added for {2}", _options.Name, address, _options.SubsystemNqn);
        Report();
    }

    /// <summary>A new controller incarnation for the path; its name is free because the previous one has terminated.</summary>
    private void StartController(PathEntry path)
    {
        var controllerOptions = new ControllerOptions($"{_options.Name}/{path.Name}", path.Address, _options.SubsystemNqn, ControllerRole.Nvm, _options.Settings);
        var child = Context.ActorOf(ControllerMessages.Props(controllerOptions, _connector, _ioConnector), path.Name);
        Context.Watch(child);
        path.Controller = child;
        path.State = ControllerState.Connecting;
        path.Reason = null;
        path.Refusal = PathRefusal.None;
        _byController[child] = path;
    }

    private void OnPathStateChanged(ControllerMessages.StateChanged message)
    {
        if (_byController.TryGetValue(message.Controller, out var path) && message.Reason != ControllerActor.StoppedReason)
        {
            path.State = message.State;
            path.Reason = message.Reason;
            if (message.State != ControllerState.Failed)
            {
                path.Refusal = PathRefusal.None; // trying again: the last refusal is history
            }

            Report();
        }
    }

    private void OnPathLive(ControllerMessages.BecameLive message)
    {
        if (!_byController.TryGetValue(message.Controller, out var path))
        {
            return;
        }

        path.Live = true;
        path.LostAt = null;
        path.ControllerId = message.Info.ControllerId;
        path.Info = message.Info;
        path.IoQueues = message.IoQueues;
        Timers.Cancel(DeadlineKey(path));
        Timers.Cancel(ReconnectKey(path));
        Timers.Cancel(FastIoFailKey);
        SetFailingFast(false);

        ReconcileNamespaces(path, message.Info.Namespaces);
        Report();
        Context.Parent.Tell(new Subsystem.Attached(Self, _options.Name, _options.SubsystemNqn, _devices.Values.ToArray()));
        if ((message.Info.Identify.MultiPathCapabilities & AnaReporting) != 0)
        {
            ReadAnaLog(path, message.Info);
        }
    }

    /// <summary>A path's controller re-read its namespaces after a Namespace Attribute Changed notice.</summary>
    private void OnNamespacesChanged(ControllerMessages.NamespacesChanged message)
    {
        if (!_byController.TryGetValue(message.Controller, out var path) || !path.Live)
        {
            return; // an association that has ended since: the next one identifies them afresh
        }

        path.Info = message.Info;
        var added = ReconcileNamespaces(path, message.Info.Namespaces);
        Report();
        if (added > 0)
        {
            Context.Parent.Tell(new Subsystem.Attached(Self, _options.Name, _options.SubsystemNqn, _devices.Values.ToArray()));
            foreach (var live in _paths.Values.Where(p => p.Live && p.Info is not null))
            {
                if ((live.Info!.Identify.MultiPathCapabilities & AnaReporting) != 0)
                {
                    ReadAnaLog(live, live.Info);
                }
            }
        }
    }

    /// <summary>
    /// Makes the block devices match the namespaces a Live path lists now: a new namespace becomes a
    /// device (on every Live path, as they are paths to the same namespaces), one that is gone is
    /// removed (its held and in-flight I/O fails naming the removal), one whose size changed is resized.
    /// Returns how many devices were added.
    /// </summary>
    private int ReconcileNamespaces(PathEntry path, IReadOnlyList<NamespaceInfo> namespaces)
    {
        int added = 0;
        var listed = new HashSet<uint>();
        foreach (var ns in namespaces)
        {
            listed.Add(ns.NamespaceId);
            if (_blockDevices.TryGetValue(ns.NamespaceId, out var existing))
            {
                // A flap shorter than the loss timeout keeps the device and its name; held I/O resumes here.
                if (path.IoQueues is { } pathQueues && !pathQueues.IsClosed)
                {
                    existing.AttachPath(path.Name, pathQueues);
                }

                if (IsAnotherNamespace(existing.Device, ns) is { } why)
                {
                    // Reformatted, or deleted and created again under the same NSID: a different device, not a resize.
                    RemoveDevice(ns.NamespaceId, $"namespace {ns.NamespaceId} of {_options.SubsystemNqn} was replaced ({why})");
                    AddDevice(ns);
                    added++;
                }
                else if (existing.Device.BlockCount != ns.BlockCount && ns.BlockCount > 0)
                {
                    ResizeDevice(existing, ns.BlockCount);
                }

                continue;
            }

            AddDevice(ns);
            added++;
        }

        foreach (uint nsid in _blockDevices.Keys.Where(id => !listed.Contains(id)).ToArray())
        {
            RemoveDevice(nsid, $"namespace {nsid} was removed from {_options.SubsystemNqn}");
        }

        return added;
    }

    /// <summary>Why <paramref name="ns"/> is not the namespace <paramref name="device"/> was made for (null when it is).</summary>
    private static string? IsAnotherNamespace(BlockDevice device, NamespaceInfo ns) =>
        device.BlockSize != ns.BlockSize ? $"{device.BlockSize}-byte blocks, now {ns.BlockSize}"
        : device.Nguid != ns.Nguid ? "its NGUID changed"
        : device.Eui64 != ns.Eui64 ? "its EUI-64 changed"
        : device.Uuid != Guid.Empty && ns.Uuid != Guid.Empty && device.Uuid != ns.Uuid ? "its UUID changed"
        : null;

    private void AddDevice(NamespaceInfo ns)
    {
        var device = new BlockDeviceInfo($"{_options.Name}n{ns.NamespaceId}", _options.Name, _options.SubsystemNqn, ns.NamespaceId, ns.BlockSize, ns.BlockCount);
        var blockDevice = new BlockDeviceOwner(
            device.Name,
            _options.SubsystemNqn,
            ns.NamespaceId,
            ns.BlockSize,
            ns.BlockCount,
            new BlockDeviceOptions(_options.Settings.IoRetries, _options.Settings.IoHoldLimit, _options.Settings.IoPathLossRetries),
            ns.Nguid,
            ns.Eui64,
            ns.Uuid,
            ns.Reservations);
        blockDevice.SetPolicy(_policy);
        blockDevice.SetFailFast(_failingFast);
        foreach (var live in _paths.Values.Where(p => p.Live))
        {
            if (live.IoQueues is { } queues && !queues.IsClosed)
            {
                blockDevice.AttachPath(live.Name, queues);
            }
        }

        _devices[ns.NamespaceId] = device;
        _blockDevices[ns.NamespaceId] = blockDevice;
        _log.Info("{0}: block device {1} added ({2} blocks of {3} bytes)", _options.Name, device.Name, device.BlockCount, device.BlockSize);
        PublishOrFence(ns.NamespaceId, blockDevice);
    }

    private void RemoveDevice(uint namespaceId, string reason)
    {
        if (!_blockDevices.Remove(namespaceId, out var blockDevice) || !_devices.Remove(namespaceId, out var device))
        {
            return;
        }

        blockDevice.Delete(reason);
        _fencing.Remove(namespaceId);
        _fenceAttempts.Remove(namespaceId);
        foreach (var key in _anaStates.Keys.Where(k => k.NamespaceId == namespaceId).ToArray())
        {
            _anaStates.Remove(key);
        }

        _log.Info("{0}: block device {1} removed: {2}", _options.Name, device.Name, reason);
        Context.System.EventStream.Publish(new BlockDeviceRemoved(device, reason));
    }

    private void ResizeDevice(BlockDeviceOwner blockDevice, ulong blockCount)
    {
        uint nsid = blockDevice.Device.NamespaceId;
        var before = _devices[nsid];
        blockDevice.Resize(blockCount);
        var after = before with { BlockCount = blockCount };
        _devices[nsid] = after;
        _log.Info("{0}: block device {1} resized from {2} to {3} blocks of {4} bytes", _options.Name, after.Name, before.BlockCount, blockCount, after.BlockSize);
        Context.System.EventStream.Publish(new BlockDeviceResized(after, before.BlockCount));
    }

    private void OnAsyncEvent(ControllerMessages.AsyncEvent message)
    {
        _log.Info("{0}: asynchronous event {1} from {2}", _options.Name, message.Event, message.Name);
        if (message.Event.LogPageId == (byte)Protocol.Data.LogPageId.AsymmetricNamespaceAccess
            && _byController.TryGetValue(message.Controller, out var path) && path.Live && path.Info is { } info)
        {
            ReadAnaLog(path, info);
        }
    }

    /// <summary>Asks the path's controller for its ANA log page (at attach and on every ANA change notice); the answer sets the path's ANA state per block device.</summary>
    private void ReadAnaLog(PathEntry path, ControllerInfo info)
    {
        if (path.Controller is not { } controller)
        {
            return;
        }

        // Header, one descriptor per group and every NSID once, within what one command may carry.
        long groups = Math.Clamp(info.Identify.NumberOfAnaGroupIds, 1u, 1024u);
        long namespaces = Math.Clamp(info.Identify.NumberOfNamespaces, (uint)info.Namespaces.Count, 16384u);
        int length = (int)Math.Min(16 + (groups * 32) + (namespaces * 4), 256 * 1024);
        length = (length + 3) & ~3;
        controller.Tell(new ControllerMessages.SubmitAdmin(AdminCommands.GetLogPage((byte)Protocol.Data.LogPageId.AsymmetricNamespaceAccess, (uint)length), DataInLength: length, Tag: new AnaLogRead(path.Name, controller)));
    }

    private void OnAnaLog(AnaLogRead read, ControllerMessages.AdminResult result)
    {
        if (!_paths.TryGetValue(read.Path, out var path) || path.Controller != read.Controller || !path.Live)
        {
            return; // an answer from an association that has ended since
        }

        if (!result.IsSuccess)
        {
            _log.Warning("{0}: ANA log page of {1} refused: {2}", _options.Name, path.Address, result.Completion.Status);
            return;
        }

        if (!Protocol.Data.AnaLogPage.TryRead(result.Data.Span, out var log, out var error))
        {
            _log.Warning("{0}: ANA log page of {1} unusable: {2}", _options.Name, path.Address, error);
            return;
        }

        foreach (var group in log.Groups)
        {
            foreach (uint nsid in group.NamespaceIds)
            {
                if (!_blockDevices.TryGetValue(nsid, out var device))
                {
                    continue;
                }

                _anaStates[(path.Name, nsid)] = group.State;

                // Set even when unchanged: the log read clears a hold an I/O's ANA status put on the path.
                bool changed = device.PathAnaState(path.Name) != group.State;
                device.SetPathAnaState(path.Name, group.State);
                if (changed)
                {
                    _log.Info("{0}: {1} on path {2} is ANA {3} (group {4})", _options.Name, device.Device.Name, path.Address, group.State, group.GroupId);
                }
            }
        }
    }

    private void OnPathLost(ControllerMessages.Lost message)
    {
        if (_byController.TryGetValue(message.Controller, out var path))
        {
            PathLost(path, message.Reason.ToString(), PathRefusals.Of(message.Reason));
        }
    }

    /// <summary>The loss-timeout rules, for a lost association and for a controller that failed alike.</summary>
    private void PathLost(PathEntry path, string reason, PathRefusal refusal = PathRefusal.None)
    {
        var resiliency = _options.Settings.Resiliency;
        bool firstLoss = path.LostAt is null;
        path.Live = false;
        path.State = ControllerState.Failed;
        path.Reason = reason;
        path.Refusal = refusal;
        DetachPath(path);
        path.LostAt ??= Context.System.Scheduler.Now;

        if (firstLoss && resiliency.CtrlrLossTimeout > TimeSpan.Zero)
        {
            // The give-up deadline runs from the first loss, beside the reconnect attempts, not after them.
            Timers.StartSingleTimer(DeadlineKey(path), new LossDeadline(path.Name), resiliency.CtrlrLossTimeout);
        }

        if (resiliency.FastIoFailEnabled && !_paths.Values.Any(p => p.Live) && !_failingFast && !Timers.IsTimerActive(FastIoFailKey))
        {
            Timers.StartSingleTimer(FastIoFailKey, FastIoFailDeadline.Instance, resiliency.FastIoFailTimeout);
        }

        if (resiliency.NeverReconnects)
        {
            _log.Warning("{0}: path {1} lost ({2}); ctrlr-loss-timeout is 0, so it stays failed until reset or delete", _options.Name, path.Address, reason);
            Report();
            return;
        }

        // A refusal is retried like any loss, one attempt per reconnect-delay until ctrlr-loss-timeout: keys
        // and PSKs may be fixed at the target meanwhile, and the deadline bounds the attempts.
        var delay = ReconnectJitter.Apply(resiliency.ReconnectDelay, Random.Shared);
        _log.Warning("{0}: path {1} {2} ({3}); reconnecting in {4:0.###}s", _options.Name, path.Address, refusal == PathRefusal.None ? "lost" : "refused", reason, delay.TotalSeconds);
        Timers.StartSingleTimer(ReconnectKey(path), new ReconnectPath(path.Name), delay);

        // Reported once the next attempt is armed, so whoever reads the report sees the timers in place.
        Report();
    }

    private void OnReconnectPath(ReconnectPath message)
    {
        if (!_paths.TryGetValue(message.Path, out var path) || path.Removing)
        {
            return;
        }

        if (path.Controller is { } controller)
        {
            controller.Tell(ControllerMessages.Reconnect.Instance);
        }
        else
        {
            _log.Info("{0}: path {1}: starting a new controller in place of the one that failed", _options.Name, path.Address);
            StartController(path);
            Report();
        }
    }

    private void OnResetPaths()
    {
        foreach (var path in _paths.Values.Where(p => !p.Removing))
        {
            if (path.Controller is { } controller)
            {
                controller.Tell(ControllerMessages.Reset.Instance);
            }
            else
            {
                Timers.Cancel(ReconnectKey(path));
                StartController(path);
            }
        }

        Report();
    }

    private void OnLossDeadline(LossDeadline message)
    {
        if (!_paths.TryGetValue(message.Path, out var path) || path.Live)
        {
            return;
        }

        _log.Warning("{0}: path {1} not Live {2:0.###}s after its loss (ctrlr-loss-timeout); deleting it", _options.Name, path.Address, _options.Settings.Resiliency.CtrlrLossTimeout.TotalSeconds);
        Timers.Cancel(ReconnectKey(path));
        _removal = RemovalReason.LossTimeout;
        _stopReason = "ctrlr-loss-timeout expired";
        RemovePathNow(path);
    }

    private void OnRemovePath(Subsystem.RemovePath message)
    {
        if (_paths.TryGetValue(PathName(message.Address), out var path) && !path.Removing)
        {
            _log.Info("{0}: removing path {1}: {2}", _options.Name, path.Address, message.Reason);
            _removal = RemovalReason.RemovedFromDiscoveryLog;
            _stopReason = message.Reason;
            DeletePath(path);
        }
    }

    private void OnDetach(Subsystem.Detach message)
    {
        _removal = message.Kind;
        _stopReason = message.Reason;
        if (ReleaseReservationsFirst(message))
        {
            return; // detached once this host's registrations are gone (ReservationsReleased)
        }

        DetachNow();
    }

    private void DetachNow()
    {
        if (_paths.Count == 0)
        {
            Context.Stop(Self);
            return;
        }

        foreach (var path in _paths.Values.Where(p => !p.Removing).ToArray())
        {
            DeletePath(path);
        }
    }

    /// <summary>Graceful: the controller shuts down (CC.SHN) and stops; the path goes with its Terminated.</summary>
    private void DeletePath(PathEntry path)
    {
        path.Removing = true;
        Timers.Cancel(ReconnectKey(path));
        Timers.Cancel(DeadlineKey(path));
        DetachPath(path);
        if (path.Controller is { } controller)
        {
            controller.Tell(ControllerMessages.Delete.Instance);
        }
        else
        {
            ForgetPath(path);
        }
    }

    /// <summary>At once: the controller (if any) is stopped; the path goes with its Terminated.</summary>
    private void RemovePathNow(PathEntry path)
    {
        path.Removing = true;
        DetachPath(path);
        if (path.Controller is { } controller)
        {
            Context.Stop(controller);
        }
        else
        {
            ForgetPath(path);
        }
    }

    private void OnPathTerminated(Terminated message)
    {
        if (!_byController.Remove(message.ActorRef, out var path))
        {
            return;
        }

        path.Controller = null;
        _failures.Remove(message.ActorRef, out var failure);
        if (path.Removing)
        {
            _log.Info("{0}: path {1} stopped", _options.Name, path.Address);
            ForgetPath(path);
            return;
        }

        // Not asked to stop: its supervisor stopped it after it threw. That is a loss of the path.
        string reason = failure is null
            ? "the controller stopped unexpectedly"
            : $"the controller failed: {failure.GetType().Name}: {failure.Message}";
        _log.Error("{0}: path {1}: {2}", _options.Name, path.Address, reason);
        PathLost(path, reason);
    }

    private void ForgetPath(PathEntry path)
    {
        Timers.Cancel(DeadlineKey(path));
        Timers.Cancel(ReconnectKey(path));
        DetachPath(path);
        _paths.Remove(path.Name);
        if (_paths.Count == 0)
        {
            Context.Stop(Self);
            return;
        }

        Report();
    }

    private void RemoveDevices(string reason)
    {
        foreach (var device in _devices.Values)
        {
            if (_blockDevices.TryGetValue(device.NamespaceId, out var blockDevice))
            {
                blockDevice.Delete(reason);
            }

            _log.Info("{0}: block device {1} removed: {2}", _options.Name, device.Name, reason);
            Context.System.EventStream.Publish(new BlockDeviceRemoved(device, reason));
        }

        _devices.Clear();
        _blockDevices.Clear();
    }

    private void SetFailingFast(bool failingFast)
    {
        if (_failingFast == failingFast)
        {
            return;
        }

        _failingFast = failingFast;
        foreach (var device in _blockDevices.Values)
        {
            device.SetFailFast(failingFast);
        }

        _log.Warning("{0}: I/O {1}", _options.Name, failingFast ? "now fails fast (fast-io-fail-timeout passed without a Live path)" : "no longer fails fast");
        Context.System.EventStream.Publish(new FastIoFailChanged(_options.Name, failingFast));
    }

    private void OnGetBlockDevice(Subsystem.GetBlockDevice request)
    {
        var device = _blockDevices.Where(d => !_fencing.Contains(d.Key)).Select(d => d.Value.Device).FirstOrDefault(d => d.Name == request.Name);
        Sender.Tell(device is not null
            ? new Subsystem.BlockDeviceResult(request.Name, device)
            : new Subsystem.BlockDeviceResult(request.Name, null, $"{_options.Name} has no block device named {request.Name} (it has: {(_blockDevices.Count == 0 ? "none yet" : string.Join(", ", _blockDevices.Values.Select(d => d.Device.Name)))})"));
    }

    private void OnSetMultipathPolicy(Subsystem.SetMultipathPolicy message)
    {
        if (message.BlockDevice is { } only)
        {
            var owner = _blockDevices.Values.FirstOrDefault(d => d.Device.Name == only);
            if (owner is null)
            {
                Sender.Tell(new Subsystem.BlockDeviceResult(only, null, $"{_options.Name} has no block device {only}"));
                return;
            }

            owner.SetPolicy(message.Policy);
            _log.Info("{0}: multipath policy of {1}: {2}", _options.Name, only, message.Policy);
            Sender.Tell(new Subsystem.MultipathPolicySet(only, message.Policy));
            return;
        }

        _policy = message.Policy;
        foreach (var device in _blockDevices.Values)
        {
            device.SetPolicy(message.Policy);
        }

        _log.Info("{0}: multipath policy {1}", _options.Name, message.Policy);
        Sender.Tell(new Subsystem.MultipathPolicySet(_options.Name, message.Policy));
    }

    private void OnGetIoPaths(Subsystem.GetIoPaths request)
    {
        var result = new List<Subsystem.IoPathInfo>();
        foreach (var owner in _blockDevices.Values.Where(d => request.BlockDevice is null || d.Device.Name == request.BlockDevice))
        {
            var attached = owner.Paths.ToDictionary(p => p.Key, p => p.Value, StringComparer.Ordinal);
            foreach (var path in _paths.Values)
            {
                attached.TryGetValue(path.Name, out var queues);
                bool connected = path.Live && queues is not null && !queues.IsClosed;
                bool accessible = queues is not null && !queues.IsAnaUnavailable && owner.PathAnaState(path.Name) is Protocol.Data.AnaState.Optimized or Protocol.Data.AnaState.NonOptimized;
                result.Add(new Subsystem.IoPathInfo(
                    owner.Device.Name,
                    path.ControllerId,
                    connected && accessible && owner.IsCurrentPath(queues!),
                    connected,
                    accessible,
                    path.Address,
                    _options.SubsystemNqn,
                    owner.PathAnaState(path.Name) ?? _anaStates.GetValueOrDefault((path.Name, owner.Device.NamespaceId), Protocol.Data.AnaState.Optimized)));
            }
        }

        Sender.Tell(new Subsystem.IoPaths(_options.Name, result));
    }

    /// <summary>New I/O stops going to this path; what its loss failed moves to another path or is held.</summary>
    private void DetachPath(PathEntry path)
    {
        foreach (var device in _blockDevices.Values)
        {
            device.DetachPath(path.Name);
        }
    }

    private void Report() => Context.Parent.Tell(BuildReport(null, null));

    private Subsystem.Report BuildReport(RemovalReason? removed, string? detail) => new(
        Self,
        _options.Name,
        _options.SubsystemNqn,
        _options.Settings.HostNqn,
        _options.Origin,
        removed is null ? _paths.Values.Select(p => new Subsystem.PathReport($"{_options.Name}/{p.Name}", p.Address, p.State, p.Reason, p.Refusal)).ToArray() : [],
        removed is null ? _devices.Values.ToArray() : [],
        removed,
        detail);

    private static string PathName(TransportAddress address) =>
        $"path-{Uri.EscapeDataString(address.Host)}-{address.Port}";

    private static string DeadlineKey(PathEntry path) => $"deadline-{path.Name}";

    private static string ReconnectKey(PathEntry path) => $"reconnect-{path.Name}";

    private const string FastIoFailKey = "fast-io-fail";

    /// <summary>One path: it outlives its controller incarnations, so the loss deadline does too.</summary>
    private sealed class PathEntry(string name, TransportAddress address)
    {
        public string Name { get; } = name;

        public TransportAddress Address { get; } = address;

        public IActorRef? Controller { get; set; }

        public ControllerState State { get; set; } = ControllerState.Connecting;

        public string? Reason { get; set; }

        /// <summary>How the peer refused the last attempt, if it did.</summary>
        public PathRefusal Refusal { get; set; }

        public bool Live { get; set; }

        public bool Removing { get; set; }

        public DateTimeOffset? LostAt { get; set; }

        /// <summary>What the last association that became Live identified.</summary>
        public ControllerInfo? Info { get; set; }

        /// <summary>CNTLID of the last association that became Live.</summary>
        public ushort ControllerId { get; set; }

        /// <summary>The I/O queues of the last association that became Live (closed once it ended).</summary>
        public IoQueueSet? IoQueues { get; set; }
    }

    /// <summary>CMIC bit 3: the controller reports ANA.</summary>
    private const byte AnaReporting = 0x08;

    /// <summary>Tag of an ANA log page read: which path, asked of which controller incarnation.</summary>
    private sealed record AnaLogRead(string Path, IActorRef Controller);

    private sealed record ReconnectPath(string Path);

    private sealed record LossDeadline(string Path);

    private sealed record FastIoFailDeadline
    {
        public static FastIoFailDeadline Instance { get; } = new();
    }
}
