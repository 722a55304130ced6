using Akka.Actor;
using Akka.Hosting;
using ActorNvme.Actors.Connection;
using ActorNvme.Actors.Settings;

namespace ActorNvme.Cluster;

/// <summary>Key of the subsystem shard region in Akka.Hosting's <see cref="ActorRegistry"/>.</summary>
public sealed class NvmeSubsystemRegion;

/// <summary>
/// Akka.Hosting integration of the cluster part: <c>services.AddAkka("actornvme", b => b.WithNvmeCluster(node, log))</c>
/// configures the node (remote, cluster, seed nodes, split-brain resolver) and starts <see cref="NvmeCluster"/>
/// on the system: the shard region is registered under <see cref="NvmeSubsystemRegion"/>. Every node of one
/// cluster must use the same ActorSystem name (<see cref="NvmeClusterNodeOptions.SystemName"/> for the seed
/// addresses the options make).
/// </summary>
public static class NvmeClusterHostingExtensions
{
    public static AkkaConfigurationBuilder WithNvmeCluster(
        this AkkaConfigurationBuilder builder,
        NvmeClusterNodeOptions node,
        DiscoveryLogSource discoveryLog,
        IAdminConnector? connector = null,
        Action<NvmeCluster>? started = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(node);
        ArgumentNullException.ThrowIfNull(discoveryLog);
        builder.AddHocon(node.ToConfig(), HoconAddMode.Prepend);
        builder.AddHocon(NvmeCluster.StoreConfig(node.ToConfig()), HoconAddMode.Append);
        builder.AddHocon(NvmeClusterSettings.RemovalMarginConfig(node.ToConfig()), HoconAddMode.Append);
        builder.AddHocon(NvmeClusterSettings.ReferenceConfig, HoconAddMode.Append);
        builder.AddHocon(NvmeHostSettings.ReferenceConfig, HoconAddMode.Append);
        builder.WithActors((system, registry) =>
        {
            var cluster = NvmeCluster.Start(system, discoveryLog, connector);
            registry.Register<NvmeSubsystemRegion>(cluster.Region);
            started?.Invoke(cluster);
        });
        return builder;
    }
}
