using System.Text.Json;
using ActorNvme.Host.Perf;
using ActorNvme.Target;

namespace ActorNvme.Io.Tests;

/// <summary><c>actornvme perf</c>: SPDK perf's options, refusals that name the option, and a short run against our Target.</summary>
public sealed class PerfCommandTests
{
    private const string Trid = "trtype:TCP adrfam:IPv4 traddr:127.0.0.1 trsvcid:4420 subnqn:nqn.2016-06.io.spdk:cnode1";

    [Fact]
    public void Spdk_perf_options_parse()
    {
        var options = PerfOptionParser.Parse(["-r", Trid, "-q", "32", "-o", "4096", "-w", "randrw", "-M", "70", "-t", "10", "-P", "2", "-c", "0x3", "--json", "-a", "2"])!;
        var target = Assert.Single(options.Targets);
        Assert.Equal("127.0.0.1", target.Address.Host);
        Assert.Equal(4420, target.Address.Port);
        Assert.Equal("nqn.2016-06.io.spdk:cnode1", target.SubsystemNqn);
        Assert.Equal(32, options.QueueDepth);
        Assert.Equal(4096, options.IoSize);
        Assert.Equal(PerfPattern.RandReadWrite, options.Pattern);
        Assert.Equal(70, options.EffectiveReadPercent);
        Assert.Equal(10, options.Seconds);
        Assert.Equal(2, options.QueuePairs);
        Assert.Equal(2, options.Cores);
        Assert.Equal([0, 1], options.CoreList);
        Assert.True(options.Json);
        Assert.Equal(2, options.WarmupSeconds);

        Assert.Equal(4, PerfOptionParser.Parse(["-r", Trid, "-q", "1", "-o", "128k", "-w", "read", "-t", "1", "-c", "[0-3]"])!.Cores);

        // SPDK reads a bare number as a hexadecimal mask too: 6 is cores 1 and 2, not six cores.
        Assert.Equal([1, 2], PerfOptionParser.Parse(["-r", Trid, "-q", "1", "-o", "4k", "-w", "read", "-t", "1", "-c", "6"])!.CoreList);
        Assert.Equal([1], PerfOptionParser.Parse(["-r", Trid, "-q", "1", "-o", "4k", "-w", "read", "-t", "1", "-c", "0x2"])!.CoreList);
        var unpinned = PerfOptionParser.Parse(["-r", Trid, "-q", "1", "-o", "4k", "-w", "read", "-t", "1"])!;
        Assert.Empty(unpinned.CoreList);
        Assert.Equal(1, unpinned.Cores);
        Assert.Equal(PerfOptions.DefaultReceiveSpinMicroseconds, unpinned.ReceiveSpinMicroseconds);
        Assert.Equal(0, PerfOptionParser.Parse(["-r", Trid, "-q", "1", "-o", "4k", "-w", "read", "-t", "1", "--spin", "0"])!.ReceiveSpinMicroseconds);
        Assert.Equal(128 * 1024, PerfOptionParser.Parse(["-r", Trid, "-q", "1", "-o", "128k", "-w", "read", "-t", "1"])!.IoSize);
        Assert.Equal(3u, PerfOptionParser.ParseTarget(Trid + " ns:3").NamespaceId);
    }

    [Theory]
    [InlineData("-q", "-q abc", "-q")]
    [InlineData("-o", "-o 1000", "-o")]
    [InlineData("-w", "-w sideways", "-w")]
    [InlineData("-M", "-w rw", "-M")]
    [InlineData("-t", "-t 0", "-t")]
    [InlineData("-c", "-c 0x0", "-c")]
    [InlineData("-c", "-c 0xzz", "-c")]
    [InlineData("-c", "-c [1-0]", "-c")]
    [InlineData("-x", "-x 1", "'-x'")]
    public void A_bad_option_is_refused_naming_it(string option, string replacement, string named)
    {
        var args = new List<string> { "-r", Trid, "-q", "8", "-o", "4096", "-w", "randread", "-t", "1" };
        int at = args.IndexOf(option);
        var parts = replacement.Split(' ');
        if (at >= 0)
        {
            args.RemoveRange(at, 2);
        }

        if (option == "-M")
        {
            args.RemoveRange(args.IndexOf("-w"), 2);
        }

        args.AddRange(parts);
        var error = Assert.Throws<PerfUsageException>(() => PerfOptionParser.Parse(args));
        Assert.Contains(named, error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("trtype:RDMA traddr:1.2.3.4 trsvcid:4420 subnqn:x", "trtype")]
    [InlineData("trtype:TCP traddr:1.2.3.4 subnqn:x", "trsvcid")]
    [InlineData("trtype:TCP traddr:1.2.3.4 trsvcid:99999 subnqn:x", "trsvcid")]
    [InlineData("trtype:TCP traddr:1.2.3.4 trsvcid:4420", "subnqn")]
    [InlineData("trtype:TCP traddr:1.2.3.4 trsvcid:4420 subnqn:x colour:blue", "colour")]
    public void A_bad_transport_id_is_refused_naming_the_key(string trid, string named)
    {
        var error = Assert.Throws<PerfUsageException>(() => PerfOptionParser.ParseTarget(trid));
        Assert.Contains("-r", error.Message, StringComparison.Ordinal);
        Assert.Contains(named, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Bad_options_exit_with_code_2()
    {
        Assert.Equal(2, await PerfCommand.RunAsync(["-r", Trid, "-q", "0", "-o", "4096", "-w", "read", "-t", "1"]));
        Assert.Equal(2, await PerfCommand.RunAsync(["-q", "1", "-o", "4096", "-w", "read", "-t", "1"]));
    }

    [Fact]
    public void The_latency_histogram_is_log_linear_and_its_percentiles_stay_within_its_resolution()
    {
        var histogram = new LatencyHistogram();
        for (long v = 1; v <= 100_000; v++)
        {
            histogram.Record(v);
        }

        Assert.Equal(100_000, histogram.Count);
        Assert.Equal(1, histogram.Min);
        Assert.Equal(100_000, histogram.Max);
        Assert.InRange(histogram.Percentile(0.5), 50_000 * 0.97, 50_000 * 1.03);
        Assert.InRange(histogram.Percentile(0.99), 99_000 * 0.97, 99_000 * 1.03);
        for (long v = 0; v < 1L << 40; v = (v * 3) + 1)
        {
            var (low, high) = LatencyHistogram.BoundsOf(LatencyHistogram.IndexOf(v));
            Assert.InRange(v, low, high);
        }
    }

    [Fact]
    public async Task A_short_run_against_our_target_reports_iops_and_latency_as_json()
    {
        await using var target = new NvmeTarget();
        target.AddSubsystem("nqn.2016-06.io.spdk:cnode1").AddNamespace(NamespaceOptions.Null(64L * 1024 * 1024));
        var listener = target.ListenTcp("127.0.0.1", 0);
        var options = PerfOptionParser.Parse(["-r", $"trtype:TCP adrfam:IPv4 traddr:127.0.0.1 trsvcid:{listener.Address.Port} subnqn:nqn.2016-06.io.spdk:cnode1", "-q", "8", "-o", "4096", "-w", "randrw", "-M", "50", "-t", "1", "-P", "2", "--json"])!;

        await using var attach = await PerfAttach.StartAsync(options, IoRig.Deadline, CancellationToken.None);
        var device = Assert.Single(attach.Devices);
        Assert.Equal(2, device.Device.Paths.Single().Value.Queues.Count);
        var result = await new PerfRun(options, attach.Devices).RunAsync(_ => { }, CancellationToken.None);

        using var json = JsonDocument.Parse(PerfCommand.Json(options, result));
        var root = json.RootElement;
        Assert.True(root.GetProperty("iops").GetDouble() > 0);
        Assert.True(root.GetProperty("mibps").GetDouble() > 0);
        Assert.Equal(0, root.GetProperty("errors").GetInt64());
        var latency = root.GetProperty("latency_us");
        foreach (var name in new[] { "avg", "min", "max", "p50", "p99", "p999" })
        {
            Assert.True(latency.GetProperty(name).GetDouble() > 0, name);
        }

        Assert.True(latency.GetProperty("min").GetDouble() <= latency.GetProperty("p50").GetDouble());
        Assert.True(latency.GetProperty("p50").GetDouble() <= latency.GetProperty("max").GetDouble());
        Assert.Contains("nvme0n1", PerfCommand.Table(result), StringComparison.Ordinal);
        Assert.Null(result.FirstError);
    }
}
