using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using ActorNvme.Actors.Controller;
using ActorNvme.Actors.Host;
using ActorNvme.Actors.Settings;
using ActorNvme.Actors.Subsystem;
using ActorNvme.Cluster;
using ActorNvme.Host.JsonRpc;
using ActorNvme.Host.Spdk;
using ActorNvme.Transport;

namespace ActorNvme.Host.ClusterNode;

/// <summary>
/// The JSON-RPC methods of a cluster node (<c>actornvme serve --cluster</c>). The list methods answer
/// cluster-wide from any node, in SPDK's shapes, each entry with <c>"actornvme": {"owner": node}</c>; a
/// node that did not answer in time is named in every entry (<c>"unanswered"</c>), and when no entry is
/// left to carry the names, the call fails naming them. Attach, detach and discovery go to the cluster's
/// desired state (the discovery coordinator, which keeps them in the store and asks the shard region for
/// the subsystem's entity), from any node; the subsystem is then attached on whichever node owns its
/// entity. Methods that would change one node's controllers in place are refused.
/// </summary>
public sealed partial class ClusterRpcService : IJsonRpcDispatcher
{
    /// <summary>Gathers the views of the members, each bounded by the given time.</summary>
    public delegate Task<ClusterView.Gathered> ClusterViewSource(TimeSpan perNodeTimeout, CancellationToken cancellationToken);

    private static readonly string[] NodeLocalMethods =
    [
        "bdev_nvme_reset_controller", "bdev_nvme_set_keys", "bdev_nvme_set_multipath_policy", "bdev_nvme_set_options", "framework_start_init",
    ];

    /// <summary>The methods that change the cluster's desired state: only with a cluster to send them to.</summary>
    private static readonly string[] DesiredStateMethods =
    [
        "bdev_nvme_attach_controller", "bdev_nvme_detach_controller", "bdev_nvme_start_discovery", "bdev_nvme_stop_discovery",
        "bdev_nvme_get_discovery_info",
    ];

    private readonly ClusterViewSource _gather;
    private readonly string _node;
    private readonly Dictionary<string, Func<RpcParams, CancellationToken, Task<JsonNode?>>> _methods;
    private readonly Dictionary<string, string[]> _parameters = new(StringComparer.Ordinal)
    {
        ["bdev_get_bdevs"] = ["name", "timeout"],
        ["bdev_nvme_get_controllers"] = ["name"],
        ["rpc_get_methods"] = ["current", "include_aliases"],
        ["spdk_get_version"] = [],
        ["framework_wait_init"] = [],
    };

    /// <summary>A service that lists only (the desired-state methods answer -ENOTSUP): for views gathered elsewhere.</summary>
    public ClusterRpcService(ClusterViewSource gather, string node)
    {
        ArgumentNullException.ThrowIfNull(gather);
        _gather = gather;
        _node = node;
        _methods = new(StringComparer.Ordinal)
        {
            ["bdev_get_bdevs"] = GetBdevs,
            ["bdev_nvme_get_controllers"] = GetControllers,
            ["rpc_get_methods"] = (_, _) => Task.FromResult<JsonNode?>(new JsonArray([.. _methods!.Keys.Order(StringComparer.Ordinal).Select(n => (JsonNode?)n)])),
            ["spdk_get_version"] = (_, _) => Task.FromResult<JsonNode?>(VersionInfo.Json("ActorNvme")),
            ["framework_wait_init"] = (_, _) => Task.FromResult<JsonNode?>(true),
        };
    }

    /// <summary>A cluster node's service: lists cluster-wide, and attaches, detaches and discovers through <paramref name="cluster"/>.</summary>
    public ClusterRpcService(NvmeCluster cluster, NvmeHostSettings settings)
        : this((timeout, token) => (cluster ?? throw new ArgumentNullException(nameof(cluster))).GatherViewAsync(timeout, token), cluster?.Node ?? string.Empty)
    {
        ArgumentNullException.ThrowIfNull(settings);
        _cluster = cluster;
        _settings = settings;
        _methods["bdev_nvme_attach_controller"] = AttachController;
        _methods["bdev_nvme_detach_controller"] = DetachController;
        _methods["bdev_nvme_start_discovery"] = StartDiscovery;
        _methods["bdev_nvme_stop_discovery"] = StopDiscovery;
        _methods["bdev_nvme_get_discovery_info"] = GetDiscoveryInfo;
        foreach (var (method, names) in DesiredStateParameters)
        {
            _parameters[method] = names;
        }
    }

    /// <summary>How long each node has to answer one list call.</summary>
    public TimeSpan PerNodeTimeout { get; init; } = TimeSpan.FromSeconds(3);

    public async Task<JsonNode?> DispatchAsync(string method, JsonElement? parameters, CancellationToken cancellationToken)
    {
        if (NodeLocalMethods.Contains(method, StringComparer.Ordinal)
            || (_cluster is null && DesiredStateMethods.Contains(method, StringComparer.Ordinal)))
        {
            throw new JsonRpcException(
                JsonRpcErrorCodes.NotSupported,
                $"Operation not supported: {method} is not available on a cluster node ({_node}){(_cluster is null ? " whose service only lists" : string.Empty)}: the cluster places every subsystem on exactly one node; attach, detach and discovery go through the cluster's desired state");
        }

        if (!_methods.TryGetValue(method, out var handler))
        {
            throw new JsonRpcException(JsonRpcErrorCodes.MethodNotFound, $"Method not found: {method} (a cluster node answers {string.Join(", ", _methods.Keys.Order(StringComparer.Ordinal))})");
        }

        var p = RpcParams.Parse(method, parameters, _parameters[method]);
        return await handler(p, cancellationToken).ConfigureAwait(false);
    }

    private async Task<JsonNode?> GetBdevs(RpcParams p, CancellationToken cancellationToken)
    {
        string? only = p.OptionalNonEmptyString("name", 64);
        long timeoutMs = p.OptionalInt64("timeout", 0, 3_600_000) ?? 0;
        var until = DateTime.UtcNow + TimeSpan.FromMilliseconds(timeoutMs);
        while (true)
        {
            var gathered = await _gather(PerNodeTimeout, cancellationToken).ConfigureAwait(false);
            var result = new JsonArray();
            foreach (var node in gathered.Nodes)
            {
                var controllers = new NvmeHost.ControllerList([.. node.Subsystems.Select(Summary)]);
                foreach (var device in node.Subsystems.SelectMany(s => s.Devices).Where(d => only is null || d.Name == only))
                {
                    var entry = SpdkRpcService.Bdev(new BlockDeviceInfo(device.Name, device.Controller, device.SubsystemNqn, device.NamespaceId, device.BlockSize, device.BlockCount), controllers);
                    entry["actornvme"] = Owner(node, gathered);
                    result.Add(entry);
                }
            }

            if (result.Count > 0 || (only is null && gathered.Unanswered.Count == 0))
            {
                return result;
            }

            if (DateTime.UtcNow >= until)
            {
                throw NothingFound(only is null ? "bdev_get_bdevs" : $"No such device: {only}", gathered);
            }

            await Task.Delay(TimeSpan.FromMilliseconds(200), cancellationToken).ConfigureAwait(false);
        }
    }

    private async Task<JsonNode?> GetControllers(RpcParams p, CancellationToken cancellationToken)
    {
        string? only = p.OptionalNonEmptyString("name", 64);
        var gathered = await _gather(PerNodeTimeout, cancellationToken).ConfigureAwait(false);
        var result = new JsonArray();
        foreach (var node in gathered.Nodes)
        {
            foreach (var subsystem in node.Subsystems.Where(s => s.Paths.Count > 0 && (only is null || s.Name == only)))
            {
                var entry = SpdkRpcService.Controller(Summary(subsystem));
                entry["actornvme"] = Owner(node, gathered);
                result.Add(entry);
            }
        }

        if (result.Count > 0 || (only is null && gathered.Unanswered.Count == 0))
        {
            return result;
        }

        throw NothingFound(only is null ? "bdev_nvme_get_controllers" : $"No such device: Controller {only} does not exist", gathered);
    }

    private static JsonObject Owner(ClusterView.NodeView node, ClusterView.Gathered gathered)
    {
        var owner = new JsonObject { ["owner"] = node.Node, ["owner_address"] = node.Address };
        if (gathered.Unanswered.Count > 0)
        {
            owner["unanswered"] = new JsonArray([.. gathered.Unanswered.Select(n => (JsonNode?)n)]);
        }

        return owner;
    }

    /// <summary>Nothing to list: an error that says which nodes did not answer (then the list may not be empty at all).</summary>
    private JsonRpcException NothingFound(string what, ClusterView.Gathered gathered) => gathered.Unanswered.Count == 0
        ? new JsonRpcException(JsonRpcErrorCodes.NoDevice, what)
        : new JsonRpcException(
            JsonRpcErrorCodes.TimedOut,
            $"{what}: partial answer: nothing found on {gathered.Nodes.Count.ToString(CultureInfo.InvariantCulture)} node(s); did not answer within {PerNodeTimeout.TotalSeconds:0.#} s: {string.Join(", ", gathered.Unanswered)}");

    /// <summary>A node's subsystem as the single-process host lists a controller. Values from another node are checked, not trusted.</summary>
    private static NvmeHost.ControllerSummary Summary(ClusterView.SubsystemView subsystem) => new(
        subsystem.Name,
        subsystem.SubsystemNqn,
        "cluster",
        [.. subsystem.Paths
            .Where(p => p.Port is > 0 and < 65536 && !string.IsNullOrEmpty(p.Host))
            .Select(p => new NvmeHost.PathSummary(
                p.Name,
                Enum.TryParse<ControllerState>(p.State, ignoreCase: false, out var state) && Enum.IsDefined(state) ? state : ControllerState.Connecting,
                p.Reason,
                new TransportAddress(p.Host, p.Port)))],
        subsystem.HostNqn);
}
