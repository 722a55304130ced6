using System.Text.Json;
using System.Text.Json.Nodes;
using Akka.Actor;
using Akka.Configuration;
using ActorNvme.Actors.Settings;
using ActorNvme.Host.JsonRpc;
using ActorNvme.Host.Spdk;

namespace ActorNvme.Host.Tests;

/// <summary>SPDK's methods: every bad parameter is refused and named (-32602 for the wrong shape, -EINVAL for a wrong value); SPDK's errno codes where SPDK uses them.</summary>
public sealed class SpdkRpcTests : IAsyncLifetime
{
    private readonly ActorSystem _system = ActorSystem.Create("spdk-rpc-tests", ConfigurationFactory.ParseString("akka.loglevel = WARNING"));
    private SpdkRpcService _service = null!;

    private static NvmeHostSettings Settings => NvmeHostSettings.Default with
    {
        ConnectTimeout = TimeSpan.FromSeconds(5), // generous: attaches to a real target on a loaded machine (0.5 s failed under load)
        Resiliency = ResiliencySettings.FromSeconds(2, 1, 1),
    };

    public async Task InitializeAsync()
    {
        _service = new SpdkRpcService(_system, Settings);
        await _service.InitializeAsync();
    }

    public async Task DisposeAsync() => await _system.Terminate();

    public static TheoryData<string, string, string, int> BadParameters => new()
    {
        // method, params, the text the error message must contain (naming the parameter), the code:
        // -32602 for a request of the wrong shape, -EINVAL for a wrong value, -ENOTSUP for a value not honoured
        { "bdev_nvme_start_discovery", """{"trtype":"tcp","traddr":"127.0.0.1"}""", "missing required parameter 'name'", JsonRpcErrorCodes.InvalidParams },
        { "bdev_nvme_start_discovery", """{"name":"n","traddr":"127.0.0.1"}""", "missing required parameter 'trtype'", JsonRpcErrorCodes.InvalidParams },
        { "bdev_nvme_start_discovery", """{"name":"n","trtype":"tcp"}""", "missing required parameter 'traddr'", JsonRpcErrorCodes.InvalidParams },
        { "bdev_nvme_start_discovery", """{"name":"","trtype":"tcp","traddr":"127.0.0.1"}""", "'name' must not be empty", JsonRpcErrorCodes.Invalid },
        { "bdev_nvme_start_discovery", """{"name":5,"trtype":"tcp","traddr":"127.0.0.1"}""", "parameter 'name' must be a string, not a number", JsonRpcErrorCodes.InvalidParams },
        { "bdev_nvme_start_discovery", """{"name":"n","trtype":"rdma","traddr":"127.0.0.1"}""", "not supported: trtype=rdma", JsonRpcErrorCodes.NotSupported },
        { "bdev_nvme_start_discovery", """{"name":"n","trtype":"tcp","traddr":"127.0.0.1","adrfam":"ib"}""", "parameter 'adrfam' must be ipv4 or ipv6", JsonRpcErrorCodes.Invalid },
        { "bdev_nvme_start_discovery", """{"name":"n","trtype":"tcp","traddr":"127.0.0.1","adrfam":"ipv6"}""", "parameter 'adrfam' is ipv6", JsonRpcErrorCodes.Invalid },
        { "bdev_nvme_start_discovery", """{"name":"n","trtype":"tcp","traddr":"127.0.0.1","trsvcid":"http"}""", "parameter 'trsvcid' must be a TCP port", JsonRpcErrorCodes.Invalid },
        { "bdev_nvme_start_discovery", """{"name":"n","trtype":"tcp","traddr":"127.0.0.1","trsvcid":"70000"}""", "parameter 'trsvcid' is 70000", JsonRpcErrorCodes.Invalid },
        { "bdev_nvme_start_discovery", """{"name":"n","trtype":"tcp","traddr":"127.0.0.1","hostnqn":7}""", "parameter 'hostnqn' must be a string", JsonRpcErrorCodes.InvalidParams },
        { "bdev_nvme_start_discovery", """{"name":"n","trtype":"tcp","traddr":"127.0.0.1","wait_for_attach":"yes"}""", "parameter 'wait_for_attach' must be a boolean", JsonRpcErrorCodes.InvalidParams },
        { "bdev_nvme_start_discovery", """{"name":"n","trtype":"tcp","traddr":"127.0.0.1","attach_timeout_ms":-5}""", "parameter 'attach_timeout_ms' is -5", JsonRpcErrorCodes.Invalid },
        { "bdev_nvme_start_discovery", """{"name":"n","trtype":"tcp","traddr":"127.0.0.1","ctrlr_loss_timeout_sec":-2}""", "parameter 'ctrlr_loss_timeout_sec' is -2", JsonRpcErrorCodes.Invalid },
        { "bdev_nvme_start_discovery", """{"name":"n","trtype":"tcp","traddr":"127.0.0.1","ctrlr_loss_timeout_sec":2,"reconnect_delay_sec":3}""", "rule reconnect-delay-within-loss-timeout", JsonRpcErrorCodes.Invalid },
        { "bdev_nvme_start_discovery", """{"name":"n","trtype":"tcp","traddr":"127.0.0.1","ctrlr_loss_timeout_sec":5,"reconnect_delay_sec":0}""", "rule reconnect-delay-required", JsonRpcErrorCodes.Invalid },
        { "bdev_nvme_start_discovery", """{"name":"n","trtype":"tcp","traddr":"127.0.0.1","ctrlr_loss_timeout_sec":0,"reconnect_delay_sec":1,"fast_io_fail_timeout_sec":0}""", "rule reconnect-delay-without-reconnect", JsonRpcErrorCodes.Invalid },
        { "bdev_nvme_start_discovery", """{"name":"n","trtype":"tcp","traddr":"127.0.0.1","ctrlr_loss_timeout_sec":10,"reconnect_delay_sec":2,"fast_io_fail_timeout_sec":1}""", "rule fast-io-fail-at-least-reconnect-delay", JsonRpcErrorCodes.Invalid },
        { "bdev_nvme_start_discovery", """{"name":"n","trtype":"tcp","traddr":"127.0.0.1","ctrlr_loss_timeout_sec":4,"reconnect_delay_sec":2,"fast_io_fail_timeout_sec":5}""", "rule fast-io-fail-within-loss-timeout", JsonRpcErrorCodes.Invalid },
        { "bdev_nvme_start_discovery", """{"name":"n","trtype":"tcp","traddr":"127.0.0.1","subnqn":"x"}""", "unknown parameter 'subnqn'", JsonRpcErrorCodes.InvalidParams },
        { "bdev_nvme_start_discovery", """["n"]""", "params must be an object", JsonRpcErrorCodes.InvalidParams },
        { "bdev_nvme_attach_controller", """{"name":"c","trtype":"tcp","traddr":"127.0.0.1"}""", "missing required parameter 'subnqn'", JsonRpcErrorCodes.InvalidParams },
        { "bdev_nvme_attach_controller", """{"name":"c","trtype":"tcp","traddr":"127.0.0.1","subnqn":"nqn.x","prchk_guard":true}""", "not supported: prchk_guard=true", JsonRpcErrorCodes.NotSupported },
        { "bdev_nvme_attach_controller", """{"name":"c","trtype":"tcp","traddr":"127.0.0.1","subnqn":"nqn.x","multipath":"sometimes"}""", "parameter 'multipath'", JsonRpcErrorCodes.Invalid },
        { "bdev_nvme_attach_controller", """{"name":"c","trtype":"tcp","traddr":"127.0.0.1","subnqn":"nqn.x","psk":"key"}""", "psk: key 'key' is not in the keyring", JsonRpcErrorCodes.NoDevice },
        { "bdev_nvme_attach_controller", """{"name":"c","trtype":"tcp","traddr":"127.0.0.1","subnqn":"nqn.x","num_io_queues":0}""", "parameter 'num_io_queues' is 0", JsonRpcErrorCodes.Invalid },
        { "bdev_nvme_detach_controller", "{}", "missing required parameter 'name'", JsonRpcErrorCodes.InvalidParams },
        { "bdev_nvme_reset_controller", """{"name":true}""", "parameter 'name' must be a string", JsonRpcErrorCodes.InvalidParams },
        { "bdev_nvme_stop_discovery", """{"nme":"x"}""", "unknown parameter 'nme'", JsonRpcErrorCodes.InvalidParams },
        { "bdev_nvme_get_controllers", """{"name":[]}""", "parameter 'name' must be a string, not an array", JsonRpcErrorCodes.InvalidParams },
        { "bdev_get_bdevs", """{"name":1}""", "parameter 'name' must be a string", JsonRpcErrorCodes.InvalidParams },
        { "bdev_get_bdevs", """{"timeout":"1"}""", "parameter 'timeout' must be an integer", JsonRpcErrorCodes.InvalidParams },
        { "bdev_nvme_set_options", """{"keep_alive_timeout_ms":50}""", "parameter 'keep_alive_timeout_ms' is 50", JsonRpcErrorCodes.Invalid },
        { "bdev_nvme_set_options", """{"keep_alive_timeout_ms":4294967295}""", "parameter 'keep_alive_timeout_ms' is 4294967295", JsonRpcErrorCodes.Invalid },
        { "bdev_nvme_set_options", """{"keep_alive_timeout_ms":0}""", "not supported: keep_alive_timeout_ms=0", JsonRpcErrorCodes.NotSupported },
        { "bdev_nvme_set_options", """{"io_path_stat":true}""", "not supported: io_path_stat=true", JsonRpcErrorCodes.NotSupported },
        { "bdev_nvme_set_options", """{"delay_cmd_submit":false}""", "not supported: delay_cmd_submit=false", JsonRpcErrorCodes.NotSupported },
        { "bdev_nvme_set_options", """{"arbitration_burst":3}""", "not supported: arbitration_burst=3", JsonRpcErrorCodes.NotSupported },
        { "bdev_nvme_set_options", """{"multipath_opts":{"policy":"active_active"}}""", "not supported: multipath_opts.policy=active_active", JsonRpcErrorCodes.NotSupported },
        { "bdev_nvme_set_options", """{"multipath_opts":{"policy":"active_passive","colour":"red"}}""", "unknown parameter 'colour'", JsonRpcErrorCodes.InvalidParams },
        { "bdev_nvme_set_options", """{"dhchap_digests":"sha256"}""", "parameter 'dhchap_digests' must be an array of strings", JsonRpcErrorCodes.InvalidParams },
        { "bdev_nvme_set_options", """{"transport_retry_count":300}""", "parameter 'transport_retry_count' is 300", JsonRpcErrorCodes.Invalid },
        { "bdev_nvme_set_options", """{"timeout_us":50}""", "io-timeout", JsonRpcErrorCodes.Invalid },
        { "bdev_nvme_attach_controller", """{"name":"c","trtype":"tcp","traddr":"127.0.0.1","subnqn":"nqn.x","disable_sq_flow_control":"yes"}""", "parameter 'disable_sq_flow_control' must be a boolean", JsonRpcErrorCodes.InvalidParams },
        { "bdev_nvme_attach_controller", """{"name":"c","trtype":"tcp","traddr":"127.0.0.1","subnqn":"nqn.x","hostaddr":"10.0.0.1"}""", "not supported: hostaddr=10.0.0.1", JsonRpcErrorCodes.NotSupported },
        { "bdev_nvme_attach_controller", """{"name":"c","trtype":"tcp","traddr":"127.0.0.1","subnqn":"nqn.x","priority":"3"}""", "not supported: priority=3", JsonRpcErrorCodes.NotSupported },
        { "bdev_nvme_attach_controller", """{"name":"c","trtype":"tcp","traddr":"127.0.0.1","subnqn":"nqn.x","multipath_opts":"active"}""", "parameter 'multipath_opts' must be an object", JsonRpcErrorCodes.InvalidParams },
        { "bdev_nvme_attach_controller", """{"name":"c","trtype":"tcp","traddr":"127.0.0.1","subnqn":"nqn.x","multipath_opts":{"policy":"both"}}""", "parameter 'policy' must be active_passive or active_active", JsonRpcErrorCodes.Invalid },
        { "bdev_nvme_attach_controller", """{"name":"c","trtype":"tcp","traddr":"127.0.0.1","subnqn":"nqn.x","ctrlr_loss_timeout_sec":2147483647,"reconnect_delay_sec":1}""", "rule timer-range", JsonRpcErrorCodes.Invalid },
        { "log_set_level", """{"level":"LOUD"}""", "parameter 'level' must be ERROR, WARNING, NOTICE, INFO or DEBUG", JsonRpcErrorCodes.Invalid },
        { "log_set_level", """{"level":"DEBUG"}""", "not supported: level=DEBUG", JsonRpcErrorCodes.NotSupported },
        { "spdk_kill_instance", """{"sig_name":"SIGFOO"}""", "parameter 'sig_name'", JsonRpcErrorCodes.Invalid },
        { "spdk_kill_instance", """{"sig_name":"SIGTERM"}""", "not supported: sig_name=SIGTERM", JsonRpcErrorCodes.NotSupported },
        { "bdev_nvme_set_options", """{"action_on_timeout":"explode"}""", "parameter 'action_on_timeout'", JsonRpcErrorCodes.Invalid },
        { "bdev_nvme_set_options", """{"not_an_spdk_option":1}""", "unknown parameter 'not_an_spdk_option'", JsonRpcErrorCodes.InvalidParams },
        { "bdev_nvme_set_options", """{"reconnect_delay_sec":20}""", "rule reconnect-delay-within-loss-timeout", JsonRpcErrorCodes.Invalid },
        { "bdev_nvme_set_multipath_policy", """{"policy":"active_passive"}""", "missing required parameter 'name'", JsonRpcErrorCodes.InvalidParams },
        { "bdev_nvme_set_multipath_policy", """{"name":"n1","policy":"both"}""", "parameter 'policy' must be active_passive or active_active", JsonRpcErrorCodes.Invalid },
        { "bdev_nvme_set_multipath_policy", """{"name":"n1","policy":"active_active","selector":"random"}""", "parameter 'selector' must be round_robin or queue_depth", JsonRpcErrorCodes.Invalid },
        { "bdev_nvme_set_multipath_policy", """{"name":"n1","policy":"active_passive","selector":"round_robin"}""", "parameter 'selector' applies only to policy active_active", JsonRpcErrorCodes.Invalid },
        { "bdev_nvme_set_multipath_policy", """{"name":"n1","policy":"active_active","selector":"queue_depth","rr_min_io":4}""", "parameter 'rr_min_io' applies only", JsonRpcErrorCodes.Invalid },
        { "bdev_nvme_set_multipath_policy", """{"name":"n1","policy":"active_active","rr_min_io":0}""", "parameter 'rr_min_io' is 0", JsonRpcErrorCodes.Invalid },
        { "bdev_nvme_get_io_paths", """{"name":3}""", "parameter 'name' must be a string", JsonRpcErrorCodes.InvalidParams },
        { "spdk_get_version", """{"x":1}""", "requires no parameters", JsonRpcErrorCodes.InvalidParams },
        { "rpc_get_methods", """{"current":"yes"}""", "parameter 'current' must be a boolean", JsonRpcErrorCodes.InvalidParams },
    };

    [Theory]
    [MemberData(nameof(BadParameters))]
    public async Task Each_bad_parameter_is_refused_with_spdks_code_and_named(string method, string parameters, string named, int code)
    {
        var error = await Assert.ThrowsAsync<JsonRpcException>(() => CallAsync(method, parameters));
        Assert.Equal(code, error.Code);
        Assert.Contains(named, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Unknown_names_get_spdks_errno_codes()
    {
        Assert.Equal(JsonRpcErrorCodes.NoEntry, (await Assert.ThrowsAsync<JsonRpcException>(() => CallAsync("bdev_nvme_stop_discovery", """{"name":"none"}"""))).Code);
        Assert.Equal(JsonRpcErrorCodes.NoDevice, (await Assert.ThrowsAsync<JsonRpcException>(() => CallAsync("bdev_nvme_detach_controller", """{"name":"none"}"""))).Code);
        Assert.Equal(JsonRpcErrorCodes.NoDevice, (await Assert.ThrowsAsync<JsonRpcException>(() => CallAsync("bdev_nvme_reset_controller", """{"name":"none"}"""))).Code);
        Assert.Equal(JsonRpcErrorCodes.NoDevice, (await Assert.ThrowsAsync<JsonRpcException>(() => CallAsync("bdev_nvme_get_controllers", """{"name":"none"}"""))).Code);
        var bdev = await Assert.ThrowsAsync<JsonRpcException>(() => CallAsync("bdev_get_bdevs", """{"name":"none","timeout":50}"""));
        Assert.Equal(JsonRpcErrorCodes.NoDevice, bdev.Code);
        Assert.Contains("none", bdev.Message, StringComparison.Ordinal);
        Assert.Equal(JsonRpcErrorCodes.MethodNotFound, (await Assert.ThrowsAsync<JsonRpcException>(() => CallAsync("bdev_nvme_frobnicate", "{}"))).Code);
    }

    [Fact]
    public async Task A_second_discovery_of_the_same_name_is_eexist()
    {
        // A listener that never answers: the service starts (not waiting for attach) and keeps trying.
        await using var target = new ActorNvme.Target.NvmeTarget();
        var listener = target.ListenTcp("127.0.0.1", 0);
        target.Faults.Blackhole(listener);
        string port = listener.Address.Port.ToString(System.Globalization.CultureInfo.InvariantCulture);
        string Request = $$"""{"name":"dup","trtype":"tcp","traddr":"127.0.0.1","trsvcid":"{{port}}"}""";
        Assert.True((await CallAsync("bdev_nvme_start_discovery", Request))!.GetValue<bool>());
        var error = await Assert.ThrowsAsync<JsonRpcException>(() => CallAsync("bdev_nvme_start_discovery", Request));
        Assert.Equal(JsonRpcErrorCodes.Exists, error.Code);
        Assert.Contains("dup", error.Message, StringComparison.Ordinal);

        var info = (JsonArray)(await CallAsync("bdev_nvme_get_discovery_info", null))!;
        var service = Assert.Single(info)!;
        Assert.Equal("dup", service["name"]!.GetValue<string>());
        Assert.Equal(port, service["trid"]!["trsvcid"]!.GetValue<string>());
        Assert.Equal("nqn.2014-08.org.nvmexpress.discovery", service["trid"]!["subnqn"]!.GetValue<string>());

        // Global options may not change under a running discovery service (SPDK: -EPERM).
        var refused = await Assert.ThrowsAsync<JsonRpcException>(() => CallAsync("bdev_nvme_set_options", """{"ctrlr_loss_timeout_sec":5}"""));
        Assert.Equal(JsonRpcErrorCodes.NotPermitted, refused.Code);

        Assert.True((await CallAsync("bdev_nvme_stop_discovery", """{"name":"dup"}"""))!.GetValue<bool>());
    }

    [Fact]
    public async Task Attaching_a_controller_where_nothing_listens_is_econnrefused_not_a_timeout()
    {
        var error = await Assert.ThrowsAsync<JsonRpcException>(() => CallAsync(
            "bdev_nvme_attach_controller",
            """{"name":"gone","trtype":"tcp","traddr":"127.0.0.1","trsvcid":"1","subnqn":"nqn.2016-06.io.actornvme:none","fabrics_connect_timeout_us":60000000}"""));
        Assert.Equal(JsonRpcErrorCodes.ConnectionRefused, error.Code);
        Assert.Contains("gone", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Two_paths_by_attach_controller_multipath_show_in_get_io_paths_and_follow_the_policy()
    {
        await using var target = new ActorNvme.Target.NvmeTarget();
        const string nqn = "nqn.2016-06.io.actornvme:multipath-rpc";
        target.AddSubsystem(nqn).AddNamespace(ActorNvme.Target.NamespaceOptions.Ram(1024 * 1024, 512));
        var ports = new[] { target.ListenTcp("127.0.0.1", 0), target.ListenTcp("127.0.0.1", 0) };
        foreach (var port in ports)
        {
            await _service.DispatchAsync("bdev_nvme_attach_controller", Parse($$"""{"name":"mp","trtype":"tcp","traddr":"127.0.0.1","trsvcid":"{{port.Address.Port}}","subnqn":"{{nqn}}","multipath":"multipath"}"""), CancellationToken.None);
        }

        JsonArray paths = [];
        var until = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while (DateTime.UtcNow < until)
        {
            var answer = (await _service.DispatchAsync("bdev_nvme_get_io_paths", Parse("""{"name":"mpn1"}"""), CancellationToken.None))!;
            paths = answer["poll_groups"]![0]!["io_paths"]!.AsArray();
            if (paths.Count == 2 && paths.All(p => p!["connected"]!.GetValue<bool>()))
            {
                break;
            }

            await Task.Delay(50);
        }

        Assert.Equal(2, paths.Count);
        Assert.All(paths, p =>
        {
            Assert.Equal("mpn1", p!["bdev_name"]!.GetValue<string>());
            Assert.True(p["connected"]!.GetValue<bool>());
            Assert.True(p["accessible"]!.GetValue<bool>());
            Assert.True(p["current"]!.GetValue<bool>()); // no policy set: I/O is spread over both
            Assert.Equal(nqn, p["transport"]!["subnqn"]!.GetValue<string>());
        });
        Assert.Equal(ports.Select(p => p.Address.Port.ToString(System.Globalization.CultureInfo.InvariantCulture)).Order(), paths.Select(p => p!["transport"]!["trsvcid"]!.GetValue<string>()).Order());

        Assert.True((await _service.DispatchAsync("bdev_nvme_set_multipath_policy", Parse("""{"name":"mpn1","policy":"active_passive"}"""), CancellationToken.None))!.GetValue<bool>());
        var passive = (await _service.DispatchAsync("bdev_nvme_get_io_paths", null, CancellationToken.None))!["poll_groups"]![0]!["io_paths"]!.AsArray();
        Assert.Single(passive, p => p!["current"]!.GetValue<bool>());

        var missing = await Assert.ThrowsAsync<JsonRpcException>(() => _service.DispatchAsync("bdev_nvme_set_multipath_policy", Parse("""{"name":"nothere","policy":"active_active"}"""), CancellationToken.None));
        Assert.Equal(JsonRpcErrorCodes.NoDevice, missing.Code);
        await _service.DispatchAsync("bdev_nvme_detach_controller", Parse("""{"name":"mp"}"""), CancellationToken.None);
    }

    [Fact]
    public async Task A_further_path_to_a_port_that_refuses_is_econnrefused_at_once_and_not_left_behind()
    {
        await using var target = new ActorNvme.Target.NvmeTarget();
        const string nqn = "nqn.2016-06.io.actornvme:dead-path";
        target.AddSubsystem(nqn).AddNamespace(ActorNvme.Target.NamespaceOptions.Ram(1024 * 1024, 512));
        var live = target.ListenTcp("127.0.0.1", 0);
        await _service.DispatchAsync("bdev_nvme_attach_controller", Parse($$"""{"name":"dp","trtype":"tcp","traddr":"127.0.0.1","trsvcid":"{{live.Address.Port}}","subnqn":"{{nqn}}","multipath":"multipath"}"""), CancellationToken.None);

        int dead;
        using (var probe = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0))
        {
            probe.Start();
            dead = ((System.Net.IPEndPoint)probe.LocalEndpoint).Port;
        }

        var clock = System.Diagnostics.Stopwatch.StartNew();
        var error = await Assert.ThrowsAsync<JsonRpcException>(() => _service.DispatchAsync(
            "bdev_nvme_attach_controller",
            Parse($$"""{"name":"dp","trtype":"tcp","traddr":"127.0.0.1","trsvcid":"{{dead}}","subnqn":"{{nqn}}","multipath":"multipath","fabrics_connect_timeout_us":60000000}"""),
            CancellationToken.None));
        Assert.Equal(JsonRpcErrorCodes.ConnectionRefused, error.Code);
        Assert.Contains($"127.0.0.1:{dead}", error.Message, StringComparison.Ordinal);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(50), $"answered after {clock.Elapsed}, as if it had waited for its 60 s deadline");

        // The dead path is not kept (its removal reaches the registry with the subsystem's next report).
        var until = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        int paths;
        while ((paths = (await _service.DispatchAsync("bdev_nvme_get_controllers", Parse("""{"name":"dp"}"""), CancellationToken.None))!.AsArray()[0]!["ctrlrs"]!.AsArray().Count) != 1 && DateTime.UtcNow < until)
        {
            await Task.Delay(50);
        }

        Assert.Equal(1, paths);
        await _service.DispatchAsync("bdev_nvme_detach_controller", Parse("""{"name":"dp"}"""), CancellationToken.None);
    }

    [Fact]
    public async Task A_multipath_policy_applies_to_the_named_block_device_only()
    {
        await using var target = new ActorNvme.Target.NvmeTarget();
        const string nqn = "nqn.2016-06.io.actornvme:policy-per-device";
        var subsystem = target.AddSubsystem(nqn);
        subsystem.AddNamespace(ActorNvme.Target.NamespaceOptions.Ram(1024 * 1024, 512));
        subsystem.AddNamespace(ActorNvme.Target.NamespaceOptions.Ram(1024 * 1024, 512));
        foreach (var port in new[] { target.ListenTcp("127.0.0.1", 0), target.ListenTcp("127.0.0.1", 0) })
        {
            await _service.DispatchAsync("bdev_nvme_attach_controller", Parse($$"""{"name":"pd","trtype":"tcp","traddr":"127.0.0.1","trsvcid":"{{port.Address.Port}}","subnqn":"{{nqn}}","multipath":"multipath"}"""), CancellationToken.None);
        }

        async Task<JsonArray> PathsAsync()
        {
            var until = DateTime.UtcNow + TimeSpan.FromSeconds(60);
            while (true)
            {
                var paths = (await _service.DispatchAsync("bdev_nvme_get_io_paths", null, CancellationToken.None))!["poll_groups"]![0]!["io_paths"]!.AsArray();
                if ((paths.Count == 4 && paths.All(p => p!["connected"]!.GetValue<bool>())) || DateTime.UtcNow > until)
                {
                    return paths;
                }

                await Task.Delay(50);
            }
        }

        Assert.Equal(4, (await PathsAsync()).Count);
        await _service.DispatchAsync("bdev_nvme_set_multipath_policy", Parse("""{"name":"pdn1","policy":"active_passive"}"""), CancellationToken.None);
        var after = await PathsAsync();
        Assert.Single(after, p => p!["bdev_name"]!.GetValue<string>() == "pdn1" && p["current"]!.GetValue<bool>());
        Assert.Equal(2, after.Count(p => p!["bdev_name"]!.GetValue<string>() == "pdn2" && p["current"]!.GetValue<bool>())); // untouched: both paths serve
        await _service.DispatchAsync("bdev_nvme_detach_controller", Parse("""{"name":"pd"}"""), CancellationToken.None);
    }

    [Fact]
    public async Task The_ledger_lists_an_attached_controller_and_nothing_once_it_is_detached()
    {
        await using var target = new ActorNvme.Target.NvmeTarget();
        const string nqn = "nqn.2016-06.io.actornvme:ledger-rpc";
        target.AddSubsystem(nqn).AddNamespace(ActorNvme.Target.NamespaceOptions.Ram(1024 * 1024, 512));
        var port = target.ListenTcp("127.0.0.1", 0);
        await _service.DispatchAsync("bdev_nvme_attach_controller", Parse($$"""{"name":"led","trtype":"tcp","traddr":"127.0.0.1","trsvcid":"{{port.Address.Port}}","subnqn":"{{nqn}}"}"""), CancellationToken.None);

        var held = (await _service.DispatchAsync("actornvme_get_ledger", null, CancellationToken.None))!;
        var owners = held["owners"]!.AsArray();
        var owner = Assert.Single(owners, o => o!["owner"]!.GetValue<string>().Contains("led", StringComparison.Ordinal));
        Assert.True(owner!["connections"]!.GetValue<int>() >= 2, $"admin and I/O queue of the attached controller: {held.ToJsonString()}");
        Assert.True(held["total"]!["connections"]!.GetValue<int>() >= owner["connections"]!.GetValue<int>());

        await _service.DispatchAsync("bdev_nvme_detach_controller", Parse("""{"name":"led"}"""), CancellationToken.None);
        JsonNode after = held;
        var until = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (DateTime.UtcNow < until)
        {
            after = (await _service.DispatchAsync("actornvme_get_ledger", null, CancellationToken.None))!;
            if (after["owners"]!.AsArray().All(o => !o!["owner"]!.GetValue<string>().Contains("led", StringComparison.Ordinal)))
            {
                break;
            }

            await Task.Delay(50);
        }

        Assert.DoesNotContain(after["owners"]!.AsArray(), o => o!["owner"]!.GetValue<string>().Contains("led", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Get_io_paths_prints_each_paths_ana_state_as_spdk_names_it()
    {
        await using var target = new ActorNvme.Target.NvmeTarget();
        const string nqn = "nqn.2016-06.io.actornvme:ana-state-rpc";
        target.AddSubsystem(nqn).AddNamespace(ActorNvme.Target.NamespaceOptions.Ram(1024 * 1024, 512));
        var ports = new[] { target.ListenTcp("127.0.0.1", 0), target.ListenTcp("127.0.0.1", 0) };
        foreach (var port in ports)
        {
            await _service.DispatchAsync("bdev_nvme_attach_controller", Parse($$"""{"name":"ana","trtype":"tcp","traddr":"127.0.0.1","trsvcid":"{{port.Address.Port}}","subnqn":"{{nqn}}","multipath":"multipath","fabrics_connect_timeout_us":30000000,"ctrlr_loss_timeout_sec":60,"reconnect_delay_sec":1}"""), CancellationToken.None);
        }

        string second = ports[1].Address.Port.ToString(System.Globalization.CultureInfo.InvariantCulture);
        async Task<Dictionary<string, string>> StatesAsync()
        {
            var answer = (await _service.DispatchAsync("bdev_nvme_get_io_paths", Parse("""{"name":"anan1"}"""), CancellationToken.None))!;
            return answer["poll_groups"]![0]!["io_paths"]!.AsArray()
                .ToDictionary(p => p!["transport"]!["trsvcid"]!.GetValue<string>(), p => p!["ana_state"]!.GetValue<string>());
        }

        async Task<Dictionary<string, string>> WaitForAsync(Func<Dictionary<string, string>, bool> condition)
        {
            var until = DateTime.UtcNow + TimeSpan.FromSeconds(60);
            var states = await StatesAsync();
            while (!condition(states) && DateTime.UtcNow < until)
            {
                await Task.Delay(50);
                states = await StatesAsync();
            }

            return states;
        }

        var initial = await WaitForAsync(s => s.Count == 2);
        Assert.All(initial.Values, state => Assert.Equal("optimized", state));

        target.Faults.SetAnaState(nqn, 1, ActorNvme.Protocol.Data.AnaState.Inaccessible, ports[1]);
        var changed = await WaitForAsync(s => s.GetValueOrDefault(second) == "inaccessible");
        Assert.Equal("inaccessible", changed[second]);
        Assert.Equal("optimized", changed.Single(kv => kv.Key != second).Value);

        target.Faults.SetAnaState(nqn, 1, ActorNvme.Protocol.Data.AnaState.NonOptimized, ports[1]);
        Assert.Equal("non_optimized", (await WaitForAsync(s => s.GetValueOrDefault(second) == "non_optimized"))[second]);
        await _service.DispatchAsync("bdev_nvme_detach_controller", Parse("""{"name":"ana"}"""), CancellationToken.None);
    }

    [Fact]
    public async Task Attach_and_get_bdevs_list_subsystems_of_1_2_and_1024_namespaces_and_follow_a_namespace_added_and_removed()
    {
        await using var target = new ActorNvme.Target.NvmeTarget();
        var port = target.ListenTcp("127.0.0.1", 0);
        var counts = new Dictionary<string, int> { ["one"] = 1, ["two"] = 2, ["many"] = 1024 };
        foreach (var (name, count) in counts)
        {
            var subsystem = target.AddSubsystem($"nqn.2016-06.io.actornvme:ns-{name}");
            for (int i = 0; i < count; i++)
            {
                subsystem.AddNamespace(ActorNvme.Target.NamespaceOptions.Null(1024 * 1024, 512));
            }
        }

        foreach (var (name, count) in counts)
        {
            var attached = (JsonArray)(await _service.DispatchAsync("bdev_nvme_attach_controller", Parse($$"""{"name":"{{name}}","trtype":"tcp","traddr":"127.0.0.1","trsvcid":"{{port.Address.Port}}","subnqn":"nqn.2016-06.io.actornvme:ns-{{name}}","fabrics_connect_timeout_us":60000000,"ctrlr_loss_timeout_sec":60,"reconnect_delay_sec":1}"""), CancellationToken.None))!;
            Assert.Equal(Enumerable.Range(1, count).Select(i => $"{name}n{i}"), attached.Select(n => n!.GetValue<string>())); // namespace order, as SPDK

        }

        var bdevs = (JsonArray)(await CallAsync("bdev_get_bdevs", null))!;
        Assert.Equal(1 + 2 + 1024, bdevs.Count);

        // Namespace 3 of "two" comes and goes at the target; the host follows its notice.
        target.Faults.AddNamespace("nqn.2016-06.io.actornvme:ns-two", ActorNvme.Target.NamespaceOptions.Null(2 * 1024 * 1024, 512) with { NamespaceId = 3 });
        var third = (JsonArray)(await CallAsync("bdev_get_bdevs", """{"name":"twon3","timeout":60000}"""))!;
        Assert.Equal("twon3", Assert.Single(third)!["name"]!.GetValue<string>());
        Assert.True(target.Faults.RemoveNamespace("nqn.2016-06.io.actornvme:ns-two", 3));
        var until = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while (((JsonArray)(await CallAsync("bdev_get_bdevs", null))!).Any(b => b!["name"]!.GetValue<string>() == "twon3") && DateTime.UtcNow < until)
        {
            await Task.Delay(50);
        }

        Assert.DoesNotContain((JsonArray)(await CallAsync("bdev_get_bdevs", null))!, b => b!["name"]!.GetValue<string>() == "twon3");
        foreach (string name in counts.Keys)
        {
            await _service.DispatchAsync("bdev_nvme_detach_controller", Parse($$"""{"name":"{{name}}"}"""), CancellationToken.None);
        }
    }

    [Theory]
    [InlineData(ActorNvme.Protocol.Data.AnaState.Optimized, "optimized")]
    [InlineData(ActorNvme.Protocol.Data.AnaState.NonOptimized, "non_optimized")]
    [InlineData(ActorNvme.Protocol.Data.AnaState.Inaccessible, "inaccessible")]
    [InlineData(ActorNvme.Protocol.Data.AnaState.PersistentLoss, "persistent_loss")]
    [InlineData(ActorNvme.Protocol.Data.AnaState.Change, "change")]
    public void Ana_states_have_spdks_names(ActorNvme.Protocol.Data.AnaState state, string name) =>
        Assert.Equal(name, ActorNvme.Host.Spdk.SpdkRpcService.AnaStateName(state));

    [Fact]
    public async Task Version_and_method_list_have_spdks_shapes()
    {
        var version = (await CallAsync("spdk_get_version", null))!;
        Assert.StartsWith("ActorNvme v", version["version"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.NotNull(version["fields"]!["major"]);
        var methods = ((JsonArray)(await CallAsync("rpc_get_methods", null))!).Select(m => m!.GetValue<string>()).ToArray();
        foreach (string expected in new[]
        {
            "bdev_nvme_set_options", "framework_start_init", "framework_wait_init", "bdev_nvme_start_discovery", "bdev_nvme_stop_discovery",
            "bdev_nvme_get_discovery_info", "bdev_nvme_attach_controller", "bdev_nvme_detach_controller", "bdev_nvme_get_controllers",
            "bdev_nvme_reset_controller", "bdev_get_bdevs", "rpc_get_methods", "spdk_get_version",
        })
        {
            Assert.Contains(expected, methods);
        }

        var current = ((JsonArray)(await CallAsync("rpc_get_methods", """{"current":true}"""))!).Select(m => m!.GetValue<string>()).ToArray();
        Assert.DoesNotContain("framework_start_init", current); // already initialized
    }

    [Fact]
    public async Task With_wait_for_rpc_only_startup_methods_run_until_framework_start_init()
    {
        using var system = ActorSystem.Create("wait-for-rpc", ConfigurationFactory.ParseString("akka.loglevel = WARNING"));
        var service = new SpdkRpcService(system, Settings);
        var waiting = service.DispatchAsync("framework_wait_init", null, CancellationToken.None);

        var refused = await Assert.ThrowsAsync<JsonRpcException>(() => service.DispatchAsync("bdev_get_bdevs", null, CancellationToken.None));
        Assert.Equal(JsonRpcErrorCodes.InvalidState, refused.Code);
        Assert.Contains("framework_start_init", refused.Message, StringComparison.Ordinal);
        Assert.False(waiting.IsCompleted);

        await service.DispatchAsync("bdev_nvme_set_options", Parse("""{"ctrlr_loss_timeout_sec":30,"reconnect_delay_sec":3,"fast_io_fail_timeout_sec":6,"keep_alive_timeout_ms":4000,"transport_retry_count":4,"bdev_retry_count":-1,"timeout_us":0,"action_on_timeout":"none"}"""), CancellationToken.None);
        Assert.Null(service.Host);
        Assert.True((await service.DispatchAsync("framework_start_init", null, CancellationToken.None))!.GetValue<bool>());
        Assert.True((await waiting.WaitAsync(TimeSpan.FromSeconds(5)))!.GetValue<bool>());
        Assert.NotNull(service.Host);
        Assert.Equal(TimeSpan.FromSeconds(30), service.Settings.Resiliency.CtrlrLossTimeout);
        Assert.Equal(TimeSpan.FromSeconds(6), service.Settings.Resiliency.FastIoFailTimeout);
        Assert.Equal(TimeSpan.FromSeconds(4), service.Settings.KeepAliveTimeout);

        var again = await Assert.ThrowsAsync<JsonRpcException>(() => service.DispatchAsync("framework_start_init", null, CancellationToken.None));
        Assert.Equal(JsonRpcErrorCodes.InvalidState, again.Code);
        Assert.Empty((JsonArray)(await service.DispatchAsync("bdev_get_bdevs", null, CancellationToken.None))!);

        // Nothing attached yet: options may still change, and the host (the same actor) runs on with them.
        var before = service.Host;
        await service.DispatchAsync("bdev_nvme_set_options", Parse("""{"ctrlr_loss_timeout_sec":-1}"""), CancellationToken.None);
        Assert.Equal(before, service.Host);
        Assert.True(service.Settings.Resiliency.ReconnectsForever);
        Assert.Equal(ActorNvme.Actors.Settings.IoTimeoutAction.None, service.Settings.IoTimeoutAction);

        // timeout_us / timeout_admin_us / action_on_timeout / bdev_retry_count become io-timeout /
        // admin-command-timeout / io-timeout-action / io-path-loss-retries (transport_retry_count: io-retries).
        Assert.Equal(int.MaxValue, service.Settings.IoPathLossRetries); // bdev_retry_count -1 above: without end
        Assert.Equal(4, service.Settings.IoRetries); // transport_retry_count 4 above
        await service.DispatchAsync("bdev_nvme_set_options", Parse("""{"timeout_us":2000000,"timeout_admin_us":7000000,"action_on_timeout":"abort","bdev_retry_count":3}"""), CancellationToken.None);
        Assert.Equal(TimeSpan.FromSeconds(2), service.Settings.IoTimeout);
        Assert.Equal(TimeSpan.FromSeconds(7), service.Settings.AdminCommandTimeout);
        Assert.Equal(ActorNvme.Actors.Settings.IoTimeoutAction.Abort, service.Settings.IoTimeoutAction);
        Assert.Equal(3, service.Settings.IoPathLossRetries);
        await service.DispatchAsync("bdev_nvme_set_options", Parse("""{"action_on_timeout":"reset"}"""), CancellationToken.None);
        Assert.Equal(ActorNvme.Actors.Settings.IoTimeoutAction.Reset, service.Settings.IoTimeoutAction);
        await system.Terminate();
    }

    private Task<JsonNode?> CallAsync(string method, string? parameters) =>
        _service.DispatchAsync(method, parameters is null ? null : Parse(parameters), CancellationToken.None);

    private static JsonElement Parse(string json) => JsonDocument.Parse(json).RootElement.Clone();
}
