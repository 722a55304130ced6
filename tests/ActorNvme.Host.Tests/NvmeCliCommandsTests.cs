using System.Globalization;
using System.Text.Json.Nodes;
using Akka.Actor;
using Akka.Configuration;
using ActorNvme.Actors.Settings;
using ActorNvme.Host.Cli;
using ActorNvme.Host.JsonRpc;
using ActorNvme.Host.Spdk;
using ActorNvme.Target;

namespace ActorNvme.Host.Tests;

/// <summary>
/// actornvme list / connect / connect-all / disconnect / disconnect-all, with nvme-cli's option names,
/// against a daemon (the JSON-RPC server over the SPDK-compatible service) and our Target.
/// </summary>
public sealed class NvmeCliCommandsTests : IAsyncLifetime
{
    private const string FirstNqn = "nqn.2016-06.io.actornvme:cli-one";
    private const string SecondNqn = "nqn.2016-06.io.actornvme:cli-two";

    private readonly ActorSystem _system = ActorSystem.Create("nvme-cli", ConfigurationFactory.ParseString("akka.loglevel = WARNING"));
    private readonly NvmeTarget _target = new();
    private readonly string _socket = TempSocket.NewPath("cli");
    private JsonRpcServer _server = null!;
    private string _port = string.Empty;

    public async Task InitializeAsync()
    {
        _target.AddSubsystem(FirstNqn).AddNamespace(NamespaceOptions.Ram(4 * 1024 * 1024, 512));
        var second = _target.AddSubsystem(SecondNqn);
        second.AddNamespace(NamespaceOptions.Ram(1024 * 1024, 4096));
        second.AddNamespace(NamespaceOptions.Ram(1024 * 1024, 4096));
        _port = _target.ListenTcp("127.0.0.1", 0).Address.Port.ToString(CultureInfo.InvariantCulture);
        var service = new SpdkRpcService(_system, NvmeHostSettings.Default with { Resiliency = ResiliencySettings.FromSeconds(30, 1, 0) });
        await service.InitializeAsync();
        _server = new JsonRpcServer(_socket, service);
        _server.Start();
    }

    public async Task DisposeAsync()
    {
        await _server.DisposeAsync();
        await _system.Terminate();
        await _target.DisposeAsync();
    }

    [Fact]
    public async Task Connect_list_and_disconnect_by_device_and_by_nqn_as_nvme_cli_users_type_them()
    {
        await using var client = await JsonRpcClient.ConnectAsync(_socket);
        var output = new StringWriter();
        Assert.Equal(0, await NvmeCliCommands.ConnectAsync(client, Request(FirstNqn), output, CancellationToken.None));
        Assert.Contains("connected nvme0", output.ToString(), StringComparison.Ordinal);
        Assert.Equal(0, await NvmeCliCommands.ConnectAsync(client, Request(SecondNqn), output, CancellationToken.None));
        Assert.Contains("connected nvme1", output.ToString(), StringComparison.Ordinal); // the next free name

        var table = new StringWriter();
        Assert.Equal(0, await NvmeCliCommands.ListAsync(client, json: false, table, CancellationToken.None));
        var lines = table.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.StartsWith("Node", lines[0], StringComparison.Ordinal);
        Assert.DoesNotContain("Owner", lines[0], StringComparison.Ordinal); // a single daemon: no owners, no column
        Assert.Equal(2 + 3, lines.Length); // header, rule, three namespaces
        Assert.Contains(lines, l => l.StartsWith("nvme0n1 ", StringComparison.Ordinal) && l.Contains("4 MiB", StringComparison.Ordinal) && l.Contains(FirstNqn, StringComparison.Ordinal) && l.Contains($"127.0.0.1:{_port} enabled", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.StartsWith("nvme1n2 ", StringComparison.Ordinal) && l.Contains("4096 B", StringComparison.Ordinal));

        var json = new StringWriter();
        await NvmeCliCommands.ListAsync(client, json: true, json, CancellationToken.None);
        var devices = JsonNode.Parse(json.ToString())!["Devices"]!.AsArray();
        Assert.Equal(["nvme0n1", "nvme1n1", "nvme1n2"], devices.Select(d => d!["DevicePath"]!.GetValue<string>()).Order());
        Assert.Equal(4L * 1024 * 1024, devices.Single(d => d!["DevicePath"]!.GetValue<string>() == "nvme0n1")!["PhysicalSize"]!.GetValue<long>());

        Assert.Equal(0, await NvmeCliCommands.DisconnectAsync(client, nqn: null, device: "nvme1n2", output, CancellationToken.None));
        Assert.Contains("disconnected 1 controller(s): nvme1", output.ToString(), StringComparison.Ordinal);
        Assert.Equal(1, await NvmeCliCommands.DisconnectAsync(client, nqn: SecondNqn, device: null, output, CancellationToken.None)); // nothing left of it
        Assert.Equal(0, await NvmeCliCommands.DisconnectAsync(client, nqn: FirstNqn, device: null, output, CancellationToken.None));
        Assert.Empty((await client.CallAsync("bdev_get_bdevs"))!.AsArray());
    }

    [Fact]
    public async Task Connect_all_follows_the_discovery_log_and_disconnect_all_leaves_nothing()
    {
        await using var client = await JsonRpcClient.ConnectAsync(_socket);
        var output = new StringWriter();
        var request = Request(null) with { Name = "disc" };
        Assert.Equal(0, await NvmeCliCommands.ConnectAllAsync(client, request, output, CancellationToken.None));
        Assert.Contains("discovery disc", output.ToString(), StringComparison.Ordinal);
        Assert.Equal(3, (await client.CallAsync("bdev_get_bdevs"))!.AsArray().Count);

        Assert.Equal(0, await NvmeCliCommands.DisconnectAsync(client, null, null, output, CancellationToken.None, all: true));
        Assert.Contains("stopped 1 discovery service(s)", output.ToString(), StringComparison.Ordinal);
        Assert.Empty((await client.CallAsync("bdev_get_bdevs"))!.AsArray());
        Assert.Empty((await client.CallAsync("bdev_nvme_get_discovery_info"))!.AsArray());
    }

    [Fact]
    public void Options_the_daemon_cannot_mean_are_refused_naming_them()
    {
        Assert.Contains("--transport rdma", Assert.Throws<ArgumentException>(() => NvmeCliCommands.AttachParameters(Request(FirstNqn) with { Transport = "rdma" }, "x")).Message, StringComparison.Ordinal);
        Assert.Contains("--keep-alive-tmo 5", Assert.Throws<ArgumentException>(() => NvmeCliCommands.AttachParameters(Request(FirstNqn) with { KeepAliveSeconds = 5 }, "x")).Message, StringComparison.Ordinal);
        var p = NvmeCliCommands.AttachParameters(Request(FirstNqn) with { LossTimeoutSeconds = -1, ReconnectDelaySeconds = 2, IoQueues = 3, HeaderDigest = true }, "x");
        Assert.Equal(-1, p["ctrlr_loss_timeout_sec"]!.GetValue<int>());
        Assert.Equal(2, p["reconnect_delay_sec"]!.GetValue<int>());
        Assert.Equal(3, p["num_io_queues"]!.GetValue<int>());
        Assert.True(p["hdgst"]!.GetValue<bool>());
        Assert.False(p.ContainsKey("ddgst"));
    }

    private NvmeCliCommands.ConnectRequest Request(string? nqn) =>
        new("tcp", "127.0.0.1", _port, nqn, null, null, null, null, null, false, false, null);
}
