using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using Akka.Actor;
using Akka.Configuration;
using ActorNvme.Actors.Connection;
using ActorNvme.Actors.Host;
using ActorNvme.Actors.Settings;
using ActorNvme.Actors.Subsystem;
using ActorNvme.Transport;
using ControllerMessages = ActorNvme.Actors.Controller.Controller;

namespace ActorNvme.Host.Soak;

/// <summary>
/// Hidden scale probe (bench/idle-controllers.sh): attaches N controllers (one I/O queue each, a host
/// NQN each) to one subsystem, holds them idle with keep-alive, and reports attach time, RSS and
/// threads per controller, and every loss during the hold. A measurement, never a test gate.
/// </summary>
internal static class IdleControllersCommand
{
    public static Command Create()
    {
        var path = new Option<string>("--path", "-p") { Description = "ADDRESS:PORT of the subsystem", Required = true };
        var nqn = new Option<string>("--subnqn", "-n") { Description = "The subsystem NQN", Required = true };
        var count = new Option<int>("--count", "-N") { Description = "Controllers to attach", DefaultValueFactory = _ => 1000 };
        var hold = new Option<double>("--hold", "-t") { Description = "Seconds to hold them once attached", DefaultValueFactory = _ => 60 };
        var kato = new Option<int>("--keep-alive-timeout-ms", "-k") { Description = "Keep-alive timeout (KATO)", DefaultValueFactory = _ => 2000 };
        var window = new Option<int>("--window", "-w") { Description = "Attaches in flight at once", DefaultValueFactory = _ => 256 };
        var ioThreads = new Option<int>("--io-threads") { Description = "io-threads (0: one per core)", DefaultValueFactory = _ => 0 };
        var command = new Command("idle-controllers", "Attach N idle controllers and hold them (scale probe)") { Hidden = true };
        command.Options.Add(path);
        command.Options.Add(nqn);
        command.Options.Add(count);
        command.Options.Add(hold);
        command.Options.Add(kato);
        command.Options.Add(window);
        command.Options.Add(ioThreads);
        command.SetAction(async (parse, cancellationToken) =>
        {
            string text = parse.GetRequiredValue(path);
            int colon = text.LastIndexOf(':');
            if (colon <= 0 || !int.TryParse(text.AsSpan(colon + 1), CultureInfo.InvariantCulture, out int port) || port is < 1 or > 65535)
            {
                await Console.Error.WriteLineAsync($"actornvme idle-controllers: --path '{text}' is not ADDRESS:PORT").ConfigureAwait(false);
                return 2;
            }

            int n = parse.GetValue(count);
            int katoMs = parse.GetValue(kato);
            if (n is < 1 or > 100_000 || katoMs is < 100 or > 3_600_000)
            {
                await Console.Error.WriteLineAsync("actornvme idle-controllers: --count must be 1..100000 and --keep-alive-timeout-ms 100..3600000").ConfigureAwait(false);
                return 2;
            }

            var summary = await RunAsync(new TransportAddress(text[..colon], port), parse.GetRequiredValue(nqn), n, TimeSpan.FromSeconds(parse.GetValue(hold)), katoMs, Math.Max(1, parse.GetValue(window)), parse.GetValue(ioThreads), cancellationToken).ConfigureAwait(false);
            await Console.Out.WriteLineAsync(summary.ToJsonString()).ConfigureAwait(false);
            return summary["losses"]!.GetValue<int>() == 0 && summary["attached"]!.GetValue<int>() == n ? 0 : 1;
        });
        return command;
    }

    private static async Task<JsonObject> RunAsync(TransportAddress address, string subsystemNqn, int count, TimeSpan hold, int katoMs, int window, int ioThreads, CancellationToken cancellationToken)
    {
        ulong? descriptorLimit = DescriptorLimit.RaiseSoftLimitToHard();
        var config = ConfigurationFactory.ParseString(string.Create(CultureInfo.InvariantCulture, $"""
            akka.loglevel = ERROR
            akka.stdout-loglevel = ERROR
            akka.log-dead-letters = off
            akka.log-dead-letters-during-shutdown = off
            actornvme.io-queues = 1
            actornvme.keep-alive-timeout = {katoMs}ms
            actornvme.ctrlr-loss-timeout = -1s
            actornvme.fast-io-fail-timeout = 0s
            actornvme.io-threads = {ioThreads}
            """));
        var system = ActorSystem.Create("actornvme-idle", config);
        SchedulerStart.Ensure(system);
        try
        {
            var settings = NvmeHostSettings.Create(config);
            var tracker = new LifecycleTracker();
            var collector = system.ActorOf(Props.Create(() => new Collector(tracker)));
            system.EventStream.Subscribe(collector, typeof(ControllerMessages.StateChanged));
            await Task.Delay(200, cancellationToken).ConfigureAwait(false);
            GC.Collect();
            var baseline = ProcessFigures.Read();
            var pauseBefore = GC.GetTotalPauseDuration();
            var connector = TransportAdminConnector.Tcp();
            var clock = Stopwatch.StartNew();
            int spawned = 0;
            var deadline = TimeSpan.FromSeconds(Math.Max(120, count / 50.0));
            while (tracker.EverLive < count && clock.Elapsed < deadline)
            {
                while (spawned < count && spawned - tracker.EverLive - tracker.FailedBeforeLive < window)
                {
                    string hostNqn = $"nqn.2014-08.org.nvmexpress:uuid:{Guid.NewGuid()}";
                    var options = new SubsystemOptions($"idle{spawned}", subsystemNqn, [address], settings with { HostNqn = hostNqn, HostId = Guid.NewGuid() });
                    system.ActorOf(Subsystem.Props(options, connector, connector.IoQueueConnector(settings)), $"idle{spawned}");
                    spawned++;
                }

                if (spawned == count && tracker.EverLive + tracker.FailedBeforeLive >= count)
                {
                    break;
                }

                await Task.Delay(10, cancellationToken).ConfigureAwait(false);
            }

            var attachTime = clock.Elapsed;
            int attached = tracker.EverLive;
            var refusals = tracker.FirstFailures();
            tracker.StartHold();
            var attachedFigures = ProcessFigures.Read();
            var holdClock = Stopwatch.StartNew();
            int maxThreads = attachedFigures.Threads;
            while (holdClock.Elapsed < hold)
            {
                await Task.Delay(1000, cancellationToken).ConfigureAwait(false);
                maxThreads = Math.Max(maxThreads, ProcessFigures.Read().Threads);
            }

            GC.Collect();
            var end = ProcessFigures.Read();
            var gcInfo = GC.GetGCMemoryInfo(GCKind.Any);
            return new JsonObject
            {
                ["controllers"] = count,
                ["attached"] = attached,
                ["attach_seconds"] = Math.Round(attachTime.TotalSeconds, 2),
                ["failed_attaches"] = tracker.FailedBeforeLive,
                ["first_failure_reasons"] = new JsonArray([.. refusals.Select(r => (JsonNode)r!)]),
                ["hold_seconds"] = Math.Round(holdClock.Elapsed.TotalSeconds, 1),
                ["keep_alive_timeout_ms"] = katoMs,
                ["losses"] = tracker.LossesDuringHold,
                ["loss_reasons"] = new JsonArray([.. tracker.LossReasons().Select(r => (JsonNode)r!)]),
                ["rss_baseline_mib"] = Math.Round(baseline.RssKib / 1024.0, 1),
                ["rss_attached_mib"] = Math.Round(attachedFigures.RssKib / 1024.0, 1),
                ["rss_end_mib"] = Math.Round(end.RssKib / 1024.0, 1),
                ["rss_per_controller_kib"] = attached > 0 ? Math.Round((double)(end.RssKib - baseline.RssKib) / attached, 1) : 0,
                ["managed_heap_mib"] = Math.Round(GC.GetTotalMemory(false) / 1048576.0, 1),
                ["gc_heap_size_mib"] = Math.Round(gcInfo.HeapSizeBytes / 1048576.0, 1),
                ["gc_fragmented_mib"] = Math.Round(gcInfo.FragmentedBytes / 1048576.0, 1),
                ["gc_committed_mib"] = Math.Round(gcInfo.TotalCommittedBytes / 1048576.0, 1),
                ["threads_baseline"] = baseline.Threads,
                ["threads_attached"] = attachedFigures.Threads,
                ["threads_max_during_hold"] = maxThreads,
                ["descriptors_open"] = end.Descriptors,
                ["descriptor_limit"] = descriptorLimit is { } limit ? (JsonNode)(double)limit : null,
                ["gc_pause_ms"] = Math.Round((GC.GetTotalPauseDuration() - pauseBefore).TotalMilliseconds, 0),
                ["gc_count_gen2"] = GC.CollectionCount(2),
            };
        }
        finally
        {
            await system.Terminate().WaitAsync(TimeSpan.FromSeconds(60), CancellationToken.None).ConfigureAwait(false);
        }
    }

    /// <summary>Counts, from the controllers' state changes, who came up, who never did, and every loss after the attach phase.</summary>
    private sealed class LifecycleTracker
    {
        private readonly HashSet<string> _everLive = [];
        private readonly Dictionary<string, string> _failedBeforeLive = [];
        private readonly List<string> _lossReasons = [];
        private int _everLiveCount;
        private int _failedCount;
        private int _losses;
        private volatile bool _holding;

        public int EverLive => Volatile.Read(ref _everLiveCount);

        public int FailedBeforeLive => Volatile.Read(ref _failedCount);

        public int LossesDuringHold => Volatile.Read(ref _losses);

        public void StartHold() => _holding = true;

        /// <summary>Called by the collector actor; the figures are read from the measuring loop.</summary>
        public void On(ControllerMessages.StateChanged change)
        {
            lock (_lossReasons)
            {
                Record(change);
            }
        }

        private void Record(ControllerMessages.StateChanged change)
        {
            string subsystem = change.Name.Split('/')[0];
            if (change.State == ActorNvme.Actors.Controller.ControllerState.Live)
            {
                if (_everLive.Add(subsystem))
                {
                    Interlocked.Increment(ref _everLiveCount);
                    if (_failedBeforeLive.Remove(subsystem))
                    {
                        Interlocked.Decrement(ref _failedCount);
                    }
                }

                return;
            }

            if (change.State != ActorNvme.Actors.Controller.ControllerState.Failed)
            {
                return;
            }

            if (!_everLive.Contains(subsystem))
            {
                if (_failedBeforeLive.TryAdd(subsystem, change.Reason ?? "?"))
                {
                    Interlocked.Increment(ref _failedCount);
                }

                return;
            }

            if (_holding)
            {
                Interlocked.Increment(ref _losses);
                if (_lossReasons.Count < 10)
                {
                    _lossReasons.Add($"{change.Name}: {change.Reason}");
                }
            }
        }

        public IReadOnlyList<string> FirstFailures()
        {
            lock (_lossReasons)
            {
                return [.. _failedBeforeLive.Values.Distinct().Take(5)];
            }
        }

        public IReadOnlyList<string> LossReasons()
        {
            lock (_lossReasons)
            {
                return [.. _lossReasons];
            }
        }
    }

    private sealed class Collector : ReceiveActor
    {
        public Collector(LifecycleTracker tracker) => Receive<ControllerMessages.StateChanged>(tracker.On);
    }

    private readonly record struct ProcessFigures(long RssKib, int Threads, int Descriptors)
    {
        public static ProcessFigures Read()
        {
            long rss = 0;
            int threads = 0;
            foreach (string line in File.ReadLines("/proc/self/status"))
            {
                if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
                {
                    rss = long.Parse(line.AsSpan(6).Trim().TrimEnd("kB").Trim(), CultureInfo.InvariantCulture);
                }
                else if (line.StartsWith("Threads:", StringComparison.Ordinal))
                {
                    threads = int.Parse(line.AsSpan(8).Trim(), CultureInfo.InvariantCulture);
                }
            }

            int descriptors = Directory.EnumerateFileSystemEntries("/proc/self/fd").Count();
            return new ProcessFigures(rss, threads, descriptors);
        }
    }
}
