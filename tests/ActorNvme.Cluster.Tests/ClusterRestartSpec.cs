using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Akka.Actor;
using Akka.Configuration;
using ActorNvme.Actors.Settings;
using ActorNvme.Cluster;
using ActorNvme.Host.Discover;
using ActorNvme.Protocol.Data;
using ActorNvme.Target;
using Xunit.Abstractions;

namespace ActorNvme.Cluster.Tests;

/// <summary>
/// A full restart of the cluster: two nodes (ActorSystems on loopback ports) are given a discovery and
/// explicit attaches at run time — nothing in their configuration — then every node stops; fresh nodes on
/// the same store attach every subsystem again, with nobody asking, and not the one detached before.
/// Runs on SQLite (a temporary file) always, and on PostgreSQL when ACTORNVME_TEST_POSTGRES gives a
/// connection string (tests/shell/cluster-restart-postgresql.sh starts a throwaway server for it).
/// </summary>
public sealed class ClusterRestartSpec(ITestOutputHelper output) : IAsyncLifetime
{
    public const string PostgresVariable = "ACTORNVME_TEST_POSTGRES";
    private const int DiscoveredCount = 3;
    private const string HostNqn = "nqn.2014-08.org.nvmexpress:uuid:2b9c3e4d-5f60-4a71-8b92-a3b4c5d6e7f8";
    private const string PinnedNqn = "nqn.2016-06.io.actornvme:restart-pinned";
    private const string DroppedNqn = "nqn.2016-06.io.actornvme:restart-dropped";
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(90);

    // The discovered subsystems sit on one target; the explicit ones on another that no discovery log lists.
    private readonly NvmeTarget _target = new();
    private readonly NvmeTarget _other = new();
    private readonly List<Node> _nodes = [];
    private readonly string _directory = Path.Combine(Path.GetTempPath(), "actornvme-restart-" + Guid.NewGuid().ToString("N"));
    private TargetListener? _discovery;
    private TargetListener? _otherListener;

    public Task InitializeAsync()
    {
        Directory.CreateDirectory(_directory);
        _discovery = _target.ListenTcp("127.0.0.1", 0);
        var nvm = _target.ListenTcp("127.0.0.1", 0);
        for (int i = 1; i <= DiscoveredCount; i++)
        {
            var subsystem = _target.AddSubsystem(new NvmSubsystemOptions($"nqn.2016-06.io.actornvme:restart-{i}") { LinkToAllListeners = false });
            subsystem.AddNamespace(NamespaceOptions.Ram(1024 * 1024));
            subsystem.Link(nvm);
        }

        _otherListener = _other.ListenTcp("127.0.0.1", 0);
        foreach (string nqn in new[] { PinnedNqn, DroppedNqn })
        {
            _other.AddSubsystem(new NvmSubsystemOptions(nqn)).AddNamespace(NamespaceOptions.Ram(1024 * 1024));
        }

        return Task.CompletedTask;
    }

    public async Task DisposeAsync()
    {
        await StopAllAsync();
        await _target.DisposeAsync();
        await _other.DisposeAsync();
        try
        {
            Directory.Delete(_directory, recursive: true);
        }
        catch (IOException)
        {
            // a file still open by a pool that closes late: the temporary directory is left
        }
    }

    [Fact]
    public Task Every_attachment_comes_back_after_a_full_restart_from_SQLite() =>
        RestartAsync($"sqlite:{Path.Combine(_directory, "cluster-state.db")}");

    [PostgresFact]
    public Task Every_attachment_comes_back_after_a_full_restart_from_PostgreSQL() =>
        RestartAsync("postgresql:" + Environment.GetEnvironmentVariable(PostgresVariable));

    /// <summary>
    /// Remember-entities alone restores ownership: after the restart no discovery log can be read (the
    /// coordinator learns nothing from them), and the discovered subsystems still come back, because their
    /// shards start their remembered entities and each entity attaches from its stored desired state.
    /// </summary>
    [Fact]
    public Task Remembered_subsystems_come_back_after_a_full_restart_even_when_no_discovery_log_can_be_read() =>
        RestartAsync($"sqlite:{Path.Combine(_directory, "cluster-state.db")}", readsFailAfterRestart: true);

    private async Task RestartAsync(string store, bool readsFailAfterRestart = false)
    {
        StartNodes(store, readsFail: false);
        var cluster = _nodes[0].Cluster;
        string discovery = _discovery!.Address.ToString();
        string otherPath = _otherListener!.Address.ToString();
        var options = new DesiredState.AttachOptions(CtrlrLossTimeoutSeconds: 40, ReconnectDelaySeconds: 2);

        Assert.True((await cluster.StartDiscoveryAsync(discovery, options)).Accepted);
        Assert.True((await cluster.AttachAsync("pinned", PinnedNqn, [otherPath])).Accepted);
        Assert.True((await cluster.AttachAsync("dropped", DroppedNqn, [otherPath])).Accepted);

        // Refused, and so not kept: a name in use, a path that is not traddr:trsvcid, options SPDK refuses.
        Assert.False((await cluster.AttachAsync("pinned", "nqn.2016-06.io.actornvme:another", [otherPath])).Accepted);
        Assert.False((await cluster.AttachAsync("bad-path", "nqn.2016-06.io.actornvme:another", ["nowhere"])).Accepted);
        var badOptions = await cluster.StartDiscoveryAsync("127.0.0.1:1", new DesiredState.AttachOptions(CtrlrLossTimeoutSeconds: 5, ReconnectDelaySeconds: 10));
        Assert.False(badOptions.Accepted);
        output.WriteLine("refused: " + badOptions.Message);

        await Eventually("every subsystem attached once", () => AllAttachedOnce(expectDropped: true));

        // Detached before the restart: it must stay detached after it.
        Assert.True((await _nodes[1].Cluster.DetachAsync("dropped")).Accepted);
        await Eventually("the detached subsystem has no controller", () => _other.FindSubsystem(DroppedNqn)!.ControllerCount == 0);

        // Every node stops; the targets see every controller go.
        await StopAllAsync();
        await Eventually("no controller left at the targets", () => _target.Subsystems.Concat(_other.Subsystems).All(s => s.ControllerCount == 0));

        // Fresh nodes, same store, nothing asked of them.
        StartNodes(store, readsFailAfterRestart);
        await Eventually("every subsystem attached once again after the restart", () => AllAttachedOnce(expectDropped: false));

        var state = await _nodes[1].Cluster.GetDesiredStateAsync();
        var kept = Assert.Single(state.Discoveries);
        Assert.Equal(discovery, kept.Path);
        Assert.Equal(options, kept.Options);
        var pinned = Assert.Single(state.Attaches);
        Assert.Equal(("pinned", PinnedNqn), (pinned.Name, pinned.SubsystemNqn));
        Assert.Equal([otherPath], pinned.Paths);
        Assert.Equal(0, _other.FindSubsystem(DroppedNqn)!.ControllerCount);
        Assert.DoesNotContain(_nodes, n => n.AttachedNow().Contains(DroppedNqn));
    }

    private bool AllAttachedOnce(bool expectDropped)
    {
        var wanted = _target.Subsystems.Select(s => s.Nqn).Append(PinnedNqn).ToList();
        if (expectDropped)
        {
            wanted.Add(DroppedNqn);
        }

        var live = _nodes.Where(n => !n.System.WhenTerminated.IsCompleted).ToArray();
        return wanted.All(nqn => live.Count(n => n.AttachedNow().Contains(nqn)) == 1 && ControllersAt(nqn) == 1);
    }

    private int ControllersAt(string nqn) => (_target.FindSubsystem(nqn) ?? _other.FindSubsystem(nqn))!.ControllerCount;

    private void StartNodes(string store, bool readsFail)
    {
        int[] ports = FreePorts(2);
        for (int i = 0; i < ports.Length; i++)
        {
            _nodes.Add(StartNode($"node-{i}", ports[i], ports[0], store, readsFail));
        }
    }

    private async Task StopAllAsync()
    {
        var stops = _nodes.Where(n => !n.System.WhenTerminated.IsCompleted).Select(n => n.System.Terminate().WaitAsync(TimeSpan.FromSeconds(60))).ToArray();
        await Task.WhenAll(stops);
        _nodes.Clear();
    }

    private Node StartNode(string name, int port, int seedPort, string store, bool readsFail)
    {
        var options = new NvmeClusterNodeOptions
        {
            Port = port,
            NodeName = name,
            SeedNodes = [$"127.0.0.1:{seedPort.ToString(CultureInfo.InvariantCulture)}"],
            MinMembers = 2,
            StableAfter = TimeSpan.FromSeconds(2),
            AcceptableHeartbeatPause = TimeSpan.FromSeconds(10),
            ReconcileInterval = TimeSpan.FromMilliseconds(300),
            Store = store,
        };
        var application = ConfigurationFactory.ParseString($"""
            actornvme.host-nqn = "{HostNqn}"
            akka.loglevel = WARNING
            akka.stdout-loglevel = WARNING
            akka.cluster.split-brain-resolver.down-all-when-unstable = off
            # Snapshots after every second event: the recovery after the restart starts from one.
            actornvme.cluster.store.snapshot-every = 2
            """);
        var system = NvmeCluster.CreateSystem(options, application);
        var settings = NvmeHostSettings.Create(system);
        var cluster = NvmeCluster.Start(system, async (path, timeout, token) =>
        {
            if (readsFail)
            {
                throw new IOException($"discovery controller {path} unreachable (the spec's)");
            }

            var log = await DiscoveryLogReader.ReadAsync(ClusterSubsystem.ParsePath(path), settings.HostNqn, settings.HostId, timeout, token);
            return [.. log.Entries.Where(e => e.SubsystemType == SubsystemType.Nvm).Select(e => new DiscoveredSubsystem(e.SubsystemNqn, $"{e.TransportAddress}:{e.TransportServiceId}"))];
        });
        var node = new Node(name, system, cluster);
        var observer = system.ActorOf(Props.Create(() => new NodeObserver(node)));
        system.EventStream.Subscribe(observer, typeof(ClusterSubsystem.OwnershipEvent));
        return node;
    }

    private async Task Eventually(string what, Func<bool> condition)
    {
        var clock = Stopwatch.StartNew();
        while (!condition())
        {
            if (clock.Elapsed > Deadline)
            {
                string owners = string.Join(", ", _nodes.SelectMany(n => n.AttachedNow().Select(nqn => $"{nqn}→{n.Name}")));
                Assert.Fail($"{what}: not within {Deadline.TotalSeconds:0} s; attached now: {owners}");
            }

            await Task.Delay(100);
        }

        output.WriteLine($"{what}: after {clock.Elapsed.TotalSeconds:0.0} s");
    }

    private static int[] FreePorts(int count)
    {
        var listeners = Enumerable.Range(0, count).Select(_ => new TcpListener(IPAddress.Loopback, 0)).ToArray();
        foreach (var l in listeners)
        {
            l.Start();
        }

        int[] ports = [.. listeners.Select(l => ((IPEndPoint)l.LocalEndpoint).Port)];
        foreach (var l in listeners)
        {
            l.Stop();
        }

        return ports;
    }

    private sealed class Node(string name, ActorSystem system, NvmeCluster cluster)
    {
        private readonly ConcurrentQueue<ClusterSubsystem.OwnershipEvent> _events = new();

        public string Name { get; } = name;

        public ActorSystem System { get; } = system;

        public NvmeCluster Cluster { get; } = cluster;

        public void Add(ClusterSubsystem.OwnershipEvent e) => _events.Enqueue(e);

        /// <summary>Subsystems whose last event here is Attached.</summary>
        public HashSet<string> AttachedNow() => System.WhenTerminated.IsCompleted
            ? []
            : [.. _events.GroupBy(e => e.SubsystemNqn).Where(g => g.Last().Change == OwnershipChange.Attached).Select(g => g.Key)];
    }

    private sealed class NodeObserver : ReceiveActor
    {
        public NodeObserver(Node node) => Receive<ClusterSubsystem.OwnershipEvent>(node.Add);
    }
}

/// <summary>A test that needs a PostgreSQL server: skipped unless ACTORNVME_TEST_POSTGRES holds a connection string.</summary>
public sealed class PostgresFactAttribute : FactAttribute
{
    public PostgresFactAttribute()
    {
        if (string.IsNullOrEmpty(Environment.GetEnvironmentVariable(ClusterRestartSpec.PostgresVariable)))
        {
            Skip = $"{ClusterRestartSpec.PostgresVariable} is not set (tests/shell/cluster-restart-postgresql.sh sets it)";
        }
    }
}
