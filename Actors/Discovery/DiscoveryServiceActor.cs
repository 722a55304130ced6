using Akka.Actor;
using Akka.Event;
using ActorNvme.Actors.Connection;
using ActorNvme.Actors.Controller;
using ActorNvme.Actors.Settings;
using ActorNvme.Actors.Subsystem;
using ActorNvme.Actors.Supervision;
using ActorNvme.Protocol.Data;
using ActorNvme.Protocol.Nvme;
using ActorNvme.Transport;
using ControllerMessages = ActorNvme.Actors.Controller.Controller;
using SubsystemMessages = ActorNvme.Actors.Subsystem.Subsystem;

namespace ActorNvme.Actors.Discovery;

/// <summary>
/// A persistent discovery controller and the NVM subsystems its log lists. The log is read when the
/// discovery controller becomes Live (after every reconnect) and on every discovery-log-change AEN;
/// it is then reconciled with the children by (subsystem NQN, transport address) under this
/// service's host NQN. Only a successful read removes anything. Names are never reused.
/// </summary>
public sealed class DiscoveryServiceActor : ReceiveActor, IWithTimers
{
    private const string ReconnectTimerKey = "reconnect-discovery-controller";
    private const string AttachTimerKey = "wait-for-attach";
    private const string RereadTimerKey = "reread-for-missing-subsystem";

    private readonly DiscoveryOptions _options;
    private readonly IAdminConnector _connector;
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly Dictionary<string, SubsystemChild> _subsystems = new(StringComparer.Ordinal);
    private readonly Dictionary<IActorRef, string> _stopping = [];
    private readonly Dictionary<TransportAddress, IActorRef> _referrals = [];
    private readonly Dictionary<IActorRef, Exception> _failures = [];
    private readonly List<(IActorRef ReplyTo, DiscoveryService.WaitForAttach Request)> _attachWaiters = [];
    private IActorRef _discoveryController = ActorRefs.Nobody;
    private bool _discoveryControllerLive;
    private bool _reading;
    private string? _shuttingDown;
    private bool _readAgain;
    private int _logReads;
    private int _nextName;
    private DiscoveryLog? _lastLog;

    public DiscoveryServiceActor(DiscoveryOptions options, IAdminConnector connector)
    {
        _options = options;
        _connector = connector;

        Receive<ControllerMessages.BecameLive>(m => m.Controller.Equals(_discoveryController), _ =>
        {
            _discoveryControllerLive = true;
            ReadLog("discovery controller is Live");
        });
        Receive<ControllerMessages.Lost>(m => m.Controller.Equals(_discoveryController), OnDiscoveryControllerLost);
        Receive<ControllerMessages.AsyncEvent>(OnAsyncEvent);
        Receive<ControllerMessages.StateChanged>(_ => { });
        Receive<ReconnectDiscoveryController>(_ => OnReconnectDiscoveryController());
        Receive<RereadLog>(_ =>
        {
            if (_discoveryControllerLive)
            {
                ReadLog("a subsystem it lists is missing");
            }
        });
        Receive<SubsystemMessages.Report>(report => Context.Parent.Tell(report));
        Receive<ControllerMessages.AdminResult>(OnLogData);
        Receive<ControllerMessages.AdminFailed>(OnLogReadFailed);
        Receive<SubsystemMessages.Attached>(OnSubsystemAttached);
        Receive<Terminated>(OnChildTerminated);
        Receive<DiscoveryService.WaitForAttach>(OnWaitForAttach);
        Receive<AttachDeadline>(_ => OnAttachDeadline());
        Receive<DiscoveryService.GetInfo>(_ => Sender.Tell(Snapshot()));
        Receive<DiscoveryService.Shutdown>(OnShutdown);
    }

    private void OnShutdown(DiscoveryService.Shutdown request)
    {
        if (_shuttingDown is not null)
        {
            return;
        }

        _shuttingDown = request.Reason;
        _log.Info("{0}: shutting down ({1}): detaching {2} subsystem(s)", _options.Name, request.Reason, _subsystems.Count);
        Timers.CancelAll();
        foreach (var child in _subsystems.Values)
        {
            child.Actor.Tell(new SubsystemMessages.Detach(request.Reason));
            _stopping[child.Actor] = child.Nqn;
        }

        _subsystems.Clear();
        foreach (var referral in _referrals.Values)
        {
            referral.Tell(request);
        }

        if (!_discoveryController.IsNobody())
        {
            Context.Stop(_discoveryController);
        }

        StopWhenEmpty();
    }

    private void StopWhenEmpty()
    {
        if (_shuttingDown is not null && !Context.GetChildren().Any())
        {
            Context.Stop(Self);
        }
    }

    public ITimerScheduler Timers { get; set; } = null!;

    protected override SupervisorStrategy SupervisorStrategy() => new StopAndReportStrategy((child, cause) => _failures[child] = cause);

    protected override void PreStart() => StartDiscoveryController();

    private void StartDiscoveryController()
    {
        var controllerOptions = new ControllerOptions($"{_options.Name}/discovery", _options.Address, Nqn.Discovery, ControllerRole.Discovery, _options.Settings);
        _discoveryController = Context.ActorOf(ControllerMessages.Props(controllerOptions, _connector), "dc");
        Context.Watch(_discoveryController);
    }

    private void OnReconnectDiscoveryController()
    {
        if (_discoveryController.IsNobody())
        {
            _log.Info("{0}: starting a new discovery controller for {1}", _options.Name, _options.Address);
            StartDiscoveryController();
        }
        else
        {
            _discoveryController.Tell(ControllerMessages.Reconnect.Instance);
        }
    }

    private TimeSpan ReconnectDelay => _options.Settings.Resiliency.ReconnectDelay > TimeSpan.Zero ? _options.Settings.Resiliency.ReconnectDelay : TimeSpan.FromSeconds(1);

    private void OnDiscoveryControllerLost(ControllerMessages.Lost message)
    {
        _discoveryControllerLive = false;
        _reading = false;

        // The discovery controller reconnects for as long as the service runs; what it found stays.
        var delay = ReconnectDelay;
        _log.Warning("{0}: discovery controller at {1} lost ({2}); reconnecting in {3:0.###}s; the {4} subsystem(s) it found are kept", _options.Name, _options.Address, message.Reason, delay.TotalSeconds, _subsystems.Count);
        Timers.StartSingleTimer(ReconnectTimerKey, ReconnectDiscoveryController.Instance, delay);
    }

    private void OnAsyncEvent(ControllerMessages.AsyncEvent message)
    {
        if (message.Controller.Equals(_discoveryController) && message.Event.Notice == AsyncEventNotice.DiscoveryLogPageChange)
        {
            ReadLog("discovery log change notice");
        }
    }

    private void ReadLog(string why)
    {
        if (_shuttingDown is not null)
        {
            return;
        }

        if (_reading)
        {
            _readAgain = true; // one read at a time; another follows if something changed meanwhile
            return;
        }

        _reading = true;
        _readAgain = false;
        _log.Info("{0}: reading the discovery log ({1})", _options.Name, why);
        RequestHeader(attempt: 0);
    }

    private void RequestHeader(int attempt) =>
        _discoveryController.Tell(new ControllerMessages.SubmitAdmin(
            AdminCommands.GetLogPage((byte)LogPageId.Discovery, DiscoveryLogHeader.Size, namespaceId: 0),
            DataInLength: DiscoveryLogHeader.Size,
            Tag: new LogRead(Full: false, attempt, 0)));

    private void OnLogData(ControllerMessages.AdminResult result)
    {
        if (result.Tag is not LogRead read || !_reading)
        {
            return;
        }

        if (!result.IsSuccess)
        {
            FinishRead($"Get Log Page (discovery) failed: {result.Completion.Status}");
            return;
        }

        if (!DiscoveryLogPage.TryReadHeader(result.Data.Span, out var header, out int records, out var error)
            && error.Code != DataErrorCode.DiscoveryLogTruncated)
        {
            FinishRead($"discovery log header unusable: {error.Describe()}");
            return;
        }

        if (!read.Full)
        {
            if (!header.TryGetPageLength(out int length, out error))
            {
                FinishRead($"discovery log too large: {error.Describe()}");
                return;
            }

            if (length > QueuePairOptions.Admin.MaxTransferSize)
            {
                // Checked here, where the length comes off the wire: the queue pair would refuse the command by throwing.
                FinishRead($"discovery log too large: {header.NumberOfRecords} record(s) are {length} bytes, more than the {QueuePairOptions.Admin.MaxTransferSize} bytes one admin command carries");
                return;
            }

            _discoveryController.Tell(new ControllerMessages.SubmitAdmin(
                AdminCommands.GetLogPage((byte)LogPageId.Discovery, (uint)length, namespaceId: 0),
                DataInLength: length,
                Tag: new LogRead(Full: true, read.Attempt, header.GenerationCounter)));
            return;
        }

        if (header.GenerationCounter != read.Generation)
        {
            // The log changed between the two reads: read it again, a bounded number of times.
            if (read.Attempt < _options.Settings.DiscoveryGenctrRetries)
            {
                _log.Info("{0}: GENCTR moved from {1} to {2} during the read; reading again", _options.Name, read.Generation, header.GenerationCounter);
                RequestHeader(read.Attempt + 1);
                return;
            }

            FinishRead($"GENCTR kept changing over {read.Attempt + 1} reads");
            return;
        }

        if (!DiscoveryLogPage.TryRead(result.Data.Span, out var log, out error))
        {
            FinishRead($"discovery log unusable: {error.Describe()}");
            return;
        }

        _lastLog = log;
        _logReads++;
        _log.Info("{0}: discovery log GENCTR {1}, {2} record(s)", _options.Name, log.Header.GenerationCounter, log.Entries.Count);
        Reconcile(log);
        FinishRead(failure: null);
    }

    private void OnLogReadFailed(ControllerMessages.AdminFailed failed)
    {
        if (failed.Tag is LogRead && _reading)
        {
            FinishRead(failed.Reason);
        }
    }

    private void FinishRead(string? failure)
    {
        _reading = false;
        if (failure is not null)
        {
            // A failed or missing read removes nothing.
            _log.Warning("{0}: discovery log read failed, keeping what was found before: {1}", _options.Name, failure);
        }

        if (_readAgain && _discoveryControllerLive)
        {
            ReadLog("a change was notified during the last read");
        }
    }

    private void Reconcile(DiscoveryLog log)
    {
        if (_shuttingDown is not null)
        {
            return;
        }

        var wanted = new Dictionary<string, HashSet<TransportAddress>>(StringComparer.Ordinal);
        var referrals = new HashSet<TransportAddress>();
        foreach (var entry in log.Entries)
        {
            if (entry.TransportType != TransportType.Tcp)
            {
                continue;
            }

            if (!TryAddress(entry, out var parsed) || parsed is not { } address)
            {
                _log.Warning("{0}: discovery log entry for {1} skipped: TRADDR '{2}' TRSVCID '{3}' is not a usable TCP address", _options.Name, entry.SubsystemNqn, entry.TransportAddress, entry.TransportServiceId);
                continue;
            }

            if (entry.SubsystemType == SubsystemType.Nvm && !Nqn.TryValidate(entry.SubsystemNqn, out var nqnError, "SUBNQN"))
            {
                // Refused where it enters: a controller given this name could not even encode its Connect.
                _log.Warning("{0}: discovery log entry at {1} skipped: {2}", _options.Name, address, nqnError.Describe());
                continue;
            }

            switch (entry.SubsystemType)
            {
                case SubsystemType.Nvm:
                    if (!wanted.TryGetValue(entry.SubsystemNqn, out var addresses))
                    {
                        wanted[entry.SubsystemNqn] = addresses = [];
                    }

                    addresses.Add(address);
                    break;
                case SubsystemType.DiscoveryReferral:
                    referrals.Add(address);
                    break;

                // SubsystemType.CurrentDiscovery: another address of the discovery controller being read, never a referral.

            }
        }

        foreach (var (nqn, addresses) in wanted)
        {
            if (_subsystems.TryGetValue(nqn, out var child))
            {
                foreach (var address in addresses.Except(child.Addresses).ToArray())
                {
                    child.Actor.Tell(new SubsystemMessages.AddPath(address));
                    child.Addresses.Add(address);
                }

                foreach (var address in child.Addresses.Except(addresses).ToArray())
                {
                    child.Actor.Tell(new SubsystemMessages.RemovePath(address, "path no longer in the discovery log"));
                    child.Addresses.Remove(address);
                }
            }
            else if (_stopping.ContainsValue(nqn))
            {
                // Its predecessor is still stopping: spawn after its Terminated (see OnChildTerminated).
                _log.Info("{0}: {1} is listed again; waiting for its previous controller to stop", _options.Name, nqn);
            }
            else
            {
                Spawn(nqn, addresses);
            }
        }

        foreach (var (nqn, child) in _subsystems.Where(s => !wanted.ContainsKey(s.Key)).ToArray())
        {
            _log.Info("{0}: {1} ({2}) is no longer in the discovery log; detaching", _options.Name, child.Name, nqn);
            child.Actor.Tell(new SubsystemMessages.Detach("removed from the discovery log"));
            _subsystems.Remove(nqn);
            _stopping[child.Actor] = nqn;
        }

        FollowReferrals(referrals);
    }

    private void Spawn(string nqn, IReadOnlyCollection<TransportAddress> addresses)
    {
        string name = $"{_options.Name}{_nextName++}";
        var options = new SubsystemOptions(name, nqn, addresses.ToArray(), _options.Settings, _options.RootName);
        var actor = Context.ActorOf(SubsystemMessages.Props(options, _connector), name);
        Context.Watch(actor);
        _subsystems[nqn] = new SubsystemChild(name, nqn, actor, [.. addresses]);
        _log.Info("{0}: {1} found at {2}; attaching as {3}", _options.Name, nqn, string.Join(", ", addresses), name);
    }

    private void FollowReferrals(HashSet<TransportAddress> referrals)
    {
        var visited = new HashSet<TransportAddress>(_options.Visited ?? new HashSet<TransportAddress>()) { _options.Address };
        foreach (var address in referrals)
        {
            if (_referrals.ContainsKey(address) || visited.Contains(address))
            {
                continue;
            }

            if (_options.Depth + 1 > _options.Settings.ReferralDepth)
            {
                _log.Warning("{0}: referral to {1} not followed: depth {2} would exceed referral-depth {3}", _options.Name, address, _options.Depth + 1, _options.Settings.ReferralDepth);
                continue;
            }

            var childVisited = new HashSet<TransportAddress>(visited.Concat(referrals));
            var options = new DiscoveryOptions($"{_options.Name}r{_referrals.Count}_", address, _options.Settings, _options.Depth + 1, childVisited, _options.RootName);
            var actor = Context.ActorOf(DiscoveryService.Props(options, _connector), $"referral-{Uri.EscapeDataString(address.Host)}-{address.Port}");
            Context.Watch(actor);
            _referrals[address] = actor;
            _log.Info("{0}: following referral to {1}", _options.Name, address);
        }

        foreach (var (address, actor) in _referrals.Where(r => !referrals.Contains(r.Key)).ToArray())
        {
            _log.Info("{0}: referral {1} withdrawn", _options.Name, address);
            Context.Stop(actor);
            _referrals.Remove(address);
        }
    }

    private void OnChildTerminated(Terminated message)
    {
        var actor = message.ActorRef;
        _failures.Remove(actor, out var failure);
        if (_shuttingDown is not null)
        {
            _stopping.Remove(actor);
            _referrals.Where(r => r.Value.Equals(actor)).Select(r => r.Key).ToList().ForEach(a => _referrals.Remove(a));
            StopWhenEmpty();
            return;
        }

        if (actor.Equals(_discoveryController))
        {
            // Stopped by this service's supervisor after it threw: a loss like any other; a new one reconnects.
            _discoveryController = ActorRefs.Nobody;
            _discoveryControllerLive = false;
            _reading = false;
            string why = failure is null ? "stopped unexpectedly" : $"failed: {failure.GetType().Name}: {failure.Message}";
            _log.Error("{0}: discovery controller at {1} {2}; a new one starts in {3:0.###}s", _options.Name, _options.Address, why, ReconnectDelay.TotalSeconds);
            Timers.StartSingleTimer(ReconnectTimerKey, ReconnectDiscoveryController.Instance, ReconnectDelay);
            return;
        }

        foreach (var (nqn, child) in _subsystems.Where(s => s.Value.Actor.Equals(actor)).ToArray())
        {
            // Deleted by its own loss timeout, or failed. It comes back (under a new name) when a read lists it:
            // the log is read again every reconnect-delay until then.
            string why = failure is null ? "stopped" : $"failed ({failure.GetType().Name}: {failure.Message})";
            if (failure is null)
            {
                _log.Info("{0}: {1} ({2}) {3}", _options.Name, child.Name, nqn, why);
            }
            else
            {
                _log.Error("{0}: {1} ({2}) {3}", _options.Name, child.Name, nqn, why);
            }

            _subsystems.Remove(nqn);
            Timers.StartSingleTimer(RereadTimerKey, RereadLog.Instance, ReconnectDelay);
        }

        if (_stopping.Remove(actor, out var stoppedNqn) && _lastLog is not null)
        {
            var addresses = _lastLog.Entries
                .Where(e => e.SubsystemType == SubsystemType.Nvm && e.SubsystemNqn == stoppedNqn && e.TransportType == TransportType.Tcp)
                .Select(e => TryAddress(e, out var a) ? a : null)
                .OfType<TransportAddress>()
                .ToHashSet();
            if (addresses.Count > 0 && !_subsystems.ContainsKey(stoppedNqn))
            {
                Spawn(stoppedNqn, addresses);
            }
        }

        foreach (var (address, referral) in _referrals.Where(r => r.Value.Equals(actor)).ToArray())
        {
            _referrals.Remove(address);
            if (failure is not null)
            {
                _log.Error("{0}: referral service for {1} failed ({2}: {3}); it is followed again at the next read", _options.Name, address, failure.GetType().Name, failure.Message);
                Timers.StartSingleTimer(RereadTimerKey, RereadLog.Instance, ReconnectDelay);
            }
        }
    }

    private void OnSubsystemAttached(SubsystemMessages.Attached message)
    {
        foreach (var child in _subsystems.Values.Where(c => c.Actor.Equals(message.Subsystem)))
        {
            child.Devices = message.Devices;
        }

        AnswerAttachWaiters();
    }

    private void OnWaitForAttach(DiscoveryService.WaitForAttach request)
    {
        _attachWaiters.Add((Sender, request));
        Timers.StartSingleTimer(AttachTimerKey, AttachDeadline.Instance, request.Timeout);
        AnswerAttachWaiters();
    }

    private void AnswerAttachWaiters()
    {
        if (_attachWaiters.Count == 0 || _logReads == 0)
        {
            return;
        }

        var attached = new List<BlockDeviceInfo>();
        foreach (var child in _subsystems.Values)
        {
            if (child.Devices is null)
            {
                return; // not every subsystem is attached yet
            }

            attached.AddRange(child.Devices);
        }

        foreach (var (replyTo, _) in _attachWaiters)
        {
            replyTo.Tell(new DiscoveryService.AttachCompleted(_options.Name, attached));
        }

        _attachWaiters.Clear();
        Timers.Cancel(AttachTimerKey);
    }

    private void OnAttachDeadline()
    {
        foreach (var (replyTo, request) in _attachWaiters)
        {
            var pending = _subsystems.Values.Where(c => c.Devices is null).Select(c => c.Name).ToArray();
            string detail = _logReads == 0
                ? $"no discovery log was read from {_options.Address} within {request.Timeout.TotalSeconds:0.###}s"
                : $"not attached within {request.Timeout.TotalSeconds:0.###}s: {string.Join(", ", pending)}";
            replyTo.Tell(new DiscoveryService.AttachTimedOut(_options.Name, detail));
        }

        _attachWaiters.Clear();
    }

    private DiscoveryService.Info Snapshot()
    {
        var entries = (_lastLog?.Entries ?? [])
            .Where(e => e.SubsystemType == SubsystemType.Nvm && TryAddress(e, out _))
            .Select(e =>
            {
                TryAddress(e, out var address);
                return new DiscoveryService.DiscoveredEntry(e.SubsystemNqn, address!, _subsystems.TryGetValue(e.SubsystemNqn, out var c) ? c.Name : null);
            })
            .ToArray();
        return new DiscoveryService.Info(_options.Name, _options.Address, _discoveryControllerLive, _lastLog?.Header.GenerationCounter, _logReads, entries, _subsystems.Values.Select(c => c.Name).ToArray(), _referrals.Keys.ToArray(), _options.Settings.HostNqn);
    }

    private static bool TryAddress(DiscoveryLogEntry entry, out TransportAddress? address)
    {
        try
        {
            address = TransportAddress.Parse(entry.TransportAddress, entry.TransportServiceId);
            return true;
        }
        catch (ArgumentException)
        {
            address = null;
            return false;
        }
    }

    private sealed record LogRead(bool Full, int Attempt, ulong Generation);

    private sealed record RereadLog
    {
        public static RereadLog Instance { get; } = new();
    }

    private sealed record ReconnectDiscoveryController
    {
        public static ReconnectDiscoveryController Instance { get; } = new();
    }

    private sealed record AttachDeadline
    {
        public static AttachDeadline Instance { get; } = new();
    }

    private sealed class SubsystemChild(string name, string nqn, IActorRef actor, HashSet<TransportAddress> addresses)
    {
        public string Name { get; } = name;

        public string Nqn { get; } = nqn;

        public IActorRef Actor { get; } = actor;

        public HashSet<TransportAddress> Addresses { get; } = addresses;

        public IReadOnlyList<BlockDeviceInfo>? Devices { get; set; }
    }
}
