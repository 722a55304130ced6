using System.Text.Json.Nodes;
using Akka.Actor;
using ActorNvme.Actors.Connection;
using ActorNvme.Actors.Host;
using ActorNvme.Actors.Settings;
using ActorNvme.Actors.Subsystem;
using ActorNvme.Host.JsonRpc;
using ActorNvme.Io;
using ActorNvme.Protocol.Auth;
using ActorNvme.Transport;
using Microsoft.Extensions.Logging;

namespace ActorNvme.Host.Spdk;

public sealed partial class SpdkRpcService
{
    /// <summary>Every parameter name SPDK's bdev_nvme_set_options knows (across its releases).</summary>
    public static readonly IReadOnlyCollection<string> SetOptionsParameters =
    [
        "action_on_timeout", "timeout_us", "timeout_admin_us", "keep_alive_timeout_ms", "retry_count", "arbitration_burst",
        "low_priority_weight", "medium_priority_weight", "high_priority_weight", "nvme_adminq_poll_period_us",
        "nvme_ioq_poll_period_us", "io_queue_requests", "delay_cmd_submit", "transport_retry_count", "bdev_retry_count",
        "transport_ack_timeout", "ctrlr_loss_timeout_sec", "reconnect_delay_sec", "fast_io_fail_timeout_sec",
        "disable_auto_failback", "generate_uuids", "transport_tos", "nvme_error_stat", "rdma_srq_size", "io_path_stat",
        "allow_accel_sequence", "rdma_max_cq_size", "rdma_cm_event_timeout_ms", "dhchap_digests", "dhchap_dhgroups",
        "rdma_umr_per_io", "tcp_connect_timeout_ms", "enable_flush",
    ];

    private static readonly string[] ResiliencyParameters = ["ctrlr_loss_timeout_sec", "reconnect_delay_sec", "fast_io_fail_timeout_sec"];

    private static readonly TimeSpan DefaultAttachTimeout = TimeSpan.FromSeconds(60);

    private Dictionary<string, Method> BuildMethods() => new(StringComparer.Ordinal)
    {
        ["rpc_get_methods"] = new(["current", "include_aliases"], GetMethods, AtStartup: true),
        ["spdk_get_version"] = new([], (_, _) => Task.FromResult<JsonNode?>(VersionInfo.Json("ActorNvme")), AtStartup: true),
        ["framework_start_init"] = new([], async (_, _) =>
        {
            await InitializeAsync().ConfigureAwait(false);
            return true;
        }, AtStartup: true, AtRuntime: false),
        ["framework_wait_init"] = new([], async (_, cancellationToken) =>
        {
            await _initialized.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
            return true;
        }, AtStartup: true),
        ["bdev_nvme_set_options"] = new(SetOptionsParameters, SetOptions, AtStartup: true),
        ["bdev_nvme_start_discovery"] = new(
            ["name", "trtype", "traddr", "adrfam", "trsvcid", "hostnqn", "wait_for_attach", "attach_timeout_ms", .. ResiliencyParameters, "dhchap_key", "dhchap_ctrlr_key"],
            StartDiscovery),
        ["keyring_file_add_key"] = new(["name", "path"], (p, _) =>
        {
            _keyring.Add(p.RequiredNonEmptyString("name", 255), p.RequiredNonEmptyString("path", 4096));
            return Task.FromResult<JsonNode?>(true);
        }, AtStartup: true),
        ["keyring_file_remove_key"] = new(["name"], (p, _) =>
        {
            _keyring.Remove(p.RequiredNonEmptyString("name", 255));
            return Task.FromResult<JsonNode?>(true);
        }, AtStartup: true),
        ["keyring_get_keys"] = new([], (_, _) => Task.FromResult<JsonNode?>(_keyring.List()), AtStartup: true),
        ["bdev_nvme_stop_discovery"] = new(["name"], async (p, ct) =>
        {
            string name = p.RequiredNonEmptyString("name", 64);
            await AskAsync<NvmeHost.DiscoveryStopped>(new NvmeHost.StopDiscovery(name), StopTimeout, JsonRpcErrorCodes.NoEntry, ct).ConfigureAwait(false);
            return true;
        }),
        ["bdev_nvme_get_discovery_info"] = new([], GetDiscoveryInfo),
        ["bdev_nvme_attach_controller"] = new(
            [
                "name", "trtype", "traddr", "adrfam", "trsvcid", "priority", "subnqn", "hostnqn", "hostaddr", "hostsvcid",
                "prchk_reftag", "prchk_guard", "hdgst", "ddgst", "fabrics_connect_timeout_us", "multipath", "num_io_queues",
                .. ResiliencyParameters, "psk", "max_bdevs", "dhchap_key", "dhchap_ctrlr_key", "allow_unrecognized_csi",
            ],
            AttachController),
        ["bdev_nvme_detach_controller"] = new(["name", "trtype", "traddr", "adrfam", "trsvcid", "subnqn", "hostaddr", "hostsvcid"], async (p, ct) =>
        {
            string name = p.RequiredNonEmptyString("name", 64);
            foreach (string path in new[] { "trtype", "traddr", "adrfam", "trsvcid", "subnqn", "hostaddr", "hostsvcid" }.Where(p.Has))
            {
                p.OptionalString(path, 256);
            }

            await AskAsync<NvmeHost.ControllerDetached>(new NvmeHost.DetachController(name), StopTimeout, JsonRpcErrorCodes.NoDevice, ct).ConfigureAwait(false);
            return true;
        }),
        ["bdev_nvme_reset_controller"] = new(["name", "cntlid"], async (p, ct) =>
        {
            string name = p.RequiredNonEmptyString("name", 64);
            p.OptionalInt64("cntlid", 0, ushort.MaxValue);
            await AskAsync<NvmeHost.ControllerResetStarted>(new NvmeHost.ResetController(name), ListTimeout, JsonRpcErrorCodes.NoDevice, ct).ConfigureAwait(false);
            return true;
        }),
        ["bdev_nvme_get_controllers"] = new(["name"], GetControllers),
        ["bdev_nvme_set_multipath_policy"] = new(["name", "policy", "selector", "rr_min_io"], SetMultipathPolicy),
        ["bdev_nvme_get_io_paths"] = new(["name"], GetIoPaths),
        ["bdev_get_bdevs"] = new(["name", "timeout"], GetBdevs),
        ["actornvme_get_ledger"] = new([], GetLedger, AtStartup: true),
    };

    /// <summary>
    /// The ownership ledger (ActorNvme's own method): what every controller holds now (connections counted
    /// by the sockets themselves, pending commands, timers). A stopped controller has no entry, so scripts
    /// can check after each loss or detach that nothing was left behind.
    /// </summary>
    private Task<JsonNode?> GetLedger(RpcParams p, CancellationToken cancellationToken)
    {
        var ledger = OwnershipLedger.Get(_system);
        var owners = ledger.Snapshot().OrderBy(pair => pair.Key, StringComparer.Ordinal).Select(pair => (JsonNode?)new JsonObject
        {
            ["owner"] = pair.Key,
            ["connections"] = pair.Value.Connections,
            ["pending_commands"] = pair.Value.PendingCommands,
            ["timers"] = pair.Value.Timers,
        });
        var total = ledger.Total;
        return Task.FromResult<JsonNode?>(new JsonObject
        {
            ["total"] = new JsonObject { ["connections"] = total.Connections, ["pending_commands"] = total.PendingCommands, ["timers"] = total.Timers },
            ["owners"] = new JsonArray([.. owners]),
        });
    }

    private Task<JsonNode?> GetMethods(RpcParams p, CancellationToken cancellationToken)
    {
        bool current = p.OptionalBool("current") ?? false;
        p.OptionalBool("include_aliases");
        var names = _methods
            .Where(m => !current || (IsInitialized ? m.Value.AtRuntime : m.Value.AtStartup))
            .Select(m => m.Key)
            .Order(StringComparer.Ordinal)
            .Select(n => (JsonNode?)n);
        return Task.FromResult<JsonNode?>(new JsonArray([.. names]));
    }

    private async Task<JsonNode?> SetOptions(RpcParams p, CancellationToken cancellationToken)
    {
        var current = Settings;
        var resiliency = Resiliency(p, current.Resiliency) ?? current.Resiliency;
        var keepAlive = current.KeepAliveTimeout;
        if (p.OptionalInt64("keep_alive_timeout_ms", 0, uint.MaxValue) is { } kato)
        {
            if (kato < 100)
            {
                throw JsonRpcException.InvalidParams($"bdev_nvme_set_options: keep_alive_timeout_ms {kato} is not supported: ActorNvme detects dead peers by Keep Alive, so it needs at least 100 ms");
            }

            keepAlive = TimeSpan.FromMilliseconds(kato);
        }

        var connectTimeout = current.ConnectTimeout;
        if (p.OptionalInt64("tcp_connect_timeout_ms", 0, uint.MaxValue) is { } connectMs and > 0)
        {
            connectTimeout = TimeSpan.FromMilliseconds(connectMs);
        }

        var ioTimeout = current.IoTimeout;
        if (p.OptionalInt64("timeout_us", 0, long.MaxValue / 10) is { } timeoutUs)
        {
            if (timeoutUs is > 0 and < 100_000)
            {
                throw JsonRpcException.InvalidParams($"bdev_nvme_set_options: timeout_us {timeoutUs} is not supported: ActorNvme checks I/O progress, so it needs 0 (off) or at least 100000");
            }

            ioTimeout = TimeSpan.FromMicroseconds(timeoutUs);
        }

        var ioTimeoutAction = current.IoTimeoutAction;
        if (p.OptionalString("action_on_timeout", 16) is { } action)
        {
            ioTimeoutAction = action switch
            {
                "none" => IoTimeoutAction.None,
                "reset" => IoTimeoutAction.Reset,
                "abort" => IoTimeoutAction.Abort,
                _ => throw JsonRpcException.InvalidParams($"bdev_nvme_set_options: parameter 'action_on_timeout' must be none, reset or abort, not '{action}'"),
            };
        }

        var adminTimeout = current.AdminCommandTimeout;
        if (p.OptionalInt64("timeout_admin_us", 0, long.MaxValue / 10) is { } adminUs and > 0)
        {
            // 0 is SPDK's "off"; an admin command is never left unanswered here, so 0 keeps admin-command-timeout.
            adminTimeout = TimeSpan.FromMicroseconds(adminUs);
        }

        var ioRetries = current.IoRetries;
        if (p.OptionalInt64("bdev_retry_count", -1, int.MaxValue) is { } retryCount)
        {
            ioRetries = (int)retryCount; // -1: no limit
        }

        var ignored = new List<string>();
        foreach (string name in p.Names.Where(n => !ResiliencyParameters.Contains(n) && n is not ("keep_alive_timeout_ms" or "tcp_connect_timeout_ms" or "timeout_us" or "action_on_timeout" or "timeout_admin_us" or "bdev_retry_count")))
        {
            p.AcceptAny(name);
            ignored.Add(name);
        }

        var updated = (current with { Resiliency = resiliency, KeepAliveTimeout = keepAlive, ConnectTimeout = connectTimeout, IoTimeout = ioTimeout, IoTimeoutAction = ioTimeoutAction, AdminCommandTimeout = adminTimeout, IoRetries = ioRetries }).Validated();
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (Host is not null)
            {
                // As SPDK: the options are global, so they may change only while nothing uses them.
                var controllers = await AskAsync<NvmeHost.ControllerList>(NvmeHost.ListControllers.Instance, ListTimeout, JsonRpcErrorCodes.NoDevice, cancellationToken).ConfigureAwait(false);
                var discoveries = await AskAsync<NvmeHost.DiscoveryInfoList>(NvmeHost.GetDiscoveryInfo.Instance, ListTimeout, JsonRpcErrorCodes.NoDevice, cancellationToken).ConfigureAwait(false);
                if (controllers.Controllers.Count > 0 || discoveries.Services.Count > 0)
                {
                    throw new JsonRpcException(JsonRpcErrorCodes.NotPermitted, "Operation not permitted: bdev_nvme_set_options must come before any controller is attached or discovery started");
                }

                // Nothing runs yet: the host takes the new options (answered once it holds nothing).
                await AskAsync<NvmeHost.ResetCompleted>(new NvmeHost.Reset(updated, TimeSpan.FromSeconds(5)), ListTimeout * 2, JsonRpcErrorCodes.NoDevice, cancellationToken).ConfigureAwait(false);
                Volatile.Write(ref _settings, updated);
            }
            else
            {
                Volatile.Write(ref _settings, updated);
            }
        }
        finally
        {
            _gate.Release();
        }

        _logger.LogInformation(
            "bdev_nvme_set_options: ctrlr_loss_timeout_sec {Loss}, reconnect_delay_sec {Delay}, fast_io_fail_timeout_sec {Fast}, keep_alive_timeout_ms {Kato}",
            updated.Resiliency.CtrlrLossTimeout.TotalSeconds,
            updated.Resiliency.ReconnectDelay.TotalSeconds,
            updated.Resiliency.FastIoFailTimeout.TotalSeconds,
            updated.KeepAliveTimeout.TotalMilliseconds);
        if (ignored.Count > 0)
        {
            _logger.LogInformation("bdev_nvme_set_options: not applicable to ActorNvme, accepted and ignored: {Names}", string.Join(", ", ignored));
        }

        return true;
    }

    private async Task<JsonNode?> StartDiscovery(RpcParams p, CancellationToken cancellationToken)
    {
        string name = p.RequiredNonEmptyString("name", 64);
        var address = Address(p, defaultPort: 8009);
        string? hostNqn = p.OptionalNonEmptyString("hostnqn", 223);
        long? attachTimeoutMs = p.OptionalInt64("attach_timeout_ms", 0, int.MaxValue);
        bool wait = (p.OptionalBool("wait_for_attach") ?? false) || attachTimeoutMs > 0;
        var resiliency = Resiliency(p, Settings.Resiliency);
        var timeout = attachTimeoutMs is > 0 ? TimeSpan.FromMilliseconds(attachTimeoutMs.Value) : DefaultAttachTimeout;
        var request = new NvmeHost.StartDiscovery(name, address, hostNqn, resiliency, wait, timeout, DhChapFromKeyring(p, "bdev_nvme_start_discovery"));
        await AskAsync<NvmeHost.DiscoveryStarted>(request, wait ? timeout + TimeSpan.FromSeconds(10) : ListTimeout, JsonRpcErrorCodes.NoEntry, cancellationToken).ConfigureAwait(false);
        return true;
    }

    private async Task<JsonNode?> AttachController(RpcParams p, CancellationToken cancellationToken)
    {
        string name = p.RequiredNonEmptyString("name", 64);
        var address = Address(p, defaultPort: 4420);
        string subnqn = p.OptionalNonEmptyString("subnqn", 223) ?? throw JsonRpcException.InvalidParams("bdev_nvme_attach_controller: missing required parameter 'subnqn' (an NVMe/TCP controller is reached through its subsystem NQN)");
        string? hostNqn = p.OptionalNonEmptyString("hostnqn", 223);
        var multipath = p.OptionalString("multipath", 16)?.ToLowerInvariant() switch
        {
            null or "disable" => MultipathMode.Disable,
            "failover" => MultipathMode.Failover,
            "multipath" => MultipathMode.Multipath,
            var other => throw JsonRpcException.InvalidParams($"bdev_nvme_attach_controller: parameter 'multipath' must be disable, failover or multipath, not '{other}'"),
        };

        foreach (string digest in new[] { "hdgst", "ddgst" })
        {
            if (p.OptionalBool(digest) == true)
            {
                throw JsonRpcException.InvalidParams($"bdev_nvme_attach_controller: parameter '{digest}' true is not supported per controller; set actornvme.digests in akka.hocon");
            }
        }

        if (p.OptionalString("psk", 4096) is not null)
        {
            throw JsonRpcException.InvalidParams("bdev_nvme_attach_controller: parameter 'psk' is not supported (no TLS in ActorNvme)");
        }

        var dhChap = DhChapFromKeyring(p, "bdev_nvme_attach_controller");

        p.OptionalString("hostaddr", 256);
        p.OptionalString("hostsvcid", 32);
        p.OptionalString("priority", 16);
        p.OptionalBool("prchk_reftag");
        p.OptionalBool("prchk_guard");
        p.OptionalBool("allow_unrecognized_csi");
        p.OptionalInt64("num_io_queues", 1, ushort.MaxValue + 1);
        p.OptionalInt64("max_bdevs", 1, uint.MaxValue);
        TimeSpan? attachTimeout = p.OptionalInt64("fabrics_connect_timeout_us", 1000, long.MaxValue / 10) is { } us ? TimeSpan.FromMicroseconds(us) : null;
        var resiliency = Resiliency(p, Settings.Resiliency);

        var request = new NvmeHost.AttachController(name, address, subnqn, hostNqn, resiliency, attachTimeout, multipath, dhChap);
        var wait = (attachTimeout ?? Settings.ConnectTimeout * 2) + TimeSpan.FromSeconds(10);
        NvmeHost.ControllerAttached attached;
        try
        {
            attached = await AskAsync<NvmeHost.ControllerAttached>(request, wait, JsonRpcErrorCodes.NoDevice, cancellationToken).ConfigureAwait(false);
        }
        catch (JsonRpcException e) when (e.Code == JsonRpcErrorCodes.Exists && multipath == MultipathMode.Disable && e.Message.Contains("already exists", StringComparison.Ordinal))
        {
            throw new JsonRpcException(JsonRpcErrorCodes.Exists, $"{e.Message}; to add a path to it, pass multipath (failover or multipath) with the same subnqn");
        }

        // Names in namespace order, as SPDK lists them (JsonNodes do not compare: order before converting).
        return new JsonArray([.. attached.Devices.OrderBy(d => d.NamespaceId).Select(d => (JsonNode?)d.Name)]);
    }

    /// <summary>
    /// dhchap_key / dhchap_ctrlr_key name keys of the keyring (keyring_file_add_key), as in SPDK; their files are
    /// read now, so a bad file is refused here. The offered hashes and groups are the settings'.
    /// </summary>
    private DhChapHostCredentials? DhChapFromKeyring(RpcParams p, string method)
    {
        string? hostKey = p.OptionalNonEmptyString("dhchap_key", 255);
        string? controllerKey = p.OptionalNonEmptyString("dhchap_ctrlr_key", 255);
        if (hostKey is null)
        {
            return controllerKey is null ? null : throw JsonRpcException.InvalidParams($"{method}: dhchap_ctrlr_key needs dhchap_key (bidirectional authentication needs the host's key too)");
        }

        var defaults = Settings.DhChap;
        return new DhChapHostCredentials(_keyring.Load(hostKey, "dhchap_key"), controllerKey is null ? null : _keyring.Load(controllerKey, "dhchap_ctrlr_key"))
        {
            Hashes = defaults?.Hashes ?? DhChapHashes.All,
            Groups = defaults?.Groups ?? DhChapGroups.All,
        };
    }

    private async Task<JsonNode?> GetDiscoveryInfo(RpcParams p, CancellationToken cancellationToken)
    {
        var list = await AskAsync<NvmeHost.DiscoveryInfoList>(NvmeHost.GetDiscoveryInfo.Instance, ListTimeout, JsonRpcErrorCodes.NoDevice, cancellationToken).ConfigureAwait(false);
        var result = new JsonArray();
        foreach (var service in list.Services.OrderBy(s => s.Name, StringComparer.Ordinal))
        {
            result.Add(new JsonObject
            {
                ["name"] = service.Name,
                ["trid"] = SpdkJson.Trid(service.Address, SpdkJson.DiscoveryNqn),
                ["referrals"] = new JsonArray([.. service.Referrals.Select(r => (JsonNode?)new JsonObject { ["trid"] = SpdkJson.Trid(r, SpdkJson.DiscoveryNqn) })]),
                ["actornvme"] = new JsonObject
                {
                    ["hostnqn"] = service.HostNqn,
                    ["discovery_controller_live"] = service.DiscoveryControllerLive,
                    ["generation_counter"] = service.GenerationCounter is { } g ? (JsonNode)g : null,
                    ["log_reads"] = service.LogReads,
                    ["controllers"] = new JsonArray([.. service.Subsystems.Select(s => (JsonNode?)s)]),
                    ["entries"] = new JsonArray([.. service.Entries.Select(e => (JsonNode?)new JsonObject
                    {
                        ["trid"] = SpdkJson.Trid(e.Address, e.SubsystemNqn),
                        ["controller"] = e.Controller,
                    })]),
                    ["alternate_addresses"] = new JsonArray([.. (service.AlternateAddresses ?? []).Select(a => (JsonNode?)SpdkJson.Trid(a, SpdkJson.DiscoveryNqn))]),
                    ["skipped"] = new JsonArray([.. (service.Skipped ?? []).Select(k => (JsonNode?)new JsonObject
                    {
                        ["subnqn"] = k.SubsystemNqn,
                        ["address"] = k.Address,
                        ["reason"] = k.Reason,
                    })]),
                },
            });
        }

        return result;
    }

    /// <summary>SPDK's bdev_nvme_set_multipath_policy: name is a block device; the policy applies to every block device of its controller.</summary>
    private async Task<JsonNode?> SetMultipathPolicy(RpcParams p, CancellationToken cancellationToken)
    {
        string name = p.RequiredNonEmptyString("name", 64);
        var mode = p.RequiredNonEmptyString("policy", 32) switch
        {
            "active_passive" => MultipathPolicyMode.ActivePassive,
            "active_active" => MultipathPolicyMode.ActiveActive,
            var other => throw JsonRpcException.InvalidParams($"bdev_nvme_set_multipath_policy: parameter 'policy' must be active_passive or active_active, not '{other}'"),
        };
        var selector = p.OptionalString("selector", 32) switch
        {
            null or "round_robin" => MultipathSelector.RoundRobin,
            "queue_depth" => MultipathSelector.QueueDepth,
            var other => throw JsonRpcException.InvalidParams($"bdev_nvme_set_multipath_policy: parameter 'selector' must be round_robin or queue_depth, not '{other}'"),
        };
        if (mode == MultipathPolicyMode.ActivePassive && p.Names.Contains("selector"))
        {
            throw JsonRpcException.InvalidParams("bdev_nvme_set_multipath_policy: parameter 'selector' applies only to policy active_active");
        }

        long rrMinIo = p.OptionalInt64("rr_min_io", 1, int.MaxValue) ?? 1;
        if (p.Names.Contains("rr_min_io") && (mode != MultipathPolicyMode.ActiveActive || selector != MultipathSelector.RoundRobin))
        {
            throw JsonRpcException.InvalidParams("bdev_nvme_set_multipath_policy: parameter 'rr_min_io' applies only to policy active_active with selector round_robin");
        }

        var devices = await AskAsync<NvmeHost.BlockDeviceList>(NvmeHost.ListBlockDevices.Instance, ListTimeout, JsonRpcErrorCodes.NoDevice, cancellationToken).ConfigureAwait(false);
        var device = devices.Devices.FirstOrDefault(d => d.Name == name)
            ?? throw new JsonRpcException(JsonRpcErrorCodes.NoDevice, $"No such device: no block device named {name}");
        var policy = new MultipathPolicy(mode, selector, (int)rrMinIo);
        await AskAsync<Subsystem.MultipathPolicySet>(new NvmeHost.ToSubsystem(device.Controller, new Subsystem.SetMultipathPolicy(policy)), ListTimeout, JsonRpcErrorCodes.NoDevice, cancellationToken).ConfigureAwait(false);
        return true;
    }

    /// <summary>An ANA state as SPDK's bdev_nvme_get_io_paths prints it.</summary>
    internal static string AnaStateName(Protocol.Data.AnaState state) => state switch
    {
        Protocol.Data.AnaState.Optimized => "optimized",
        Protocol.Data.AnaState.NonOptimized => "non_optimized",
        Protocol.Data.AnaState.Inaccessible => "inaccessible",
        Protocol.Data.AnaState.PersistentLoss => "persistent_loss",
        Protocol.Data.AnaState.Change => "change",
        _ => "unknown",
    };

    /// <summary>SPDK's bdev_nvme_get_io_paths: {"poll_groups": [{"io_paths": [...]}]}, one poll group here (I/O is not bound to threads).</summary>
    private async Task<JsonNode?> GetIoPaths(RpcParams p, CancellationToken cancellationToken)
    {
        string? only = p.OptionalNonEmptyString("name", 64);
        var devices = await AskAsync<NvmeHost.BlockDeviceList>(NvmeHost.ListBlockDevices.Instance, ListTimeout, JsonRpcErrorCodes.NoDevice, cancellationToken).ConfigureAwait(false);
        var ioPaths = new JsonArray();
        foreach (string controller in devices.Devices.Where(d => only is null || d.Name == only).Select(d => d.Controller).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal))
        {
            var answer = await AskAsync<Subsystem.IoPaths>(new NvmeHost.ToSubsystem(controller, new Subsystem.GetIoPaths(only)), ListTimeout, JsonRpcErrorCodes.NoDevice, cancellationToken).ConfigureAwait(false);
            foreach (var path in answer.Paths.OrderBy(x => x.BlockDevice, StringComparer.Ordinal))
            {
                ioPaths.Add(new JsonObject
                {
                    ["bdev_name"] = path.BlockDevice,
                    ["cntlid"] = path.ControllerId,
                    ["current"] = path.Current,
                    ["connected"] = path.Connected,
                    ["accessible"] = path.Accessible,
                    ["ana_state"] = AnaStateName(path.AnaState),
                    ["transport"] = SpdkJson.Trid(path.Address, path.SubsystemNqn),
                });
            }
        }

        return new JsonObject { ["poll_groups"] = new JsonArray(new JsonObject { ["io_paths"] = ioPaths }) };
    }

    private async Task<JsonNode?> GetControllers(RpcParams p, CancellationToken cancellationToken)
    {
        string? only = p.OptionalNonEmptyString("name", 64);
        var list = await AskAsync<NvmeHost.ControllerList>(NvmeHost.ListControllers.Instance, ListTimeout, JsonRpcErrorCodes.NoDevice, cancellationToken).ConfigureAwait(false);
        var result = new JsonArray();
        foreach (var controller in list.Controllers)
        {
            var paths = controller.Paths.ToArray(); // the registry holds NVM paths only: discovery controllers are the services'
            if (paths.Length == 0 || (only is not null && controller.Name != only))
            {
                continue;
            }

            string hostNqn = controller.HostNqn;
            result.Add(new JsonObject
            {
                ["name"] = controller.Name,
                ["ctrlrs"] = new JsonArray([.. paths.Select(path => (JsonNode?)new JsonObject
                {
                    ["state"] = SpdkJson.State(path.State),
                    ["trid"] = SpdkJson.Trid(path.Address, controller.SubsystemNqn),
                    ["host"] = new JsonObject { ["nqn"] = hostNqn, ["addr"] = string.Empty, ["svcid"] = string.Empty },
                    ["actornvme"] = new JsonObject { ["path"] = path.Path, ["state"] = path.State.ToString(), ["reason"] = path.Reason, ["origin"] = controller.Origin },
                })]),
            });
        }

        if (only is not null && result.Count == 0)
        {
            throw new JsonRpcException(JsonRpcErrorCodes.NoDevice, $"No such device: Controller {only} does not exist");
        }

        return result;
    }

    private async Task<JsonNode?> GetBdevs(RpcParams p, CancellationToken cancellationToken)
    {
        string? only = p.OptionalNonEmptyString("name", 64);
        long timeoutMs = p.OptionalInt64("timeout", 0, 3_600_000) ?? 0;
        var until = DateTime.UtcNow + TimeSpan.FromMilliseconds(timeoutMs);
        while (true)
        {
            var devices = await AskAsync<NvmeHost.BlockDeviceList>(NvmeHost.ListBlockDevices.Instance, ListTimeout, JsonRpcErrorCodes.NoDevice, cancellationToken).ConfigureAwait(false);
            var chosen = devices.Devices.Where(d => only is null || d.Name == only).ToArray();
            if (only is null || chosen.Length > 0)
            {
                var controllers = chosen.Length == 0
                    ? new NvmeHost.ControllerList([])
                    : await AskAsync<NvmeHost.ControllerList>(NvmeHost.ListControllers.Instance, ListTimeout, JsonRpcErrorCodes.NoDevice, cancellationToken).ConfigureAwait(false);
                return new JsonArray([.. chosen.Select(d => (JsonNode?)Bdev(d, controllers))]);
            }

            if (DateTime.UtcNow >= until)
            {
                throw new JsonRpcException(JsonRpcErrorCodes.NoDevice, $"No such device: {only}");
            }

            await Task.Delay(TimeSpan.FromMilliseconds(20), cancellationToken).ConfigureAwait(false);
        }
    }

    private static JsonObject Bdev(BlockDeviceInfo device, NvmeHost.ControllerList controllers)
    {
        var paths = controllers.Controllers.Where(c => c.Name == device.Controller).SelectMany(c => c.Paths).ToArray();
        return new JsonObject
        {
            ["name"] = device.Name,
            ["aliases"] = new JsonArray(),
            ["product_name"] = "NVMe disk",
            ["block_size"] = device.BlockSize,
            ["num_blocks"] = device.BlockCount,
            ["claimed"] = false,
            ["zoned"] = false,
            ["supported_io_types"] = new JsonObject
            {
                ["read"] = true,
                ["write"] = true,
                ["unmap"] = false,
                ["write_zeroes"] = false,
                ["flush"] = true,
                ["reset"] = true,
                ["compare"] = false,
                ["compare_and_write"] = false,
                ["abort"] = false,
                ["nvme_admin"] = false,
                ["nvme_io"] = false,
            },
            ["driver_specific"] = new JsonObject
            {
                ["nvme"] = new JsonArray([.. paths.Select(path => (JsonNode?)new JsonObject
                {
                    ["trid"] = SpdkJson.Trid(path.Address, device.SubsystemNqn),
                    ["ctrlr_data"] = new JsonObject { ["subnqn"] = device.SubsystemNqn },
                    ["ns_data"] = new JsonObject { ["id"] = device.NamespaceId },
                })]),
                ["mp_policy"] = "active_passive",
            },
        };
    }

    /// <summary>trtype, traddr, adrfam and trsvcid, checked as SPDK checks them.</summary>
    private static TransportAddress Address(RpcParams p, int defaultPort)
    {
        string trtype = p.RequiredNonEmptyString("trtype", 16);
        if (!trtype.Equals("tcp", StringComparison.OrdinalIgnoreCase))
        {
            throw JsonRpcException.InvalidParams($"{p.Method}: parameter 'trtype' is '{trtype}', but ActorNvme speaks NVMe/TCP only (trtype tcp)");
        }

        string traddr = p.RequiredNonEmptyString("traddr", 255);
        if (p.OptionalString("adrfam", 16) is { } adrfam)
        {
            bool v6 = traddr.Contains(':', StringComparison.Ordinal);
            string expected = v6 ? "ipv6" : "ipv4";
            if (!adrfam.Equals("ipv4", StringComparison.OrdinalIgnoreCase) && !adrfam.Equals("ipv6", StringComparison.OrdinalIgnoreCase))
            {
                throw JsonRpcException.InvalidParams($"{p.Method}: parameter 'adrfam' must be ipv4 or ipv6 for tcp, not '{adrfam}'");
            }

            if (!adrfam.Equals(expected, StringComparison.OrdinalIgnoreCase) && System.Net.IPAddress.TryParse(traddr, out _))
            {
                throw JsonRpcException.InvalidParams($"{p.Method}: parameter 'adrfam' is {adrfam}, but traddr '{traddr}' is an {expected} address");
            }
        }

        return new TransportAddress(traddr, p.OptionalPort("trsvcid") ?? defaultPort);
    }

    /// <summary>The loss-timeout trio, when any of it is given, validated by SPDK's rules; each missing value comes from <paramref name="defaults"/>.</summary>
    private static ResiliencySettings? Resiliency(RpcParams p, ResiliencySettings defaults)
    {
        long? loss = p.OptionalInt64("ctrlr_loss_timeout_sec", -1, int.MaxValue);
        long? delay = p.OptionalInt64("reconnect_delay_sec", 0, uint.MaxValue);
        long? fast = p.OptionalInt64("fast_io_fail_timeout_sec", 0, uint.MaxValue);
        if (loss is null && delay is null && fast is null)
        {
            return null;
        }

        long l = loss ?? (long)defaults.CtrlrLossTimeout.TotalSeconds;
        long d = delay ?? (long)defaults.ReconnectDelay.TotalSeconds;
        long f = fast ?? (long)defaults.FastIoFailTimeout.TotalSeconds;
        try
        {
            return ResiliencySettings.FromSeconds(l, d, f);
        }
        catch (InvalidNvmeSettingsException e)
        {
            throw JsonRpcException.InvalidParams($"{p.Method}: ctrlr_loss_timeout_sec {l}, reconnect_delay_sec {d}, fast_io_fail_timeout_sec {f} do not fit together: {e.Message} (rule {e.Rule})");
        }
    }
}
