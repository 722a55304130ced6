using Akka.Actor;
using Akka.Cluster;
using Akka.Cluster.Sharding;
using Akka.Event;
using Akka.Persistence;
using ActorNvme.Actors.Settings;

namespace ActorNvme.Cluster;

/// <summary>One NVM subsystem entry of a discovery log, as the coordinator needs it.</summary>
public sealed record DiscoveredSubsystem(string SubsystemNqn, string Path);

/// <summary>
/// Reads discovery logs. The cluster library does not read them itself: the host supplies the reader
/// (the command line's one-shot reader, or a test's), which keeps the transport out of this layer.
/// </summary>
public delegate Task<IReadOnlyList<DiscoveredSubsystem>> DiscoveryLogSource(string discoveryPath, TimeSpan timeout, CancellationToken cancellationToken);

/// <summary>
/// The discovery coordinator, a cluster singleton: every reconcile interval it reads each configured
/// discovery log and tells the shard region the desired state — <see cref="ClusterSubsystem.EnsureAttached"/>
/// for every NVM subsystem listed (again and again: that is what starts an entity on its new owner),
/// <see cref="ClusterSubsystem.EnsureDetached"/> for one that a successful read of every log no longer
/// lists. A failed read removes nothing.
/// It also owns the desired state started at run time (<see cref="DesiredState"/>): discoveries and
/// explicit attaches, event-sourced in the cluster's store, so that a full restart of the cluster reads the
/// same logs and attaches the same subsystems.
/// </summary>
internal sealed class DiscoveryCoordinatorActor : ReceivePersistentActor, IWithTimers
{
    /// <summary>One desired state per cluster (the actor is a singleton).</summary>
    public const string DesiredStatePersistenceId = "actornvme-desired-state";

    private const string TickKey = "reconcile";
    private readonly NvmeClusterSettings _settings;
    private readonly string _hostNqn;
    private readonly NvmeHostSettings _hostSettings;
    private readonly List<DesiredState.Discovery> _discoveries = [];
    private readonly List<DesiredState.ExplicitAttach> _explicit = [];
    private readonly IActorRef _region;
    private readonly DiscoveryLogSource _source;
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly HashSet<string> _attached = new(StringComparer.Ordinal);
    private const string ReassertKey = "reassert";

    // The attachments the discovery logs asked for (by subsystem NQN), re-sent with the explicit ones every
    // reassert interval (between reads): what starts an entity on its new owner soon after a handover or a
    // takeover, and on its old owner after a full restart.
    private readonly Dictionary<string, ClusterSubsystem.EnsureAttached> _discovered = new(StringComparer.Ordinal);
    private bool _reading;

    // How each discovery log's reads went (by path), for bdev_nvme_get_discovery_info; not stored: a new
    // coordinator reads again.
    private readonly Dictionary<string, ReadHistory> _reads = new(StringComparer.Ordinal);
    private readonly string _node;
    private bool _regionsReady;
    private DateTimeOffset _startedAt;

    public DiscoveryCoordinatorActor(NvmeClusterSettings settings, NvmeHostSettings hostSettings, IActorRef region, DiscoveryLogSource source)
    {
        _settings = settings;
        _hostSettings = hostSettings;
        _hostNqn = hostSettings.HostNqn;
        _region = region;
        _source = source;
        _node = settings.NodeName.Length > 0 ? settings.NodeName : Akka.Cluster.Cluster.Get(Context.System).SelfAddress.ToString();
        Recover<SnapshotOffer>(offer =>
        {
            if (offer.Snapshot is DesiredState.Snapshot snapshot)
            {
                _discoveries.Clear();
                _discoveries.AddRange(snapshot.Discoveries);
                _explicit.Clear();
                _explicit.AddRange(snapshot.Attaches);
                _attached.Clear();
                _attached.UnionWith(snapshot.Discovered ?? []);
            }
        });
        Recover<DesiredState.DiscoveryStarted>(Apply);
        Recover<DesiredState.DiscoveryStopped>(Apply);
        Recover<DesiredState.AttachAdded>(Apply);
        Recover<DesiredState.AttachRemoved>(Apply);
        Recover<DesiredState.DiscoveredAttached>(Apply);
        Recover<DesiredState.DiscoveredDetached>(Apply);
        Recover<RecoveryCompleted>(_ => _log.Info(
            "desired state recovered: {0} discovery controller(s), {1} attach(es) started at run time", _discoveries.Count, _explicit.Count));

        Command<Tick>(_ => OnTick());
        Command<Reassert>(_ => ReassertDesired());
        Command<CurrentRegions>(OnCurrentRegions);
        Command<RegionsUnknown>(_ => { });
        Command<ReadsDone>(OnReadsDone);
        Command<DesiredState.StartDiscovery>(OnStartDiscovery);
        Command<DesiredState.StopDiscovery>(OnStopDiscovery);
        Command<DesiredState.StopDiscoveryByName>(OnStopDiscoveryByName);
        Command<DesiredState.GetDiscoveryInfo>(_ => Sender.Tell(DiscoveryInfo()));
        Command<DesiredState.Attach>(OnAttach);
        Command<DesiredState.Detach>(OnDetach);
        Command<DesiredState.GetDesiredState>(_ => Sender.Tell(ToSnapshot()));
        Command<SaveSnapshotSuccess>(m => DeleteSnapshots(new SnapshotSelectionCriteria(m.Metadata.SequenceNr - 1)));
        Command<SaveSnapshotFailure>(m => _log.Warning("desired state: snapshot not saved: {0}", m.Cause.Message));
        Command<DeleteSnapshotsSuccess>(_ => { });
        Command<DeleteSnapshotsFailure>(_ => { });
    }

    public override string PersistenceId => DesiredStatePersistenceId;

    public ITimerScheduler Timers { get; set; } = null!;

    public static Props Props(NvmeClusterSettings settings, NvmeHostSettings hostSettings, IActorRef region, DiscoveryLogSource source) =>
        Akka.Actor.Props.Create(() => new DiscoveryCoordinatorActor(settings, hostSettings, region, source));

    private void OnStartDiscovery(DesiredState.StartDiscovery command)
    {
        if (DesiredState.Refusal(command, _hostSettings) is { } refusal)
        {
            Refuse(refusal, RefusalKind.InvalidArgument);
            return;
        }

        if (command.Name is { } name && _discoveries.FirstOrDefault(d => d.Name == name) is { } named)
        {
            Refuse($"discovery name {name} is in use (reading {named.Path})", RefusalKind.Exists);
            return;
        }

        if (DiscoveryPaths().Contains(command.Path, StringComparer.Ordinal))
        {
            Refuse($"discovery {command.Path} is already started", RefusalKind.Exists);
            return;
        }

        if (_discoveries.Count >= DesiredState.MaxEntries)
        {
            Refuse($"at most {DesiredState.MaxEntries} discoveries", RefusalKind.Full);
            return;
        }

        var replyTo = Sender;
        Persist(new DesiredState.DiscoveryStarted(new DesiredState.Discovery(command.Path, command.Options, command.Name)), e =>
        {
            Apply(e);
            AfterPersist();
            _log.Info("discovery started: {0}", command.Path);
            replyTo.Tell(new DesiredState.Result(true, $"discovery {command.Path} started"));
            Self.Tell(Tick.Instance); // read it now, not at the next interval
        });
    }

    private void OnStopDiscovery(DesiredState.StopDiscovery command)
    {
        if (!_discoveries.Any(d => d.Path == command.Path))
        {
            string why = _settings.Discovery.Contains(command.Path, StringComparer.Ordinal)
                ? $"discovery {command.Path} comes from the configuration (actornvme.cluster.discovery)"
                : $"no discovery {command.Path} was started";
            Sender.Tell(new DesiredState.Result(false, why, _settings.Discovery.Contains(command.Path, StringComparer.Ordinal) ? RefusalKind.Configured : RefusalKind.NotFound));
            return;
        }

        var replyTo = Sender;
        Persist(new DesiredState.DiscoveryStopped(command.Path), e =>
        {
            Apply(e);
            AfterPersist();
            _log.Info("discovery stopped: {0}", command.Path);
            replyTo.Tell(new DesiredState.Result(true, $"discovery {command.Path} stopped"));
            Self.Tell(Tick.Instance);
        });
    }

    private void OnAttach(DesiredState.Attach command)
    {
        if (DesiredState.Refusal(command, _hostSettings) is { } refusal)
        {
            Refuse(refusal, RefusalKind.InvalidArgument);
            return;
        }

        if (_explicit.Any(a => a.Name == command.Name))
        {
            Refuse($"name {command.Name} is in use", RefusalKind.Exists);
            return;
        }

        if (_explicit.FirstOrDefault(a => a.SubsystemNqn == command.SubsystemNqn) is { } other)
        {
            Refuse($"{command.SubsystemNqn} is already attached as {other.Name}", RefusalKind.Exists);
            return;
        }

        if (_explicit.Count >= DesiredState.MaxEntries)
        {
            Refuse($"at most {DesiredState.MaxEntries} attaches", RefusalKind.Full);
            return;
        }

        var replyTo = Sender;
        var attach = new DesiredState.ExplicitAttach(command.Name, command.SubsystemNqn, [.. command.Paths.Distinct(StringComparer.Ordinal)], command.Options);
        Persist(new DesiredState.AttachAdded(attach), e =>
        {
            Apply(e);
            AfterPersist();
            _log.Info("attach {0}: {1} through {2}", attach.Name, attach.SubsystemNqn, string.Join(", ", attach.Paths));
            replyTo.Tell(new DesiredState.Result(true, $"{attach.Name} attaching"));
            if (_regionsReady)
            {
                _region.Tell(ToEnsureAttached(attach));
            }
        });
    }

    private void OnDetach(DesiredState.Detach command)
    {
        if (_explicit.FirstOrDefault(a => a.Name == command.Name) is not { } attach)
        {
            Refuse($"no attach named {command.Name}", RefusalKind.NotFound);
            return;
        }

        var replyTo = Sender;
        Persist(new DesiredState.AttachRemoved(command.Name), e =>
        {
            Apply(e);
            AfterPersist();
            if (!_discovered.ContainsKey(attach.SubsystemNqn))
            {
                _region.Tell(new ClusterSubsystem.EnsureDetached(attach.SubsystemNqn, _hostNqn, $"{attach.Name} detached"));
            }

            _log.Info("detach {0} ({1})", attach.Name, attach.SubsystemNqn);
            replyTo.Tell(new DesiredState.Result(true, $"{attach.Name} detached"));
        });
    }

    private void OnStopDiscoveryByName(DesiredState.StopDiscoveryByName command)
    {
        if (_discoveries.FirstOrDefault(d => d.Name == command.Name) is not { } discovery)
        {
            Refuse($"no discovery named {command.Name} was started", RefusalKind.NotFound);
            return;
        }

        OnStopDiscovery(new DesiredState.StopDiscovery(discovery.Path));
    }

    private void Refuse(string why, RefusalKind kind) => Sender.Tell(new DesiredState.Result(false, why, kind));

    private DesiredState.DiscoveryInfoList DiscoveryInfo() => new([.. DiscoveryPaths().Select(path =>
    {
        var started = _discoveries.FirstOrDefault(d => d.Path == path);
        var history = _reads.GetValueOrDefault(path);
        return new DesiredState.DiscoveryInfo(
            path,
            started?.Name,
            started is null,
            _node,
            _hostNqn,
            history?.Reads ?? 0,
            history?.LastError,
            history?.Entries ?? []);
    })]);

    private void Apply(object e)
    {
        switch (e)
        {
            case DesiredState.DiscoveryStarted started:
                _discoveries.Add(started.Discovery);
                break;
            case DesiredState.DiscoveryStopped stopped:
                _discoveries.RemoveAll(d => d.Path == stopped.Path);
                _reads.Remove(stopped.Path);
                break;
            case DesiredState.AttachAdded added:
                _explicit.Add(added.Attach);
                break;
            case DesiredState.AttachRemoved removed:
                _explicit.RemoveAll(a => a.Name == removed.Name);
                break;
            case DesiredState.DiscoveredAttached attached:
                _attached.Add(attached.SubsystemNqn);
                break;
            case DesiredState.DiscoveredDetached detached:
                _attached.Remove(detached.SubsystemNqn);
                break;
        }
    }

    private void AfterPersist()
    {
        if (LastSequenceNr % _settings.Store.SnapshotEvery == 0)
        {
            SaveSnapshot(ToSnapshot());
        }
    }

    private DesiredState.Snapshot ToSnapshot() => new([.. _discoveries], [.. _explicit], [.. _attached]);

    /// <summary>The configuration's discovery controllers, then those started at run time.</summary>
    private List<string> DiscoveryPaths() => [.. _settings.Discovery.Concat(_discoveries.Select(d => d.Path)).Distinct(StringComparer.Ordinal)];

    private ClusterSubsystem.EnsureAttached ToEnsureAttached(DesiredState.ExplicitAttach attach)
    {
        var paths = attach.Paths.ToList();
        if (_discovered.TryGetValue(attach.SubsystemNqn, out var found))
        {
            paths.AddRange(found.Paths.Where(p => !paths.Contains(p, StringComparer.Ordinal)));
        }

        return new ClusterSubsystem.EnsureAttached(attach.SubsystemNqn, _hostNqn, paths.ToArray()) { Name = attach.Name, Options = attach.Options };
    }

    /// <summary>Every desired attachment now: the explicit ones (with the paths discovery adds) and the discovered ones.</summary>
    private IEnumerable<ClusterSubsystem.EnsureAttached> DesiredAttachments()
    {
        foreach (var attach in _explicit)
        {
            yield return ToEnsureAttached(attach);
        }

        foreach (var (nqn, found) in _discovered)
        {
            if (!_explicit.Any(a => a.SubsystemNqn == nqn))
            {
                yield return found;
            }
        }
    }

    private void ReassertDesired()
    {
        if (!_regionsReady)
        {
            return; // before the first placement: see OnTick
        }

        foreach (var attach in DesiredAttachments())
        {
            _region.Tell(attach);
        }
    }

    /// <summary>Longest wait for every live node's region before placing anyway.</summary>
    private static readonly TimeSpan RegionWaitLimit = TimeSpan.FromSeconds(10);

    protected override void PreStart()
    {
        _startedAt = DateTimeOffset.UtcNow;
        _log.Info("discovery coordinator started: {0} configured discovery controller(s), every {1}", _settings.Discovery.Count, _settings.ReconcileInterval);
        Self.Tell(Tick.Instance);
        Timers.StartPeriodicTimer(TickKey, Tick.Instance, _settings.ReconcileInterval);
        Timers.StartPeriodicTimer(ReassertKey, Reassert.Instance, _settings.ReassertInterval);
    }

    private void OnTick()
    {
        if (_regionsReady)
        {
            StartReads();
            return;
        }

        // Before the first placement, wait until the region of every live node has registered with the shard
        // coordinator: otherwise the first region to register gets every subsystem, and they move again later.
        _region.Ask<CurrentRegions>(GetCurrentRegions.Instance, TimeSpan.FromSeconds(2))
            .PipeTo(Self, failure: _ => RegionsUnknown.Instance);
    }

    private void OnCurrentRegions(CurrentRegions message)
    {
        var cluster = Akka.Cluster.Cluster.Get(Context.System);
        int live = cluster.State.Members.Count(m => m.Status == MemberStatus.Up && m.HasRole(_settings.Role) && !cluster.State.Unreachable.Contains(m));
        if (message.Regions.Count >= live || DateTimeOffset.UtcNow - _startedAt > RegionWaitLimit)
        {
            _log.Info("placing subsystems over {0} region(s) ({1} live member(s))", message.Regions.Count, live);
            _regionsReady = true;
            StartReads();
        }
    }

    private void StartReads()
    {
        if (_reading)
        {
            return; // one round at a time: a slow target does not pile reads up
        }

        var paths = DiscoveryPaths();
        if (paths.Count == 0)
        {
            OnReadsDone(new ReadsDone([])); // nothing to read: a successful round that lists nothing
            ReassertDesired();
            return;
        }

        _reading = true;
        var source = _source;
        var timeout = _settings.DiscoveryTimeout;
        var reads = paths.Select(async path =>
        {
            try
            {
                return new ReadResult(path, await source(path, timeout, CancellationToken.None).ConfigureAwait(false), null);
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                return new ReadResult(path, null, e.Message);
            }
        });
        Task.WhenAll(reads).PipeTo(Self, success: results => new ReadsDone(results), failure: e => new ReadsDone([new ReadResult("-", null, e.Message)]));
    }

    private void OnReadsDone(ReadsDone message)
    {
        _reading = false;
        var wanted = new Dictionary<string, List<string>>(StringComparer.Ordinal);
        var optionsOf = new Dictionary<string, DesiredState.AttachOptions?>(StringComparer.Ordinal);
        bool allRead = true;
        var stillRead = DiscoveryPaths();
        foreach (var result in message.Results)
        {
            if (stillRead.Contains(result.Path, StringComparer.Ordinal))
            {
                // Only a discovery still read (one stopped during the read is not recorded again).
                var history = _reads.TryGetValue(result.Path, out var before) ? before : new ReadHistory(0, null, []);
                _reads[result.Path] = result.Entries is null
                    ? history with { Reads = history.Reads + 1, LastError = result.Error ?? "not read" }
                    : new ReadHistory(history.Reads + 1, null, [.. result.Entries.Take(MaxEntries)]);
            }

            if (result.Entries is null)
            {
                allRead = false;
                _log.Warning("discovery log at {0} not read: {1}", result.Path, result.Error);
                continue;
            }

            foreach (var entry in result.Entries.Take(MaxEntries))
            {
                if (!wanted.TryGetValue(entry.SubsystemNqn, out var paths))
                {
                    wanted[entry.SubsystemNqn] = paths = [];
                    optionsOf[entry.SubsystemNqn] = _discoveries.FirstOrDefault(d => d.Path == result.Path)?.Options;
                }

                if (!paths.Contains(entry.Path, StringComparer.Ordinal))
                {
                    paths.Add(entry.Path);
                }
            }
        }

        // Recorded (state is already updated: the journal replays them on a restart, see Snapshot.Discovered).
        var changes = new List<object>();
        foreach (var (nqn, paths) in wanted)
        {
            _discovered[nqn] = new ClusterSubsystem.EnsureAttached(nqn, _hostNqn, paths.ToArray()) { Options = optionsOf[nqn] };
            if (_attached.Add(nqn))
            {
                _log.Info("desired: {0} through {1}", nqn, string.Join(", ", paths));
                changes.Add(new DesiredState.DiscoveredAttached(nqn));
            }
        }

        if (allRead)
        {
            foreach (string gone in _attached.Where(n => !wanted.ContainsKey(n)).ToArray())
            {
                _attached.Remove(gone);
                _discovered.Remove(gone);
                changes.Add(new DesiredState.DiscoveredDetached(gone));
                if (!_explicit.Any(a => a.SubsystemNqn == gone))
                {
                    _region.Tell(new ClusterSubsystem.EnsureDetached(gone, _hostNqn, "no longer in the discovery log"));
                    _log.Info("no longer listed: {0}", gone);
                }
            }
        }

        if (changes.Count > 0)
        {
            PersistAll(changes, _ => AfterPersist());
        }

        ReassertDesired();
    }

    /// <summary>A log with more entries than this is cut: a hostile discovery controller costs a bounded amount.</summary>
    private const int MaxEntries = 4096;

    private sealed record Tick
    {
        public static Tick Instance { get; } = new();
    }

    private sealed record Reassert
    {
        public static Reassert Instance { get; } = new();
    }

    private sealed record RegionsUnknown
    {
        public static RegionsUnknown Instance { get; } = new();
    }

    private sealed record ReadResult(string Path, IReadOnlyList<DiscoveredSubsystem>? Entries, string? Error);

    private sealed record ReadHistory(long Reads, string? LastError, DiscoveredSubsystem[] Entries);

    private sealed record ReadsDone(IReadOnlyList<ReadResult> Results);
}
