using System.Text.Json;
using System.Text.Json.Nodes;
using Akka.Actor;
using Akka.Configuration;
using ActorNvme.Actors.Host;
using ActorNvme.Actors.Settings;
using ActorNvme.Actors.Subsystem;
using ActorNvme.Host.JsonRpc;
using ActorNvme.Host.Spdk;
using ActorNvme.Io;
using ActorNvme.Target;

namespace ActorNvme.Host.Tests;

/// <summary>
/// bdev_get_iostat / bdev_reset_iostat as SPDK's rpc.py calls them: the counts are those of the I/O the
/// device really did, per kind and per path, and the reset modes clear what they name.
/// </summary>
public sealed class SpdkIoStatTests : IAsyncLifetime
{
    private const string Nqn = "nqn.2016-06.io.actornvme:iostat";
    private const int BlockSize = 512;

    private readonly ActorSystem _system = ActorSystem.Create("spdk-iostat", ConfigurationFactory.ParseString("akka.loglevel = WARNING"));
    private readonly NvmeTarget _target = new();
    private SpdkRpcService _service = null!;

    public async Task InitializeAsync()
    {
        _service = new SpdkRpcService(_system, NvmeHostSettings.Default with { Resiliency = ResiliencySettings.FromSeconds(30, 1, 0) });
        await _service.InitializeAsync();
    }

    public async Task DisposeAsync()
    {
        await _system.Terminate();
        await _target.DisposeAsync();
    }

    [Fact]
    public async Task Counts_are_the_devices_real_io_per_kind_and_active_active_spreads_commands_evenly_over_two_paths()
    {
        _target.AddSubsystem(Nqn).AddNamespace(NamespaceOptions.Ram(1024 * 1024, BlockSize));
        foreach (var port in new[] { _target.ListenTcp("127.0.0.1", 0), _target.ListenTcp("127.0.0.1", 0) })
        {
            await CallAsync("bdev_nvme_attach_controller", $$"""{"name":"st","trtype":"tcp","traddr":"127.0.0.1","trsvcid":"{{port.Address.Port}}","subnqn":"{{Nqn}}","multipath":"multipath"}""");
        }

        var device = await DeviceWithPathsAsync("stn1", 2);
        await BothPathsConnectedAsync("stn1");
        await CallAsync("bdev_nvme_set_multipath_policy", """{"name":"stn1","policy":"active_active","selector":"round_robin"}""");
        await CallAsync("bdev_reset_iostat", """{"name":"stn1"}"""); // what the attach read is not ours to count

        const int Writes = 600;
        const int Reads = 400;
        var block = new byte[BlockSize * 2];
        for (int i = 0; i < Writes; i++)
        {
            await device.WriteAsync((ulong)(i % 1000) * 2, block);
        }

        for (int i = 0; i < Reads; i++)
        {
            await device.ReadAsync((ulong)(i % 1000) * 2, block);
        }

        await device.WriteZeroesAsync(0, 8);
        await device.FlushAsync();
        await Assert.ThrowsAnyAsync<ArgumentException>(async () => await device.ReadAsync(device.BlockCount, block)); // refused before any I/O: not counted

        var stats = Assert.Single((await CallAsync("bdev_get_iostat", """{"per_channel":false,"names":["stn1"]}"""))!["bdevs"]!.AsArray())!;
        Assert.Equal("stn1", stats["name"]!.GetValue<string>());
        Assert.Equal(Writes, stats["num_write_ops"]!.GetValue<long>());
        Assert.Equal(Writes * 2L * BlockSize, stats["bytes_written"]!.GetValue<long>());
        Assert.Equal(Reads, stats["num_read_ops"]!.GetValue<long>());
        Assert.Equal(Reads * 2L * BlockSize, stats["bytes_read"]!.GetValue<long>());
        Assert.True(stats["read_latency_ticks"]!.GetValue<long>() >= stats["max_read_latency_ticks"]!.GetValue<long>());
        Assert.InRange(stats["min_read_latency_ticks"]!.GetValue<long>(), 1, stats["max_read_latency_ticks"]!.GetValue<long>());
        var ours = stats["actornvme"]!;
        Assert.Equal(1, ours["num_write_zeroes_ops"]!.GetValue<long>());
        Assert.Equal(8L * BlockSize, ours["bytes_write_zeroed"]!.GetValue<long>());
        Assert.Equal(1, ours["num_flush_ops"]!.GetValue<long>());
        Assert.Equal(0, ours["num_read_errors"]!.GetValue<long>());

        // Round robin with rr_min_io 1 over two optimized paths: every command counted on one path, the two within 10%.
        var perPath = ours["commands_per_path"]!.AsObject().Select(kv => kv.Value!.GetValue<long>()).ToArray();
        Assert.Equal(2, perPath.Length);
        Assert.Equal(Writes + Reads + 2, perPath.Sum());
        Assert.True(Math.Abs(perPath[0] - perPath[1]) <= perPath.Sum() / 10, $"commands per path {perPath[0]} and {perPath[1]} differ by more than 10%");

        // reset_mode maxmin clears only the extremes; a plain reset clears the rest.
        await CallAsync("bdev_get_iostat", """{"name":"stn1","reset_mode":"maxmin"}""");
        var after = (await CallAsync("bdev_get_iostat", """{"name":"stn1"}"""))!["bdevs"]![0]!;
        Assert.Equal(0, after["max_read_latency_ticks"]!.GetValue<long>());
        Assert.Equal(Reads, after["num_read_ops"]!.GetValue<long>());
        await CallAsync("bdev_reset_iostat", """{"name":"stn1","mode":"all"}""");
        Assert.Equal(0, (await CallAsync("bdev_get_iostat", null))!["bdevs"]![0]!["num_write_ops"]!.GetValue<long>());
    }

    [Fact]
    public async Task Transport_statistics_count_the_completions_of_the_io_done_on_the_io_threads()
    {
        _target.AddSubsystem(Nqn).AddNamespace(NamespaceOptions.Ram(1024 * 1024, BlockSize));
        var port = _target.ListenTcp("127.0.0.1", 0);
        await CallAsync("bdev_nvme_attach_controller", $$"""{"name":"ts","trtype":"tcp","traddr":"127.0.0.1","trsvcid":"{{port.Address.Port}}","subnqn":"{{Nqn}}"}""");
        var device = await DeviceWithPathsAsync("tsn1", 1);

        static (long Completions, long Submitted, long Polls, int QueuePairs) Sum(JsonNode? result)
        {
            var tcp = result!["poll_groups"]!.AsArray().Select(g => g!["transports"]![0]!).ToArray();
            Assert.All(tcp, t => Assert.Equal("TCP", t!["trname"]!.GetValue<string>()));
            return (
                tcp.Sum(t => t!["nvme_completions"]!.GetValue<long>()),
                tcp.Sum(t => t!["submitted_requests"]!.GetValue<long>()),
                tcp.Sum(t => t!["polls"]!.GetValue<long>()),
                tcp.Sum(t => t!["actornvme"]!["queue_pairs"]!.GetValue<int>()));
        }

        var before = Sum(await CallAsync("bdev_nvme_get_transport_statistics", null));
        const int Reads = 500;
        var block = new byte[BlockSize];
        for (int i = 0; i < Reads; i++)
        {
            await device.ReadAsync((ulong)i, block);
        }

        var after = Sum(await CallAsync("bdev_nvme_get_transport_statistics", "{}"));
        Assert.True(after.Completions - before.Completions >= Reads, $"nvme_completions grew by {after.Completions - before.Completions}, fewer than the {Reads} reads done");
        Assert.True(after.Submitted >= after.Completions, $"submitted_requests {after.Submitted} < nvme_completions {after.Completions}");
        Assert.True(after.Polls > before.Polls, "no poll counted");
        Assert.True(after.QueuePairs >= 1, "the device's I/O queue is in no poll group");
    }

    [Fact]
    public async Task A_failed_io_counts_as_an_error_of_its_kind()
    {
        _target.AddSubsystem(Nqn).AddNamespace(NamespaceOptions.Ram(1024 * 1024, BlockSize));
        var port = _target.ListenTcp("127.0.0.1", 0);
        await CallAsync("bdev_nvme_attach_controller", $$"""{"name":"er","trtype":"tcp","traddr":"127.0.0.1","trsvcid":"{{port.Address.Port}}","subnqn":"{{Nqn}}"}""");
        var device = await DeviceWithPathsAsync("ern1", 1);
        await CallAsync("bdev_nvme_detach_controller", """{"name":"er"}""");
        await Assert.ThrowsAsync<BlockDeviceException>(async () => await device.ReadAsync(0, new byte[BlockSize]));
        Assert.Equal(1, device.Statistics.Snapshot().Read.Errors);
        Assert.Equal(0, device.Statistics.Snapshot().Read.Operations);
    }

    [Theory]
    [InlineData("""{"name":"nothere"}""", JsonRpcErrorCodes.NoDevice, "nothere")]
    [InlineData("""{"names":["nothere"]}""", JsonRpcErrorCodes.NoDevice, "nothere")]
    [InlineData("""{"per_channel":true}""", JsonRpcErrorCodes.NotSupported, "per_channel")]
    [InlineData("""{"reset_mode":"some"}""", JsonRpcErrorCodes.Invalid, "reset_mode")]
    public async Task Bad_parameters_are_refused_naming_them(string parameters, int code, string named)
    {
        var error = await Assert.ThrowsAsync<JsonRpcException>(() => CallAsync("bdev_get_iostat", parameters));
        Assert.Equal(code, error.Code);
        Assert.Contains(named, error.Message, StringComparison.Ordinal);
    }

    private async Task<BlockDevice> DeviceWithPathsAsync(string name, int paths)
    {
        var until = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while (true)
        {
            var list = await _service.Host!.Ask<NvmeHost.BlockDeviceList>(NvmeHost.ListBlockDevices.Instance, TimeSpan.FromSeconds(10));
            if (list.Devices.FirstOrDefault(d => d.Name == name) is { } info)
            {
                var answer = await _service.Host.Ask<Subsystem.BlockDeviceResult>(new NvmeHost.ToSubsystem(info.Controller, new Subsystem.GetBlockDevice(name)), TimeSpan.FromSeconds(10));
                if (answer.Device is { } device && device.PathCount >= paths && device.HasUsablePath)
                {
                    return device;
                }
            }

            Assert.True(DateTime.UtcNow < until, $"{name} did not appear with {paths} path(s)");
            await Task.Delay(50);
        }
    }

    private async Task BothPathsConnectedAsync(string name)
    {
        var until = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while (true)
        {
            var paths = (await CallAsync("bdev_nvme_get_io_paths", $$"""{"name":"{{name}}"}"""))!["poll_groups"]![0]!["io_paths"]!.AsArray();
            if (paths.Count == 2 && paths.All(p => p!["connected"]!.GetValue<bool>() && p["accessible"]!.GetValue<bool>()))
            {
                return;
            }

            Assert.True(DateTime.UtcNow < until, $"{name}: both paths not connected in time");
            await Task.Delay(50);
        }
    }

    private Task<JsonNode?> CallAsync(string method, string? parameters) =>
        _service.DispatchAsync(method, parameters is null ? null : JsonDocument.Parse(parameters).RootElement.Clone(), CancellationToken.None);
}
