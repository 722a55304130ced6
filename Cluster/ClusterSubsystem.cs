using System.Globalization;
using System.Text;
using Akka.Cluster.Sharding;
using ActorNvme.Transport;

namespace ActorNvme.Cluster;

/// <summary>
/// The messages of the sharded subsystem entities. Each NVM subsystem, as one host identity sees it
/// (subsystem NQN + host NQN), is one entity, owned by exactly one node of the cluster, which holds its
/// SubsystemActor (controllers and block devices). Everything that crosses nodes is made of strings
/// and numbers, so that it serializes with the default serializer.
/// </summary>
public static class ClusterSubsystem
{
    /// <summary>Name of the shard region (type name of the entities).</summary>
    public const string TypeName = "nvme-subsystem";

    /// <summary>The entity id of a subsystem as one host sees it.</summary>
    public static string EntityId(string subsystemNqn, string hostNqn) => subsystemNqn + "|" + hostNqn;

    /// <summary>
    /// Desired state: this subsystem attached through these paths (<c>traddr:trsvcid</c>). Idempotent: the
    /// discovery coordinator sends it again on every reconcile, which is what starts the entity on its new
    /// owner after a rebalance or after its node was lost.
    /// </summary>
    public sealed record EnsureAttached(string SubsystemNqn, string HostNqn, IReadOnlyList<string> Paths)
    {
        public string EntityId => ClusterSubsystem.EntityId(SubsystemNqn, HostNqn);

        /// <summary>The local controller name of an explicit attach; null: one made from the NQN.</summary>
        public string? Name { get; init; }

        /// <summary>Loss-timeout options of the attach or of the discovery that found it; null: the node's settings.</summary>
        public DesiredState.AttachOptions? Options { get; init; }
    }

    /// <summary>Desired state: not attached anywhere (gone from a successful discovery log read).</summary>
    public sealed record EnsureDetached(string SubsystemNqn, string HostNqn, string Reason)
    {
        public string EntityId => ClusterSubsystem.EntityId(SubsystemNqn, HostNqn);
    }

    /// <summary>Asks an entity where it lives. Reply: <see cref="Ownership"/>.</summary>
    public sealed record GetOwnership(string SubsystemNqn, string HostNqn)
    {
        public string EntityId => ClusterSubsystem.EntityId(SubsystemNqn, HostNqn);
    }

    /// <summary>Where an entity lives and whether its subsystem has a Live path there.</summary>
    public sealed record Ownership(string SubsystemNqn, string HostNqn, string Node, bool Attached, IReadOnlyList<string> Devices);

    /// <summary>
    /// Sent by the shard to each entity of a shard that moves away (rebalance, graceful leave): the entity
    /// shuts its controllers down (CC.SHN) and stops; only then is the shard started on its new owner.
    /// </summary>
    public sealed record HandOff
    {
        public static HandOff Instance { get; } = new();
    }

    /// <summary>What happened to a subsystem on this node, published on the local event stream for observers.</summary>
    public sealed record OwnershipEvent(string SubsystemNqn, string HostNqn, string Node, OwnershipChange Change, string Detail, DateTimeOffset At);

    /// <summary>
    /// An entity's incarnation on this node, published on the local event stream for observers (timelines):
    /// <see cref="EntityStage.Started"/> when its shard started it (a first message, or remember-entities after the
    /// shard moved here), <see cref="EntityStage.Recovered"/> when its desired state was read back from the store.
    /// </summary>
    public sealed record EntityEvent(string EntityId, string Node, EntityStage Stage, bool RememberedDesire, DateTimeOffset At)
    {
        /// <summary>The subsystem NQN of the entity id (the part before the host NQN).</summary>
        public string SubsystemNqn => EntityId.Split('|')[0];
    }

    /// <summary>Parses <c>traddr:trsvcid</c> (<c>[v6]:port</c> for IPv6); throws <see cref="ArgumentException"/> naming the value.</summary>
    public static TransportAddress ParsePath(string path)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        int colon = path.LastIndexOf(':');
        if (colon <= 0 || colon == path.Length - 1)
        {
            throw new ArgumentException($"path '{path}' is not traddr:trsvcid", nameof(path));
        }

        string host = path[..colon].Trim('[', ']');
        return TransportAddress.Parse(host, path[(colon + 1)..]);
    }

    public static string FormatPath(TransportAddress address) => address.ToString();

    /// <summary>A local name for the subsystem (block devices are named after it): the NQN's last part, safe characters only.</summary>
    internal static string LocalName(string subsystemNqn)
    {
        string tail = subsystemNqn[(subsystemNqn.LastIndexOf(':') + 1)..];
        var name = new StringBuilder("c");
        foreach (char c in tail)
        {
            name.Append(char.IsAsciiLetterOrDigit(c) || c is '-' or '_' ? c : '_');
        }

        // Two NQNs with one tail still get distinct local names.
        name.Append('-').Append((Fnv1a(subsystemNqn) & 0xFFFF).ToString("x4", CultureInfo.InvariantCulture));
        return name.ToString();
    }

    private static uint Fnv1a(string text)
    {
        uint hash = 2166136261;
        foreach (char c in text)
        {
            hash = (hash ^ c) * 16777619;
        }

        return hash;
    }

    /// <summary>Routes the messages above to their entity; the shard is a stable hash of the entity id.</summary>
    internal sealed class MessageExtractor(int shards) : HashCodeMessageExtractor(shards)
    {
        public override string? EntityId(object message) => message switch
        {
            EnsureAttached m => m.EntityId,
            EnsureDetached m => m.EntityId,
            GetOwnership m => m.EntityId,
            _ => null,
        };
    }
}

public enum EntityStage
{
    /// <summary>Its shard started the entity on this node; it begins to read its desired state from the store.</summary>
    Started,

    /// <summary>The entity read its desired state back from the store.</summary>
    Recovered,
}

public enum OwnershipChange
{
    /// <summary>The entity started here and began to attach.</summary>
    Started,

    /// <summary>A path became Live here.</summary>
    Attached,

    /// <summary>The controllers here were shut down (CC.SHN) because the shard moves to another node.</summary>
    HandedOff,

    /// <summary>Detached because the desired state says so.</summary>
    Detached,

    /// <summary>The subsystem actor stopped on its own (loss timeout); the next reconcile starts it again.</summary>
    Lost,
}
