using Akka.Actor;
using Akka.Cluster.Sharding;
using Akka.Cluster.Tools.Singleton;
using Akka.Event;
using Akka.Pattern;
using ActorNvme.Actors.Connection;
using ActorNvme.Actors.Host;
using ActorNvme.Actors.Settings;
using ActorNvme.Actors.Subsystem;

namespace ActorNvme.Cluster;

/// <summary>
/// Starts ActorNvme's cluster part on a node: the shard region of subsystem entities and the discovery
/// coordinator singleton (with a proxy). Every node of the cluster calls <see cref="Start"/> with the same
/// settings; the node that owns a subsystem's shard holds its controllers.
/// </summary>
public sealed class NvmeCluster
{
    public const string CoordinatorName = "nvme-discovery-coordinator";

    private readonly ActorSystem _system;

    private NvmeCluster(ActorSystem system, IActorRef region, IActorRef coordinator, string node, NvmeClusterSettings settings)
    {
        _system = system;
        Region = region;
        Coordinator = coordinator;
        Node = node;
        Settings = settings;
    }

    /// <summary>The shard region of <see cref="ClusterSubsystem"/> entities: send it their messages.</summary>
    public IActorRef Region { get; }

    /// <summary>
    /// The discovery coordinator singleton (a proxy, from any node): send it <see cref="DesiredState"/>'s commands.
    /// </summary>
    public IActorRef Coordinator { get; }

    /// <summary>Starts reading a discovery controller's log (kept in the store: it is read again after a full restart).</summary>
    public Task<DesiredState.Result> StartDiscoveryAsync(string path, DesiredState.AttachOptions? options = null, TimeSpan? timeout = null) =>
        AskCoordinator(new DesiredState.StartDiscovery(path, options), timeout);

    /// <summary>As <see cref="StartDiscoveryAsync(string, DesiredState.AttachOptions?, TimeSpan?)"/>, under a name unique in the cluster (SPDK's discovery name).</summary>
    public Task<DesiredState.Result> StartNamedDiscoveryAsync(string name, string path, DesiredState.AttachOptions? options = null, TimeSpan? timeout = null) =>
        AskCoordinator(new DesiredState.StartDiscovery(path, options, name), timeout);

    public Task<DesiredState.Result> StopDiscoveryAsync(string path, TimeSpan? timeout = null) =>
        AskCoordinator(new DesiredState.StopDiscovery(path), timeout);

    /// <summary>Stops the discovery started under <paramref name="name"/>.</summary>
    public Task<DesiredState.Result> StopNamedDiscoveryAsync(string name, TimeSpan? timeout = null) =>
        AskCoordinator(new DesiredState.StopDiscoveryByName(name), timeout);

    /// <summary>Every discovery the cluster reads, with the node that reads it and how its last read went.</summary>
    public Task<DesiredState.DiscoveryInfoList> GetDiscoveryInfoAsync(TimeSpan? timeout = null) =>
        Coordinator.Ask<DesiredState.DiscoveryInfoList>(DesiredState.GetDiscoveryInfo.Instance, timeout ?? DefaultAskTimeout);

    /// <summary>Attaches a subsystem by hand under <paramref name="name"/> (kept in the store).</summary>
    public Task<DesiredState.Result> AttachAsync(string name, string subsystemNqn, IReadOnlyList<string> paths, DesiredState.AttachOptions? options = null, TimeSpan? timeout = null) =>
        AskCoordinator(new DesiredState.Attach(name, subsystemNqn, paths.ToArray(), options), timeout);

    public Task<DesiredState.Result> DetachAsync(string name, TimeSpan? timeout = null) =>
        AskCoordinator(new DesiredState.Detach(name), timeout);

    public Task<DesiredState.Snapshot> GetDesiredStateAsync(TimeSpan? timeout = null) =>
        Coordinator.Ask<DesiredState.Snapshot>(DesiredState.GetDesiredState.Instance, timeout ?? DefaultAskTimeout);

    private static readonly TimeSpan DefaultAskTimeout = TimeSpan.FromSeconds(30);

    private Task<DesiredState.Result> AskCoordinator(object command, TimeSpan? timeout) =>
        Coordinator.Ask<DesiredState.Result>(command, timeout ?? DefaultAskTimeout);

    /// <summary>This node's name in events.</summary>
    public string Node { get; }

    public NvmeClusterSettings Settings { get; }

    /// <summary>Every node's controllers and block devices (see <see cref="ClusterView.GatherAsync"/>).</summary>
    public Task<ClusterView.Gathered> GatherViewAsync(TimeSpan perNodeTimeout, CancellationToken cancellationToken = default) =>
        ClusterView.GatherAsync(_system, Settings.Role, perNodeTimeout, cancellationToken);

    /// <summary>
    /// Starts the region and the singleton. <paramref name="discoveryLog"/> reads a discovery log (only the
    /// node holding the singleton calls it); <paramref name="connector"/> connects controllers (TCP by default).
    /// </summary>
    public static NvmeCluster Start(ActorSystem system, DiscoveryLogSource discoveryLog, IAdminConnector? connector = null)
    {
        ArgumentNullException.ThrowIfNull(system);
        ArgumentNullException.ThrowIfNull(discoveryLog);
        var config = system.Settings.Config.WithFallback(NvmeClusterSettings.ReferenceConfig);
        var settings = NvmeClusterSettings.Create(config);
        if (config.GetString("akka.persistence.journal.plugin") != ClusterStoreSettings.JournalPluginId)
        {
            throw new InvalidOperationException(
                "the ActorSystem has no cluster store: create it with NvmeCluster.CreateSystem or WithNvmeCluster, or put NvmeCluster.StoreConfig(config) in its configuration");
        }

        settings.Store.Prepare();
        var hostSettings = NvmeHostSettings.Create(system);
        var cluster = Akka.Cluster.Cluster.Get(system);
        string node = settings.NodeName.Length > 0 ? settings.NodeName : cluster.SelfAddress.ToString();
        connector ??= TransportAdminConnector.Tcp();
        WriterFence? fence = null;
        if (settings.FenceWithReservations)
        {
            // Registrants are told apart by host identifier: each node needs its own, stable across its restarts.
            hostSettings = hostSettings with { HostId = NodeFence.HostIdOf(hostSettings.HostNqn, node) };
            fence = new WriterFence(NodeFence.KeyOf(node));
        }

        var stableAfter = config.GetTimeSpan("akka.cluster.split-brain-resolver.stable-after", TimeSpan.FromSeconds(20));
        if (fence is not null)
        {
            // A namespace that cannot be fenced gets the wait that the short removal margin no longer gives.
            fence = fence with { UnfencedHoldback = stableAfter };
        }
        else if (cluster.DowningProvider.DownRemovalMargin < stableAfter)
        {
            system.Log.Warning(
                "actornvme.cluster: fence-with-reservations is off and akka.cluster.down-removal-margin ({0}) is shorter than the split-brain resolver's stable-after ({1}): a downed node that still runs may write next to its successor",
                cluster.DowningProvider.DownRemovalMargin, stableAfter);
        }

        var nodeView = system.ActorOf(NodeViewActor.Props(node), ClusterView.NodeViewActorName);
        var sharding = ClusterSharding.Get(system);
        var shardingSettings = ClusterShardingSettings.Create(system).WithRole(settings.Role);
        var region = sharding.Start(
            ClusterSubsystem.TypeName,
            SubsystemEntityActor.Props(hostSettings, connector, node, nodeView, settings.UnclaimedEntityTimeout, fence),
            shardingSettings,
            new ClusterSubsystem.MessageExtractor(settings.Shards),
            sharding.DefaultShardAllocationStrategy(shardingSettings),
            ClusterSubsystem.HandOff.Instance);

        // Under a back-off supervisor: a store that cannot be read or written stops the coordinator (Akka.Persistence's
        // rule), and it is started again, here, rather than leaving the cluster without one until the singleton moves.
        var coordinator = BackoffSupervisor.Props(Backoff.OnStop(
            DiscoveryCoordinatorActor.Props(settings, hostSettings, region, discoveryLog),
            "coordinator",
            TimeSpan.FromSeconds(1),
            TimeSpan.FromSeconds(30),
            0.2,
            -1));
        system.ActorOf(
            ClusterSingletonManager.Props(
                coordinator,
                PoisonPill.Instance,
                ClusterSingletonManagerSettings.Create(system).WithRole(settings.Role)),
            CoordinatorName);
        var proxy = system.ActorOf(
            ClusterSingletonProxy.Props($"/user/{CoordinatorName}", ClusterSingletonProxySettings.Create(system).WithRole(settings.Role)),
            CoordinatorName + "-proxy");
        return new NvmeCluster(system, region, proxy, node, settings);
    }

    /// <summary>
    /// An ActorSystem for a cluster node: <paramref name="options"/> first, then <paramref name="application"/>
    /// (akka.hocon), then the library defaults of this layer and of the host runtime.
    /// </summary>
    public static ActorSystem CreateSystem(NvmeClusterNodeOptions options, Akka.Configuration.Config? application = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        var config = options.ToConfig()
            .WithFallback(application ?? Akka.Configuration.Config.Empty)
            .WithFallback(NvmeClusterSettings.ReferenceConfig)
            .WithFallback(NvmeHostSettings.ReferenceConfig);
        // The application's own akka.persistence settings (if any) come before the store's.
        var withStore = options.ToConfig()
            .WithFallback(application ?? Akka.Configuration.Config.Empty)
            .WithFallback(StoreConfig(config))
            .WithFallback(NvmeClusterSettings.RemovalMarginConfig(config))
            .WithFallback(NvmeClusterSettings.ReferenceConfig)
            .WithFallback(NvmeHostSettings.ReferenceConfig);
        var system = ActorSystem.Create(NvmeClusterNodeOptions.SystemName, withStore);
        SchedulerStart.Ensure(system);
        return system;
    }

    /// <summary>
    /// The Akka.Persistence configuration of the store that <paramref name="config"/>'s <c>actornvme.cluster.store</c>
    /// names (refused with the key named when it is not valid), to put in an ActorSystem's configuration.
    /// </summary>
    public static Akka.Configuration.Config StoreConfig(Akka.Configuration.Config config) =>
        NvmeClusterSettings.Create(config).Store.ToAkkaConfig();
}
