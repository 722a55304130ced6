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
/// discovery controller becomes Live (after every reconnect) and on every discovery-log-change AEN, in
/// pieces that fit the controller's MDTS, and checked for a GENCTR change; it is then reconciled with
/// the children by (subsystem NQN, transport address) under this service's host NQN. Entries by SUBTYPE:
/// 1 a referral (followed within the depth and controller caps), 2 an NVM subsystem (attached once the
/// registry grants its path: one subsystem is attached once per host, whichever services list it), 3 this
/// discovery subsystem at another address (never followed). Only a successful read removes anything.
/// Names are never reused.
/// </summary>
public sealed class DiscoveryServiceActor : ReceiveActor, IWithTimers
{
    private const string ReconnectTimerKey = "reconnect-discovery-controller";
    private const string AttachTimerKey = "wait-for-attach";
    private const string RereadTimerKey = "reread-for-missing-subsystem";

    private readonly DiscoveryOptions _options;
    private readonly IAdminConnector _connector;
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly int _controllerBudget;
    private readonly Dictionary<string, SubsystemChild> _subsystems = new(StringComparer.Ordinal);
    private readonly Dictionary<IActorRef, string> _stopping = [];

    // Paths the registry granted this service (in use by a child, a stopping child, or about to be) and paths asked for.
    private readonly Dictionary<string, HashSet<TransportAddress>> _held = new(StringComparer.Ordinal);
    private readonly Dictionary<string, HashSet<TransportAddress>> _claiming = new(StringComparer.Ordinal);
    private readonly Dictionary<(string Nqn, TransportAddress Address), DiscoveryService.SkippedEntry> _refused = [];
    private readonly Dictionary<TransportAddress, ReferralChild> _referrals = [];
    private readonly Dictionary<IActorRef, int> _stoppingReferrals = [];
    private readonly Dictionary<IActorRef, Exception> _failures = [];
    private readonly List<(IActorRef ReplyTo, DiscoveryService.WaitForAttach Request)> _attachWaiters = [];
    private Dictionary<string, HashSet<TransportAddress>> _wanted = new(StringComparer.Ordinal);
    private List<DiscoveryService.SkippedEntry> _skipped = [];
    private HashSet<TransportAddress> _alternates = [];
    private IActorRef _discoveryController = ActorRefs.Nobody;
    private bool _discoveryControllerLive;
    private bool _reading;
    private string? _shuttingDown;
    private bool _readAgain;
    private int _logReads;
    private int _nextName;

    /// <summary>
    /// Names of subsystems that ended without ever having a Live path (a re-attach to a port that is still
    /// down), kept for the next attach of the same NQN: retries while a port is down do not use up names,
    /// so a subsystem that comes back gets the next name after the one it lost, as in a whole-interface outage.
    /// </summary>
    private readonly Dictionary<string, string> _unusedNames = new(StringComparer.Ordinal);
    private int _nextReferral;
    private DiscoveryLog? _lastLog;

    // The read in progress: which one (late answers of an abandoned read are dropped), its attempt, the header
    // it started from and the page being filled.
    private int _readId;
    private int _readAttempt;
    private DiscoveryLogHeader _readHeader;
    private byte[]? _page;
    private int _chunkSize = QueuePairOptions.Admin.MaxTransferSize;

    public DiscoveryServiceActor(DiscoveryOptions options, IAdminConnector connector)
    {
        _options = options;
        _connector = connector;
        _controllerBudget = Math.Max(1, options.ControllerBudget ?? options.Settings.MaxDiscoveryControllers);

        Receive<ControllerMessages.BecameLive>(m => m.Controller.Equals(_discoveryController), m =>
        {
            _discoveryControllerLive = true;
            _chunkSize = LogChunkSize(m.Info);
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
        Receive<DiscoveryService.PathsReleased>(m =>
        {
            if (_discoveryControllerLive)
            {
                ReadLog($"a path of {m.SubsystemNqn} held elsewhere was released");
            }
        });
        Receive<DiscoveryService.PathsClaimed>(OnPathsClaimed);
        Receive<SubsystemMessages.Report>(report =>
        {
            if (_subsystems.TryGetValue(report.SubsystemNqn, out var child) && child.Actor.Equals(report.Subsystem))
            {
                if (report.Paths.Any(p => p.State == ControllerState.Live))
                {
                    child.EverLive = true;
                    child.Unreachable = null;
                }
                else if (child.Devices is null && report.Paths.Count > 0 && report.Paths.All(p => p.IsRefused))
                {
                    // Known at once: waiting for the attach deadline would not change the answer. The
                    // subsystem keeps retrying under the loss-timeout rules; the waiters hear why now.
                    child.Unreachable = string.Join("; ", report.Paths.Select(p => $"{p.Address}: {p.Reason}"));
                    AnswerAttachWaiters();
                }
            }

            Context.Parent.Tell(report);
        });
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
            referral.Actor.Tell(request);
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
        var controllerOptions = new ControllerOptions($"{_options.Name}/discovery", _options.Address, Nqn.Discovery, ControllerRole.Discovery, _options.Settings, _options.SecureChannel);
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
        EndRead();

        // The discovery controller reconnects for as long as the service runs; what it found stays.
        var delay = ReconnectJitter.Apply(ReconnectDelay, Random.Shared);
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

    /// <summary>The largest piece of the log one Get Log Page asks for: MDTS (in CAP.MPSMIN pages; 0 = no limit), at most what the admin queue carries, whole entries.</summary>
    private static int LogChunkSize(ControllerInfo info)
    {
        long limit = QueuePairOptions.Admin.MaxTransferSize;
        byte mdts = info.Identify.MaxDataTransferSize;
        if (mdts != 0)
        {
            long pageSize = 4096L << info.Capabilities.MemoryPageSizeMinimum;
            limit = Math.Min(limit, pageSize << Math.Min((int)mdts, 20));
        }

        return (int)Math.Max(DiscoveryLogEntry.Size, limit / DiscoveryLogEntry.Size * DiscoveryLogEntry.Size);
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
        _readAttempt = 0;
        _log.Info("{0}: reading the discovery log ({1})", _options.Name, why);
        StartAttempt();
    }

    /// <summary>
    /// One attempt: the header (GENCTR, NUMREC), then the page from offset 0 in pieces of at most the chunk size.
    /// A page of one piece carries its own header to compare; a longer one is followed by the header again.
    /// </summary>
    private void StartAttempt()
    {
        _readId++;
        _page = null;
        RequestLog(LogReadStep.Header, 0, DiscoveryLogHeader.Size);
    }

    private void RequestLog(LogReadStep step, int offset, int length) =>
        _discoveryController.Tell(new ControllerMessages.SubmitAdmin(
            AdminCommands.GetLogPage((byte)LogPageId.Discovery, (uint)length, (ulong)offset, namespaceId: 0),
            DataInLength: length,
            Tag: new LogRead(_readId, step, offset, length)));

    private void OnLogData(ControllerMessages.AdminResult result)
    {
        if (result.Tag is not LogRead read || !_reading || read.ReadId != _readId)
        {
            return;
        }

        if (!result.IsSuccess)
        {
            FinishRead($"Get Log Page (discovery, offset {read.Offset}, {read.Length} bytes) failed: {result.Completion.Status}");
            return;
        }

        if (result.Data.Length < read.Length)
        {
            FinishRead($"Get Log Page (discovery, offset {read.Offset}) returned {result.Data.Length} of the {read.Length} bytes asked for");
            return;
        }

        var data = result.Data.Span[..read.Length];
        switch (read.Step)
        {
            case LogReadStep.Header:
                OnHeader(data);
                break;
            case LogReadStep.Piece:
                OnPiece(read, data);
                break;
            case LogReadStep.Confirm:
                if (ConfirmHeader(data))
                {
                    Decode();
                }

                break;
        }
    }

    private void OnHeader(ReadOnlySpan<byte> data)
    {
        if (!DiscoveryLogHeader.TryRead(data, out var header, out var error))
        {
            FinishRead($"discovery log header unusable: {error.Describe()}");
            return;
        }

        if (!header.TryGetPageLength(out int length, out error))
        {
            FinishRead($"discovery log too large: {error.Describe()}");
            return;
        }

        _readHeader = header;
        if (header.NumberOfRecords == 0)
        {
            Accept(new DiscoveryLog(header, []));
            return;
        }

        // At most MaxRecords entries (4 MiB and a header): bounded above, allocated only now.
        _page = new byte[length];
        RequestLog(LogReadStep.Piece, 0, Math.Min(_chunkSize, length));
    }

    private void OnPiece(LogRead read, ReadOnlySpan<byte> data)
    {
        var page = _page!;
        data.CopyTo(page.AsSpan(read.Offset));
        if (read.Offset == 0 && !ConfirmHeader(data))
        {
            return;
        }

        int next = read.Offset + read.Length;
        if (next < page.Length)
        {
            RequestLog(LogReadStep.Piece, next, Math.Min(_chunkSize, page.Length - next));
        }
        else if (read.Offset == 0)
        {
            Decode(); // one piece: its own header was the check
        }
        else
        {
            RequestLog(LogReadStep.Confirm, 0, DiscoveryLogHeader.Size);
        }
    }

    /// <summary>True when the header read now matches the one the read started from; otherwise starts over (a bounded number of times).</summary>
    private bool ConfirmHeader(ReadOnlySpan<byte> data)
    {
        if (!DiscoveryLogHeader.TryRead(data, out var now, out var error))
        {
            FinishRead($"discovery log header unusable: {error.Describe()}");
            return false;
        }

        if (now.GenerationCounter == _readHeader.GenerationCounter && now.NumberOfRecords == _readHeader.NumberOfRecords)
        {
            return true;
        }

        if (_readAttempt < _options.Settings.DiscoveryGenctrRetries)
        {
            _readAttempt++;
            _log.Info("{0}: GENCTR moved from {1} to {2} during the read; reading again", _options.Name, _readHeader.GenerationCounter, now.GenerationCounter);
            StartAttempt();
            return false;
        }

        FinishRead($"GENCTR kept changing over {_readAttempt + 1} reads");
        return false;
    }

    private void Decode()
    {
        var page = _page!;
        _page = null;
        if (!DiscoveryLogPage.TryRead(page, out var log, out var error))
        {
            FinishRead($"discovery log unusable: {error.Describe()}");
            return;
        }

        Accept(log);
    }

    private void Accept(DiscoveryLog log)
    {
        _lastLog = log;
        _logReads++;
        _log.Info("{0}: discovery log GENCTR {1}, {2} record(s)", _options.Name, log.Header.GenerationCounter, log.Entries.Count);
        Reconcile(log);
        FinishRead(failure: null);
        AnswerAttachWaiters();
    }

    private void OnLogReadFailed(ControllerMessages.AdminFailed failed)
    {
        if (failed.Tag is LogRead read && _reading && read.ReadId == _readId)
        {
            FinishRead(failed.Reason);
        }
    }

    private void EndRead()
    {
        _reading = false;
        _page = null;
        _readId++;
    }

    private void FinishRead(string? failure)
    {
        EndRead();
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
        var referrals = new List<TransportAddress>();
        var secureReferrals = new HashSet<TransportAddress>();
        var alternates = new HashSet<TransportAddress>();
        var skipped = new List<DiscoveryService.SkippedEntry>();
        var flagged = new List<string>();
        foreach (var entry in log.Entries)
        {
            string where = $"{entry.TransportAddress}:{entry.TransportServiceId}";
            void Skip(string reason)
            {
                skipped.Add(new DiscoveryService.SkippedEntry(entry.SubsystemNqn, where, reason));
                _log.Warning("{0}: discovery log entry {1} at {2} skipped: {3}", _options.Name, entry.SubsystemNqn, where, reason);
            }

            if (entry.TransportType != TransportType.Tcp)
            {
                Skip($"TRTYPE {entry.TransportType} is not TCP");
                continue;
            }

            if (!TryAddress(entry, out var parsed) || parsed is not { } address)
            {
                Skip($"TRADDR '{entry.TransportAddress}' TRSVCID '{entry.TransportServiceId}' is not a usable TCP address");
                continue;
            }

            if (entry.Flags != DiscoveryEntryFlags.None || entry.TransportRequirements != TransportRequirements.None)
            {
                flagged.Add($"{entry.SubsystemType} {address}: EFLAGS {entry.Flags}, TREQ {entry.TransportRequirements}");
            }

            if (entry.SubsystemType != SubsystemType.CurrentDiscovery && SecureChannelRefusal(entry) is { } refusal)
            {
                Skip(refusal);
                continue;
            }

            switch (entry.SubsystemType)
            {
                case SubsystemType.Nvm:
                    if (!Nqn.TryValidate(entry.SubsystemNqn, out var nqnError, "SUBNQN"))
                    {
                        // Refused where it enters: a controller given this name could not even encode its Connect.
                        Skip(nqnError.Describe());
                        continue;
                    }

                    if (!wanted.TryGetValue(entry.SubsystemNqn, out var addresses))
                    {
                        wanted[entry.SubsystemNqn] = addresses = [];
                    }

                    addresses.Add(address);
                    break;
                case SubsystemType.DiscoveryReferral:
                    if ((entry.Flags & DiscoveryEntryFlags.DuplicateReturnedInformation) != 0)
                    {
                        // DUPRETINFO: its log repeats what this one returns; following it would attach nothing new.
                        Skip("referral with DUPRETINFO set: its log duplicates this one");
                        continue;
                    }

                    if (!referrals.Contains(address))
                    {
                        referrals.Add(address);
                    }

                    if (RequiresSecureChannel(entry))
                    {
                        // Its discovery controller is read over TLS with this service's psk (SecureChannelRefusal: there is one).
                        secureReferrals.Add(address);
                    }

                    break;
                case SubsystemType.CurrentDiscovery:
                    // This discovery subsystem at another address (SPDK lists one per NVM port): never a referral.
                    alternates.Add(address);
                    break;
                default:
                    Skip($"SUBTYPE {(byte)entry.SubsystemType} is not one this host knows");
                    break;
            }
        }

        if (flagged.Count > 0)
        {
            _log.Debug("{0}: entries with flags: {1}", _options.Name, string.Join("; ", flagged));
        }

        _wanted = wanted;
        _skipped = skipped;
        _alternates = alternates;
        _refused.Clear(); // asked again below; the registry's answer says again who holds what

        foreach (var (nqn, child) in _subsystems.Where(s => !wanted.ContainsKey(s.Key)).ToArray())
        {
            _log.Info("{0}: {1} ({2}) is no longer in the discovery log; detaching", _options.Name, child.Name, nqn);
            child.Actor.Tell(new SubsystemMessages.Detach("removed from the discovery log", RemovalReason.RemovedFromDiscoveryLog));
            _subsystems.Remove(nqn);
            _stopping[child.Actor] = nqn; // its paths are released when it has terminated
        }

        foreach (var (nqn, child) in _subsystems)
        {
            var gone = child.Addresses.Except(wanted[nqn]).ToArray();
            foreach (var address in gone)
            {
                child.Actor.Tell(new SubsystemMessages.RemovePath(address, "path no longer in the discovery log"));
                child.Addresses.Remove(address);
            }

            Release(nqn, gone);
        }

        foreach (var (nqn, addresses) in wanted)
        {
            var held = _held.GetValueOrDefault(nqn);
            var claiming = _claiming.GetValueOrDefault(nqn);
            var toClaim = addresses.Where(a => held?.Contains(a) != true && claiming?.Contains(a) != true).ToArray();
            if (toClaim.Length > 0)
            {
                Claim(nqn, toClaim);
            }
        }

        FollowReferrals(referrals, secureReferrals);
    }

    /// <summary>
    /// Why an entry's secure-channel needs (TREQ bits 1:0, SECTYPE) cannot be met, or null: TLS 1.3 is offered when
    /// a psk is configured (then every queue of this service uses it); TLS 1.2 is not NVMe/TCP's TLS here.
    /// </summary>
    private string? SecureChannelRefusal(DiscoveryLogEntry entry)
    {
        if (entry.SecurityType is not (TcpSecurityType.None or TcpSecurityType.Tls13))
        {
            return $"it asks for SECTYPE {entry.SecurityType}; this host speaks TLS 1.3 only";
        }

        if (RequiresSecureChannel(entry) && _options.Settings.TlsPsk is null)
        {
            return $"{entry.SubsystemType} entry {entry.SubsystemNqn} at {entry.TransportAddress}:{entry.TransportServiceId} requires a secure channel (TREQ {entry.TransportRequirements}, SECTYPE {entry.SecurityType}); no psk is configured for TLS";
        }

        return null;
    }

    /// <summary>TREQ bits 1:0 say a secure channel is required, or SECTYPE names TLS 1.3: the entry is reached only over TLS.</summary>
    private static bool RequiresSecureChannel(DiscoveryLogEntry entry) =>
        ((byte)entry.TransportRequirements & 0x3) == (byte)TransportRequirements.SecureChannelRequired
        || entry.SecurityType == TcpSecurityType.Tls13;

    private void Claim(string nqn, IReadOnlyList<TransportAddress> addresses)
    {
        if (!_claiming.TryGetValue(nqn, out var claiming))
        {
            _claiming[nqn] = claiming = [];
        }

        claiming.UnionWith(addresses);
        if (_options.Registry is { } registry)
        {
            registry.Tell(new DiscoveryService.ClaimPaths(Self, _options.Name, nqn, _options.Settings.HostNqn, addresses));
        }
        else
        {
            Self.Tell(new DiscoveryService.PathsClaimed(nqn, addresses, []));
        }
    }

    private void Release(string nqn, IReadOnlyCollection<TransportAddress> addresses)
    {
        if (addresses.Count == 0 || !_held.TryGetValue(nqn, out var held))
        {
            return;
        }

        var released = addresses.Where(held.Remove).ToArray();
        if (held.Count == 0)
        {
            _held.Remove(nqn);
        }

        if (released.Length > 0)
        {
            _options.Registry?.Tell(new DiscoveryService.ReleasePaths(Self, nqn, _options.Settings.HostNqn, released));
        }
    }

    private void OnPathsClaimed(DiscoveryService.PathsClaimed reply)
    {
        string nqn = reply.SubsystemNqn;
        if (_claiming.TryGetValue(nqn, out var claiming))
        {
            claiming.ExceptWith(reply.Granted);
            claiming.ExceptWith(reply.Refused.Select(r => r.Address));
            if (claiming.Count == 0)
            {
                _claiming.Remove(nqn);
            }
        }

        if (!_held.TryGetValue(nqn, out var held))
        {
            _held[nqn] = held = [];
        }

        held.UnionWith(reply.Granted);
        var wanted = _shuttingDown is null ? _wanted.GetValueOrDefault(nqn) : null;
        Release(nqn, reply.Granted.Where(a => wanted?.Contains(a) != true).ToArray()); // no longer listed meanwhile
        foreach (var refused in reply.Refused.Where(r => wanted?.Contains(r.Address) == true))
        {
            _refused[(nqn, refused.Address)] = new DiscoveryService.SkippedEntry(nqn, refused.Address.ToString(), refused.Reason);
            _log.Info("{0}: {1} at {2} not attached here: {3}", _options.Name, nqn, refused.Address, refused.Reason);
        }

        var granted = reply.Granted.Where(a => wanted?.Contains(a) == true).ToArray();
        if (granted.Length > 0)
        {
            if (_subsystems.TryGetValue(nqn, out var child))
            {
                foreach (var address in granted.Where(child.Addresses.Add))
                {
                    child.Actor.Tell(new SubsystemMessages.AddPath(address));
                }
            }
            else if (_stopping.ContainsValue(nqn))
            {
                // Its predecessor is still stopping: spawn after its Terminated (see OnChildTerminated).
                _log.Info("{0}: {1} is listed again; waiting for its previous controller to stop", _options.Name, nqn);
            }
            else if (_held.TryGetValue(nqn, out var paths))
            {
                Spawn(nqn, paths);
            }
        }

        AnswerAttachWaiters();
    }

    private void Spawn(string nqn, IReadOnlyCollection<TransportAddress> addresses)
    {
        string name = _unusedNames.Remove(nqn, out string? unused) ? unused : $"{_options.Name}{_nextName++}";
        var options = new SubsystemOptions(name, nqn, addresses.ToArray(), _options.Settings, _options.RootName);
        var actor = Context.ActorOf(SubsystemMessages.Props(options, _connector), name);
        Context.Watch(actor);
        _subsystems[nqn] = new SubsystemChild(name, nqn, actor, [.. addresses]);
        _log.Info("{0}: {1} found at {2}; attaching as {3}", _options.Name, nqn, string.Join(", ", addresses), name);
    }

    /// <summary>
    /// Follows new referrals within the depth cap and this service's discovery-controller budget, which is
    /// split among them (each keeps its share for its own referrals); withdraws those no longer listed.
    /// </summary>
    private void FollowReferrals(List<TransportAddress> referrals, HashSet<TransportAddress> secureReferrals)
    {
        foreach (var (address, referral) in _referrals.Where(r => !referrals.Contains(r.Key)).ToArray())
        {
            _log.Info("{0}: referral {1} withdrawn", _options.Name, address);
            Context.Stop(referral.Actor);
            _referrals.Remove(address);
            _stoppingReferrals[referral.Actor] = referral.Budget; // its controllers count until it has stopped
        }

        var visited = new HashSet<TransportAddress>(_options.Visited ?? new HashSet<TransportAddress>()) { _options.Address };
        visited.UnionWith(_alternates);
        var candidates = referrals.Where(a => !_referrals.ContainsKey(a) && !visited.Contains(a)).ToList();
        if (candidates.Count == 0)
        {
            return;
        }

        if (_options.Depth + 1 > _options.Settings.ReferralDepth)
        {
            NotFollowed(candidates, $"depth {_options.Depth + 1} would exceed referral-depth {_options.Settings.ReferralDepth}");
            return;
        }

        int remaining = _controllerBudget - 1 - _referrals.Values.Sum(r => r.Budget) - _stoppingReferrals.Values.Sum();
        int followed = Math.Clamp(remaining, 0, candidates.Count);
        if (followed < candidates.Count)
        {
            NotFollowed(candidates.Skip(followed).ToList(), $"the discovery-controller cap ({_options.Settings.MaxDiscoveryControllers} per started discovery; {_controllerBudget} for this service and its referrals, {Math.Max(0, remaining)} left) is reached");
        }

        var childVisited = new HashSet<TransportAddress>(visited.Concat(referrals));
        for (int i = 0; i < followed; i++)
        {
            var address = candidates[i];
            int budget = (remaining / followed) + (i < remaining % followed ? 1 : 0);
            int n = _nextReferral++;
            var options = new DiscoveryOptions($"{_options.Name}r{n}_", address, _options.Settings, _options.Depth + 1, childVisited, _options.RootName, _options.Registry, budget, secureReferrals.Contains(address));
            var actor = Context.ActorOf(DiscoveryService.Props(options, _connector), $"referral{n}-{Uri.EscapeDataString(address.Host)}-{address.Port}");
            Context.Watch(actor);
            _referrals[address] = new ReferralChild(actor, budget);
            _log.Info("{0}: following referral to {1} (depth {2}, up to {3} discovery controller(s))", _options.Name, address, _options.Depth + 1, budget);
        }
    }

    private void NotFollowed(List<TransportAddress> addresses, string why)
    {
        _log.Warning("{0}: {1} referral(s) not followed: {2}: {3}", _options.Name, addresses.Count, why, string.Join(", ", addresses));
        _skipped.AddRange(addresses.Select(a => new DiscoveryService.SkippedEntry(Nqn.Discovery, a.ToString(), $"referral not followed: {why}")));
    }

    private void OnChildTerminated(Terminated message)
    {
        var actor = message.ActorRef;
        _failures.Remove(actor, out var failure);
        _stoppingReferrals.Remove(actor);
        if (_shuttingDown is not null)
        {
            _stopping.Remove(actor);
            _referrals.Where(r => r.Value.Actor.Equals(actor)).Select(r => r.Key).ToList().ForEach(a => _referrals.Remove(a));
            StopWhenEmpty();
            return;
        }

        if (actor.Equals(_discoveryController))
        {
            // Stopped by this service's supervisor after it threw: a loss like any other; a new one reconnects.
            _discoveryController = ActorRefs.Nobody;
            _discoveryControllerLive = false;
            EndRead();
            string why = failure is null ? "stopped unexpectedly" : $"failed: {failure.GetType().Name}: {failure.Message}";
            _log.Error("{0}: discovery controller at {1} {2}; a new one starts in {3:0.###}s", _options.Name, _options.Address, why, ReconnectDelay.TotalSeconds);
            Timers.StartSingleTimer(ReconnectTimerKey, ReconnectDiscoveryController.Instance, ReconnectDelay);
            return;
        }

        foreach (var (nqn, child) in _subsystems.Where(s => s.Value.Actor.Equals(actor)).ToArray())
        {
            // Deleted by its own loss timeout, or failed. It comes back (under a new name) when a read lists it:
            // the log is read again every reconnect-delay until then. Its paths are free for any service meanwhile.
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
            if (!child.EverLive && failure is null)
            {
                _unusedNames[nqn] = child.Name;
            }

            Release(nqn, _held.GetValueOrDefault(nqn)?.ToArray() ?? []);
            Timers.StartSingleTimer(RereadTimerKey, RereadLog.Instance, ReconnectDelay);
        }

        if (_stopping.Remove(actor, out var stoppedNqn) && !_subsystems.ContainsKey(stoppedNqn))
        {
            var held = _held.GetValueOrDefault(stoppedNqn)?.ToArray() ?? [];
            var wanted = _wanted.GetValueOrDefault(stoppedNqn);
            Release(stoppedNqn, held.Where(a => wanted?.Contains(a) != true).ToArray());
            if (_held.TryGetValue(stoppedNqn, out var paths) && paths.Count > 0)
            {
                Spawn(stoppedNqn, paths);
            }
        }

        foreach (var (address, referral) in _referrals.Where(r => r.Value.Actor.Equals(actor)).ToArray())
        {
            _referrals.Remove(address);
            if (failure is not null)
            {
                _log.Error("{0}: referral service for {1} failed ({2}: {3}); it is followed again at the next read", _options.Name, address, failure.GetType().Name, failure.Message);
                Timers.StartSingleTimer(RereadTimerKey, RereadLog.Instance, ReconnectDelay);
            }
        }

        AnswerAttachWaiters();
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

    private IReadOnlyList<DiscoveryService.SkippedEntry> Skipped() => [.. _skipped, .. _refused.Values];

    /// <summary>
    /// Answers the waiters once a successful read has nothing left to attach: no path still being claimed, no
    /// listed subsystem waiting for its predecessor to stop, and every subsystem attached.
    /// </summary>
    private void AnswerAttachWaiters()
    {
        if (_attachWaiters.Count == 0 || _logReads == 0 || _claiming.Count > 0 || _stopping.Values.Any(_wanted.ContainsKey))
        {
            return;
        }

        var attached = new List<BlockDeviceInfo>();
        var unreachable = new List<DiscoveryService.SkippedEntry>();
        foreach (var child in _subsystems.Values)
        {
            if (child.Devices is null)
            {
                if (child.Unreachable is { } why)
                {
                    unreachable.Add(new DiscoveryService.SkippedEntry(child.Nqn, string.Join(", ", child.Addresses), $"not reachable now, retried every reconnect-delay: {why}"));
                    continue;
                }

                return; // not every subsystem is attached yet
            }

            attached.AddRange(child.Devices);
        }

        var skipped = Skipped().Concat(unreachable).ToArray();
        if (skipped.Length > 0)
        {
            _log.Info("{0}: attached {1} block device(s); skipped: {2}", _options.Name, attached.Count, string.Join("; ", skipped.Select(s => $"{s.SubsystemNqn} at {s.Address}: {s.Reason}")));
        }

        foreach (var (replyTo, _) in _attachWaiters)
        {
            replyTo.Tell(new DiscoveryService.AttachCompleted(_options.Name, attached, skipped));
        }

        _attachWaiters.Clear();
        Timers.Cancel(AttachTimerKey);
    }

    private void OnAttachDeadline()
    {
        foreach (var (replyTo, request) in _attachWaiters)
        {
            var pending = _subsystems.Values.Where(c => c.Devices is null).Select(c => c.Name).Concat(_claiming.Keys.Select(n => $"{n} (path not granted yet)")).ToArray();
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
        return new DiscoveryService.Info(_options.Name, _options.Address, _discoveryControllerLive, _lastLog?.Header.GenerationCounter, _logReads, entries, _subsystems.Values.Select(c => c.Name).ToArray(), _referrals.Keys.ToArray(), _options.Settings.HostNqn, _alternates.ToArray(), Skipped(), _controllerBudget);
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

    private enum LogReadStep
    {
        Header,
        Piece,
        Confirm,
    }

    private sealed record LogRead(int ReadId, LogReadStep Step, int Offset, int Length);

    private sealed record ReferralChild(IActorRef Actor, int Budget);

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

        /// <summary>Whether any of its paths was ever Live (reported so): a name never seen Live can be used again.</summary>
        public bool EverLive { get; set; }

        /// <summary>Set while every path's last attempt was refused outright (connection refused, authentication or TLS refused): why, per path.</summary>
        public string? Unreachable { get; set; }
    }
}
