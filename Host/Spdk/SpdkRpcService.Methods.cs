using System.Text.Json.Nodes;
using Akka.Actor;
using ActorNvme.Actors.Connection;
using ActorNvme.Actors.Host;
using ActorNvme.Actors.Settings;
using ActorNvme.Actors.Subsystem;
using ActorNvme.Host.JsonRpc;
using ActorNvme.Io;
using ActorNvme.Protocol.Tls;
using ActorNvme.Protocol.Auth;
using ActorNvme.Protocol.Tcp;
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
        "rdma_umr_per_io", "tcp_connect_timeout_ms", "enable_flush", "multipath_opts",
    ];

    /// <summary>SPDK's multipath_opts object (bdev_nvme_set_options and bdev_nvme_attach_controller).</summary>
    private static readonly string[] MultipathOptsParameters = ["policy", "selector", "min_io"];

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
            ["name", "trtype", "traddr", "adrfam", "trsvcid", "hostnqn", "wait_for_attach", "attach_timeout_ms", .. ResiliencyParameters, "dhchap_key", "dhchap_ctrlr_key", "psk"],
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
                "multipath_opts", "disable_sq_flow_control",
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
        ["bdev_nvme_set_keys"] = new(["name", "dhchap_key", "dhchap_ctrlr_key"], SetKeys),
        ["bdev_nvme_get_io_paths"] = new(["name"], GetIoPaths),
        ["bdev_get_bdevs"] = new(["name", "timeout"], GetBdevs),
        ["bdev_get_iostat"] = new(["name", "names", "per_channel", "reset_mode"], GetIoStat),
        ["bdev_reset_iostat"] = new(["name", "mode"], ResetIoStat),
        ["bdev_nvme_get_transport_statistics"] = new([], GetTransportStatistics),
        ["actornvme_get_ledger"] = new([], GetLedger, AtStartup: true),
        ["log_set_level"] = new(["level"], SetLogLevel, AtStartup: true),
        ["log_get_level"] = new([], (_, _) => Task.FromResult<JsonNode?>(LogLevelName), AtStartup: true),
        ["log_set_print_level"] = new(["level"], SetLogLevel, AtStartup: true),
        ["log_get_print_level"] = new([], (_, _) => Task.FromResult<JsonNode?>(LogLevelName), AtStartup: true),
        ["spdk_kill_instance"] = new(["sig_name"], KillInstance, AtStartup: true),
        ["framework_get_subsystems"] = new([], (_, _) => Task.FromResult<JsonNode?>(new JsonArray(new JsonObject { ["subsystem"] = "bdev", ["depends_on"] = new JsonArray() })), AtStartup: true),
        ["framework_get_config"] = new(["name", "with_batches"], GetConfig, AtStartup: true),
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

    /// <summary>
    /// SPDK's framework_get_config for the "bdev" subsystem (what rpc.py save_config writes): the calls that
    /// rebuild this state — bdev_nvme_set_options with the options in force, a start_discovery per discovery
    /// service and an attach_controller per path attached by hand. Per-controller timeouts are not kept, so
    /// the replayed controllers take the options'.
    /// </summary>
    private async Task<JsonNode?> GetConfig(RpcParams p, CancellationToken cancellationToken)
    {
        string name = p.RequiredNonEmptyString("name", 64);
        p.OptionalBool("with_batches");
        if (name != "bdev")
        {
            throw new JsonRpcException(JsonRpcErrorCodes.NoEntry, $"No such file or directory: framework_get_config: no subsystem '{name}' (ActorNvme has bdev only)");
        }

        var settings = Settings;
        var calls = new JsonArray
        {
            new JsonObject
            {
                ["method"] = "bdev_nvme_set_options",
                ["params"] = new JsonObject
                {
                    ["action_on_timeout"] = settings.IoTimeoutAction switch { IoTimeoutAction.None => "none", IoTimeoutAction.Abort => "abort", _ => "reset" },
                    ["timeout_us"] = (long)settings.IoTimeout.TotalMicroseconds,
                    ["timeout_admin_us"] = (long)settings.AdminCommandTimeout.TotalMicroseconds,
                    ["keep_alive_timeout_ms"] = (long)settings.KeepAliveTimeout.TotalMilliseconds,
                    ["transport_retry_count"] = settings.IoRetries,
                    ["bdev_retry_count"] = settings.IoPathLossRetries == int.MaxValue ? -1 : settings.IoPathLossRetries,
                    ["ctrlr_loss_timeout_sec"] = settings.Resiliency.ReconnectsForever ? -1 : (long)settings.Resiliency.CtrlrLossTimeout.TotalSeconds,
                    ["reconnect_delay_sec"] = (long)settings.Resiliency.ReconnectDelay.TotalSeconds,
                    ["fast_io_fail_timeout_sec"] = (long)settings.Resiliency.FastIoFailTimeout.TotalSeconds,
                    ["tcp_connect_timeout_ms"] = (long)settings.ConnectTimeout.TotalMilliseconds,
                },
            },
        };
        if (Host is null)
        {
            return calls;
        }

        var discoveries = await AskAsync<NvmeHost.DiscoveryInfoList>(NvmeHost.GetDiscoveryInfo.Instance, ListTimeout, JsonRpcErrorCodes.NoDevice, cancellationToken).ConfigureAwait(false);
        foreach (var service in discoveries.Services.OrderBy(s => s.Name, StringComparer.Ordinal))
        {
            var call = SpdkJson.Trid(service.Address, null);
            call.Remove("subnqn");
            call["name"] = service.Name;
            call["trtype"] = "tcp";
            call["hostnqn"] = service.HostNqn;
            call["wait_for_attach"] = false;
            calls.Add(new JsonObject { ["method"] = "bdev_nvme_start_discovery", ["params"] = call });
        }

        var controllers = await AskAsync<NvmeHost.ControllerList>(NvmeHost.ListControllers.Instance, ListTimeout, JsonRpcErrorCodes.NoDevice, cancellationToken).ConfigureAwait(false);
        foreach (var controller in controllers.Controllers.Where(c => c.DiscoveryService is null && c.Origin == "attach"))
        {
            bool first = true;
            foreach (var path in controller.Paths)
            {
                var call = SpdkJson.Trid(path.Address, controller.SubsystemNqn);
                call["name"] = controller.Name;
                call["trtype"] = "tcp";
                call["hostnqn"] = controller.HostNqn;
                if (!first || controller.Paths.Count > 1)
                {
                    call["multipath"] = "multipath";
                }

                first = false;
                calls.Add(new JsonObject { ["method"] = "bdev_nvme_attach_controller", ["params"] = call });
            }
        }

        return calls;
    }

    /// <summary>SPDK's log levels and what each means here (NOTICE and INFO both log information).</summary>
    private static readonly Dictionary<string, Microsoft.Extensions.Logging.LogLevel> LogLevels = new(StringComparer.Ordinal)
    {
        ["ERROR"] = Microsoft.Extensions.Logging.LogLevel.Error,
        ["WARNING"] = Microsoft.Extensions.Logging.LogLevel.Warning,
        ["NOTICE"] = Microsoft.Extensions.Logging.LogLevel.Information,
        ["INFO"] = Microsoft.Extensions.Logging.LogLevel.Information,
        ["DEBUG"] = Microsoft.Extensions.Logging.LogLevel.Debug,
    };

    private string LogLevelName => Volatile.Read(ref _logLevelName);

    private Task<JsonNode?> SetLogLevel(RpcParams p, CancellationToken cancellationToken)
    {
        string level = p.RequiredNonEmptyString("level", 16);
        string key = level.ToUpperInvariant();
        if (!LogLevels.TryGetValue(key, out var mapped))
        {
            throw JsonRpcException.InvalidValue($"{p.Method}: parameter 'level' must be ERROR, WARNING, NOTICE, INFO or DEBUG, not '{level}'");
        }

        var apply = LogLevelChanged ?? throw JsonRpcException.NotSupported(p.Method, "level", level, "this process has no adjustable log level");
        apply(mapped);
        Volatile.Write(ref _logLevelName, key);
        _logger.LogInformation("log level set to {Level}", key);
        return Task.FromResult<JsonNode?>(true);
    }

    private Task<JsonNode?> KillInstance(RpcParams p, CancellationToken cancellationToken)
    {
        string signal = p.RequiredNonEmptyString("sig_name", 16);
        if (signal is not ("SIGINT" or "SIGTERM" or "SIGQUIT" or "SIGKILL" or "SIGHUP"))
        {
            throw JsonRpcException.InvalidValue($"spdk_kill_instance: parameter 'sig_name' must be SIGINT, SIGTERM, SIGQUIT, SIGKILL or SIGHUP, not '{signal}'");
        }

        var stop = StopRequested ?? throw JsonRpcException.NotSupported("spdk_kill_instance", "sig_name", signal, "this process is not stopped over JSON-RPC");
        _logger.LogInformation("spdk_kill_instance {Signal}: stopping", signal);

        // After the answer has gone out: the shutdown closes the JSON-RPC server first.
        _ = Task.Delay(TimeSpan.FromMilliseconds(100), CancellationToken.None).ContinueWith(_ => stop(), CancellationToken.None, TaskContinuationOptions.None, TaskScheduler.Default);
        return Task.FromResult<JsonNode?>(true);
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
        const string Method = "bdev_nvme_set_options";
        var current = Settings;
        var resiliency = Resiliency(p, current.Resiliency) ?? current.Resiliency;
        var keepAlive = current.KeepAliveTimeout;
        if (p.OptionalInt64("keep_alive_timeout_ms", 0, uint.MaxValue) is { } kato)
        {
            if (kato == 0)
            {
                throw JsonRpcException.NotSupported(Method, "keep_alive_timeout_ms", "0", "ActorNvme detects dead controllers by Keep Alive, so it cannot be turned off");
            }

            keepAlive = TimeSpan.FromMilliseconds(kato);
            if (keepAlive < TimeSpan.FromMilliseconds(100) || keepAlive > NvmeHostSettings.MaxKeepAliveTimeout)
            {
                throw JsonRpcException.InvalidValue($"{Method}: parameter 'keep_alive_timeout_ms' is {kato}: keep-alive-timeout must be 100..{NvmeHostSettings.MaxKeepAliveTimeout.TotalMilliseconds:0} ms (rule keep-alive-timeout-range)");
            }
        }

        var connectTimeout = current.ConnectTimeout;
        if (p.OptionalInt64("tcp_connect_timeout_ms", 0, uint.MaxValue) is { } connectMs and > 0)
        {
            connectTimeout = TimeSpan.FromMilliseconds(connectMs);
        }

        var ioTimeout = current.IoTimeout;
        if (p.OptionalInt64("timeout_us", 0, long.MaxValue / 10) is { } timeoutUs)
        {
            ioTimeout = TimeSpan.FromMicroseconds(timeoutUs);
        }

        // SPDK: 0 means "as timeout_us"; ActorNvme always bounds admin commands, so 0 keeps admin-command-timeout.
        var adminTimeout = current.AdminCommandTimeout;
        if (p.OptionalInt64("timeout_admin_us", 0, long.MaxValue / 10) is { } adminUs and > 0)
        {
            adminTimeout = TimeSpan.FromMicroseconds(adminUs);
        }

        var ioTimeoutAction = current.IoTimeoutAction;
        if (p.OptionalString("action_on_timeout", 16) is { } action)
        {
            ioTimeoutAction = action switch
            {
                "none" => IoTimeoutAction.None,
                "reset" => IoTimeoutAction.Reset,
                "abort" => IoTimeoutAction.Abort,
                _ => throw JsonRpcException.InvalidValue($"{Method}: parameter 'action_on_timeout' must be none, reset or abort, not '{action}'"),
            };
        }

        // transport_retry_count (retry_count before it): retries of a command failed with a status without DNR.
        int ioRetries = current.IoRetries;
        if ((p.OptionalInt64("transport_retry_count", 0, 255) ?? p.OptionalInt64("retry_count", 0, 255)) is { } retries)
        {
            ioRetries = (int)retries;
        }

        // bdev_retry_count: resubmissions of an I/O after its path failed under it; -1 is SPDK's "without end".
        int pathLossRetries = current.IoPathLossRetries;
        if (p.OptionalInt64("bdev_retry_count", -1, int.MaxValue) is { } bdevRetries)
        {
            pathLossRetries = bdevRetries < 0 ? int.MaxValue : (int)bdevRetries;
        }

        const string NoArbitration = "NVMe/TCP controllers have no weighted round robin arbitration";
        p.RequireDefault("arbitration_burst", 0, NoArbitration, 0, 7);
        p.RequireDefault("low_priority_weight", 0, NoArbitration, 0, 255);
        p.RequireDefault("medium_priority_weight", 0, NoArbitration, 0, 255);
        p.RequireDefault("high_priority_weight", 0, NoArbitration, 0, 255);
        const string NoPolling = "completions are event driven here, nothing is polled";
        p.OptionalInt64("nvme_adminq_poll_period_us", 0, uint.MaxValue); // SPDK's default is 10000; no value changes what the host does
        p.RequireDefault("nvme_ioq_poll_period_us", 0, NoPolling, 0, uint.MaxValue);
        p.RequireDefault("io_queue_requests", 0, "the I/O queue size is actornvme.io-queue-size", 0, uint.MaxValue);
        p.RequireDefault("delay_cmd_submit", true, "submissions are always batched");
        p.RequireDefault("transport_ack_timeout", 0, "an RDMA setting", 0, 31);
        p.RequireDefault("disable_auto_failback", false, "paths are chosen by ANA state and policy; there is no preferred path to hold");
        p.RequireDefault("generate_uuids", false, "block devices are named, not given generated UUIDs");
        p.RequireDefault("nvme_error_stat", false, "no NVMe error statistics are kept");
        p.RequireDefault("io_path_stat", false, "no per-path I/O statistics are kept");

        // RDMA-only (no effect on TCP controllers in SPDK either), accel and flush: nothing to honour or refuse.
        p.OptionalInt64("transport_tos", 0, 255);
        p.OptionalInt64("rdma_srq_size", 0, uint.MaxValue);
        p.OptionalInt64("rdma_max_cq_size", 0, uint.MaxValue);
        p.OptionalInt64("rdma_cm_event_timeout_ms", 0, uint.MaxValue);
        p.OptionalBool("rdma_umr_per_io");
        p.OptionalBool("allow_accel_sequence");
        p.OptionalBool("enable_flush"); // flushes are sent to the controller either way

        // What DH-HMAC-CHAP may offer is the actornvme.dhchap-digests / dhchap-dhgroups settings (not yet per RPC).
        p.OptionalStringArray("dhchap_digests");
        p.OptionalStringArray("dhchap_dhgroups");
        if (p.OptionalObject("multipath_opts", MultipathOptsParameters) is { } multipath)
        {
            var defaultPolicy = MultipathPolicyOf(multipath, "policy", "selector", "min_io");
            if (defaultPolicy is not null && defaultPolicy.Mode != MultipathPolicyMode.ActivePassive)
            {
                throw JsonRpcException.NotSupported(Method, "multipath_opts.policy", multipath.OptionalString("policy") ?? "active_passive", "a host-wide default multipath policy; pass it per controller (bdev_nvme_attach_controller multipath_opts or bdev_nvme_set_multipath_policy)");
            }
        }

        NvmeHostSettings updated;
        try
        {
            updated = (current with
            {
                Resiliency = resiliency,
                KeepAliveTimeout = keepAlive,
                ConnectTimeout = connectTimeout,
                AdminCommandTimeout = adminTimeout,
                IoTimeout = ioTimeout,
                IoTimeoutAction = ioTimeoutAction,
                IoRetries = ioRetries,
                IoPathLossRetries = pathLossRetries,
            }).Validated();
        }
        catch (InvalidNvmeSettingsException e)
        {
            throw JsonRpcException.InvalidValue($"{Method}: {e.Message} (rule {e.Rule})");
        }

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
        // psk names a keyring key, as for attach; given, the discovery controller itself is reached over TLS with it
        // (and so is every subsystem it lists).
        var psk = PskFromKeyring(p);
        var request = new NvmeHost.StartDiscovery(name, address, hostNqn, resiliency, wait, timeout, DhChapFromKeyring(p, "bdev_nvme_start_discovery"), psk, SecureChannel: psk is not null);

        // A discovery controller that cannot be reached at all is answered at once (and the service stopped),
        // and a discovery that did not attach in time is stopped (as SPDK does), so that a retry finds the name free.
        var existing = await AskAsync<NvmeHost.DiscoveryInfoList>(NvmeHost.GetDiscoveryInfo.Instance, ListTimeout, JsonRpcErrorCodes.NoDevice, cancellationToken).ConfigureAwait(false);
        using var watch = existing.Services.Any(s => s.Name == name) ? null : ConnectFailureWatch.ForDiscovery(_system, name);
        if (!wait)
        {
            await AskAsync<NvmeHost.DiscoveryStarted>(request, ListTimeout, JsonRpcErrorCodes.NoEntry, cancellationToken).ConfigureAwait(false);
            if (watch is not null)
            {
                // As SPDK answers once its discovery controller is attached: here once it is Live, or its first
                // attempt failed for good; an attempt still pending after the connect bound is left to retry.
                var bound = Task.Delay(Settings.ConnectTimeout * 2, cancellationToken);
                if (await Task.WhenAny(watch.Live, watch.Verdict, bound).ConfigureAwait(false) == watch.Verdict)
                {
                    await UndoAsync<NvmeHost.DiscoveryStopped>(new NvmeHost.StopDiscovery(name)).ConfigureAwait(false);
                    throw await watch.Verdict.ConfigureAwait(false);
                }
            }

            return true;
        }

        try
        {
            await AskWatchingAsync<NvmeHost.DiscoveryStarted>(request, timeout + TimeSpan.FromSeconds(10), JsonRpcErrorCodes.NoEntry, watch, () => UndoAsync<NvmeHost.DiscoveryStopped>(new NvmeHost.StopDiscovery(name)), cancellationToken).ConfigureAwait(false);
        }
        catch (JsonRpcException e) when (e.Code == JsonRpcErrorCodes.TimedOut)
        {
            await UndoAsync<NvmeHost.DiscoveryStopped>(new NvmeHost.StopDiscovery(name)).ConfigureAwait(false);
            throw;
        }

        return true;
    }

    /// <summary>
    /// Asks the host and, meanwhile, watches for a failure known to be final; when that comes first, the error
    /// it names is thrown at once, after <paramref name="undo"/> has stopped what the request started.
    /// </summary>
    private async Task<T> AskWatchingAsync<T>(object request, TimeSpan timeout, int notFoundCode, ConnectFailureWatch? watch, Func<Task> undo, CancellationToken cancellationToken)
    {
        var asked = AskAsync<T>(request, timeout, notFoundCode, cancellationToken);
        if (watch is null || await Task.WhenAny(asked, watch.Verdict).ConfigureAwait(false) == asked)
        {
            return await asked.ConfigureAwait(false);
        }

        // The host still answers the request (once its undo is done); that answer is not needed.
        _ = asked.ContinueWith(static t => t.Exception, CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted, TaskScheduler.Default);
        await undo().ConfigureAwait(false);
        throw await watch.Verdict.ConfigureAwait(false);
    }

    /// <summary>Stops what a failed request started, so that its name is free when the error is answered.</summary>
    private async Task UndoAsync<T>(object request)
    {
        try
        {
            await AskAsync<T>(request, StopTimeout, JsonRpcErrorCodes.NoDevice, CancellationToken.None).ConfigureAwait(false);
        }
        catch (JsonRpcException e)
        {
            _logger.LogDebug("undo {Request}: {Message}", request.GetType().Name, e.Message);
        }
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
            var other => throw JsonRpcException.InvalidValue($"bdev_nvme_attach_controller: parameter 'multipath' must be disable, failover or multipath, not '{other}'"),
        };

        const string Method = "bdev_nvme_attach_controller";
        var dhChap = DhChapFromKeyring(p, Method);
        var psk = PskFromKeyring(p);

        RefuseUnhonouredAttachParameters(p);

        // Per controller, as in SPDK: each given value replaces the host setting (akka.hocon) for this controller.
        bool? headerDigest = p.OptionalBool("hdgst");
        bool? dataDigest = p.OptionalBool("ddgst");
        DigestOptions? digests = headerDigest is null && dataDigest is null
            ? null
            : ((headerDigest ?? Settings.Digests.HasFlag(DigestOptions.Header)) ? DigestOptions.Header : DigestOptions.None)
              | ((dataDigest ?? Settings.Digests.HasFlag(DigestOptions.Data)) ? DigestOptions.Data : DigestOptions.None);
        var overrides = new NvmeHost.ControllerOverrides(
            DisableSqFlowControl: p.OptionalBool("disable_sq_flow_control"),
            IoQueues: p.OptionalInt64("num_io_queues", 1, 65534) is { } queues ? (int)queues : null,
            Digests: digests);
        if (overrides.ApplyTo(Settings) is var effective && (effective.Digests != Settings.Digests || effective.DisableSqFlowControl != Settings.DisableSqFlowControl))
        {
            // rpc.py sends hdgst, ddgst and disable_sq_flow_control (false unless asked) with every attach.
            _logger.LogInformation(
                "{Name}: digests {Digests} and SQ flow control disabled {Disabled} as the request says, not actornvme.digests {ConfigDigests} / disable-sq-flow-control {ConfigDisabled}",
                name,
                effective.Digests,
                effective.DisableSqFlowControl,
                Settings.Digests,
                Settings.DisableSqFlowControl);
        }

        var policy = p.OptionalObject("multipath_opts", MultipathOptsParameters) is { } opts ? MultipathPolicyOf(opts, "policy", "selector", "min_io") : null;
        TimeSpan? attachTimeout = p.OptionalInt64("fabrics_connect_timeout_us", 1000, long.MaxValue / 10) is { } us ? TimeSpan.FromMicroseconds(us) : null;
        var resiliency = Resiliency(p, Settings.Resiliency);

        var request = new NvmeHost.AttachController(name, address, subnqn, hostNqn, resiliency, attachTimeout, multipath, dhChap, overrides, psk);
        var wait = (attachTimeout ?? Settings.ConnectTimeout * 2) + TimeSpan.FromSeconds(10);

        // A new controller (not a further path of one) is answered as soon as its first attempt fails for good.
        var controllers = await AskAsync<NvmeHost.ControllerList>(NvmeHost.ListControllers.Instance, ListTimeout, JsonRpcErrorCodes.NoDevice, cancellationToken).ConfigureAwait(false);
        using var watch = controllers.Controllers.Any(c => c.Name == name) ? null : ConnectFailureWatch.ForController(_system, name);
        NvmeHost.ControllerAttached attached;
        try
        {
            attached = await AskWatchingAsync<NvmeHost.ControllerAttached>(request, wait, JsonRpcErrorCodes.NoDevice, watch, () => UndoAsync<NvmeHost.ControllerDetached>(new NvmeHost.DetachController(name)), cancellationToken).ConfigureAwait(false);
        }
        catch (JsonRpcException e) when (e.Code == JsonRpcErrorCodes.Exists && multipath == MultipathMode.Disable && e.Message.Contains("already exists", StringComparison.Ordinal))
        {
            throw new JsonRpcException(JsonRpcErrorCodes.Exists, $"{e.Message}; to add a path to it, pass multipath (failover or multipath) with the same subnqn");
        }

        if (policy is not null)
        {
            await AskAsync<Subsystem.MultipathPolicySet>(new NvmeHost.ToSubsystem(name, new Subsystem.SetMultipathPolicy(policy)), ListTimeout, JsonRpcErrorCodes.NoDevice, cancellationToken).ConfigureAwait(false);
        }

        // Names in namespace order, as SPDK lists them (JsonNodes do not compare: order before converting).
        return new JsonArray([.. attached.Devices.OrderBy(d => d.NamespaceId).Select(d => (JsonNode?)d.Name)]);
    }

    /// <summary>psk names a key of the keyring holding a TLS PSK interchange string, as in SPDK; read now, so a bad file is refused here.</summary>
    private NvmeTlsPsk? PskFromKeyring(RpcParams p) =>
        p.OptionalNonEmptyString("psk", 255) is { } key ? _keyring.LoadPsk(key, "psk") : null;

    /// <summary>
    /// SPDK's bdev_nvme_set_keys: new DH-HMAC-CHAP keys (keyring names; neither: no authentication from now on) for the
    /// controller named, kept for its later connections; each Live path re-authenticates its admin and I/O queues now,
    /// and the answer comes when all have (-13 naming each refused path otherwise; a refused path is lost and reconnects).
    /// </summary>
    private async Task<JsonNode?> SetKeys(RpcParams p, CancellationToken cancellationToken)
    {
        const string Method = "bdev_nvme_set_keys";
        string name = p.RequiredNonEmptyString("name", 64);
        var credentials = DhChapFromKeyring(p, Method);
        // Longer than the subsystem's own bound, so that its answer naming a path that never answered arrives first.
        var timeout = Subsystem.SetKeysBound(Settings.ConnectTimeout) + TimeSpan.FromSeconds(10);
        await AskAsync<Subsystem.KeysSet>(new NvmeHost.ToSubsystem(name, new Subsystem.SetKeys(credentials)), timeout, JsonRpcErrorCodes.NoDevice, cancellationToken).ConfigureAwait(false);
        return true;
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

    /// <summary>SPDK's bdev_nvme_set_multipath_policy: the policy of the named block device only (others of its controller keep theirs).</summary>
    private async Task<JsonNode?> SetMultipathPolicy(RpcParams p, CancellationToken cancellationToken)
    {
        string name = p.RequiredNonEmptyString("name", 64);
        p.RequiredNonEmptyString("policy", 32);
        var policy = MultipathPolicyOf(p, "policy", "selector", "rr_min_io")!;
        var devices = await AskAsync<NvmeHost.BlockDeviceList>(NvmeHost.ListBlockDevices.Instance, ListTimeout, JsonRpcErrorCodes.NoDevice, cancellationToken).ConfigureAwait(false);
        var device = devices.Devices.FirstOrDefault(d => d.Name == name)
            ?? throw new JsonRpcException(JsonRpcErrorCodes.NoDevice, $"No such device: no block device named {name}");
        await AskAsync<Subsystem.MultipathPolicySet>(new NvmeHost.ToSubsystem(device.Controller, new Subsystem.SetMultipathPolicy(policy, device.Name)), ListTimeout, JsonRpcErrorCodes.NoDevice, cancellationToken).ConfigureAwait(false);
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

    /// <summary>
    /// A multipath policy from SPDK's policy / selector / minimum-I/O parameters (bdev_nvme_set_multipath_policy
    /// names the last rr_min_io, multipath_opts min_io); null when no policy is given.
    /// </summary>
    private static MultipathPolicy? MultipathPolicyOf(RpcParams p, string policyName, string selectorName, string minIoName)
    {
        var mode = p.OptionalNonEmptyString(policyName, 32) switch
        {
            null => (MultipathPolicyMode?)null,
            "active_passive" => MultipathPolicyMode.ActivePassive,
            "active_active" => MultipathPolicyMode.ActiveActive,
            var other => throw JsonRpcException.InvalidValue($"{p.Method}: parameter '{policyName}' must be active_passive or active_active, not '{other}'"),
        };
        var selector = p.OptionalString(selectorName, 32) switch
        {
            null or "round_robin" => MultipathSelector.RoundRobin,
            "queue_depth" => MultipathSelector.QueueDepth,
            var other => throw JsonRpcException.InvalidValue($"{p.Method}: parameter '{selectorName}' must be round_robin or queue_depth, not '{other}'"),
        };
        long minIo = p.OptionalInt64(minIoName, 1, int.MaxValue) ?? 1;
        if (mode is null)
        {
            if (p.Has(selectorName) || p.Has(minIoName))
            {
                throw JsonRpcException.InvalidValue($"{p.Method}: parameters '{selectorName}' and '{minIoName}' need '{policyName}' active_active");
            }

            return null;
        }

        if (mode == MultipathPolicyMode.ActivePassive && p.Has(selectorName))
        {
            throw JsonRpcException.InvalidValue($"{p.Method}: parameter '{selectorName}' applies only to policy active_active");
        }

        if (p.Has(minIoName) && (mode != MultipathPolicyMode.ActiveActive || selector != MultipathSelector.RoundRobin))
        {
            throw JsonRpcException.InvalidValue($"{p.Method}: parameter '{minIoName}' applies only to policy active_active with selector round_robin");
        }

        return new MultipathPolicy(mode.Value, selector, (int)minIo);
    }

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

            result.Add(Controller(controller));
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

    /// <summary>
    /// SPDK's bdev_get_iostat: {"tick_rate", "ticks", "bdevs": [...]} with SPDK's field names; latencies in
    /// ticks of tick_rate. What SPDK has no field for (write zeroes, flush, errors, commands per path) is
    /// under "actornvme".
    /// </summary>
    /// <summary>
    /// SPDK's shape: one poll group per I/O thread, each with its TCP counters. ActorNvme's I/O threads are its
    /// poll groups; queue pairs on TLS or on dedicated receive threads are in none (said under actornvme).
    /// </summary>
    private static async Task<JsonNode?> GetTransportStatistics(RpcParams p, CancellationToken cancellationToken)
    {
        var groups = await ActorNvme.Transport.RawSocket.TransportStatistics.GetAsync(cancellationToken).ConfigureAwait(false);
        var array = new JsonArray();
        foreach (var g in groups)
        {
            array.Add(new JsonObject
            {
                ["thread"] = g.Thread,
                ["transports"] = new JsonArray(new JsonObject
                {
                    ["trname"] = "TCP",
                    ["polls"] = g.Polls,
                    ["idle_polls"] = g.IdlePolls,
                    ["socket_completions"] = g.SocketCompletions,
                    ["nvme_completions"] = g.NvmeCompletions,
                    ["submitted_requests"] = g.SubmittedRequests,
                    ["queued_requests"] = g.QueuedRequests,
                    ["actornvme"] = new JsonObject { ["queue_pairs"] = g.QueuePairs },
                }),
            });
        }

        return new JsonObject
        {
            ["poll_groups"] = array,
            ["actornvme"] = new JsonObject { ["note"] = "queue pairs over TLS or on dedicated receive threads are in no poll group" },
        };
    }

    private async Task<JsonNode?> GetIoStat(RpcParams p, CancellationToken cancellationToken)
    {
        p.RequireDefault("per_channel", false, "statistics are kept per block device and per path, not per SPDK channel");
        var reset = ResetMode(p, "reset_mode");
        var devices = await ChosenDevices(p, cancellationToken).ConfigureAwait(false);
        var bdevs = new JsonArray();
        foreach (var device in devices)
        {
            var stats = device.Statistics.Snapshot();
            bdevs.Add(new JsonObject
            {
                ["name"] = device.Name,
                ["bytes_read"] = stats.Read.Bytes,
                ["num_read_ops"] = stats.Read.Operations,
                ["bytes_written"] = stats.Write.Bytes,
                ["num_write_ops"] = stats.Write.Operations,
                ["bytes_unmapped"] = stats.Unmap.Bytes,
                ["num_unmap_ops"] = stats.Unmap.Operations,
                ["bytes_copied"] = 0,
                ["num_copy_ops"] = 0,
                ["read_latency_ticks"] = stats.Read.LatencyTicks,
                ["max_read_latency_ticks"] = stats.Read.MaxLatencyTicks,
                ["min_read_latency_ticks"] = stats.Read.MinLatencyTicks,
                ["write_latency_ticks"] = stats.Write.LatencyTicks,
                ["max_write_latency_ticks"] = stats.Write.MaxLatencyTicks,
                ["min_write_latency_ticks"] = stats.Write.MinLatencyTicks,
                ["unmap_latency_ticks"] = stats.Unmap.LatencyTicks,
                ["max_unmap_latency_ticks"] = stats.Unmap.MaxLatencyTicks,
                ["min_unmap_latency_ticks"] = stats.Unmap.MinLatencyTicks,
                ["copy_latency_ticks"] = 0,
                ["max_copy_latency_ticks"] = 0,
                ["min_copy_latency_ticks"] = 0,
                ["actornvme"] = new JsonObject
                {
                    ["bytes_write_zeroed"] = stats.WriteZeroes.Bytes,
                    ["num_write_zeroes_ops"] = stats.WriteZeroes.Operations,
                    ["num_flush_ops"] = stats.Flush.Operations,
                    ["num_read_errors"] = stats.Read.Errors,
                    ["num_write_errors"] = stats.Write.Errors,
                    ["num_other_errors"] = stats.Unmap.Errors + stats.WriteZeroes.Errors + stats.Flush.Errors,
                    ["num_ana_refusals"] = stats.AnaRefusals,
                    ["held_ios"] = device.HeldCount,
                    ["fenced_ios"] = device.FencedCount,
                    ["commands_per_path"] = new JsonObject([.. device.CompletedPerPath.OrderBy(kv => kv.Key, StringComparer.Ordinal).Select(kv => KeyValuePair.Create(kv.Key, (JsonNode?)kv.Value))]),
                },
            });
            device.Statistics.Reset(reset);
        }

        return new JsonObject
        {
            ["tick_rate"] = IoStatisticsSnapshot.TickRate,
            ["ticks"] = System.Diagnostics.Stopwatch.GetTimestamp(),
            ["bdevs"] = bdevs,
        };
    }

    /// <summary>SPDK's bdev_reset_iostat: one device (name) or all; mode all (default), maxmin, error or none.</summary>
    private async Task<JsonNode?> ResetIoStat(RpcParams p, CancellationToken cancellationToken)
    {
        var mode = ResetMode(p, "mode", IoStatisticsReset.All);
        foreach (var device in await ChosenDevices(p, cancellationToken).ConfigureAwait(false))
        {
            device.Statistics.Reset(mode);
        }

        return true;
    }

    private static IoStatisticsReset ResetMode(RpcParams p, string parameter, IoStatisticsReset absent = IoStatisticsReset.None) =>
        p.OptionalString(parameter, 16) switch
        {
            null => absent,
            "all" => IoStatisticsReset.All,
            "maxmin" => IoStatisticsReset.MaxMin,
            "error" => IoStatisticsReset.Errors,
            "none" => IoStatisticsReset.None,
            var other => throw JsonRpcException.InvalidValue($"{p.Method}: parameter '{parameter}' must be all, maxmin, error or none, not '{other}'"),
        };

    /// <summary>The block devices named by 'name' or 'names' (all when neither is given); an unknown name is -ENODEV.</summary>
    private async Task<IReadOnlyList<BlockDevice>> ChosenDevices(RpcParams p, CancellationToken cancellationToken)
    {
        var wanted = new List<string>();
        if (p.OptionalNonEmptyString("name", 64) is { } one)
        {
            wanted.Add(one);
        }

        wanted.AddRange(p.OptionalStringArray("names") ?? []);
        var list = await AskAsync<NvmeHost.BlockDeviceList>(NvmeHost.ListBlockDevices.Instance, ListTimeout, JsonRpcErrorCodes.NoDevice, cancellationToken).ConfigureAwait(false);
        foreach (string name in wanted)
        {
            if (!list.Devices.Any(d => d.Name == name))
            {
                throw new JsonRpcException(JsonRpcErrorCodes.NoDevice, $"No such device: {name}");
            }
        }

        var result = new List<BlockDevice>();
        foreach (var info in list.Devices.Where(d => wanted.Count == 0 || wanted.Contains(d.Name)))
        {
            var answer = await AskAsync<Subsystem.BlockDeviceResult>(new NvmeHost.ToSubsystem(info.Controller, new Subsystem.GetBlockDevice(info.Name)), ListTimeout, JsonRpcErrorCodes.NoDevice, cancellationToken).ConfigureAwait(false);
            if (answer.Device is { } device)
            {
                result.Add(device);
            }
            else if (wanted.Count != 0)
            {
                throw new JsonRpcException(JsonRpcErrorCodes.NoDevice, $"No such device: {info.Name} ({answer.Error})");
            }
        }

        return result;
    }

    /// <summary>One entry of bdev_nvme_get_controllers: a controller (subsystem) and its paths.</summary>
    internal static JsonObject Controller(NvmeHost.ControllerSummary controller) => new()
    {
        ["name"] = controller.Name,
        ["ctrlrs"] = new JsonArray([.. controller.Paths.Select(path => (JsonNode?)new JsonObject
        {
            ["state"] = SpdkJson.State(path.State),
            ["trid"] = SpdkJson.Trid(path.Address, controller.SubsystemNqn),
            ["host"] = new JsonObject { ["nqn"] = controller.HostNqn, ["addr"] = string.Empty, ["svcid"] = string.Empty },
            ["actornvme"] = new JsonObject { ["path"] = path.Path, ["state"] = path.State.ToString(), ["reason"] = path.Reason, ["origin"] = controller.Origin },
        })]),
    };

    internal static JsonObject Bdev(BlockDeviceInfo device, NvmeHost.ControllerList controllers)
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
    /// <summary>
    /// The attach parameters rpc.py may send that this host cannot honour: refused by name unless they hold their default
    /// (shared by the single-node and the cluster node's bdev_nvme_attach_controller).
    /// </summary>
    internal static void RefuseUnhonouredAttachParameters(RpcParams p)
    {
        const string Method = "bdev_nvme_attach_controller";
        p.RequireAbsent("hostaddr", "the source address is the kernel's choice", 256);
        p.RequireAbsent("hostsvcid", "the source port is the kernel's choice", 32);
        if (p.OptionalString("priority", 16) is { } priority && priority != "0")
        {
            throw JsonRpcException.NotSupported(Method, "priority", priority, "no socket priority is set");
        }

        p.RequireDefault("prchk_reftag", false, "no protection information is checked");
        p.RequireDefault("prchk_guard", false, "no protection information is checked");
        p.RequireDefault("allow_unrecognized_csi", false, "only NVM command set namespaces become block devices");
        p.OptionalInt64("max_bdevs", 1, uint.MaxValue); // SPDK's name array size: no limit here
    }

    internal static TransportAddress Address(RpcParams p, int defaultPort)
    {
        string trtype = p.RequiredNonEmptyString("trtype", 16);
        if (!trtype.Equals("tcp", StringComparison.OrdinalIgnoreCase))
        {
            throw JsonRpcException.NotSupported(p.Method, "trtype", trtype, "ActorNvme speaks NVMe/TCP only (trtype tcp)");
        }

        string traddr = p.RequiredNonEmptyString("traddr", 255);
        if (p.OptionalString("adrfam", 16) is { } adrfam)
        {
            bool v6 = traddr.Contains(':', StringComparison.Ordinal);
            string expected = v6 ? "ipv6" : "ipv4";
            if (!adrfam.Equals("ipv4", StringComparison.OrdinalIgnoreCase) && !adrfam.Equals("ipv6", StringComparison.OrdinalIgnoreCase))
            {
                throw JsonRpcException.InvalidValue($"{p.Method}: parameter 'adrfam' must be ipv4 or ipv6 for tcp, not '{adrfam}'");
            }

            if (!adrfam.Equals(expected, StringComparison.OrdinalIgnoreCase) && System.Net.IPAddress.TryParse(traddr, out _))
            {
                throw JsonRpcException.InvalidValue($"{p.Method}: parameter 'adrfam' is {adrfam}, but traddr '{traddr}' is an {expected} address");
            }
        }

        return new TransportAddress(traddr, p.OptionalPort("trsvcid") ?? defaultPort);
    }

    /// <summary>The loss-timeout trio, when any of it is given, validated by SPDK's rules; each missing value comes from <paramref name="defaults"/>.</summary>
    internal static ResiliencySettings? Resiliency(RpcParams p, ResiliencySettings defaults)
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
            throw JsonRpcException.InvalidValue($"{p.Method}: ctrlr_loss_timeout_sec {l}, reconnect_delay_sec {d}, fast_io_fail_timeout_sec {f} do not fit together: {e.Message} (rule {e.Rule})");
        }
    }
}
