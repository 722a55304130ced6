using Akka.Actor;
using Akka.Cluster;
using Akka.Cluster.Sharding;
using Akka.Event;

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
/// </summary>
internal sealed class DiscoveryCoordinatorActor : ReceiveActor, IWithTimers
{
    private const string TickKey = "reconcile";
    private readonly NvmeClusterSettings _settings;
    private readonly string _hostNqn;
    private readonly IActorRef _region;
    private readonly DiscoveryLogSource _source;
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly HashSet<string> _attached = new(StringComparer.Ordinal);
    private const string ReassertKey = "reassert";

    // The desired attachments of the last read, re-sent every reassert interval (between reads): what
    // starts an entity on its new owner soon after a handover or a takeover.
    private IReadOnlyList<ClusterSubsystem.EnsureAttached> _desired = [];
    private bool _reading;
    private bool _regionsReady;
    private DateTimeOffset _startedAt;

    public DiscoveryCoordinatorActor(NvmeClusterSettings settings, string hostNqn, IActorRef region, DiscoveryLogSource source)
    {
        _settings = settings;
        _hostNqn = hostNqn;
        _region = region;
        _source = source;
        Receive<Tick>(_ => OnTick());
        Receive<Reassert>(_ =>
        {
            foreach (var attach in _desired)
            {
                _region.Tell(attach);
            }
        });
        Receive<CurrentRegions>(OnCurrentRegions);
        Receive<RegionsUnknown>(_ => { });
        Receive<ReadsDone>(OnReadsDone);
    }

    public ITimerScheduler Timers { get; set; } = null!;

    public static Props Props(NvmeClusterSettings settings, string hostNqn, IActorRef region, DiscoveryLogSource source) =>
        Akka.Actor.Props.Create(() => new DiscoveryCoordinatorActor(settings, hostNqn, region, source));

    /// <summary>Longest wait for every live node's region before placing anyway.</summary>
    private static readonly TimeSpan RegionWaitLimit = TimeSpan.FromSeconds(10);

    protected override void PreStart()
    {
        _startedAt = DateTimeOffset.UtcNow;
        _log.Info("discovery coordinator started: {0} discovery controller(s), every {1}", _settings.Discovery.Count, _settings.ReconcileInterval);
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
        if (_reading || _settings.Discovery.Count == 0)
        {
            return; // one round at a time: a slow target does not pile reads up
        }

        _reading = true;
        var source = _source;
        var timeout = _settings.DiscoveryTimeout;
        var reads = _settings.Discovery.Select(async path =>
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
        bool allRead = true;
        foreach (var result in message.Results)
        {
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
                }

                if (!paths.Contains(entry.Path, StringComparer.Ordinal))
                {
                    paths.Add(entry.Path);
                }
            }
        }

        var desired = new List<ClusterSubsystem.EnsureAttached>();
        foreach (var (nqn, paths) in wanted)
        {
            var attach = new ClusterSubsystem.EnsureAttached(nqn, _hostNqn, paths);
            desired.Add(attach);
            _region.Tell(attach);
            if (_attached.Add(nqn))
            {
                _log.Info("desired: {0} through {1}", nqn, string.Join(", ", paths));
            }
        }

        if (allRead)
        {
            _desired = desired;
            foreach (string gone in _attached.Where(n => !wanted.ContainsKey(n)).ToArray())
            {
                _attached.Remove(gone);
                _region.Tell(new ClusterSubsystem.EnsureDetached(gone, _hostNqn, "no longer in the discovery log"));
                _log.Info("no longer listed: {0}", gone);
            }
        }
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

    private sealed record ReadsDone(IReadOnlyList<ReadResult> Results);
}
