using Akka.Actor;
using Akka.Event;
using ActorNvme.Actors.Connection;
using ActorNvme.Actors.Controller;
using ActorNvme.Io;
using ActorNvme.Transport;

namespace ActorNvme.Actors.Subsystem;

/// <summary>
/// Owns one NVM subsystem's paths (a ControllerActor each) and its block devices, and applies the
/// loss-timeout strategy: from a path's first loss, a deadline timer of its own (ctrlr-loss-timeout)
/// runs regardless of reconnect attempts; the path is reconnected every reconnect-delay; when the
/// deadline fires while the path is not Live, the path is stopped. When the last path has stopped,
/// the block devices are removed and the subsystem stops. Nothing here can strand a lock: a stop is a
/// message, and a stopped controller releases everything it owned in PostStop.
/// </summary>
public sealed class SubsystemActor : ReceiveActor, IWithTimers
{
    private readonly SubsystemOptions _options;
    private readonly IAdminConnector _connector;
    private readonly IIoQueueConnector? _ioConnector;
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly Dictionary<IActorRef, PathEntry> _paths = [];
    private readonly Dictionary<uint, BlockDeviceInfo> _devices = [];
    private readonly Dictionary<uint, BlockDeviceOwner> _blockDevices = [];
    private bool _failingFast;
    private string _stopReason = "last path stopped";

    public SubsystemActor(SubsystemOptions options, IAdminConnector connector, IIoQueueConnector? ioConnector = null)
    {
        _options = options;
        _connector = connector;
        _ioConnector = ioConnector;

        Receive<Controller.Controller.BecameLive>(OnPathLive);
        Receive<Controller.Controller.Lost>(OnPathLost);
        Receive<Controller.Controller.StateChanged>(_ => { });
        Receive<Controller.Controller.AsyncEvent>(e => _log.Info("{0}: asynchronous event {1} from {2}", _options.Name, e.Event, e.Name));
        Receive<ReconnectPath>(OnReconnectPath);
        Receive<LossDeadline>(OnLossDeadline);
        Receive<FastIoFailDeadline>(_ => SetFailingFast(true));
        Receive<Terminated>(OnPathTerminated);
        Receive<Subsystem.AddPath>(m => AddPath(m.Address));
        Receive<Subsystem.RemovePath>(OnRemovePath);
        Receive<Subsystem.Detach>(OnDetach);
        Receive<Subsystem.ResetPaths>(_ => { foreach (var path in _paths.Keys) { path.Tell(Controller.Controller.Reset.Instance); } });
        Receive<Subsystem.GetBlockDevice>(OnGetBlockDevice);
        Receive<Subsystem.GetStatus>(_ => Sender.Tell(new Subsystem.Status(
            _options.Name,
            _options.SubsystemNqn,
            _paths.Select(p => new Subsystem.PathStatus(p.Value.Name, p.Value.Address, p.Value.Live, p.Value.LostAt, p.Key)).ToArray(),
            _devices.Values.ToArray(),
            _failingFast)));
    }

    public ITimerScheduler Timers { get; set; } = null!;

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
        base.PostStop();
    }

    private void AddPath(TransportAddress address)
    {
        if (_paths.Values.Any(p => p.Address == address))
        {
            return;
        }

        string name = PathName(address);
        var controllerOptions = new ControllerOptions($"{_options.Name}/{name}", address, _options.SubsystemNqn, ControllerRole.Nvm, _options.Settings);
        var child = Context.ActorOf(Controller.Controller.Props(controllerOptions, _connector, _ioConnector), name);
        Context.Watch(child);
        _paths[child] = new PathEntry(name, address);
        _log.Info("{0}: path {1} added for {2}", _options.Name, address, _options.SubsystemNqn);
    }

    private void OnPathLive(Controller.Controller.BecameLive message)
    {
        if (!_paths.TryGetValue(message.Controller, out var path))
        {
            return;
        }

        path.Live = true;
        path.LostAt = null;
        Timers.Cancel(DeadlineKey(path));
        Timers.Cancel(ReconnectKey(path));
        Timers.Cancel(FastIoFailKey);
        SetFailingFast(false);

        foreach (var ns in message.Info.Namespaces)
        {
            if (_blockDevices.TryGetValue(ns.NamespaceId, out var existing))
            {
                // A flap shorter than the loss timeout keeps the device and its name; held I/O resumes here.
                if (message.IoQueues is { } pathQueues)
                {
                    existing.AttachPath(path.Name, pathQueues);
                }

                continue;
            }

            var device = new BlockDeviceInfo($"{_options.Name}n{ns.NamespaceId}", _options.Name, _options.SubsystemNqn, ns.NamespaceId, ns.BlockSize, ns.BlockCount);
            var blockDevice = new BlockDeviceOwner(
                device.Name,
                _options.SubsystemNqn,
                ns.NamespaceId,
                ns.BlockSize,
                ns.BlockCount,
                new BlockDeviceOptions(_options.Settings.IoRetries, _options.Settings.IoHoldLimit),
                ns.Nguid,
                ns.Eui64,
                ns.Uuid);
            if (message.IoQueues is { } queues)
            {
                blockDevice.AttachPath(path.Name, queues);
            }

            _devices[ns.NamespaceId] = device;
            _blockDevices[ns.NamespaceId] = blockDevice;
            _log.Info("{0}: block device {1} added ({2} blocks of {3} bytes)", _options.Name, device.Name, device.BlockCount, device.BlockSize);
            Context.System.EventStream.Publish(new BlockDeviceAdded(device, blockDevice.Device));
        }

        Context.Parent.Tell(new Subsystem.Attached(Self, _options.Name, _options.SubsystemNqn, _devices.Values.ToArray()));
    }

    private void OnPathLost(Controller.Controller.Lost message)
    {
        if (!_paths.TryGetValue(message.Controller, out var path))
        {
            return;
        }

        var resiliency = _options.Settings.Resiliency;
        bool firstLoss = path.LostAt is null;
        path.Live = false;
        DetachPath(path);
        path.LostAt ??= Context.System.Scheduler.Now;

        if (firstLoss && resiliency.CtrlrLossTimeout > TimeSpan.Zero)
        {
            // The give-up deadline runs from the first loss, beside the reconnect attempts, not after them.
            Timers.StartSingleTimer(DeadlineKey(path), new LossDeadline(message.Controller), resiliency.CtrlrLossTimeout);
        }

        if (resiliency.FastIoFailEnabled && !_paths.Values.Any(p => p.Live) && !_failingFast && !Timers.IsTimerActive(FastIoFailKey))
        {
            Timers.StartSingleTimer(FastIoFailKey, FastIoFailDeadline.Instance, resiliency.FastIoFailTimeout);
        }

        if (resiliency.NeverReconnects)
        {
            _log.Warning("{0}: path {1} lost ({2}); ctrlr-loss-timeout is 0, so it stays failed until reset or delete", _options.Name, path.Address, message.Reason);
            return;
        }

        _log.Warning("{0}: path {1} lost ({2}); reconnecting in {3:0.###}s", _options.Name, path.Address, message.Reason, resiliency.ReconnectDelay.TotalSeconds);
        Timers.StartSingleTimer(ReconnectKey(path), new ReconnectPath(message.Controller), resiliency.ReconnectDelay);
    }

    private void OnReconnectPath(ReconnectPath message)
    {
        if (_paths.ContainsKey(message.Controller))
        {
            message.Controller.Tell(Controller.Controller.Reconnect.Instance);
        }
    }

    private void OnLossDeadline(LossDeadline message)
    {
        if (!_paths.TryGetValue(message.Controller, out var path) || path.Live)
        {
            return;
        }

        _log.Warning("{0}: path {1} not Live {2:0.###}s after its loss (ctrlr-loss-timeout); deleting it", _options.Name, path.Address, _options.Settings.Resiliency.CtrlrLossTimeout.TotalSeconds);
        Timers.Cancel(ReconnectKey(path));
        _stopReason = "ctrlr-loss-timeout expired";
        Context.Stop(message.Controller);
    }

    private void OnRemovePath(Subsystem.RemovePath message)
    {
        foreach (var (controller, path) in _paths.Where(p => p.Value.Address == message.Address).ToArray())
        {
            _log.Info("{0}: removing path {1}: {2}", _options.Name, path.Address, message.Reason);
            _stopReason = message.Reason;
            Timers.Cancel(ReconnectKey(path));
            Timers.Cancel(DeadlineKey(path));
            DetachPath(path);
            controller.Tell(Controller.Controller.Delete.Instance);
        }
    }

    private void OnDetach(Subsystem.Detach message)
    {
        _stopReason = message.Reason;
        if (_paths.Count == 0)
        {
            Context.Stop(Self);
            return;
        }

        foreach (var (controller, path) in _paths)
        {
            Timers.Cancel(ReconnectKey(path));
            Timers.Cancel(DeadlineKey(path));
            DetachPath(path);
            controller.Tell(Controller.Controller.Delete.Instance);
        }
    }

    private void OnPathTerminated(Terminated message)
    {
        if (!_paths.Remove(message.ActorRef, out var path))
        {
            return;
        }

        Timers.Cancel(DeadlineKey(path));
        Timers.Cancel(ReconnectKey(path));
        DetachPath(path);
        _log.Info("{0}: path {1} stopped", _options.Name, path.Address);
        if (_paths.Count == 0)
        {
            Context.Stop(Self);
        }
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
        var device = _blockDevices.Values.Select(d => d.Device).FirstOrDefault(d => d.Name == request.Name);
        Sender.Tell(device is not null
            ? new Subsystem.BlockDeviceResult(request.Name, device)
            : new Subsystem.BlockDeviceResult(request.Name, null, $"{_options.Name} has no block device named {request.Name} (it has: {(_blockDevices.Count == 0 ? "none yet" : string.Join(", ", _blockDevices.Values.Select(d => d.Device.Name)))})"));
    }

    /// <summary>New I/O stops going to this path; what its loss failed moves to another path or is held.</summary>
    private void DetachPath(PathEntry path)
    {
        foreach (var device in _blockDevices.Values)
        {
            device.DetachPath(path.Name);
        }
    }

    private static string PathName(TransportAddress address) =>
        $"path-{Uri.EscapeDataString(address.Host)}-{address.Port}";

    private static string DeadlineKey(PathEntry path) => $"deadline-{path.Name}";

    private static string ReconnectKey(PathEntry path) => $"reconnect-{path.Name}";

    private const string FastIoFailKey = "fast-io-fail";

    private sealed class PathEntry(string name, TransportAddress address)
    {
        public string Name { get; } = name;

        public TransportAddress Address { get; } = address;

        public bool Live { get; set; }

        public DateTimeOffset? LostAt { get; set; }
    }

    private sealed record ReconnectPath(IActorRef Controller);

    private sealed record LossDeadline(IActorRef Controller);

    private sealed record FastIoFailDeadline
    {
        public static FastIoFailDeadline Instance { get; } = new();
    }
}
