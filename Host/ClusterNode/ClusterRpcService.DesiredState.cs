using System.Globalization;
using System.Text.Json.Nodes;
using Akka.Actor;
using ActorNvme.Actors.Controller;
using ActorNvme.Actors.Settings;
using ActorNvme.Actors.Subsystem;
using ActorNvme.Cluster;
using ActorNvme.Host.JsonRpc;
using ActorNvme.Host.Spdk;
using ActorNvme.Protocol.Tcp;

namespace ActorNvme.Host.ClusterNode;

/// <summary>
/// Attach, detach and discovery on a cluster node. Each call is a command to the cluster's desired state
/// (kept in the store, as <see cref="NvmeCluster"/>'s library calls are), answered from any node; refusals
/// come back at once with SPDK's errno (-EEXIST a name in use, -ENODEV / -ENOENT an unknown one, -EINVAL naming
/// the bad value). An attach then waits until the node that owns the subsystem's entity reports its block
/// devices, and answers their names, as SPDK does; a discovery waits for its first read.
/// </summary>
public sealed partial class ClusterRpcService
{
    private static readonly string[] ResiliencyParameters = ["ctrlr_loss_timeout_sec", "reconnect_delay_sec", "fast_io_fail_timeout_sec"];

    private static readonly Dictionary<string, string[]> DesiredStateParameters = new(StringComparer.Ordinal)
    {
        ["bdev_nvme_attach_controller"] =
        [
            "name", "trtype", "traddr", "adrfam", "trsvcid", "priority", "subnqn", "hostnqn", "hostaddr", "hostsvcid",
            "prchk_reftag", "prchk_guard", "hdgst", "ddgst", "fabrics_connect_timeout_us", "multipath", "num_io_queues",
            .. ResiliencyParameters, "psk", "max_bdevs", "dhchap_key", "dhchap_ctrlr_key", "allow_unrecognized_csi",
            "multipath_opts", "disable_sq_flow_control",
        ],
        ["bdev_nvme_detach_controller"] = ["name", "trtype", "traddr", "adrfam", "trsvcid", "subnqn", "hostaddr", "hostsvcid"],
        ["bdev_nvme_start_discovery"] =
            ["name", "trtype", "traddr", "adrfam", "trsvcid", "hostnqn", "wait_for_attach", "attach_timeout_ms", .. ResiliencyParameters, "dhchap_key", "dhchap_ctrlr_key"],
        ["bdev_nvme_stop_discovery"] = ["name"],
        ["bdev_nvme_get_discovery_info"] = [],
    };

    private static readonly TimeSpan PollInterval = TimeSpan.FromMilliseconds(200);

    private readonly NvmeCluster? _cluster;
    private readonly NvmeHostSettings? _settings;

    /// <summary>How long the discovery coordinator has to answer a command (it writes to the store first).</summary>
    public TimeSpan CommandTimeout { get; init; } = TimeSpan.FromSeconds(15);

    /// <summary>
    /// How long an attach (or a start_discovery with wait_for_attach) waits for the owner's block devices when the
    /// request names no bound; null: twice the connect timeout plus 10 s, as the single-process server waits.
    /// </summary>
    public TimeSpan? AttachWait { get; init; }

    private NvmeHostSettings Settings => _settings ?? throw new InvalidOperationException("no cluster");

    private NvmeCluster Cluster => _cluster ?? throw new InvalidOperationException("no cluster");

    private TimeSpan DefaultAttachWait => AttachWait ?? (Settings.ConnectTimeout * 2) + TimeSpan.FromSeconds(10);

    private async Task<JsonNode?> AttachController(RpcParams p, CancellationToken cancellationToken)
    {
        const string Method = "bdev_nvme_attach_controller";
        string name = p.RequiredNonEmptyString("name", 64);
        var address = SpdkRpcService.Address(p, defaultPort: 4420);
        string subnqn = p.OptionalNonEmptyString("subnqn", 223) ?? throw JsonRpcException.InvalidParams($"{Method}: missing required parameter 'subnqn' (an NVMe/TCP controller is reached through its subsystem NQN)");
        RequireClusterHostNqn(p);
        bool furtherPathAsked = p.OptionalString("multipath", 16)?.ToLowerInvariant() switch
        {
            null or "disable" => false,
            "failover" or "multipath" => true,
            var other => throw JsonRpcException.InvalidValue($"{Method}: parameter 'multipath' must be disable, failover or multipath, not '{other}'"),
        };

        SpdkRpcService.RefuseUnhonouredAttachParameters(p);

        // The desired state carries the subsystem, its paths and the loss-timeout options; the rest is each node's
        // configuration. rpc.py sends false for these unless asked, so false means "the node's setting".
        RequireNodeSetting(p, "hdgst", Settings.Digests.HasFlag(DigestOptions.Header), "digests come from each node's actornvme.digests");
        RequireNodeSetting(p, "ddgst", Settings.Digests.HasFlag(DigestOptions.Data), "digests come from each node's actornvme.digests");
        RequireNodeSetting(p, "disable_sq_flow_control", Settings.DisableSqFlowControl, "each node's actornvme.disable-sq-flow-control applies");
        if (p.OptionalInt64("num_io_queues", 1, 65534) is { } queues)
        {
            throw JsonRpcException.NotSupported(Method, "num_io_queues", queues.ToString(CultureInfo.InvariantCulture), "on a cluster node each node's actornvme settings decide the I/O queues");
        }

        const string KeysWhy = "keys live in each node's own keyring; the cluster's desired state does not carry them";
        p.RequireAbsent("psk", KeysWhy, 255);
        p.RequireAbsent("dhchap_key", KeysWhy, 255);
        p.RequireAbsent("dhchap_ctrlr_key", KeysWhy, 255);
        if (p.Has("multipath_opts"))
        {
            p.OptionalObject("multipath_opts", ["policy", "selector", "min_io"]);
            throw JsonRpcException.NotSupported(Method, "multipath_opts", "{...}", "a per-controller multipath policy is not part of the cluster's desired state");
        }

        TimeSpan? connectBound = p.OptionalInt64("fabrics_connect_timeout_us", 1000, long.MaxValue / 10) is { } us ? TimeSpan.FromMicroseconds(us) : null;
        var options = AttachOptionsOf(p);

        var result = await CommandAsync(Method, c => c.AttachAsync(name, subnqn, [ClusterSubsystem.FormatPath(address)], options, CommandTimeout), cancellationToken).ConfigureAwait(false);
        if (!result.Accepted)
        {
            var refused = Refused(Method, result, JsonRpcErrorCodes.NoDevice);
            throw refused.Code == JsonRpcErrorCodes.Exists && furtherPathAsked
                ? new JsonRpcException(JsonRpcErrorCodes.Exists, $"{refused.Message}; a further path under an existing name is not taken on a cluster node: detach it and attach again with every path, or let a discovery log list them")
                : refused;
        }

        var wait = connectBound is { } bound ? bound + TimeSpan.FromSeconds(10) : DefaultAttachWait;
        var until = DateTime.UtcNow + wait;
        string lastSeen = "no node holds it yet";
        DateTime? liveWithoutDevicesSince = null;
        while (true)
        {
            var gathered = await _gather(PerNodeTimeout, cancellationToken).ConfigureAwait(false);
            foreach (var (node, subsystem) in gathered.Nodes.SelectMany(n => n.Subsystems.Select(s => (n, s))).Where(x => x.s.SubsystemNqn == subnqn))
            {
                bool live = subsystem.Paths.Any(path => path.State == nameof(ControllerState.Live));
                if (live && subsystem.Devices.Count > 0)
                {
                    // Names in namespace order, as SPDK lists them.
                    return new JsonArray([.. subsystem.Devices.OrderBy(d => d.NamespaceId).Select(d => (JsonNode?)d.Name)]);
                }

                // A subsystem without namespaces: Live, and still without devices a moment later.
                liveWithoutDevicesSince = live ? liveWithoutDevicesSince ?? DateTime.UtcNow : null;
                if (liveWithoutDevicesSince is { } since && DateTime.UtcNow - since > TimeSpan.FromSeconds(2))
                {
                    return new JsonArray();
                }

                lastSeen = $"on {node.Node}: " + string.Join(", ", subsystem.Paths.Select(path => $"{path.Host}:{path.Port.ToString(CultureInfo.InvariantCulture)} {path.State}{(path.Reason is null ? string.Empty : " (" + path.Reason + ")")}"));

                // A refusal no wait cures (nothing listens, Connect answered with DNR, a key or PSK refused): answered
                // at once with SPDK's errno, as the single-node server does, instead of at the deadline.
                if (live || subsystem.Paths.Select(path => RefusalError(path, $"controller {name} on {node.Node}")).FirstOrDefault(e => e is not null) is not { } refusal)
                {
                    continue;
                }

                await WithdrawAsync(c => c.DetachAsync(name, CommandTimeout)).ConfigureAwait(false);
                throw new JsonRpcException(refusal.Code, $"{refusal.Message}; the attach was withdrawn");
            }

            if (DateTime.UtcNow >= until)
            {
                // As SPDK leaves nothing behind a failed attach: withdrawn, so that a retry finds the name free.
                await WithdrawAsync(c => c.DetachAsync(name, CommandTimeout)).ConfigureAwait(false);
                throw new JsonRpcException(
                    JsonRpcErrorCodes.TimedOut,
                    $"Connection timed out: {Method}: {name} ({subnqn} at {address}) had no Live path with block devices within {wait.TotalSeconds:0.#} s; {lastSeen}; the attach was withdrawn");
            }

            await Task.Delay(PollInterval, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>SPDK's error for a path refused for good (<see cref="ClusterView.PathView.Refusal"/>); null while a retry may cure it.</summary>
    internal static JsonRpcException? RefusalError(ClusterView.PathView path, string subject) => path.Refusal switch
    {
        nameof(PathRefusal.ConnectionRefused) => new JsonRpcException(JsonRpcErrorCodes.ConnectionRefused, $"Connection refused: {subject}: {path.Host}:{path.Port.ToString(CultureInfo.InvariantCulture)}: {path.Reason}"),
        // The view carries the refusal's kind, not its status, so Connect Invalid Host is not told apart (-EPERM) here.
        nameof(PathRefusal.ConnectRejected) => new JsonRpcException(JsonRpcErrorCodes.Invalid, $"Invalid argument: {subject}: {path.Reason}"),
        nameof(PathRefusal.AuthenticationFailed) or nameof(PathRefusal.TlsHandshakeFailed) => new JsonRpcException(JsonRpcErrorCodes.IoError, $"Input/output error: {subject} not attached: {path.Host}:{path.Port.ToString(CultureInfo.InvariantCulture)}: {path.Reason}"),
        _ => null,
    };

    private async Task<JsonNode?> DetachController(RpcParams p, CancellationToken cancellationToken)
    {
        const string Method = "bdev_nvme_detach_controller";
        string name = p.RequiredNonEmptyString("name", 64);
        foreach (string path in new[] { "trtype", "traddr", "adrfam", "trsvcid", "subnqn", "hostaddr", "hostsvcid" }.Where(p.Has))
        {
            p.OptionalString(path, 256);
        }

        var result = await CommandAsync(Method, c => c.DetachAsync(name, CommandTimeout), cancellationToken).ConfigureAwait(false);
        if (!result.Accepted)
        {
            if (result.Refused == RefusalKind.NotFound)
            {
                var gathered = await _gather(PerNodeTimeout, cancellationToken).ConfigureAwait(false);
                if (gathered.Nodes.FirstOrDefault(n => n.Subsystems.Any(s => s.Name == name)) is { } holder)
                {
                    throw new JsonRpcException(JsonRpcErrorCodes.NoDevice, $"No such device: {Method}: controller {name} (on {holder.Node}) was attached by a discovery log, not by bdev_nvme_attach_controller: stop that discovery instead");
                }

                throw new JsonRpcException(JsonRpcErrorCodes.NoDevice, $"No such device: Controller {name} does not exist");
            }

            throw Refused(Method, result, JsonRpcErrorCodes.NoDevice);
        }

        // The owner shuts the controller down; answered once no node lists it (bounded: a discovery log that still
        // lists the subsystem keeps it attached, under its own name).
        var until = DateTime.UtcNow + DefaultAttachWait;
        while (DateTime.UtcNow < until)
        {
            var gathered = await _gather(PerNodeTimeout, cancellationToken).ConfigureAwait(false);
            if (gathered.Unanswered.Count == 0 && !gathered.Nodes.Any(n => n.Subsystems.Any(s => s.Name == name)))
            {
                break;
            }

            await Task.Delay(PollInterval, cancellationToken).ConfigureAwait(false);
        }

        return true;
    }

    private async Task<JsonNode?> StartDiscovery(RpcParams p, CancellationToken cancellationToken)
    {
        const string Method = "bdev_nvme_start_discovery";
        string name = p.RequiredNonEmptyString("name", 64);
        var address = SpdkRpcService.Address(p, defaultPort: 8009);
        RequireClusterHostNqn(p);
        long? attachTimeoutMs = p.OptionalInt64("attach_timeout_ms", 0, int.MaxValue);
        bool waitForAttach = (p.OptionalBool("wait_for_attach") ?? false) || attachTimeoutMs > 0;
        const string KeysWhy = "keys live in each node's own keyring; the cluster's desired state does not carry them";
        p.RequireAbsent("dhchap_key", KeysWhy, 255);
        p.RequireAbsent("dhchap_ctrlr_key", KeysWhy, 255);
        var options = AttachOptionsOf(p);
        string path = ClusterSubsystem.FormatPath(address);

        var result = await CommandAsync(Method, c => c.StartNamedDiscoveryAsync(name, path, options, CommandTimeout), cancellationToken).ConfigureAwait(false);
        if (!result.Accepted)
        {
            throw Refused(Method, result, JsonRpcErrorCodes.NoEntry);
        }

        // As SPDK answers once its discovery controller is attached: here once the first read is done. A log
        // that could not be read is answered at once, and the discovery stopped, so that a retry finds the name free.
        var firstReadBound = DateTime.UtcNow + (Cluster.Settings.DiscoveryTimeout * 2) + Cluster.Settings.ReconcileInterval + TimeSpan.FromSeconds(5);
        DesiredState.DiscoveryInfo? read = null;
        while (read is null && DateTime.UtcNow < firstReadBound)
        {
            var list = await CommandAsync(Method, c => c.GetDiscoveryInfoAsync(CommandTimeout), cancellationToken).ConfigureAwait(false);
            read = list.Discoveries.FirstOrDefault(d => d.Path == path && d.Reads > 0);
            if (read is null)
            {
                await Task.Delay(PollInterval, cancellationToken).ConfigureAwait(false);
            }
        }

        if (read?.LastError is { } error)
        {
            await WithdrawAsync(c => c.StopNamedDiscoveryAsync(name, CommandTimeout)).ConfigureAwait(false);
            throw new JsonRpcException(JsonRpcErrorCodes.IoError, $"Input/output error: {Method}: discovery controller {address} not read (from {read.Node}): {error}; the discovery was stopped");
        }

        if (!waitForAttach || read is null)
        {
            return true;
        }

        var wait = attachTimeoutMs is > 0 ? TimeSpan.FromMilliseconds(attachTimeoutMs.Value) : DefaultAttachWait;
        var until = DateTime.UtcNow + wait;
        var listed = read.Entries.Select(e => e.SubsystemNqn).ToHashSet(StringComparer.Ordinal);
        while (true)
        {
            var gathered = await _gather(PerNodeTimeout, cancellationToken).ConfigureAwait(false);
            var attached = gathered.Nodes.SelectMany(n => n.Subsystems)
                .Where(s => s.Paths.Any(path => path.State == nameof(ControllerState.Live)))
                .Select(s => s.SubsystemNqn)
                .ToHashSet(StringComparer.Ordinal);
            var missing = listed.Where(nqn => !attached.Contains(nqn)).Order(StringComparer.Ordinal).ToArray();
            if (missing.Length == 0)
            {
                return true;
            }

            if (DateTime.UtcNow >= until)
            {
                await WithdrawAsync(c => c.StopNamedDiscoveryAsync(name, CommandTimeout)).ConfigureAwait(false);
                throw new JsonRpcException(JsonRpcErrorCodes.TimedOut, $"Connection timed out: {Method}: not attached within {wait.TotalSeconds:0.#} s: {string.Join(", ", missing)}; the discovery was stopped");
            }

            await Task.Delay(PollInterval, cancellationToken).ConfigureAwait(false);
        }
    }

    private async Task<JsonNode?> StopDiscovery(RpcParams p, CancellationToken cancellationToken)
    {
        const string Method = "bdev_nvme_stop_discovery";
        string name = p.RequiredNonEmptyString("name", 64);
        var result = await CommandAsync(Method, c => c.StopNamedDiscoveryAsync(name, CommandTimeout), cancellationToken).ConfigureAwait(false);
        return result.Accepted ? true : throw Refused(Method, result, JsonRpcErrorCodes.NoEntry);
    }

    /// <summary>SPDK's shape, one entry per discovery the cluster reads, with the node that reads it and each listed subsystem's owner.</summary>
    private async Task<JsonNode?> GetDiscoveryInfo(RpcParams p, CancellationToken cancellationToken)
    {
        var list = await CommandAsync("bdev_nvme_get_discovery_info", c => c.GetDiscoveryInfoAsync(CommandTimeout), cancellationToken).ConfigureAwait(false);
        var gathered = await _gather(PerNodeTimeout, cancellationToken).ConfigureAwait(false);
        var holders = new Dictionary<string, (string Node, string Controller)>(StringComparer.Ordinal);
        foreach (var node in gathered.Nodes)
        {
            foreach (var subsystem in node.Subsystems)
            {
                holders.TryAdd(subsystem.SubsystemNqn, (node.Node, subsystem.Name));
            }
        }

        var result = new JsonArray();
        foreach (var discovery in list.Discoveries.OrderBy(d => d.Name ?? d.Path, StringComparer.Ordinal))
        {
            var owned = discovery.Entries.Select(e => holders.TryGetValue(e.SubsystemNqn, out var h) ? h : ((string Node, string Controller)?)null).ToArray();
            var extra = new JsonObject
            {
                ["owner"] = discovery.Node,
                ["configured"] = discovery.Configured,
                ["hostnqn"] = discovery.HostNqn,
                ["log_reads"] = discovery.Reads,
                ["last_error"] = discovery.LastError,
                ["controllers"] = new JsonArray([.. owned.OfType<(string Node, string Controller)>().Select(h => h.Controller).Distinct(StringComparer.Ordinal).Select(c => (JsonNode?)c)]),
                ["entries"] = new JsonArray([.. discovery.Entries.Zip(owned, (entry, holder) => (JsonNode?)new JsonObject
                {
                    ["trid"] = Trid(entry.Path, entry.SubsystemNqn),
                    ["controller"] = holder?.Controller,
                    ["owner"] = holder?.Node,
                })]),
            };
            if (gathered.Unanswered.Count > 0)
            {
                extra["unanswered"] = new JsonArray([.. gathered.Unanswered.Select(n => (JsonNode?)n)]);
            }

            result.Add(new JsonObject
            {
                ["name"] = discovery.Name ?? discovery.Path,
                ["trid"] = Trid(discovery.Path, SpdkJson.DiscoveryNqn),
                ["referrals"] = new JsonArray(),
                ["actornvme"] = extra,
            });
        }

        return result;
    }

    /// <summary>A transport id from a <c>traddr:trsvcid</c> that came from a discovery log (not trusted): the raw text when it does not parse.</summary>
    private static JsonObject Trid(string path, string subnqn)
    {
        try
        {
            return SpdkJson.Trid(ClusterSubsystem.ParsePath(path), subnqn);
        }
        catch (ArgumentException)
        {
            return new JsonObject { ["trtype"] = "TCP", ["traddr"] = path, ["subnqn"] = subnqn };
        }
    }

    /// <summary>Every node connects with the cluster's host NQN (the entity is subsystem NQN + host NQN): another is refused, naming it.</summary>
    private void RequireClusterHostNqn(RpcParams p)
    {
        if (p.OptionalNonEmptyString("hostnqn", 223) is { } hostNqn && hostNqn != Settings.HostNqn)
        {
            throw JsonRpcException.NotSupported(p.Method, "hostnqn", hostNqn, $"every node of the cluster connects as {Settings.HostNqn} (actornvme.host-nqn)");
        }
    }

    /// <summary>A boolean SPDK takes per controller that a cluster node takes from its configuration: true is refused unless the node is set so.</summary>
    private static void RequireNodeSetting(RpcParams p, string name, bool nodeSetting, string why)
    {
        if (p.OptionalBool(name) is true && !nodeSetting)
        {
            throw JsonRpcException.NotSupported(p.Method, name, "true", why);
        }
    }

    /// <summary>The loss-timeout options given, checked by SPDK's rules against this node's settings (-EINVAL naming them).</summary>
    private DesiredState.AttachOptions? AttachOptionsOf(RpcParams p)
    {
        if (SpdkRpcService.Resiliency(p, Settings.Resiliency) is null)
        {
            return null;
        }

        return new DesiredState.AttachOptions(
            p.OptionalInt64("ctrlr_loss_timeout_sec", -1, int.MaxValue),
            p.OptionalInt64("reconnect_delay_sec", 0, uint.MaxValue),
            p.OptionalInt64("fast_io_fail_timeout_sec", 0, uint.MaxValue));
    }

    /// <summary>One command to the desired state; a coordinator that does not answer in time is -ETIMEDOUT, saying so.</summary>
    private async Task<T> CommandAsync<T>(string method, Func<NvmeCluster, Task<T>> command, CancellationToken cancellationToken)
    {
        try
        {
            return await command(Cluster).WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (AskTimeoutException)
        {
            throw new JsonRpcException(
                JsonRpcErrorCodes.TimedOut,
                $"Connection timed out: {method}: the cluster's discovery coordinator did not answer within {CommandTimeout.TotalSeconds:0.#} s (is the cluster up, with its minimum members joined?)");
        }
    }

    /// <summary>Undoes what a failed request started; its own failure changes nothing in the answer.</summary>
    private async Task WithdrawAsync(Func<NvmeCluster, Task<DesiredState.Result>> undo)
    {
        try
        {
            await undo(Cluster).ConfigureAwait(false);
        }
        catch (AskTimeoutException)
        {
        }
    }

    /// <summary>A refusal of the desired state as SPDK answers it.</summary>
    private static JsonRpcException Refused(string method, DesiredState.Result result, int notFoundCode) => result.Refused switch
    {
        RefusalKind.Exists => new JsonRpcException(JsonRpcErrorCodes.Exists, $"File exists: {method}: {result.Message}"),
        RefusalKind.NotFound => new JsonRpcException(notFoundCode, $"{(notFoundCode == JsonRpcErrorCodes.NoDevice ? "No such device" : "No such file or directory")}: {method}: {result.Message}"),
        RefusalKind.Configured => new JsonRpcException(JsonRpcErrorCodes.NotPermitted, $"Operation not permitted: {method}: {result.Message}"),
        _ => JsonRpcException.InvalidValue($"{method}: {result.Message}"),
    };
}
