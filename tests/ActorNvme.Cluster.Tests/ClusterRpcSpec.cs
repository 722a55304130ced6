using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using System.Text.Json.Nodes;
using Akka.Actor;
using Akka.Configuration;
using ActorNvme.Actors.Settings;
using ActorNvme.Cluster;
using ActorNvme.Host.ClusterNode;
using ActorNvme.Host.Discover;
using ActorNvme.Host.JsonRpc;
using ActorNvme.Protocol.Data;
using ActorNvme.Target;
using Xunit.Abstractions;

namespace ActorNvme.Cluster.Tests;

/// <summary>
/// A cluster node's JSON-RPC methods that change the desired state, on three nodes in this process and one
/// in-process target: an attach through one node's service is held by exactly one node and listed by every
/// node with that owner; a name in use is -EEXIST from any node; a detach works from any node; a discovery
/// started by name is read by the coordinator, listed with its node, and stopped by name from another node.
/// </summary>
public sealed class ClusterRpcSpec(ITestOutputHelper output) : IAsyncLifetime
{
    private const int SubsystemCount = 3;
    private const string HostNqn = "nqn.2014-08.org.nvmexpress:uuid:5c0e8f3a-2b1d-4e6f-8a9b-1c2d3e4f5a6b";
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(90);
    private readonly NvmeTarget _target = new();
    private readonly List<Node> _nodes = [];
    private TargetListener? _discovery;
    private TargetListener? _nvm;
    private readonly string _store = Path.Combine(Path.GetTempPath(), $"actornvme-rpc-spec-{Guid.NewGuid():N}.db");

    private static string Nqn(int i) => $"nqn.2016-06.io.actornvme:rpc-spec-{i.ToString(CultureInfo.InvariantCulture)}";

    public Task InitializeAsync()
    {
        _discovery = _target.ListenTcp("127.0.0.1", 0);
        _nvm = _target.ListenTcp("127.0.0.1", 0);
        for (int i = 1; i <= SubsystemCount; i++)
        {
            var subsystem = _target.AddSubsystem(new NvmSubsystemOptions(Nqn(i)) { LinkToAllListeners = false });
            subsystem.AddNamespace(NamespaceOptions.Ram(1024 * 1024));
            subsystem.Link(_nvm);
        }

        return Task.CompletedTask;
    }

    public async Task DisposeAsync()
    {
        foreach (var node in _nodes)
        {
            await node.System.Terminate().WaitAsync(TimeSpan.FromSeconds(30)).ConfigureAwait(false);
        }

        await _target.DisposeAsync().ConfigureAwait(false);
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        File.Delete(_store);
    }

    [Fact]
    public async Task An_attach_through_one_node_is_owned_by_one_node_listed_from_another_refused_twice_and_detached_from_a_third()
    {
        await StartClusterAsync();
        var a = _nodes[0];
        string nqn = Nqn(1);

        // Attached through node A's service: answered with the block device's name once the owner has it.
        var names = (await a.Rpc.DispatchAsync("bdev_nvme_attach_controller", Params(Attach("Spec1", nqn)), CancellationToken.None))!.AsArray();
        Assert.Equal(["Spec1n1"], names.Select(n => n!.GetValue<string>()));
        await Eventually("one owner and one controller at the target", () => Owners(nqn).Count == 1 && _target.FindSubsystem(nqn)!.ControllerCount == 1);
        string owner = Owners(nqn).Single();
        output.WriteLine($"{nqn} owned by {owner}");

        // Listed from node B (whichever node owns it), with its owner.
        var b = _nodes[1];
        JsonArray bdevs = [];
        await EventuallyAsync("node B lists Spec1n1", async () =>
        {
            bdevs = (await b.Rpc.DispatchAsync("bdev_get_bdevs", null, CancellationToken.None))!.AsArray();
            return bdevs.Any(d => d!["name"]!.GetValue<string>() == "Spec1n1");
        });
        var bdev = bdevs.Single(d => d!["name"]!.GetValue<string>() == "Spec1n1")!;
        Assert.Equal(owner, bdev["actornvme"]!["owner"]!.GetValue<string>());
        var controllers = (await b.Rpc.DispatchAsync("bdev_nvme_get_controllers", Params(new { name = "Spec1" }), CancellationToken.None))!.AsArray();
        Assert.Equal(owner, Assert.Single(controllers)!["actornvme"]!["owner"]!.GetValue<string>());

        // The name in use, and the subsystem under another name: -EEXIST from every node, answered at once.
        foreach (var node in _nodes)
        {
            var sameName = await Assert.ThrowsAsync<JsonRpcException>(() => node.Rpc.DispatchAsync("bdev_nvme_attach_controller", Params(Attach("Spec1", Nqn(2))), CancellationToken.None));
            Assert.Equal(-17, sameName.Code);
            Assert.Contains("Spec1", sameName.Message, StringComparison.Ordinal);
            var sameSubsystem = await Assert.ThrowsAsync<JsonRpcException>(() => node.Rpc.DispatchAsync("bdev_nvme_attach_controller", Params(Attach("Other", nqn)), CancellationToken.None));
            Assert.Equal(-17, sameSubsystem.Code);
        }

        // A bad value is -EINVAL naming it; an unknown name to detach is -ENODEV.
        var badNqn = await Assert.ThrowsAsync<JsonRpcException>(() => a.Rpc.DispatchAsync("bdev_nvme_attach_controller", Params(Attach("Bad", "not-an-nqn")), CancellationToken.None));
        Assert.Equal(-22, badNqn.Code);
        Assert.Contains("subnqn", badNqn.Message, StringComparison.Ordinal);
        var badTimeouts = await Assert.ThrowsAsync<JsonRpcException>(() => a.Rpc.DispatchAsync(
            "bdev_nvme_attach_controller",
            Params(new { name = "Bad", trtype = "tcp", traddr = "127.0.0.1", trsvcid = Port(_nvm!), subnqn = Nqn(2), ctrlr_loss_timeout_sec = 2, reconnect_delay_sec = 5 }),
            CancellationToken.None));
        Assert.Equal(-22, badTimeouts.Code);
        Assert.Contains("reconnect_delay_sec", badTimeouts.Message, StringComparison.Ordinal);
        // What is each node's configuration, asked otherwise: -ENOTSUP naming it (never kept in the desired state).
        var otherHost = await Assert.ThrowsAsync<JsonRpcException>(() => a.Rpc.DispatchAsync(
            "bdev_nvme_attach_controller",
            Params(new { name = "Bad", trtype = "tcp", traddr = "127.0.0.1", trsvcid = Port(_nvm!), subnqn = Nqn(2), hostnqn = "nqn.2014-08.org.nvmexpress:uuid:00000000-0000-0000-0000-0000000000aa" }),
            CancellationToken.None));
        Assert.Equal(-95, otherHost.Code);
        Assert.Contains("hostnqn", otherHost.Message, StringComparison.Ordinal);
        var digest = await Assert.ThrowsAsync<JsonRpcException>(() => a.Rpc.DispatchAsync(
            "bdev_nvme_attach_controller",
            Params(new { name = "Bad", trtype = "tcp", traddr = "127.0.0.1", trsvcid = Port(_nvm!), subnqn = Nqn(2), hdgst = true }),
            CancellationToken.None));
        Assert.Equal(-95, digest.Code);
        Assert.Contains("hdgst=true", digest.Message, StringComparison.Ordinal);
        var unknown = await Assert.ThrowsAsync<JsonRpcException>(() => _nodes[2].Rpc.DispatchAsync("bdev_nvme_detach_controller", Params(new { name = "Nothing" }), CancellationToken.None));
        Assert.Equal(-19, unknown.Code);
        Assert.Equal(1, _target.FindSubsystem(nqn)!.ControllerCount);
        Assert.Equal(0, _target.FindSubsystem(Nqn(2))!.ControllerCount);

        // Detached through a node that does not own it: gone at the target and from every node's list.
        var other = _nodes.First(n => n.Name != owner);
        Assert.True((await other.Rpc.DispatchAsync("bdev_nvme_detach_controller", Params(new { name = "Spec1" }), CancellationToken.None))!.GetValue<bool>());
        await Eventually("no controller at the target", () => _target.FindSubsystem(nqn)!.ControllerCount == 0);
        bdevs = (await b.Rpc.DispatchAsync("bdev_get_bdevs", null, CancellationToken.None))!.AsArray();
        Assert.DoesNotContain(bdevs, d => d!["name"]!.GetValue<string>() == "Spec1n1");

        // The name is free again.
        var again = (await b.Rpc.DispatchAsync("bdev_nvme_attach_controller", Params(Attach("Spec1", nqn)), CancellationToken.None))!.AsArray();
        Assert.Equal(["Spec1n1"], again.Select(n => n!.GetValue<string>()));
    }

    [Fact]
    public async Task A_discovery_started_by_name_on_one_node_is_listed_with_its_node_from_another_and_stopped_from_a_third()
    {
        await StartClusterAsync();
        var start = new { name = "fabric", trtype = "tcp", adrfam = "ipv4", traddr = "127.0.0.1", trsvcid = Port(_discovery!), wait_for_attach = true };
        Assert.True((await _nodes[1].Rpc.DispatchAsync("bdev_nvme_start_discovery", Params(start), CancellationToken.None))!.GetValue<bool>());
        await Eventually("every listed subsystem attached once", () =>
            Enumerable.Range(1, SubsystemCount).All(i => Owners(Nqn(i)).Count == 1 && _target.FindSubsystem(Nqn(i))!.ControllerCount == 1));

        var duplicate = await Assert.ThrowsAsync<JsonRpcException>(() => _nodes[2].Rpc.DispatchAsync("bdev_nvme_start_discovery", Params(start), CancellationToken.None));
        Assert.Equal(-17, duplicate.Code);
        var sameAddress = await Assert.ThrowsAsync<JsonRpcException>(() => _nodes[0].Rpc.DispatchAsync("bdev_nvme_start_discovery", Params(start with { name = "fabric2" }), CancellationToken.None));
        Assert.Equal(-17, sameAddress.Code);

        // Listed from another node: the node reading it, and each entry's owner as the nodes report it.
        var info = new JsonObject();
        await EventuallyAsync("node C's discovery info names every entry's owner", async () =>
        {
            var all = (await _nodes[2].Rpc.DispatchAsync("bdev_nvme_get_discovery_info", null, CancellationToken.None))!.AsArray();
            info = Assert.Single(all)!.AsObject();
            return info["actornvme"]!["entries"]!.AsArray().Count == SubsystemCount
                && info["actornvme"]!["entries"]!.AsArray().All(e => e!["owner"] is not null);
        });
        Assert.Equal("fabric", info["name"]!.GetValue<string>());
        Assert.Equal(Port(_discovery!).ToString(CultureInfo.InvariantCulture), info["trid"]!["trsvcid"]!.GetValue<string>());
        Assert.Contains(info["actornvme"]!["owner"]!.GetValue<string>(), _nodes.Select(n => n.Name));
        Assert.Null(info["actornvme"]!["last_error"]);
        foreach (var entry in info["actornvme"]!["entries"]!.AsArray())
        {
            string nqn = entry!["trid"]!["subnqn"]!.GetValue<string>();
            Assert.Equal(Owners(nqn).Single(), entry["owner"]!.GetValue<string>());
        }

        // A discovery controller nobody listens at: answered with the error at once, and the name left free.
        int closed = FreePorts(1)[0];
        var unreachable = await Assert.ThrowsAsync<JsonRpcException>(() => _nodes[0].Rpc.DispatchAsync(
            "bdev_nvme_start_discovery",
            Params(new { name = "nowhere", trtype = "tcp", traddr = "127.0.0.1", trsvcid = closed }),
            CancellationToken.None));
        Assert.Equal(-5, unreachable.Code);
        var afterFailure = (await _nodes[1].Rpc.DispatchAsync("bdev_nvme_get_discovery_info", null, CancellationToken.None))!.AsArray();
        Assert.Equal(["fabric"], afterFailure.Select(d => d!["name"]!.GetValue<string>()));

        var unknown = await Assert.ThrowsAsync<JsonRpcException>(() => _nodes[0].Rpc.DispatchAsync("bdev_nvme_stop_discovery", Params(new { name = "nowhere" }), CancellationToken.None));
        Assert.Equal(-2, unknown.Code);
        Assert.True((await _nodes[0].Rpc.DispatchAsync("bdev_nvme_stop_discovery", Params(new { name = "fabric" }), CancellationToken.None))!.GetValue<bool>());
        await Eventually("what only the stopped discovery listed is detached", () =>
            Enumerable.Range(1, SubsystemCount).All(i => _target.FindSubsystem(Nqn(i))!.ControllerCount == 0));
        Assert.Empty((await _nodes[2].Rpc.DispatchAsync("bdev_nvme_get_discovery_info", null, CancellationToken.None))!.AsArray());
    }

    [Fact]
    public async Task A_discovery_keeps_its_name_over_a_full_restart_of_the_cluster_and_is_stopped_by_it()
    {
        await StartClusterAsync();
        var start = new { name = "kept", trtype = "tcp", traddr = "127.0.0.1", trsvcid = Port(_discovery!) };
        Assert.True((await _nodes[0].Rpc.DispatchAsync("bdev_nvme_start_discovery", Params(start), CancellationToken.None))!.GetValue<bool>());
        await Eventually("every listed subsystem attached once", () =>
            Enumerable.Range(1, SubsystemCount).All(i => Owners(Nqn(i)).Count == 1 && _target.FindSubsystem(Nqn(i))!.ControllerCount == 1));

        // Every node stopped; fresh nodes on the same store.
        await Task.WhenAll(_nodes.Select(n => n.System.Terminate().WaitAsync(TimeSpan.FromSeconds(60))));
        _nodes.Clear();
        await StartClusterAsync();
        await Eventually("every listed subsystem attached again", () =>
            Enumerable.Range(1, SubsystemCount).All(i => Owners(Nqn(i)).Count == 1 && _target.FindSubsystem(Nqn(i))!.ControllerCount == 1));

        var info = Assert.Single((await _nodes[1].Rpc.DispatchAsync("bdev_nvme_get_discovery_info", null, CancellationToken.None))!.AsArray())!;
        Assert.Equal("kept", info["name"]!.GetValue<string>());
        Assert.False(info["actornvme"]!["configured"]!.GetValue<bool>());
        var again = await Assert.ThrowsAsync<JsonRpcException>(() => _nodes[2].Rpc.DispatchAsync("bdev_nvme_start_discovery", Params(start), CancellationToken.None));
        Assert.Equal(-17, again.Code);
        Assert.True((await _nodes[2].Rpc.DispatchAsync("bdev_nvme_stop_discovery", Params(new { name = "kept" }), CancellationToken.None))!.GetValue<bool>());
        await Eventually("what the stopped discovery listed is detached", () =>
            Enumerable.Range(1, SubsystemCount).All(i => _target.FindSubsystem(Nqn(i))!.ControllerCount == 0));
    }

    [Fact]
    public async Task An_attach_refused_for_good_is_answered_with_SPDKs_errno_not_a_timeout_and_leaves_nothing_behind()
    {
        await StartClusterAsync();
        var a = _nodes[0];
        int closedPort = FreePorts(1)[0];

        // Nothing listens: -ECONNREFUSED (not -ETIMEDOUT at the attach's deadline).
        var refused = await Assert.ThrowsAsync<JsonRpcException>(() => a.Rpc.DispatchAsync(
            "bdev_nvme_attach_controller",
            Params(new { name = "Closed", trtype = "tcp", adrfam = "ipv4", traddr = "127.0.0.1", trsvcid = closedPort.ToString(CultureInfo.InvariantCulture), subnqn = Nqn(1) }),
            CancellationToken.None));
        output.WriteLine(refused.Message);
        Assert.Equal(JsonRpcErrorCodes.ConnectionRefused, refused.Code);

        // A subsystem the target does not have: Connect answered with Do Not Retry, -EINVAL.
        var rejected = await Assert.ThrowsAsync<JsonRpcException>(() => _nodes[1].Rpc.DispatchAsync("bdev_nvme_attach_controller", Params(Attach("Unknown", "nqn.2016-06.io.actornvme:not-at-the-target")), CancellationToken.None));
        output.WriteLine(rejected.Message);
        Assert.Equal(JsonRpcErrorCodes.Invalid, rejected.Code);

        // Both withdrawn: the names are free, no node holds them.
        var names = (await a.Rpc.DispatchAsync("bdev_nvme_attach_controller", Params(Attach("Closed", Nqn(1))), CancellationToken.None))!.AsArray();
        Assert.Equal(["Closedn1"], names.Select(n => n!.GetValue<string>()));
        var controllers = (await a.Rpc.DispatchAsync("bdev_nvme_get_controllers", null, CancellationToken.None))!.AsArray();
        Assert.DoesNotContain(controllers, c => c!["name"]!.GetValue<string>() == "Unknown");
    }

    private object Attach(string name, string subnqn) =>
        new { name, trtype = "tcp", adrfam = "ipv4", traddr = "127.0.0.1", trsvcid = Port(_nvm!).ToString(CultureInfo.InvariantCulture), subnqn, hdgst = false, ddgst = false };

    private static int Port(TargetListener listener) => listener.Address.Port;

    private static JsonElement Params(object value) => JsonSerializer.SerializeToElement(value);

    /// <summary>The nodes whose last ownership event for <paramref name="nqn"/> is Attached.</summary>
    private List<string> Owners(string nqn) => [.. _nodes.Where(n => n.AttachedNow().Contains(nqn)).Select(n => n.Name)];

    private async Task StartClusterAsync()
    {
        int[] ports = FreePorts(3);
        for (int i = 0; i < 3; i++)
        {
            _nodes.Add(StartNode($"node-{i}", ports[i], ports[0]));
        }

        await Eventually("three members up on every node", () => _nodes.All(n =>
            Akka.Cluster.Cluster.Get(n.System).State.Members.Count(m => m.Status == Akka.Cluster.MemberStatus.Up) == 3));
    }

    private Node StartNode(string name, int port, int seedPort)
    {
        var options = new NvmeClusterNodeOptions
        {
            Port = port,
            NodeName = name,
            SeedNodes = [$"127.0.0.1:{seedPort.ToString(CultureInfo.InvariantCulture)}"],
            MinMembers = 3,
            StableAfter = TimeSpan.FromSeconds(2),
            AcceptableHeartbeatPause = TimeSpan.FromSeconds(10),
            ReconcileInterval = TimeSpan.FromMilliseconds(300),
            Store = "sqlite:" + _store,
        };
        var application = ConfigurationFactory.ParseString($"""
            actornvme.host-nqn = "{HostNqn}"
            akka.loglevel = WARNING
            akka.stdout-loglevel = WARNING
            akka.cluster.split-brain-resolver.down-all-when-unstable = off
            """);
        var system = NvmeCluster.CreateSystem(options, application);
        var settings = NvmeHostSettings.Create(system);
        var cluster = NvmeCluster.Start(system, async (path, timeout, token) =>
        {
            var log = await DiscoveryLogReader.ReadAsync(ClusterSubsystem.ParsePath(path), settings.HostNqn, settings.HostId, timeout, token);
            return [.. log.Entries.Where(e => e.SubsystemType == SubsystemType.Nvm).Select(e => new DiscoveredSubsystem(e.SubsystemNqn, $"{e.TransportAddress}:{e.TransportServiceId}"))];
        });
        var rpc = new ClusterRpcService(cluster, settings) { PerNodeTimeout = TimeSpan.FromSeconds(10) };
        var node = new Node(name, system, rpc);
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
                Assert.Fail($"{what}: not within {Deadline.TotalSeconds:0} s");
            }

            await Task.Delay(100);
        }

        output.WriteLine($"{what}: after {clock.Elapsed.TotalSeconds:0.0} s");
    }

    private async Task EventuallyAsync(string what, Func<Task<bool>> condition)
    {
        var clock = Stopwatch.StartNew();
        while (!await condition())
        {
            if (clock.Elapsed > Deadline)
            {
                Assert.Fail($"{what}: not within {Deadline.TotalSeconds:0} s");
            }

            await Task.Delay(200);
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

    private sealed class Node(string name, ActorSystem system, ClusterRpcService rpc)
    {
        private readonly ConcurrentQueue<ClusterSubsystem.OwnershipEvent> _events = new();

        public string Name { get; } = name;

        public ActorSystem System { get; } = system;

        public ClusterRpcService Rpc { get; } = rpc;

        public void Add(ClusterSubsystem.OwnershipEvent e) => _events.Enqueue(e);

        public HashSet<string> AttachedNow() =>
            [.. _events.GroupBy(e => e.SubsystemNqn).Where(g => g.Last().Change == OwnershipChange.Attached).Select(g => g.Key)];
    }

    private sealed class NodeObserver : ReceiveActor
    {
        public NodeObserver(Node node) => Receive<ClusterSubsystem.OwnershipEvent>(node.Add);
    }
}
