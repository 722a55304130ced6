using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using Akka.Actor;
using Akka.Configuration;
using ActorNvme.Actors.Connection;
using ActorNvme.Actors.Settings;
using ActorNvme.Actors.Subsystem;
using ActorNvme.Host.JsonRpc;
using ActorNvme.Host.Spdk;
using ActorNvme.Io;
using ActorNvme.Protocol.Nvme;
using ActorNvme.Target;
using ActorNvme.Transport;

namespace ActorNvme.Host.Tests;

/// <summary>
/// What operators meet through the SPDK-compatible RPC: the parameters SPDK's rpc.py sends get their
/// meaning, and errors known at the first attempt are answered then, with SPDK's errno, leaving nothing
/// registered behind.
/// </summary>
public sealed class SpdkRpcOperationsTests : IAsyncLifetime
{
    // Generous bounds: a refusal known at the first attempt must come long before the attach deadline (here 20 s).
    private static readonly TimeSpan AtOnce = TimeSpan.FromSeconds(8);

    private readonly ActorSystem _system = ActorSystem.Create("spdk-rpc-ops", ConfigurationFactory.ParseString("akka.loglevel = WARNING"));
    private readonly RecordingConnector _connector = new(TransportAdminConnector.Tcp());
    private readonly NvmeTarget _target = new();
    private SpdkRpcService _service = null!;

    private static NvmeHostSettings Settings => NvmeHostSettings.Default with
    {
        ConnectTimeout = TimeSpan.FromSeconds(10),
        Resiliency = ResiliencySettings.FromSeconds(30, 1, 0),
    };

    public async Task InitializeAsync()
    {
        _service = new SpdkRpcService(_system, Settings, _connector);
        await _service.InitializeAsync();
    }

    public async Task DisposeAsync()
    {
        await _system.Terminate();
        await _target.DisposeAsync();
    }

    [Fact]
    public async Task Connection_refused_is_econnrefused_at_once_and_leaves_the_name_free()
    {
        int port = FreePort();
        string request = $$"""{"name":"dead","trtype":"tcp","traddr":"127.0.0.1","trsvcid":"{{port}}","subnqn":"nqn.2016-06.io.actornvme:none"}""";
        for (int attempt = 0; attempt < 2; attempt++)
        {
            var clock = Stopwatch.StartNew();
            var error = await Assert.ThrowsAsync<JsonRpcException>(() => CallAsync("bdev_nvme_attach_controller", request));
            Assert.Equal(JsonRpcErrorCodes.ConnectionRefused, error.Code); // the second time too: not -17
            Assert.Contains($"127.0.0.1:{port}", error.Message, StringComparison.Ordinal);
            Assert.True(clock.Elapsed < AtOnce, $"answered after {clock.Elapsed}");
        }

        Assert.Empty((JsonArray)(await CallAsync("bdev_nvme_get_controllers", null))!);
    }

    [Fact]
    public async Task A_connect_refused_with_dnr_is_eperm_for_the_host_and_einval_for_the_subsystem_at_once()
    {
        const string Closed = "nqn.2016-06.io.actornvme:closed";
        _target.AddSubsystem(new NvmSubsystemOptions(Closed) { AllowAnyHost = false, AllowedHosts = ["nqn.2014-08.org.nvmexpress:uuid:00000000-0000-0000-0000-0000000000aa"] })
            .AddNamespace(NamespaceOptions.Ram(1024 * 1024, 512));
        int port = _target.ListenTcp("127.0.0.1", 0).Address.Port;

        var clock = Stopwatch.StartNew();
        var host = await Assert.ThrowsAsync<JsonRpcException>(() => CallAsync("bdev_nvme_attach_controller", $$"""{"name":"closed","trtype":"tcp","traddr":"127.0.0.1","trsvcid":"{{port}}","subnqn":"{{Closed}}"}"""));
        Assert.Equal(JsonRpcErrorCodes.NotPermitted, host.Code);
        Assert.Contains("invalid host", host.Message, StringComparison.OrdinalIgnoreCase);
        Assert.True(clock.Elapsed < AtOnce, $"answered after {clock.Elapsed}");

        clock.Restart();
        var subsystem = await Assert.ThrowsAsync<JsonRpcException>(() => CallAsync("bdev_nvme_attach_controller", $$"""{"name":"nobody","trtype":"tcp","traddr":"127.0.0.1","trsvcid":"{{port}}","subnqn":"nqn.2016-06.io.actornvme:nobody"}"""));
        Assert.Equal(JsonRpcErrorCodes.Invalid, subsystem.Code);
        Assert.Contains("DNR", subsystem.Message, StringComparison.Ordinal);
        Assert.True(clock.Elapsed < AtOnce, $"answered after {clock.Elapsed}");
        Assert.Empty((JsonArray)(await CallAsync("bdev_nvme_get_controllers", null))!);
    }

    [Fact]
    public async Task Only_what_really_timed_out_is_etimedout_and_a_timed_out_discovery_is_stopped()
    {
        var listener = _target.ListenTcp("127.0.0.1", 0);
        _target.Faults.Blackhole(listener);
        string port = listener.Address.Port.ToString(System.Globalization.CultureInfo.InvariantCulture);

        var attach = await Assert.ThrowsAsync<JsonRpcException>(() => CallAsync("bdev_nvme_attach_controller", $$"""{"name":"slow","trtype":"tcp","traddr":"127.0.0.1","trsvcid":"{{port}}","subnqn":"nqn.2016-06.io.actornvme:any","fabrics_connect_timeout_us":500000}"""));
        Assert.Equal(JsonRpcErrorCodes.TimedOut, attach.Code);

        // SPDK stops a discovery whose attach timed out: the retry runs again, it is not told -EEXIST.
        for (int attempt = 0; attempt < 2; attempt++)
        {
            var discovery = await Assert.ThrowsAsync<JsonRpcException>(() => CallAsync("bdev_nvme_start_discovery", $$"""{"name":"late","trtype":"tcp","traddr":"127.0.0.1","trsvcid":"{{port}}","attach_timeout_ms":500}"""));
            Assert.Equal(JsonRpcErrorCodes.TimedOut, discovery.Code);
        }

        Assert.Empty((JsonArray)(await CallAsync("bdev_nvme_get_discovery_info", null))!);

        foreach (string wait in new[] { "true", "false" })
        {
            var refused = await Assert.ThrowsAsync<JsonRpcException>(() => CallAsync("bdev_nvme_start_discovery", $$"""{"name":"refused","trtype":"tcp","traddr":"127.0.0.1","trsvcid":"{{FreePort()}}","wait_for_attach":{{wait}}}"""));
            Assert.Equal(JsonRpcErrorCodes.ConnectionRefused, refused.Code);
            Assert.Contains("discovery refused", refused.Message, StringComparison.Ordinal);
            Assert.Empty((JsonArray)(await CallAsync("bdev_nvme_get_discovery_info", null))!);
        }
    }

    [Fact]
    public async Task Rpcpys_per_controller_flags_reach_the_controller()
    {
        const string Nqn = "nqn.2016-06.io.actornvme:flags";
        _target.AddSubsystem(Nqn).AddNamespace(NamespaceOptions.Ram(1024 * 1024, 512));
        int port = _target.ListenTcp("127.0.0.1", 0).Address.Port;
        Assert.True(Settings.DisableSqFlowControl); // the host's default, which rpc.py's false must override

        // Exactly what rpc.py sends by default, plus --num-io-queues 2.
        int before = _connector.Created.Count;
        var devices = await CallAsync("bdev_nvme_attach_controller", $$"""{"name":"a","trtype":"tcp","traddr":"127.0.0.1","trsvcid":"{{port}}","subnqn":"{{Nqn}}","prchk_reftag":false,"prchk_guard":false,"hdgst":false,"ddgst":false,"allow_unrecognized_csi":false,"disable_sq_flow_control":false,"num_io_queues":2}""");
        Assert.Equal("an1", devices![0]!.GetValue<string>());
        var a = Assert.Single(_connector.Created.Skip(before));
        Assert.False(a.DisableSqFlowControl);
        Assert.Equal(2, a.IoQueues);
        Assert.Equal(ActorNvme.Protocol.Tcp.DigestOptions.None, a.Digests);
        await CallAsync("bdev_nvme_detach_controller", """{"name":"a"}""");
        before = _connector.Created.Count;

        await CallAsync("bdev_nvme_attach_controller", $$$"""{"name":"b","trtype":"tcp","traddr":"127.0.0.1","trsvcid":"{{{port}}}","subnqn":"{{{Nqn}}}","disable_sq_flow_control":true,"multipath_opts":{"policy":"active_active","selector":"queue_depth"}}""");
        var b = Assert.Single(_connector.Created.Skip(before));
        Assert.True(b.DisableSqFlowControl);
        Assert.Equal(Settings.IoQueues, b.IoQueues);
        var bdev = (await CallAsync("bdev_get_bdevs", """{"name":"bn1"}"""))![0]!;
        Assert.Equal("bn1", bdev["name"]!.GetValue<string>());
        var paths = (await CallAsync("bdev_nvme_get_io_paths", """{"name":"bn1"}"""))!["poll_groups"]![0]!["io_paths"]!.AsArray();
        Assert.Single(paths);

        // What rpc.py save_config would write: the options, then this controller, replayable as written.
        var config = (JsonArray)(await CallAsync("framework_get_config", """{"name":"bdev"}"""))!;
        Assert.Equal("bdev_nvme_set_options", config[0]!["method"]!.GetValue<string>());
        Assert.Equal(30, config[0]!["params"]!["ctrlr_loss_timeout_sec"]!.GetValue<long>());
        var attach = Assert.Single(config, c => c!["method"]!.GetValue<string>() == "bdev_nvme_attach_controller")!["params"]!;
        Assert.Equal("b", attach["name"]!.GetValue<string>());
        Assert.Equal(Nqn, attach["subnqn"]!.GetValue<string>());
        Assert.Equal(port.ToString(System.Globalization.CultureInfo.InvariantCulture), attach["trsvcid"]!.GetValue<string>());
        await CallAsync("bdev_nvme_detach_controller", """{"name":"b"}""");
        await CallAsync("bdev_nvme_attach_controller", attach.ToJsonString());
        Assert.Equal("bn1", (await CallAsync("bdev_get_bdevs", """{"name":"bn1"}"""))![0]!["name"]!.GetValue<string>());
        await CallAsync("bdev_nvme_detach_controller", """{"name":"b"}""");
    }

    [Fact]
    public async Task Set_options_maps_retry_counts_and_accepts_rpcpys_defaults()
    {
        using var system = ActorSystem.Create("set-options", ConfigurationFactory.ParseString("akka.loglevel = WARNING"));
        var service = new SpdkRpcService(system, Settings);
        await service.DispatchAsync(
            "bdev_nvme_set_options",
            Parse("""{"delay_cmd_submit":true,"disable_auto_failback":false,"generate_uuids":false,"nvme_error_stat":false,"io_path_stat":false,"allow_accel_sequence":false,"enable_flush":false,"transport_retry_count":7,"bdev_retry_count":-1,"timeout_admin_us":3000000,"rdma_srq_size":0,"dhchap_digests":["sha256"],"dhchap_dhgroups":["null"],"multipath_opts":{"policy":"active_passive"}}"""),
            CancellationToken.None);
        Assert.Equal(7, service.Settings.IoRetries);
        Assert.Equal(int.MaxValue, service.Settings.IoPathLossRetries);
        Assert.Equal(TimeSpan.FromSeconds(3), service.Settings.AdminCommandTimeout);

        await service.DispatchAsync("bdev_nvme_set_options", Parse("""{"retry_count":2,"bdev_retry_count":3}"""), CancellationToken.None);
        Assert.Equal(2, service.Settings.IoRetries);
        Assert.Equal(3, service.Settings.IoPathLossRetries);
        await system.Terminate();
    }

    [Fact]
    public async Task Log_levels_use_spdks_names_and_reach_the_logger()
    {
        using var system = ActorSystem.Create("log-level", ConfigurationFactory.ParseString("akka.loglevel = WARNING"));
        var applied = new List<Microsoft.Extensions.Logging.LogLevel>();
        var service = new SpdkRpcService(system, Settings) { LogLevelChanged = applied.Add, InitialLogLevel = "INFO" };
        Assert.Equal("INFO", (await service.DispatchAsync("log_get_level", null, CancellationToken.None))!.GetValue<string>());
        await service.DispatchAsync("log_set_level", Parse("""{"level":"DEBUG"}"""), CancellationToken.None);
        await service.DispatchAsync("log_set_print_level", Parse("""{"level":"ERROR"}"""), CancellationToken.None);
        Assert.Equal("ERROR", (await service.DispatchAsync("log_get_level", null, CancellationToken.None))!.GetValue<string>());
        Assert.Equal([Microsoft.Extensions.Logging.LogLevel.Debug, Microsoft.Extensions.Logging.LogLevel.Error], applied);

        var stopped = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var killable = new SpdkRpcService(system, Settings) { StopRequested = () => stopped.TrySetResult() };
        Assert.True((await killable.DispatchAsync("spdk_kill_instance", Parse("""{"sig_name":"SIGTERM"}"""), CancellationToken.None))!.GetValue<bool>());
        await stopped.Task.WaitAsync(TimeSpan.FromSeconds(10));
        await system.Terminate();
    }

    public static TheoryData<ConnectionClosed, int?> Losses()
    {
        var invalidHost = NvmeStatus.Create(StatusCodeType.CommandSpecific, 0x84, doNotRetry: true);
        var invalidParameters = NvmeStatus.Create(StatusCodeType.CommandSpecific, 0x82, doNotRetry: true);
        var busy = NvmeStatus.Create(StatusCodeType.CommandSpecific, 0x81);
        var refusedSocket = new System.Net.Sockets.SocketException((int)System.Net.Sockets.SocketError.ConnectionRefused);
        var unreachable = new System.Net.Sockets.SocketException((int)System.Net.Sockets.SocketError.HostUnreachable);
        return new()
        {
            { new ConnectionClosed(CloseReason.ConnectFailed, "TCP connect to 127.0.0.1:1 failed", refusedSocket), JsonRpcErrorCodes.ConnectionRefused },
            { new ConnectionClosed(CloseReason.ConnectFailed, "TCP connect to 10.0.0.1:4420 failed", unreachable), null },
            { new ConnectionClosed(CloseReason.ConnectTimeout, "TCP connect to 10.0.0.1:4420 did not finish"), null },
            { new ConnectionClosed(CloseReason.ConnectRejected, "Fabrics Connect refused by nqn.x") { RefusalStatus = invalidHost }, JsonRpcErrorCodes.NotPermitted },
            { new ConnectionClosed(CloseReason.ConnectRejected, "Fabrics Connect refused by nqn.x") { RefusalStatus = invalidParameters }, JsonRpcErrorCodes.Invalid },
            { new ConnectionClosed(CloseReason.ConnectRejected, "Fabrics Connect refused by nqn.x") { RefusalStatus = busy }, null },
            // The words of a refusal without its structure decide nothing.
            { new ConnectionClosed(CloseReason.ConnectRejected, "connect invalid host (SCT 0x1 SC 0x84, DNR)"), null },
            { new ConnectionClosed(CloseReason.ConnectTimeout, "TCP connect failed: ConnectionRefused"), null },
            // Keys and PSKs: the host root answers those itself.
            { new ConnectionClosed(CloseReason.AuthenticationFailed, "DH-HMAC-CHAP refused by nqn.x"), null },
            { new ConnectionClosed(CloseReason.TlsHandshakeFailed, "TLS handshake refused by nqn.x"), null },
        };
    }

    [Theory]
    [MemberData(nameof(Losses))]
    public void Only_failures_no_retry_can_cure_are_final(ConnectionClosed loss, int? code)
    {
        // The controller publishes its loss classified once (PathRefusals.Of); the watch reads only that.
        var error = ConnectFailureWatch.Classify(PathRefusals.Of(loss), loss, "controller c");
        Assert.Equal(code, error?.Code);
        if (error is not null)
        {
            Assert.Contains("controller c: " + loss.Detail, error.Message, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void A_failure_without_a_refusal_is_not_final_whatever_its_text()
    {
        var rejected = new ConnectionClosed(CloseReason.ConnectRejected, "Fabrics Connect refused") { RefusalStatus = NvmeStatus.Create(StatusCodeType.CommandSpecific, 0x84, doNotRetry: true) };
        Assert.Null(ConnectFailureWatch.Classify(PathRefusal.None, rejected));
        Assert.Equal(JsonRpcErrorCodes.NotPermitted, ConnectFailureWatch.Classify(PathRefusal.ConnectRejected, rejected)?.Code);
        Assert.Equal(JsonRpcErrorCodes.ConnectionRefused, ConnectFailureWatch.Classify(PathRefusal.ConnectionRefused, null)?.Code);
    }

    private static int FreePort()
    {
        var probe = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        probe.Start();
        int port = ((System.Net.IPEndPoint)probe.LocalEndpoint).Port;
        probe.Stop();
        return port;
    }

    private Task<JsonNode?> CallAsync(string method, string? parameters) =>
        _service.DispatchAsync(method, parameters is null ? null : Parse(parameters), CancellationToken.None);

    private static JsonElement Parse(string json) => JsonDocument.Parse(json).RootElement.Clone();

    /// <summary>NVMe/TCP, recording the settings each controller actor is created with.</summary>
    private sealed class RecordingConnector(IAdminConnector inner) : IAdminConnector
    {
        private readonly ConcurrentQueue<NvmeHostSettings> _created = new();

        public IReadOnlyList<NvmeHostSettings> Created => [.. _created];

        public Task<IAdminConnection> ConnectAsync(AdminConnectRequest request, IAdminEvents events, CancellationToken lifetime) =>
            inner.ConnectAsync(request, events, lifetime);

        public IIoQueueConnector IoQueueConnector(NvmeHostSettings settings)
        {
            _created.Enqueue(settings);
            return inner.IoQueueConnector(settings);
        }
    }
}
