using System.Diagnostics.Metrics;
using System.Text.Json;
using ActorNvme.Host.Demo;
using ActorNvme.Host.Discover;
using ActorNvme.Host.JsonRpc;
using ActorNvme.Host.TargetProcess;
using ActorNvme.Hosting;
using ActorNvme.Target;
using ActorNvme.Transport;

namespace ActorNvme.Host.Tests;

/// <summary>The demo (the README's main-job command), discover, and the target process's fault methods.</summary>
public sealed class CommandTests
{
    [Fact]
    public async Task The_demo_runs_every_step_and_exits_zero()
    {
        var output = new StringWriter();
        var options = DemoOptions.Default with { DiscoveryPort = 0, SubsystemPorts = [0, 0], NamespaceBytes = 4 * 1024 * 1024 };
        int exit = await DemoRunner.RunAsync(options, output);
        string text = output.ToString();
        Assert.True(exit == 0, text);
        Assert.True(text.Contains("ok   I/O after the restore", StringComparison.Ordinal), text);

        foreach (string expected in new[] { "ok   discovery: attached nvme0n1, nvme1n1", "ok   loss timeout: nvme0n1, nvme1n1 deleted", "ok   re-attach: nvme2n1, nvme3n1 attached", "- nvme0n1 removed: ctrlr-loss-timeout", "ok   shutdown" })
        {
            Assert.True(text.Contains(expected, StringComparison.Ordinal), $"'{expected}' missing from:\n{text}");
        }
    }

    [Fact]
    public async Task Discover_prints_the_log_as_nvme_discover_does()
    {
        await using var target = new NvmeTarget();
        var discovery = target.ListenTcp("127.0.0.1", 0);
        var port = target.ListenTcp("127.0.0.1", 0);
        var subsystem = target.AddSubsystem(new NvmSubsystemOptions("nqn.2016-06.io.actornvme:discover") { LinkToAllListeners = false });
        subsystem.Link(port);

        var log = await DiscoveryLogReader.ReadAsync(discovery.Address, "nqn.2014-08.org.nvmexpress:uuid:00000000-0000-0000-0000-000000000001", Guid.NewGuid(), TimeSpan.FromSeconds(5));
        string text = DiscoveryLogFormatter.Format(log);
        Assert.Contains($"Discovery Log Number of Records 2, Generation counter {log.Header.GenerationCounter}", text, StringComparison.Ordinal);
        Assert.Contains("=====Discovery Log Entry 1======\ntrtype:  tcp\nadrfam:  ipv4\nsubtype: nvme subsystem\n", text, StringComparison.Ordinal);
        Assert.Contains($"trsvcid: {port.Address.Port}\nsubnqn:  nqn.2016-06.io.actornvme:discover\ntraddr:  127.0.0.1\neflags:  none\nsectype: none\n", text, StringComparison.Ordinal);
        Assert.Contains("subtype: current discovery subsystem", text, StringComparison.Ordinal);

        var json = System.Text.Json.Nodes.JsonNode.Parse(DiscoveryLogFormatter.FormatJson(log))!;
        Assert.Equal(log.Header.GenerationCounter, json["genctr"]!.GetValue<ulong>());
        Assert.Equal("nqn.2016-06.io.actornvme:discover", json["records"]![1]!["subnqn"]!.GetValue<string>());
        Assert.Equal("nvme subsystem", json["records"]![1]!["subtype"]!.GetValue<string>());
    }

    [Fact]
    public async Task Discover_names_the_address_it_could_not_reach()
    {
        // A port nothing listens on: bind one, note it, close it.
        var probe = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        probe.Start();
        int free = ((System.Net.IPEndPoint)probe.LocalEndpoint).Port;
        probe.Stop();
        var address = new TransportAddress("127.0.0.1", free);
        var error = await Assert.ThrowsAsync<DiscoveryFailedException>(() => DiscoveryLogReader.ReadAsync(address, "nqn.2014-08.org.nvmexpress:uuid:00000000-0000-0000-0000-000000000001", Guid.NewGuid(), TimeSpan.FromSeconds(5)));
        Assert.Contains($"127.0.0.1:{free}", error.Message, StringComparison.Ordinal);
        Assert.Contains("refused", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_target_process_methods_inject_faults_and_name_what_they_cannot_find()
    {
        await using var target = new NvmeTarget();
        var listener = target.ListenTcp("127.0.0.1", 0);
        target.AddSubsystem("nqn.2016-06.io.actornvme:rpc");
        var rpc = new TargetRpcService(target);
        string port = listener.Address.Port.ToString(System.Globalization.CultureInfo.InvariantCulture);

        await rpc.DispatchAsync("target_blackhole", Json($$"""{"trsvcid":"{{port}}"}"""), CancellationToken.None);
        Assert.True(listener.IsBlackholed);
        await rpc.DispatchAsync("target_restore", null, CancellationToken.None);
        Assert.False(listener.IsBlackholed);

        var nsid = await rpc.DispatchAsync("target_add_namespace", Json("""{"nqn":"nqn.2016-06.io.actornvme:rpc","size_mib":1,"backend":"null"}"""), CancellationToken.None);
        Assert.Equal(1u, nsid!.GetValue<uint>());
        Assert.True((await rpc.DispatchAsync("target_remove_namespace", Json("""{"nqn":"nqn.2016-06.io.actornvme:rpc","nsid":1}"""), CancellationToken.None))!.GetValue<bool>());

        var missing = await Assert.ThrowsAsync<JsonRpcException>(() => rpc.DispatchAsync("target_blackhole", Json("""{"trsvcid":"1"}"""), CancellationToken.None));
        Assert.Equal(JsonRpcErrorCodes.NoDevice, missing.Code);
        Assert.Contains("no listener on 1", missing.Message, StringComparison.Ordinal);
        var bad = await Assert.ThrowsAsync<JsonRpcException>(() => rpc.DispatchAsync("target_add_namespace", Json("""{"nqn":"nqn.2016-06.io.actornvme:rpc","size_mib":1,"backend":"disk"}"""), CancellationToken.None));
        Assert.Equal(JsonRpcErrorCodes.InvalidParams, bad.Code);
        Assert.Contains("'backend'", bad.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Target_config_files_are_checked_field_by_field()
    {
        string path = Path.GetTempFileName();
        try
        {
            File.WriteAllText(path, """{"address":"127.0.0.1","discovery_port":0,"subsystems":[{"nqn":"nqn.x:1","port":0,"namespaces":[{"size_mib":8,"backend":"null"}]}]}""");
            var config = TargetConfig.Load(path);
            var subsystem = Assert.Single(config.Subsystems);
            Assert.True(Assert.Single(subsystem.Namespaces).Null);

            File.WriteAllText(path, """{"subsystems":[{"nqn":"nqn.x:1","port":"4420"}]}""");
            var error = Assert.Throws<InvalidDataException>(() => TargetConfig.Load(path));
            Assert.Contains("'port'", error.Message, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void Target_config_takes_host_keys_as_nvmf_subsystem_add_host_does_and_refuses_bad_ones()
    {
        if (OperatingSystem.IsWindows())
        {
            return; // key files are checked for mode 0600
        }

        string dir = Directory.CreateTempSubdirectory("anvme-keys").FullName;
        try
        {
            string hostKey = ActorNvme.Protocol.Auth.DhChapSecret.Generate(32, 1);
            string keyFile = Path.Combine(dir, "host.key");
            File.WriteAllText(keyFile, hostKey + "\n");
            File.SetUnixFileMode(keyFile, UnixFileMode.UserRead | UnixFileMode.UserWrite);
            string path = Path.Combine(dir, "target.json");
            string ctrlrKey = ActorNvme.Protocol.Auth.DhChapSecret.Generate(48, 2);
            File.WriteAllText(path, $$"""
                {"subsystems":[{"nqn":"nqn.x:1","port":0,"hosts":["nqn.h:plain",
                  {"nqn":"nqn.h:keyed","dhchap_key":"{{keyFile}}","dhchap_ctrlr_key":"{{ctrlrKey}}","dhchap_digests":["sha384"],"dhchap_dhgroups":["null","ffdhe2048"]}]}]}
                """);
            var subsystem = Assert.Single(TargetConfig.Load(path).Subsystems);
            Assert.Equal(["nqn.h:plain", "nqn.h:keyed"], subsystem.Hosts);
            var keyed = Assert.Single(subsystem.HostKeys);
            Assert.Equal(hostKey, keyed.DhChap!.HostKey);
            Assert.Equal(ctrlrKey, keyed.DhChap.ControllerKey);
            Assert.Equal([ActorNvme.Protocol.Auth.DhChapHashId.Sha384], keyed.DhChap.Hashes);
            Assert.Equal([ActorNvme.Protocol.Auth.DhChapGroupId.Null, ActorNvme.Protocol.Auth.DhChapGroupId.Ffdhe2048], keyed.DhChap.Groups);
            Assert.DoesNotContain("DHHC", keyed.ToString(), StringComparison.Ordinal);

            File.SetUnixFileMode(keyFile, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.OtherRead);
            var error = Assert.Throws<InvalidDataException>(() => TargetConfig.Load(path));
            Assert.Contains("0600", error.Message, StringComparison.Ordinal);

            File.WriteAllText(path, """{"subsystems":[{"nqn":"nqn.x:1","port":0,"hosts":[{"nqn":"nqn.h:1","dhchap_key":"DHHC-1:00:abc:","dhchap_digests":["md5"]}]}]}""");
            error = Assert.Throws<InvalidDataException>(() => TargetConfig.Load(path));
            Assert.Contains("md5", error.Message, StringComparison.Ordinal);

            File.WriteAllText(path, """{"subsystems":[{"nqn":"nqn.x:1","port":0,"secure_channel":true,"hosts":[{"nqn":"nqn.h:1","dhchap_key":"DHHC-1:00:abc:"}]}]}""");
            error = Assert.Throws<InvalidDataException>(() => TargetConfig.Load(path));
            Assert.Contains("psk", error.Message, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void Metrics_are_published_on_the_ActorNvme_meter_and_never_throw()
    {
        var seen = new List<string>();
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Meter.Name == NvmeMetrics.MeterName)
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<long>((instrument, _, _, _) => seen.Add(instrument.Name));
        listener.SetMeasurementEventCallback<double>((instrument, _, _, _) => seen.Add(instrument.Name));
        listener.SetMeasurementEventCallback<int>((instrument, _, _, _) => seen.Add(instrument.Name));
        listener.Start();

        using var metrics = new NvmeMetrics();
        metrics.RecordRpc("bdev_get_bdevs", TimeSpan.FromMilliseconds(1), null);
        metrics.RecordRpc("bdev_get_bdevs", TimeSpan.FromMilliseconds(1), JsonRpcErrorCodes.NoDevice);
        metrics.RecordIo("read", 4096, TimeSpan.FromMicroseconds(80), succeeded: true);
        metrics.RecordIo(null!, -1, TimeSpan.MinValue, succeeded: true); // garbage in: dropped, not thrown
        listener.RecordObservableInstruments();

        Assert.Contains("actornvme.rpc.requests", seen);
        Assert.Contains("actornvme.rpc.duration", seen);
        Assert.Contains("actornvme.io.bytes", seen);
        Assert.Contains("actornvme.block_devices", seen);
    }

    private static JsonElement Json(string text) => JsonDocument.Parse(text).RootElement.Clone();
}
