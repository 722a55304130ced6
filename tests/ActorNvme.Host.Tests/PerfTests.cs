using System.Diagnostics;
using ActorNvme.Host.Perf;
using ActorNvme.Protocol.Data;
using ActorNvme.Protocol.Nvme;
using ActorNvme.Target;
using ActorNvme.Transport;

namespace ActorNvme.Host.Tests;

/// <summary>`actornvme perf`: the options users carry over from SPDK's perf, the histogram's arithmetic, -Q and -r discovery.</summary>
public sealed class PerfTests
{
    private const string Trid = "trtype:TCP adrfam:IPv4 traddr:127.0.0.1 trsvcid:4420 subnqn:nqn.2016-06.io.actornvme:disk1";

    private static PerfOptions Parse(params string[] extra) =>
        PerfOptionParser.Parse([.. new[] { "-r", Trid, "-q", "32", "-o", "4096", "-w", "randread", "-t", "1" }, .. extra])!;

    /// <summary>Our Target with one subsystem of a 4 MiB RAM namespace on a free port; <paramref name="trid"/> reaches it.</summary>
    private static NvmeTarget RamTarget(string nqn, out string trid)
    {
        var target = new NvmeTarget();
        var listener = target.ListenTcp("127.0.0.1", 0);
        var subsystem = target.AddSubsystem(new NvmSubsystemOptions(nqn) { LinkToAllListeners = false });
        subsystem.Link(listener);
        subsystem.AddNamespace(NamespaceOptions.Ram(4 * 1024 * 1024));
        trid = $"traddr:127.0.0.1 trsvcid:{listener.Address.Port} subnqn:{nqn}";
        return target;
    }

    [Fact]
    public void L_asks_for_the_summary_and_LL_or_two_L_for_the_histogram_too()
    {
        Assert.Equal(0, Parse().LatencyTracking);
        Assert.Equal(1, Parse("-L").LatencyTracking);
        Assert.Equal(1, Parse("--enable-sw-latency-tracking").LatencyTracking);
        Assert.Equal(2, Parse("-LL").LatencyTracking);
        Assert.Equal(2, Parse("-L", "-L").LatencyTracking);
        Assert.Equal(2, Parse("-L", "-L", "-L").LatencyTracking);
    }

    [Fact]
    public void Q_takes_a_positive_interval_and_refuses_anything_else()
    {
        Assert.Null(Parse().ErrorReportInterval);
        Assert.Equal(5, Parse("-Q", "5").ErrorReportInterval);
        Assert.Equal(1, Parse("--continue-on-error=1").ErrorReportInterval);
        foreach (string bad in new[] { "0", "-1", "x", "1.5" })
        {
            var e = Assert.Throws<PerfUsageException>(() => Parse("-Q", bad));
            Assert.Contains("-Q", e.Message, StringComparison.Ordinal);
        }

        Assert.Throws<PerfUsageException>(() => Parse("-Q"));
    }

    [Fact]
    public void S_sets_the_io_queue_size_the_run_asks_for()
    {
        Assert.Null(Parse().IoQueueSize);
        Assert.Equal(128, PerfAttach.Settings(Parse()).IoQueueSize); // sized for -q when -s is absent
        var options = Parse("-s", "64");
        Assert.Equal(64, options.IoQueueSize);
        Assert.Equal(64, PerfAttach.Settings(options).IoQueueSize);
        Assert.Equal(1024, PerfAttach.Settings(Parse("--io-queue-size", "1024")).IoQueueSize);
        foreach (string bad in new[] { "1", "4097", "0", "big" })
        {
            var e = Assert.Throws<PerfUsageException>(() => Parse("-s", bad));
            Assert.Contains("-s", e.Message, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void The_discovery_nqn_marks_a_target_to_expand()
    {
        Assert.False(Parse().NeedsDiscovery);
        var options = PerfOptionParser.Parse(["-r", "trtype:TCP traddr:127.0.0.1 trsvcid:8009 subnqn:nqn.2014-08.org.nvmexpress.discovery", "-q", "1", "-o", "4096", "-w", "read", "-t", "1"])!;
        Assert.True(options.NeedsDiscovery);
        Assert.True(options.Targets[0].IsDiscovery);
    }

    [Theory]
    [InlineData(1, 1)]
    [InlineData(3, 3)]
    [InlineData(7, 1)]
    public void Q_reports_every_nth_error(int interval, int errors)
    {
        var reported = Enumerable.Range(1, 20 * errors).Where(n => PerfRun.ShouldReportError(n, interval)).ToArray();
        Assert.Equal(Enumerable.Range(1, 20 * errors / interval).Select(k => k * interval).ToArray(), reported);
        Assert.False(PerfRun.ShouldReportError(interval, null)); // without -Q nothing is printed as it happens
    }

    [Fact]
    public void Every_value_falls_in_the_bucket_that_holds_it_and_buckets_tile_the_line()
    {
        long previousHigh = -1;
        for (int index = 0; index < 40 * 32; index++)
        {
            var (low, high) = LatencyHistogram.BoundsOf(index);
            Assert.Equal(previousHigh + 1, low); // no gap, no overlap
            Assert.True(high >= low);
            Assert.Equal(index, LatencyHistogram.IndexOf(low));
            Assert.Equal(index, LatencyHistogram.IndexOf(high));
            if (low >= 32)
            {
                Assert.True((high - low + 1) * 32 <= low, $"bucket {index} ({low}..{high}) wider than 1/32 of its values");
            }

            previousHigh = high;
        }
    }

    [Fact]
    public void Percentiles_and_the_cumulative_buckets_follow_the_recorded_values()
    {
        var histogram = new LatencyHistogram();
        var random = new Random(12345);
        var values = Enumerable.Range(0, 10_000).Select(_ => (long)random.Next(1, 5_000_000)).ToArray();
        foreach (long v in values)
        {
            histogram.Record(v);
        }

        Array.Sort(values);
        foreach (double p in new[] { 0.01, 0.5, 0.9, 0.99, 0.999 })
        {
            long exact = values[(int)Math.Ceiling(p * values.Length) - 1];
            double estimate = histogram.Percentile(p);
            Assert.InRange(estimate, exact * (1 - (1.0 / 32)), exact * (1 + (1.0 / 32)));
        }

        var buckets = histogram.NonEmptyBuckets().ToList();
        Assert.Equal(values.Length, buckets.Sum(b => b.Count));
        Assert.Equal(1.0, buckets[^1].Cumulative, 12);
        Assert.True(buckets.Zip(buckets.Skip(1)).All(pair => pair.First.High < pair.Second.Low && pair.First.Cumulative < pair.Second.Cumulative));
        Assert.True(buckets[0].Low <= values[0] && buckets[^1].High >= values[^1]);
        Assert.Equal(values.Count(v => v <= buckets[3].High) / (double)values.Length, buckets[3].Cumulative, 12);
    }

    [Fact]
    public void L_prints_the_percentiles_and_LL_adds_one_line_per_non_empty_bucket()
    {
        var histogram = new LatencyHistogram();
        long tick = Stopwatch.Frequency / 1_000_000; // about a microsecond
        foreach (long us in new long[] { 10, 10, 10, 20, 1000 })
        {
            histogram.Record(us * Math.Max(1, tick));
        }

        var figures = new PerfFigures("nvme0n1", histogram.Count, 1, 4096, histogram, 0);
        var result = new PerfResult([figures], figures, 50, null);
        string summary = PerfCommand.LatencyReport(result, histogram: false);
        Assert.Contains("Latency summary for nvme0n1 (5 I/Os", summary, StringComparison.Ordinal);
        Assert.Equal(PerfCommand.SummaryPercentiles.Length, summary.Split('\n').Count(l => l.Contains("% :", StringComparison.Ordinal)));
        Assert.DoesNotContain("histogram", summary, StringComparison.Ordinal);

        string full = PerfCommand.LatencyReport(result, histogram: true);
        var bucketLines = full.Split('\n').Where(l => l.Contains("%   (", StringComparison.Ordinal)).ToArray();
        Assert.Equal(3, bucketLines.Length); // 10, 20 and 1000 us
        Assert.Contains("(       3)", bucketLines[0], StringComparison.Ordinal);
        Assert.Contains("100.0000%", bucketLines[^1], StringComparison.Ordinal);
    }

    [Fact]
    public void Expansion_keeps_nvm_subsystems_over_tcp_and_says_why_it_left_any_out()
    {
        var discovery = PerfOptionParser.ParseTarget("traddr:127.0.0.1 trsvcid:8009 subnqn:nqn.2014-08.org.nvmexpress.discovery hostnqn:nqn.2014-08.org.nvmexpress:uuid:00000000-0000-0000-0000-000000000007 ns:1");
        DiscoveryLogEntry Entry(SubsystemType type, TransportType transport, string nqn, string traddr, string trsvcid) =>
            new() { SubsystemType = type, TransportType = transport, SubsystemNqn = nqn, TransportAddress = traddr, TransportServiceId = trsvcid };
        var log = new DiscoveryLog(new DiscoveryLogHeader(1, 5), [
            Entry(SubsystemType.CurrentDiscovery, TransportType.Tcp, Nqn.Discovery, "127.0.0.1", "8009"),
            Entry(SubsystemType.Nvm, TransportType.Tcp, "nqn.2016-06.io.test:a", "127.0.0.1", "4420"),
            Entry(SubsystemType.DiscoveryReferral, TransportType.Tcp, Nqn.Discovery, "10.0.0.1", "8009"),
            Entry(SubsystemType.Nvm, TransportType.Rdma, "nqn.2016-06.io.test:b", "10.0.0.2", "4420"),
            Entry(SubsystemType.Nvm, TransportType.Tcp, "nqn.2016-06.io.test:c", "127.0.0.1", "not-a-port"),
        ]);

        var (targets, skipped) = PerfDiscovery.Expand(discovery, log);
        var only = Assert.Single(targets);
        Assert.Equal("nqn.2016-06.io.test:a", only.SubsystemNqn);
        Assert.Equal(4420, only.Address.Port);
        Assert.Equal(discovery.HostNqn, only.HostNqn);
        Assert.Equal(1u, only.NamespaceId);
        Assert.Equal(2, skipped.Count);
        Assert.Contains(skipped, s => s.Contains("nqn.2016-06.io.test:b", StringComparison.Ordinal));
        Assert.Contains(skipped, s => s.Contains("nqn.2016-06.io.test:c", StringComparison.Ordinal));
    }

    [Fact]
    public async Task R_with_the_discovery_nqn_drives_every_nvm_subsystem_of_the_targets_log()
    {
        await using var target = new NvmeTarget();
        var discoveryListener = target.ListenTcp("127.0.0.1", 0);
        var first = target.ListenTcp("127.0.0.1", 0);
        var second = target.ListenTcp("127.0.0.1", 0);
        foreach (var (nqn, listener) in new[] { ("nqn.2016-06.io.actornvme:perf-a", first), ("nqn.2016-06.io.actornvme:perf-b", second) })
        {
            var subsystem = target.AddSubsystem(new NvmSubsystemOptions(nqn) { LinkToAllListeners = false });
            subsystem.Link(listener);
            subsystem.AddNamespace(NamespaceOptions.Null(4 * 1024 * 1024));
        }

        var plain = $"traddr:127.0.0.1 trsvcid:{first.Address.Port} subnqn:nqn.2016-06.io.actornvme:perf-a";
        var options = PerfOptionParser.Parse([
            "-r", $"traddr:127.0.0.1 trsvcid:{discoveryListener.Address.Port} subnqn:{Nqn.Discovery}",
            "-r", plain, // also listed by the log: driven once
            "-q", "1", "-o", "4096", "-w", "randread", "-t", "1"])!;
        var settings = PerfAttach.Settings(options);
        var (expanded, notes) = await PerfDiscovery.ExpandAsync(options, settings.HostNqn, settings.HostId, TimeSpan.FromSeconds(30), CancellationToken.None);

        Assert.Equal(2, expanded.Targets.Count);
        Assert.DoesNotContain(expanded.Targets, t => t.IsDiscovery);
        Assert.Equal(
            new[] { ("nqn.2016-06.io.actornvme:perf-a", first.Address.Port), ("nqn.2016-06.io.actornvme:perf-b", second.Address.Port) }.OrderBy(x => x.Item1),
            expanded.Targets.Select(t => (t.SubsystemNqn, t.Address.Port)).OrderBy(x => x.SubsystemNqn));
        Assert.Contains(notes, n => n.Contains("2 NVM subsystem(s)", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Q_keeps_the_run_going_through_errors_and_reports_every_nth()
    {
        await using var target = RamTarget("nqn.2016-06.io.actornvme:perf-q", out string trid);
        var options = PerfOptionParser.Parse(["-r", trid, "-q", "1", "-o", "4096", "-w", "randread", "-t", "3", "-Q", "3", "--spin", "0"])!;

        await using var attach = await PerfAttach.StartAsync(options, TimeSpan.FromSeconds(60), CancellationToken.None);
        target.Faults.FailNextIo(NvmOpcode.Read, 10, NvmeStatus.Generic(GenericStatus.InvalidField, doNotRetry: true));
        var reports = new System.Collections.Concurrent.ConcurrentQueue<string>();
        var run = new PerfRun(options, attach.Devices);
        var result = await run.RunAsync(_ => { }, CancellationToken.None, reports.Enqueue);

        Assert.Equal(10, result.Total.Errors);
        Assert.Equal(3, reports.Count); // errors 3, 6 and 9
        Assert.Equal(new[] { "error 3 ", "error 6 ", "error 9 " }, reports.Select(r => r[..(r.IndexOf('(', StringComparison.Ordinal))]).Order(StringComparer.Ordinal));
        Assert.True(result.Total.Ios > 0, "the loop stopped at the errors instead of going on");
        Assert.NotNull(result.FirstError);
    }

    [Fact]
    public async Task A_path_lost_during_a_run_is_reported_with_its_reason_and_again_once_it_is_Live()
    {
        await using var target = RamTarget("nqn.2016-06.io.actornvme:perf-loss", out string trid);
        var options = PerfOptionParser.Parse(["-r", trid, "-q", "1", "-o", "4096", "-w", "randread", "-t", "1", "--spin", "0"])!;
        var reports = new System.Collections.Concurrent.ConcurrentQueue<string>();

        await using var attach = await PerfAttach.StartAsync(options, TimeSpan.FromSeconds(60), CancellationToken.None, reports.Enqueue);
        Assert.Empty(reports); // bringing the path up is not news

        Assert.True(target.Faults.ResetConnections() > 0, "the target had no connection to reset");
        var until = DateTime.UtcNow + TimeSpan.FromSeconds(60); // reconnect-delay is 2 s by default
        while (!reports.Any(r => r.Contains("Live again", StringComparison.Ordinal)) && DateTime.UtcNow < until)
        {
            await Task.Delay(20);
        }

        var lines = reports.ToArray();
        Assert.True(lines.Length == 2, $"expected a loss and a return, got: {string.Join(" | ", lines)}");
        Assert.Matches("^path nvme0/[^ ]+ lost: .+", lines[0]);
        Assert.Matches(@"^path nvme0/[^ ]+ Live again after \d+\.\d s$", lines[1]);
        Assert.Equal(lines[0].Split(' ')[1], lines[1].Split(' ')[1]);
    }

    [Fact]
    public async Task A_warm_up_that_ends_between_two_seconds_adds_no_progress_line_and_the_cpu_figure_is_measured()
    {
        await using var target = RamTarget("nqn.2016-06.io.actornvme:perf-cpu", out string trid);
        var options = PerfOptionParser.Parse(["-r", trid, "-q", "1", "-o", "4096", "-w", "randread", "-t", "1.5", "-a", "0.5", "--spin", "0"])!;

        await using var attach = await PerfAttach.StartAsync(options, TimeSpan.FromSeconds(60), CancellationToken.None);
        var lines = new System.Collections.Concurrent.ConcurrentQueue<string>();
        var result = await new PerfRun(options, attach.Devices).RunAsync(lines.Enqueue, CancellationToken.None);

        // The run wakes at 0.5 s to start its CPU figure, but prints only at the progress ticks (1 s and the end at 2 s).
        Assert.Equal(2, lines.Count);
        double first = double.Parse(lines.First().TrimStart().Split(' ')[0], System.Globalization.CultureInfo.InvariantCulture);
        Assert.True(first >= 0.95, $"a progress line came at {first} s, before the first whole second");
        Assert.True(result.CpuPercent > 0, "no CPU was measured over the window");
        Assert.True(result.Total.Ios > 0);
    }
}
