using System.Globalization;
using System.Text;
using System.Text.Json;
using ActorNvme.Transport;

namespace ActorNvme.Host.Perf;

/// <summary>
/// <c>actornvme perf</c>: SPDK perf's options and report, driven through the runtime's block
/// devices (controller and subsystem actors bring the paths up; I/O goes through
/// <see cref="ActorNvme.Io.BlockDevice"/>). Exit codes: 0 done, 1 failed (attach or I/O errors), 2 bad options.
/// </summary>
public static class PerfCommand
{
    private static readonly TimeSpan AttachDeadline = TimeSpan.FromSeconds(30);

    public static async Task<int> RunAsync(string[] args)
    {
        ArgumentNullException.ThrowIfNull(args);
        PerfOptions? options;
        try
        {
            options = PerfOptionParser.Parse(args);
        }
        catch (PerfUsageException e)
        {
            await Console.Error.WriteLineAsync($"actornvme perf: {e.Message}").ConfigureAwait(false);
            await Console.Error.WriteLineAsync("run 'actornvme perf --help' for the options").ConfigureAwait(false);
            return 2;
        }

        if (options is null)
        {
            await Console.Out.WriteLineAsync(PerfOptionParser.Usage).ConfigureAwait(false);
            return 0;
        }

        using var cancel = new CancellationTokenSource();
        ConsoleCancelEventHandler onCancel = (_, e) =>
        {
            e.Cancel = true;
            cancel.Cancel();
        };
        Console.CancelKeyPress += onCancel;
        try
        {
            return await RunAsync(options, cancel.Token).ConfigureAwait(false);
        }
        finally
        {
            Console.CancelKeyPress -= onCancel;
        }
    }

    private static async Task<int> RunAsync(PerfOptions options, CancellationToken cancellationToken)
    {
        // Every queue pair is a descriptor: take what the hard limit allows (refused clearly beyond it).
        _ = Transport.DescriptorLimit.RaiseSoftLimitToHard();
        var log = Console.Error;
        await log.WriteLineAsync(Describe(options)).ConfigureAwait(false);
        PerfAttach attach;
        try
        {
            if (options.NeedsDiscovery)
            {
                var settings = PerfAttach.Settings(options);
                var (expanded, notes) = await PerfDiscovery.ExpandAsync(options, settings.HostNqn, settings.HostId, AttachDeadline, cancellationToken).ConfigureAwait(false);
                foreach (var note in notes)
                {
                    await log.WriteLineAsync(note).ConfigureAwait(false);
                }

                options = expanded;
            }

            attach = await PerfAttach.StartAsync(options, AttachDeadline, cancellationToken, line => log.WriteLine($"actornvme perf: {line}")).ConfigureAwait(false);
        }
        catch (Exception e) when (e is InvalidOperationException or ConnectionClosedException or TimeoutException or OperationCanceledException or Discover.DiscoveryFailedException)
        {
            await log.WriteLineAsync($"actornvme perf: {e.Message}").ConfigureAwait(false);
            return 1;
        }

        await using (attach.ConfigureAwait(false))
        {
            foreach (var device in attach.Devices)
            {
                var paths = device.Device.Paths;
                var queues = paths.Sum(p => p.Value.Queues.Count);
                bool flowControlOff = paths.All(p => p.Value.SqFlowControlDisabled);
                await log.WriteLineAsync(string.Create(CultureInfo.InvariantCulture, $"attached {device.Device.Name}: {device.Device.BlockCount} blocks of {device.Device.BlockSize} bytes, {queues} I/O queue(s) of {(paths.Count > 0 && paths[0].Value.Queues.Count > 0 ? paths[0].Value.Queues[0].Options.QueueSize : 0)} entries, SQ flow control {(flowControlOff ? "disabled" : "on")}")).ConfigureAwait(false);
            }

            PerfRun run;
            try
            {
                run = new PerfRun(options, attach.Devices);
            }
            catch (PerfUsageException e)
            {
                await log.WriteLineAsync($"actornvme perf: {e.Message}").ConfigureAwait(false);
                return 2;
            }
            catch (InvalidOperationException e)
            {
                await log.WriteLineAsync($"actornvme perf: {e.Message}").ConfigureAwait(false);
                return 1;
            }

            var result = await run.RunAsync(line => log.WriteLine(line), cancellationToken, line => log.WriteLine(line)).ConfigureAwait(false);
            if (options.Json)
            {
                await Console.Out.WriteLineAsync(Json(options, result)).ConfigureAwait(false);
            }
            else
            {
                await Console.Out.WriteLineAsync(Table(result)).ConfigureAwait(false);
            }

            if (options.LatencyTracking > 0)
            {
                // After the table (or, with --json, on stderr: stdout stays one JSON object).
                var latencyOut = options.Json ? log : Console.Out;
                await latencyOut.WriteAsync(LatencyReport(result, options.LatencyTracking > 1)).ConfigureAwait(false);
            }

            if (result.FirstError is not null && options.ErrorReportInterval is not null)
            {
                // -Q: errors were asked to be tolerated; they are counted in the table, the run itself succeeded.
                await log.WriteLineAsync($"actornvme perf: {result.Total.Errors} I/O error(s) tolerated (-Q); first: {result.FirstError}").ConfigureAwait(false);
            }
            else if (result.FirstError is not null)
            {
                await log.WriteLineAsync($"actornvme perf: {result.Total.Errors} I/O error(s); first: {result.FirstError}").ConfigureAwait(false);
                return 1;
            }

            return 0;
        }
    }

    private static string Describe(PerfOptions o) => string.Create(
        CultureInfo.InvariantCulture,
        $"actornvme perf: {o.IoSize}-byte {o.PatternName}{(o.Pattern is PerfPattern.ReadWrite or PerfPattern.RandReadWrite ? $" ({o.ReadPercent}% reads)" : string.Empty)}, queue depth {o.QueueDepth} per namespace per core, {o.Cores} core(s), {o.QueuePairs} queue pair(s) per controller per core, {o.Seconds:0.###} s{(o.WarmupSeconds > 0 ? $" after {o.WarmupSeconds:0.###} s warm-up" : string.Empty)}{(o.ReceiveSpinMicroseconds > 0 ? $", receive threads poll {o.ReceiveSpinMicroseconds} us before blocking" : string.Empty)}{(o.Bare ? ", bare queue pairs (no BlockDevice)" : string.Empty)}{(o.IoQueueSize is { } qs ? $", I/O queues of {qs} entries" : string.Empty)}{(o.ErrorReportInterval is { } q ? $", continuing on errors (one in {q} reported)" : string.Empty)}");

    internal static string Table(PerfResult result)
    {
        var rows = result.Devices.Count > 1 ? [.. result.Devices, result.Total] : result.Devices.ToList();
        int nameWidth = Math.Max(24, rows.Max(r => r.Name.Length));
        var text = new StringBuilder();
        var c = CultureInfo.InvariantCulture;
        text.AppendLine(new string('=', nameWidth + 97));
        text.Append(c, $"{string.Empty.PadRight(nameWidth)} {string.Empty,12} {string.Empty,10} {"Latency (us)",-12}").AppendLine();
        text.Append(c, $"{"Device".PadRight(nameWidth)} {"IOPS",12} {"MiB/s",10} {"average",10} {"min",10} {"max",10} {"p50",10} {"p99",10} {"p99.9",10}").AppendLine();
        foreach (var row in rows)
        {
            var l = row.Latency;
            text.Append(c, $"{row.Name.PadRight(nameWidth)} {row.Iops,12:N2} {row.MibPerSecond,10:0.00} {Us(l.Mean),10:0.00} {Us(l.Count == 0 ? 0 : l.Min),10:0.00} {Us(l.Max),10:0.00} {Us(l.Percentile(0.5)),10:0.00} {Us(l.Percentile(0.99)),10:0.00} {Us(l.Percentile(0.999)),10:0.00}").AppendLine();
        }

        text.Append(c, $"host CPU: {result.CpuPercent:0}% of one core over the measured window ({result.Total.Seconds:0.##} s); errors: {result.Total.Errors}");
        return text.ToString();
    }

    /// <summary>The percentiles -L prints for each device.</summary>
    internal static readonly double[] SummaryPercentiles = [1, 10, 25, 50, 75, 90, 95, 98, 99, 99.5, 99.9, 99.99, 99.999];

    /// <summary>
    /// -L: per device (and the total when there are several), the latency at each of <see cref="SummaryPercentiles"/>;
    /// -LL (<paramref name="histogram"/>) adds every non-empty bucket: its range in µs, the cumulative share and its count.
    /// </summary>
    internal static string LatencyReport(PerfResult result, bool histogram)
    {
        var rows = result.Devices.Count > 1 ? [.. result.Devices, result.Total] : result.Devices.ToList();
        var text = new StringBuilder();
        var c = CultureInfo.InvariantCulture;
        foreach (var row in rows)
        {
            var l = row.Latency;
            text.AppendLine();
            text.Append(c, $"Latency summary for {row.Name} ({l.Count} I/Os in the measured window)").AppendLine();
            text.AppendLine(new string('=', 60));
            if (l.Count == 0)
            {
                text.AppendLine("  no I/O completed in the measured window");
                continue;
            }

            foreach (double p in SummaryPercentiles)
            {
                text.Append(c, $"  {p.ToString("0.###", c) + "%",8} : {Us(l.Percentile(p / 100)),12:0.000} us").AppendLine();
            }

            if (!histogram)
            {
                continue;
            }

            text.AppendLine();
            text.Append(c, $"Latency histogram for {row.Name}").AppendLine();
            text.AppendLine(new string('=', 60));
            text.Append(c, $"  {"range (us)",-29}   {"cumulative",10}   {"count",10}").AppendLine();
            foreach (var (low, high, count, cumulative) in l.NonEmptyBuckets())
            {
                // A bucket holds whole ticks low..high: as a time range, low up to (but not including) high + 1.
                text.Append(c, $"  {Us(low),13:0.000} - {Us(high + 1),13:0.000} : {cumulative * 100,9:0.0000}%   ({count,8})").AppendLine();
            }
        }

        return text.ToString();
    }

    internal static string Json(PerfOptions options, PerfResult result)
    {
        using var stream = new MemoryStream();
        using (var json = new Utf8JsonWriter(stream))
        {
            json.WriteStartObject();
            WriteFigures(json, result.Total);
            json.WriteString("pattern", options.PatternName);
            json.WriteNumber("io_size", options.IoSize);
            json.WriteNumber("queue_depth", options.QueueDepth);
            json.WriteNumber("queue_pairs", options.QueuePairs);
            json.WriteNumber("cores", options.Cores);
            json.WriteNumber("read_percent", options.EffectiveReadPercent);
            json.WriteNumber("seconds", Math.Round(result.Total.Seconds, 3));
            json.WriteNumber("cpu_percent", Math.Round(result.CpuPercent, 1));
            json.WriteBoolean("bare", options.Bare);
            json.WriteNumber("spin_us", options.ReceiveSpinMicroseconds);
            json.WriteStartArray("devices");
            foreach (var device in result.Devices)
            {
                json.WriteStartObject();
                json.WriteString("name", device.Name);
                WriteFigures(json, device);
                json.WriteEndObject();
            }

            json.WriteEndArray();
            if (result.FirstError is not null)
            {
                json.WriteString("first_error", result.FirstError);
            }

            json.WriteEndObject();
        }

        return Encoding.UTF8.GetString(stream.ToArray());
    }

    private static void WriteFigures(Utf8JsonWriter json, PerfFigures figures)
    {
        var l = figures.Latency;
        json.WriteNumber("iops", Math.Round(figures.Iops, 1));
        json.WriteNumber("mibps", Math.Round(figures.MibPerSecond, 2));
        json.WriteNumber("ios", figures.Ios);
        json.WriteNumber("errors", figures.Errors);
        json.WriteStartObject("latency_us");
        json.WriteNumber("avg", Math.Round(Us(l.Mean), 2));
        json.WriteNumber("min", Math.Round(Us(l.Count == 0 ? 0 : l.Min), 2));
        json.WriteNumber("max", Math.Round(Us(l.Max), 2));
        json.WriteNumber("p50", Math.Round(Us(l.Percentile(0.5)), 2));
        json.WriteNumber("p99", Math.Round(Us(l.Percentile(0.99)), 2));
        json.WriteNumber("p999", Math.Round(Us(l.Percentile(0.999)), 2));
        json.WriteEndObject();
    }

    private static double Us(double ticks) => LatencyHistogram.ToMicroseconds(ticks);
}
