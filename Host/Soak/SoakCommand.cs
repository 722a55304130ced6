using System.CommandLine;
using System.Text.Json;
using ActorNvme.Io;
using ActorNvme.Transport;

namespace ActorNvme.Host.Soak;

/// <summary>
/// <c>actornvme soak</c>: write-then-verify over every path of one subsystem for a while, then a report of
/// lost acknowledged writes, bad reads and I/O stalls. Faults come from outside (a script breaking paths,
/// flipping ANA states); exit 0 only when nothing acknowledged was lost and every read was right.
/// </summary>
internal static class SoakCommand
{
    public static Command Create()
    {
        var paths = new Option<string[]>("--path", "-p") { Description = "ADDRESS:PORT of a path to the subsystem (repeat for each path)", Required = true, AllowMultipleArgumentsPerToken = false };
        var nqn = new Option<string>("--subnqn", "-n") { Description = "The subsystem NQN", Required = true };
        var hostNqn = new Option<string?>("--hostnqn", "-q") { Description = "Host NQN (default: the configured one, else /etc/nvme/hostnqn, else the one kept in the state file)" };
        var seconds = new Option<double>("--time", "-t") { Description = "Seconds to run", DefaultValueFactory = _ => 60 };
        var writers = new Option<int>("--writers", "-w") { Description = "Concurrent writers, each owning its own blocks", DefaultValueFactory = _ => 16 };
        var blocks = new Option<int>("--blocks-per-writer", "-b") { Description = "Blocks each writer owns", DefaultValueFactory = _ => 64 };
        var checkpoint = new Option<double>("--checkpoint", "-c") { Description = "Seconds between checkpoints (all writers pause, every block is read)", DefaultValueFactory = _ => 30 };
        var kato = new Option<int>("--keep-alive-timeout-ms", "-k") { Description = "Keep-alive timeout (KATO)", DefaultValueFactory = _ => 2000 };
        var policy = new Option<string>("--policy") { Description = "active_passive, active_active (round robin) or active_active_qd (queue depth)", DefaultValueFactory = _ => "active_passive" };
        policy.AcceptOnlyFromAmong("active_passive", "active_active", "active_active_qd");
        var stall = new Option<int>("--stall-ms") { Description = "A gap longer than this with no I/O completed is recorded as a stall", DefaultValueFactory = _ => 100 };
        var readers = new Option<int>("--readers", "-r") { Description = "Readers that only read a region written once at start; their gaps show how fast reads move to another path", DefaultValueFactory = _ => 0 };
        var json = new Option<bool>("--json") { Description = "Print the summary as one JSON object" };
        var verbose = new Option<bool>("--verbose", "-v") { Description = "Log the runtime's path, ANA and reconnect events (Akka INFO)" };
        var command = new Command("soak", "Write-then-verify over every path of one subsystem while paths are broken from outside; reports lost acknowledged writes, bad reads and I/O stalls")
        {
            paths, nqn, hostNqn, seconds, writers, blocks, checkpoint, kato, policy, stall, readers, json, verbose,
        };
        command.SetAction(async (parse, cancellationToken) =>
        {
            var addresses = new List<TransportAddress>();
            foreach (string text in parse.GetValue(paths) ?? [])
            {
                int colon = text.LastIndexOf(':');
                if (colon <= 0 || !int.TryParse(text.AsSpan(colon + 1), out int port) || port is < 1 or > 65535)
                {
                    await Console.Error.WriteLineAsync($"actornvme soak: --path '{text}' is not ADDRESS:PORT").ConfigureAwait(false);
                    return 2;
                }

                addresses.Add(new TransportAddress(text[..colon], port));
            }

            double time = parse.GetValue(seconds);
            int writerCount = parse.GetValue(writers);
            int perWriter = parse.GetValue(blocks);
            double every = parse.GetValue(checkpoint);
            int katoMs = parse.GetValue(kato);
            int stallMs = parse.GetValue(stall);
            int readerCount = parse.GetValue(readers);
            string? bad = (time, writerCount, perWriter, every, katoMs, stallMs) switch
            {
                _ when time is <= 0 or > 86_400 => $"--time {time} must be 0..86400 s",
                _ when writerCount is < 1 or > 1024 => $"--writers {writerCount} must be 1..1024",
                _ when perWriter is < 1 or > 1_000_000 => $"--blocks-per-writer {perWriter} must be 1..1000000",
                _ when every is <= 0 => $"--checkpoint {every} must be positive",
                _ when katoMs is < 100 or > 3_600_000 => $"--keep-alive-timeout-ms {katoMs} must be 100..3600000",
                _ when stallMs is < 10 or > 60_000 => $"--stall-ms {stallMs} must be 10..60000",
                _ when readerCount is < 0 or > 1024 => $"--readers {readerCount} must be 0..1024",
                _ => null,
            };
            if (bad is not null)
            {
                await Console.Error.WriteLineAsync($"actornvme soak: {bad}").ConfigureAwait(false);
                return 2;
            }

            var multipath = parse.GetValue(policy) switch
            {
                "active_active" => new MultipathPolicy(MultipathPolicyMode.ActiveActive, MultipathSelector.RoundRobin, 1),
                "active_active_qd" => new MultipathPolicy(MultipathPolicyMode.ActiveActive, MultipathSelector.QueueDepth, 1),
                _ => new MultipathPolicy(MultipathPolicyMode.ActivePassive, MultipathSelector.RoundRobin, 1),
            };
            var options = new SoakOptions(
                addresses,
                parse.GetRequiredValue(nqn),
                parse.GetValue(hostNqn),
                TimeSpan.FromSeconds(time),
                writerCount,
                perWriter,
                TimeSpan.FromSeconds(every),
                TimeSpan.FromMilliseconds(katoMs),
                multipath,
                TimeSpan.FromMilliseconds(stallMs),
                parse.GetValue(verbose) ? "INFO" : "WARNING",
                readerCount);
            try
            {
                var summary = await SoakRun.RunAsync(options, Console.Out, cancellationToken).ConfigureAwait(false);
                bool clean = summary["lost_acknowledged_writes"]!.GetValue<long>() == 0 && summary["bad_reads"]!.GetValue<long>() == 0 && summary["writes"]!.GetValue<long>() > 0;
                if (parse.GetValue(json))
                {
                    await Console.Out.WriteLineAsync(summary.ToJsonString(new JsonSerializerOptions { WriteIndented = false })).ConfigureAwait(false);
                }
                else
                {
                    await Console.Out.WriteLineAsync($"soak: {summary["writes"]} writes, {summary["reads"]} reads, {summary["write_errors"]} write errors, {summary["read_errors"]} read errors; {summary["lost_acknowledged_writes"]} lost acknowledged writes, {summary["bad_reads"]} bad reads; {summary["stall_count"]} stalls over {stallMs} ms (p50 {summary["stall_p50_ms"]} ms, p99 {summary["stall_p99_ms"]} ms, max {summary["stall_max_ms"]} ms){(readerCount == 0 ? string.Empty : $"; readers: {summary["reader_reads"]} reads, {summary["read_stall_count"]} read gaps over {stallMs} ms (p50 {summary["read_stall_p50_ms"]} ms, p99 {summary["read_stall_p99_ms"]} ms, max {summary["read_stall_max_ms"]} ms)")}").ConfigureAwait(false);
                }

                return clean ? 0 : 1;
            }
            catch (InvalidOperationException e)
            {
                await Console.Error.WriteLineAsync($"actornvme soak: {e.Message}").ConfigureAwait(false);
                return 1;
            }
        });
        return command;
    }
}
