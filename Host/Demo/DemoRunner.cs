using System.Diagnostics;
using System.Globalization;
using System.Net.Sockets;
using Akka.Actor;
using Akka.Configuration;
using ActorNvme.Actors.Connection;
using ActorNvme.Actors.Host;
using ActorNvme.Io;
using ActorNvme.Actors.Settings;
using ActorNvme.Actors.Subsystem;
using ActorNvme.Hosting;
using ActorNvme.Target;
using ActorNvme.Transport;

namespace ActorNvme.Host.Demo;

/// <summary>Where the demo's target listens and how big its namespaces are.</summary>
public sealed record DemoOptions
{
    public static DemoOptions Default { get; } = new();

    public string Address { get; init; } = "127.0.0.1";

    /// <summary>The discovery listener (0: any free port). A busy port is replaced by a free one, and the demo says so.</summary>
    public int DiscoveryPort { get; init; } = 8009;

    /// <summary>One NVM subsystem per port, each with one RAM namespace.</summary>
    public IReadOnlyList<int> SubsystemPorts { get; init; } = [4420, 4421];

    public long NamespaceBytes { get; init; } = 64L * 1024 * 1024;

    /// <summary>Show the actors' own log lines (INFO) as well.</summary>
    public bool Verbose { get; init; }

    /// <summary>Bound on each step that waits for the host.</summary>
    public TimeSpan StepTimeout { get; init; } = TimeSpan.FromSeconds(30);
}

/// <summary>
/// The demo: an in-process target, the host discovering and attaching its subsystems, block I/O, the
/// interface removed (every listener blackholed) until the loss timeout deletes the devices, the
/// interface restored and the subsystems attached again under the next names, I/O again. Exit code 0
/// only when every step happened.
/// </summary>
public static class DemoRunner
{
    public const string NqnPrefix = "nqn.2016-06.io.actornvme:demo-";

    private const int IoBytes = 64 * 1024;

    /// <summary>The settings the demo runs with: a 2 s loss timeout so the whole story takes seconds.</summary>
    public static NvmeHostSettings Settings { get; } = NvmeHostSettings.Default with
    {
        KeepAliveTimeout = TimeSpan.FromSeconds(2),
        ConnectTimeout = TimeSpan.FromSeconds(1),
        AdminCommandTimeout = TimeSpan.FromSeconds(2),
        Resiliency = ResiliencySettings.FromSeconds(2, 1, 1),
    };

    public static async Task<int> RunAsync(DemoOptions options, TextWriter output, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(output);
        var steps = new List<(string Name, string Outcome, bool Passed)>();
        await using var timeline = new DemoTimeline(output);
        var settings = Settings;
        timeline.Plain("ActorNvme demo: an NVMe/TCP host on Akka.NET, against an in-process NVMe/TCP target");
        timeline.Plain($"  host settings: keep-alive-timeout {Seconds(settings.KeepAliveTimeout)}, ctrlr-loss-timeout {Seconds(settings.Resiliency.CtrlrLossTimeout)}, reconnect-delay {Seconds(settings.Resiliency.ReconnectDelay)}, fast-io-fail-timeout {Seconds(settings.Resiliency.FastIoFailTimeout)}");

        await using var target = new NvmeTarget();
        var discovery = Listen(target, options.Address, options.DiscoveryPort, "discovery", timeline);
        var listeners = new List<TargetListener> { discovery };
        for (int i = 0; i < options.SubsystemPorts.Count; i++)
        {
            var listener = Listen(target, options.Address, options.SubsystemPorts[i], $"subsystem {i + 1}", timeline);
            listeners.Add(listener);
            var subsystem = target.AddSubsystem(new NvmSubsystemOptions($"{NqnPrefix}{i + 1}") { LinkToAllListeners = false });
            subsystem.AddNamespace(NamespaceOptions.Ram(options.NamespaceBytes));
            subsystem.Link(listener);
            timeline.Plain($"  target: {subsystem.Nqn} on {listener.Address}, one {options.NamespaceBytes / (1024 * 1024)} MiB RAM namespace");
        }

        timeline.Plain($"  target: discovery controller on {discovery.Address}");
        timeline.Plain(string.Empty);

        var config = ConfigurationFactory.ParseString($$"""
            akka.loglevel = {{(options.Verbose ? "INFO" : "ERROR")}}
            akka.stdout-loglevel = {{(options.Verbose ? "INFO" : "ERROR")}}
            akka.log-dead-letters = off
            akka.coordinated-shutdown.run-by-actor-system-terminate = off
            """);
        var system = ActorSystem.Create("actornvme-demo", config);
        SchedulerStart.Ensure(system);
        try
        {
            timeline.Follow(system);
            var host = system.ActorOf(NvmeHost.Props(settings, TransportAdminConnector.Tcp()), NvmeHost.ActorName);
            var metrics = NvmeMetrics.Get(system);
            int subsystemCount = options.SubsystemPorts.Count;
            string[] firstNames = [.. Enumerable.Range(0, subsystemCount).Select(i => $"nvme{i}n1")];
            string[] nextNames = [.. Enumerable.Range(subsystemCount, subsystemCount).Select(i => $"nvme{i}n1")];
            var written = new Dictionary<string, (string Device, byte[] Data)>(StringComparer.Ordinal); // subsystem NQN -> what was written there, through which name

            bool Record(string name, bool passed, string outcome)
            {
                steps.Add((name, outcome, passed));
                timeline.Step($"{(passed ? "ok  " : "FAIL")} {name}: {outcome}");
                return passed;
            }

            // 1. Discovery.
            timeline.Step($"step 1: start discovery at {discovery.Address}, waiting for attach (bdev_nvme_start_discovery -w)");
            IReadOnlyList<BlockDeviceInfo> devices = [];
            try
            {
                var answer = await host.Ask<object>(new NvmeHost.StartDiscovery("nvme", discovery.Address, WaitForAttach: true, AttachTimeout: options.StepTimeout), options.StepTimeout + TimeSpan.FromSeconds(5), cancellationToken).ConfigureAwait(false);
                devices = answer is NvmeHost.DiscoveryStarted started ? started.Devices : [];
                string names = string.Join(", ", devices.Select(d => d.Name).Order(StringComparer.Ordinal));
                Record("discovery", devices.Count == subsystemCount && devices.Select(d => d.Name).Order(StringComparer.Ordinal).SequenceEqual(firstNames), answer is NvmeHost.Failed f ? f.Message : $"attached {names}");
            }
            catch (Exception e) when (e is AskTimeoutException or TaskCanceledException)
            {
                Record("discovery", false, $"no answer: {e.Message}");
            }

            // The block-device objects travel on the event stream, which may deliver a moment after the answer.
            if (!await WaitForDevicesAsync(timeline, firstNames, options.StepTimeout).ConfigureAwait(false))
            {
                Record("block device events", false, $"not every one of {string.Join(", ", firstNames)} was announced on the event stream");
            }

            // 2. The block devices, as the host's registry lists them.
            timeline.Step("step 2: list the block devices (bdev_get_bdevs)");
            var list = await host.Ask<NvmeHost.BlockDeviceList>(NvmeHost.ListBlockDevices.Instance, TimeSpan.FromSeconds(5), cancellationToken).ConfigureAwait(false);
            PrintDevices(timeline, list.Devices);
            Record("block devices", list.Devices.Count == subsystemCount, $"{list.Devices.Count} listed");

            // 3. I/O.
            timeline.Step($"step 3: write {IoBytes / 1024} KiB to each device and read it back");
            await IoStepAsync("I/O before the outage", list.Devices, fresh: true).ConfigureAwait(false);

            // 4. Remove the interface.
            timeline.Step($"step 4: remove the interface: blackhole {string.Join(", ", listeners.Select(l => l.Address.ToString()))} (no FIN, no RST: a pulled cable)");
            timeline.ClearBacklog();
            var outage = Stopwatch.StartNew();
            foreach (var listener in listeners)
            {
                target.Faults.Blackhole(listener);
            }

            // While every path fails and reconnects, the host still answers at once.
            var slowest = TimeSpan.Zero;
            var removed = new List<string>();
            var lossReasons = new List<string>();
            var removalWait = Task.Run(async () =>
            {
                while (removed.Count < subsystemCount)
                {
                    if (!await timeline.WaitForAsync(
                        e =>
                        {
                            if (e is BlockDeviceRemoved r)
                            {
                                removed.Add(r.Device.Name);
                                lossReasons.Add(r.Reason);
                                return true;
                            }

                            return false;
                        },
                        options.StepTimeout).ConfigureAwait(false))
                    {
                        return false;
                    }
                }

                return true;
            }, cancellationToken);
            string? failedFast = null;
            while (!removalWait.IsCompleted)
            {
                if (failedFast is null && list.Devices.Count > 0 && timeline.Device(list.Devices[0].Name) is { IsFailingFast: true } probe)
                {
                    // fast-io-fail-timeout has passed: I/O fails at once instead of waiting for a path.
                    var tried = Stopwatch.StartNew();
                    try
                    {
                        await probe.ReadAsync(0, new byte[probe.BlockSize]).ConfigureAwait(false);
                        failedFast = $"a read on {probe.Name} succeeded during the outage?";
                    }
                    catch (BlockDeviceException e)
                    {
                        failedFast = $"a read on {probe.Name} failed in {tried.Elapsed.TotalMilliseconds:0.0} ms: {e.Kind}";
                        timeline.Event(failedFast);
                    }
                }

                var asked = Stopwatch.StartNew();
                await host.Ask<NvmeHost.ControllerList>(NvmeHost.ListControllers.Instance, TimeSpan.FromSeconds(5), cancellationToken).ConfigureAwait(false);
                slowest = asked.Elapsed > slowest ? asked.Elapsed : slowest;
                await Task.WhenAny(removalWait, Task.Delay(100, cancellationToken)).ConfigureAwait(false);
            }

            bool allRemoved = await removalWait.ConfigureAwait(false);
            Record("fast I/O failure", failedFast?.Contains(nameof(BlockDeviceErrorKind.FailFast), StringComparison.Ordinal) == true, failedFast ?? "no device failed fast before it was deleted");
            timeline.Step($"step 5: the loss timeout deletes the devices (the host answered every list during the outage within {slowest.TotalMilliseconds:0.0} ms)");
            Record(
                "loss timeout",
                allRemoved && removed.Order(StringComparer.Ordinal).SequenceEqual(firstNames) && lossReasons.All(r => r.Contains("ctrlr-loss-timeout", StringComparison.Ordinal)),
                allRemoved ? $"{string.Join(", ", removed.Order(StringComparer.Ordinal))} deleted {outage.Elapsed.TotalSeconds:0.0} s after the interface went away" : $"only {removed.Count} of {subsystemCount} devices deleted");

            // 6. Restore the interface.
            timeline.Step("step 6: restore the interface");
            foreach (var listener in listeners)
            {
                target.Faults.Restore(listener);
            }

            var restored = Stopwatch.StartNew();
            var added = new List<BlockDeviceInfo>();
            while (added.Count < subsystemCount && await timeline.WaitForAsync(
                e =>
                {
                    if (e is BlockDeviceAdded a && !firstNames.Contains(a.Device.Name))
                    {
                        added.Add(a.Device);
                        return true;
                    }

                    return false;
                },
                options.StepTimeout).ConfigureAwait(false))
            {
            }

            Record(
                "re-attach",
                added.Select(d => d.Name).Order(StringComparer.Ordinal).SequenceEqual(nextNames),
                $"{string.Join(", ", added.Select(d => d.Name).Order(StringComparer.Ordinal))} attached {restored.Elapsed.TotalSeconds:0.0} s after the restore (names are never reused)");
            await WaitForDevicesAsync(timeline, nextNames, options.StepTimeout).ConfigureAwait(false);
            list = await host.Ask<NvmeHost.BlockDeviceList>(NvmeHost.ListBlockDevices.Instance, TimeSpan.FromSeconds(5), cancellationToken).ConfigureAwait(false);
            PrintDevices(timeline, list.Devices);

            // 7. I/O again: what was written before the outage is still there.
            timeline.Step("step 7: I/O on the new devices: read back what step 3 wrote, then write and read again");
            await IoStepAsync("I/O after the restore", list.Devices, fresh: false).ConfigureAwait(false);

            // 8. Clean shutdown.
            timeline.Step("step 8: shut the controllers down cleanly (CC.SHN) and stop discovery");
            var remaining = await NvmeHostShutdown.ShutdownAsync(system, host, TimeSpan.FromSeconds(5)).ConfigureAwait(false);
            Record("shutdown", remaining.Count == 0, remaining.Count == 0 ? "every controller shut down" : $"still present: {string.Join(", ", remaining)}");

            async Task IoStepAsync(string name, IReadOnlyList<BlockDeviceInfo> targets, bool fresh)
            {
                try
                {
                    var details = new List<string>();
                    foreach (var info in targets.OrderBy(d => d.Name, StringComparer.Ordinal))
                    {
                        var device = timeline.Device(info.Name) ?? throw new InvalidOperationException($"{info.Name}: no block device object was handed over");
                        ulong lba = (ulong)(16384 / info.BlockSize); // 16 KiB in, whatever the block size
                        if (!fresh && written.TryGetValue(info.SubsystemNqn, out var before))
                        {
                            var again = new byte[before.Data.Length];
                            await device.ReadAsync(lba, again).ConfigureAwait(false);
                            if (!again.AsSpan().SequenceEqual(before.Data))
                            {
                                throw new InvalidDataException($"{info.Name}: the data written through {before.Device} before the outage did not read back identical");
                            }

                            details.Add($"{info.Name}: the {before.Data.Length / 1024} KiB written through {before.Device} before the outage read back identical");
                        }

                        var data = new byte[IoBytes];
                        Random.Shared.NextBytes(data);
                        var clock = Stopwatch.StartNew();
                        await device.WriteAsync(lba, data).ConfigureAwait(false);
                        metrics.RecordIo("write", data.Length, clock.Elapsed, succeeded: true);
                        var readBack = new byte[data.Length];
                        var readClock = Stopwatch.StartNew();
                        await device.ReadAsync(lba, readBack).ConfigureAwait(false);
                        metrics.RecordIo("read", readBack.Length, readClock.Elapsed, succeeded: true);
                        if (!readBack.AsSpan().SequenceEqual(data))
                        {
                            throw new InvalidDataException($"{info.Name}: read back differs from what was written");
                        }

                        written[info.SubsystemNqn] = (info.Name, data);
                        details.Add($"{info.Name}: {IoBytes / 1024} KiB written and read back identical in {clock.Elapsed.TotalMilliseconds:0.0} ms");
                    }

                    Record(name, targets.Count > 0, string.Join("; ", details));
                }
                catch (Exception e) when (e is BlockDeviceException or InvalidDataException or InvalidOperationException or ArgumentException)
                {
                    Record(name, false, e.Message);
                }
            }
        }
        catch (Exception e) when (e is AskTimeoutException or InvalidOperationException)
        {
            steps.Add(("demo", e.Message, false));
            timeline.Step($"FAIL demo stopped: {e.Message}");
        }
        finally
        {
            await system.Terminate().WaitAsync(TimeSpan.FromSeconds(10), CancellationToken.None).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }

        int failed = steps.Count(s => !s.Passed);
        timeline.Plain(string.Empty);
        timeline.Plain(failed == 0
            ? $"demo: all {steps.Count} steps passed in {timeline.Elapsed.TotalSeconds:0.0} s"
            : $"demo: {failed} of {steps.Count} steps did not pass ({string.Join(", ", steps.Where(s => !s.Passed).Select(s => $"{s.Name}: {s.Outcome}"))})");
        return failed == 0 ? 0 : 1;
    }

    private static async Task<bool> WaitForDevicesAsync(DemoTimeline timeline, IEnumerable<string> names, TimeSpan timeout)
    {
        var until = DateTime.UtcNow + timeout;
        while (!names.All(n => timeline.Device(n) is not null))
        {
            if (DateTime.UtcNow > until)
            {
                return false;
            }

            await Task.Delay(10).ConfigureAwait(false);
        }

        return true;
    }

    private static TargetListener Listen(NvmeTarget target, string address, int port, string what, DemoTimeline timeline)
    {
        if (Cli.PortProbe.IsFree(address, port))
        {
            try
            {
                return target.ListenTcp(address, port);
            }
            catch (SocketException e) when (e.SocketErrorCode == SocketError.AddressAlreadyInUse)
            {
            }
        }

        var listener = target.ListenTcp(address, 0);
        timeline.Plain($"  note: port {port} ({what}) is busy on {address}; using {listener.Address.Port} instead");
        return listener;
    }

    private static void PrintDevices(DemoTimeline timeline, IReadOnlyList<BlockDeviceInfo> devices)
    {
        timeline.Plain($"             {"NAME",-9} {"CTRLR",-7} {"NSID",4} {"BLOCKS",10} {"BLOCK",6}  SUBSYSTEM NQN");
        foreach (var d in devices.OrderBy(d => d.Name, StringComparer.Ordinal))
        {
            timeline.Plain($"             {d.Name,-9} {d.Controller,-7} {d.NamespaceId,4} {d.BlockCount,10} {d.BlockSize,6}  {d.SubsystemNqn}");
        }
    }

    private static string Seconds(TimeSpan value) => $"{value.TotalSeconds.ToString("0.###", CultureInfo.InvariantCulture)} s";
}

