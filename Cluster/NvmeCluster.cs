using Akka.Actor;
using Akka.Cluster.Sharding;
using Akka.Cluster.Tools.Singleton;
using ActorNvme.Actors.Connection;
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

    private NvmeCluster(ActorSystem system, IActorRef region, string node, NvmeClusterSettings settings)
    {
        _system = system;
        Region = region;
        Node = node;
        Settings = settings;
    }

    /// <summary>The shard region of <see cref="ClusterSubsystem"/> entities: send it their messages.</summary>
    public IActorRef Region { get; }

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

        var nodeView = system.ActorOf(NodeViewActor.Props(node), ClusterView.NodeViewActorName);
        var sharding = ClusterSharding.Get(system);
        var shardingSettings = ClusterShardingSettings.Create(system).WithRole(settings.Role);
        var region = sharding.Start(
            ClusterSubsystem.TypeName,
            SubsystemEntityActor.Props(hostSettings, connector, node, nodeView, fence),
            shardingSettings,
            new ClusterSubsystem.MessageExtractor(settings.Shards),
            sharding.DefaultShardAllocationStrategy(shardingSettings),
            ClusterSubsystem.HandOff.Instance);

        system.ActorOf(
            ClusterSingletonManager.Props(
                DiscoveryCoordinatorActor.Props(settings, hostSettings.HostNqn, region, discoveryLog),
                PoisonPill.Instance,
                ClusterSingletonManagerSettings.Create(system).WithRole(settings.Role)),
            CoordinatorName);
        return new NvmeCluster(system, region, node, settings);
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
        return ActorSystem.Create(NvmeClusterNodeOptions.SystemName, config);
    }
}
