using Akka.Actor;

namespace ActorNvme.Cluster;

/// <summary>
/// The cluster-wide view of controllers and block devices: every node keeps its own (its entities report
/// to a per-node actor, <see cref="NodeViewActorName"/>), and any node gathers the others' by asking
/// that actor on every member's address. Everything here crosses nodes, so it is made of strings and numbers,
/// and its lists are arrays: the JSON serializer cannot rebuild the compiler's type behind a collection expression.
/// </summary>
public static class ClusterView
{
    /// <summary>Name of each node's view actor under /user.</summary>
    public const string NodeViewActorName = "nvme-node-view";

    /// <summary>Asks a node's view actor for its subsystems. Reply: <see cref="NodeView"/>.</summary>
    public sealed record GetNodeView
    {
        public static GetNodeView Instance { get; } = new();
    }

    /// <summary>One path of a controller: its state (<c>ControllerState</c> name) and where it goes.</summary>
    /// <summary>
    /// One path of a subsystem. <paramref name="Refusal"/>: how its last connection attempt was refused (a
    /// <c>PathRefusal</c> name: ConnectionRefused, ConnectRejected, AuthenticationFailed, TlsHandshakeFailed) while
    /// it is not Live; null when it is Live, still trying, or was lost otherwise.
    /// </summary>
    public sealed record PathView(string Name, string State, string? Reason, string Host, int Port, string? Refusal = null);

    /// <summary>One block device, as <c>BlockDeviceInfo</c> gives it.</summary>
    public sealed record DeviceView(string Name, string Controller, string SubsystemNqn, uint NamespaceId, int BlockSize, ulong BlockCount);

    /// <summary>One subsystem held on a node: its controller (local name), paths and block devices.</summary>
    public sealed record SubsystemView(string Name, string SubsystemNqn, string HostNqn, IReadOnlyList<PathView> Paths, IReadOnlyList<DeviceView> Devices);

    /// <summary>What one node holds now.</summary>
    public sealed record NodeView(string Node, string Address, IReadOnlyList<SubsystemView> Subsystems);

    /// <summary>
    /// The views gathered from the members; <paramref name="Unanswered"/> names (by cluster address) the
    /// members that did not answer in time: the answer is partial then.
    /// </summary>
    public sealed record Gathered(IReadOnlyList<NodeView> Nodes, IReadOnlyList<string> Unanswered);

    /// <summary>An entity's latest state on this node; a null <paramref name="View"/>: it holds nothing any more.</summary>
    internal sealed record LocalSubsystemChanged(string EntityId, SubsystemView? View);

    /// <summary>
    /// Asks the view actor of every Up (or WeaklyUp) member with <paramref name="role"/> (empty: any), each bounded by <paramref name="perNodeTimeout"/>, in
    /// parallel. A member that does not answer is named in <see cref="Gathered.Unanswered"/>, never an error.
    /// </summary>
    public static async Task<Gathered> GatherAsync(ActorSystem system, string role, TimeSpan perNodeTimeout, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(system);
        var members = Akka.Cluster.Cluster.Get(system).State.Members
            .Where(m => m.Status is Akka.Cluster.MemberStatus.Up or Akka.Cluster.MemberStatus.WeaklyUp)
            .Where(m => string.IsNullOrEmpty(role) || m.HasRole(role))
            .Select(m => m.Address)
            .Distinct()
            .ToArray();
        var asks = members.Select(async address =>
        {
            var selection = system.ActorSelection(new RootActorPath(address) / "user" / NodeViewActorName);
            try
            {
                return (address, view: await selection.Ask<NodeView>(GetNodeView.Instance, perNodeTimeout, cancellationToken).ConfigureAwait(false));
            }
            catch (AskTimeoutException)
            {
                return (address, view: (NodeView?)null);
            }
        }).ToArray();
        var answers = await Task.WhenAll(asks).ConfigureAwait(false);
        return new Gathered(
            [.. answers.Where(a => a.view is not null).Select(a => a.view!).OrderBy(v => v.Node, StringComparer.Ordinal)],
            [.. answers.Where(a => a.view is null).Select(a => a.address.ToString()).Order(StringComparer.Ordinal)]);
    }
}

/// <summary>This node's subsystems as its entities last reported them; answers <see cref="ClusterView.GetNodeView"/>.</summary>
internal sealed class NodeViewActor : ReceiveActor
{
    private readonly Dictionary<string, ClusterView.SubsystemView> _subsystems = new(StringComparer.Ordinal);

    public NodeViewActor(string node)
    {
        string address = Akka.Cluster.Cluster.Get(Context.System).SelfAddress.ToString();
        Receive<ClusterView.LocalSubsystemChanged>(m =>
        {
            if (m.View is null)
            {
                _subsystems.Remove(m.EntityId);
            }
            else
            {
                _subsystems[m.EntityId] = m.View;
            }
        });
        Receive<ClusterView.GetNodeView>(_ => Sender.Tell(new ClusterView.NodeView(
            node,
            address,
            _subsystems.Values.OrderBy(s => s.SubsystemNqn, StringComparer.Ordinal).ToArray())));
    }

    public static Props Props(string node) => Akka.Actor.Props.Create(() => new NodeViewActor(node));
}
