using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using Akka.Actor;
using Akka.Configuration;
using ActorNvme.Actors.Connection;
using ActorNvme.Actors.Controller;
using ActorNvme.Actors.Host;
using ActorNvme.Io;
using ActorNvme.Actors.Settings;
using ActorNvme.Actors.Subsystem;
using ActorNvme.Transport;
using ActorNvme.Transport.RawSocket;

namespace ActorNvme.Host.Perf;

/// <summary>A block device under test and the -r it came from.</summary>
internal sealed record PerfDevice(PerfTarget Target, BlockDevice Device);

/// <summary>
/// Brings the controllers of a perf run up through the runtime itself — a subsystem actor per -r,
/// whose controller actor connects the admin queue and the I/O queues — and collects the block
/// devices from the event stream. (A stand-in until the NvmeHost root's attach_controller exists.)
/// </summary>
internal sealed class PerfAttach : IAsyncDisposable
{
    private PerfAttach(ActorSystem system, IReadOnlyList<PerfDevice> devices)
    {
        System = system;
        Devices = devices;
    }

    public ActorSystem System { get; }

    public IReadOnlyList<PerfDevice> Devices { get; }

    /// <summary>The settings a run uses: I/O queues = cores × -P, queues deep enough for -q (or -s), digests from -H/-I.</summary>
    public static NvmeHostSettings Settings(PerfOptions options)
    {
        int queues = options.Cores * options.QueuePairs;
        int perQueue = (int)Math.Ceiling((double)options.QueueDepth * options.Cores / queues);
        string digests = (options.HeaderDigest, options.DataDigest) switch
        {
            (true, true) => "both",
            (true, false) => "header",
            (false, true) => "data",
            _ => "none",
        };
        var config = ConfigurationFactory.ParseString(string.Create(CultureInfo.InvariantCulture, $"""
            actornvme.io-queues = {queues}
            actornvme.io-queue-size = {options.IoQueueSize ?? Math.Clamp(Math.Max(128, perQueue + 1), 2, 4096)}
            actornvme.digests = {digests}
            actornvme.io-receive-spin = {options.ReceiveSpinMicroseconds / 1000.0:0.###}ms
            """));
        return Cli.HostIdentity.Apply(NvmeHostSettings.Create(config), config, out _);
    }

    /// <summary>The run's settings with --psk-path's PSK (every queue then runs over TLS 1.3); unchanged without it.</summary>
    public static NvmeHostSettings WithTls(NvmeHostSettings settings, PerfOptions options) =>
        options.PskPath is { } psk ? settings with { TlsPsk = Transport.Tls.TlsPskKeys.Load(psk, "--psk-path") } : settings;

    /// <param name="pathEvents">Told when a path of the run is lost and when it is Live again (perf prints these
    /// on stderr: a run whose IOPS drop to 0 then says why).</param>
    public static async Task<PerfAttach> StartAsync(PerfOptions options, TimeSpan deadline, CancellationToken cancellationToken, Action<string>? pathEvents = null)
    {
        var settings = WithTls(Settings(options), options);
        var system = ActorSystem.Create("actornvme-perf", ConfigurationFactory.ParseString("""
            akka.loglevel = OFF
            akka.stdout-loglevel = OFF
            akka.log-dead-letters = off
            akka.log-dead-letters-during-shutdown = off
            """));
        SchedulerStart.Ensure(system);
        try
        {
            var events = new ConcurrentQueue<object>();
            var collector = system.ActorOf(Props.Create(() => new Collector(events)));
            system.EventStream.Subscribe(collector, typeof(BlockDeviceAdded));
            system.EventStream.Subscribe(collector, typeof(Controller.StateChanged));
            if (pathEvents is not null)
            {
                system.EventStream.Subscribe(system.ActorOf(Props.Create(() => new PathReporter(pathEvents))), typeof(Controller.StateChanged));
            }

            // -c: one I/O thread per core of the mask, pinned (where completions and the next submissions
            // run), the queue pairs spread over them in turn, as SPDK pins a worker per core.
            var ioConnector = new TransportIoQueueConnector(NvmeTransports.ForIoQueues(new RawSocketTransportOptions
            {
                SpinBeforeBlocking = settings.IoReceiveSpin,
                ReceiveThreadCores = options.CoreList,
            }));
            var subsystems = new List<(PerfTarget Target, string Name, IActorRef Actor)>();
            for (int i = 0; i < options.Targets.Count; i++)
            {
                var target = options.Targets[i];
                string name = $"nvme{i}";
                var subsystemSettings = target.HostNqn is { } hostNqn ? settings with { HostNqn = hostNqn } : settings;
                var subsystemOptions = new SubsystemOptions(name, target.SubsystemNqn, [target.Address], subsystemSettings);
                var actor = system.ActorOf(Subsystem.Props(subsystemOptions, TransportAdminConnector.Tcp(), ioConnector), name);
                subsystems.Add((target, name, actor));
            }

            var until = DateTime.UtcNow + deadline;
            var devices = new List<PerfDevice>();
            foreach (var (target, name, actor) in subsystems)
            {
                while (!events.OfType<BlockDeviceAdded>().Any(e => e.Device.Controller == name))
                {
                    if (DateTime.UtcNow > until)
                    {
                        var failure = events.OfType<Controller.StateChanged>().LastOrDefault(s => s.Name.StartsWith(name + "/", StringComparison.Ordinal) && s.State == ControllerState.Failed);
                        throw new InvalidOperationException($"could not attach '{target.Text}' within {deadline.TotalSeconds:0} s: {failure?.Reason ?? "no answer"}");
                    }

                    await Task.Delay(20, cancellationToken).ConfigureAwait(false);
                }

                // Every namespace of a path is added in one step, so the status lists them all now.
                var status = await actor.Ask<Subsystem.Status>(Subsystem.GetStatus.Instance, deadline, cancellationToken).ConfigureAwait(false);
                foreach (var info in status.Devices.Where(d => target.NamespaceId is null || d.NamespaceId == target.NamespaceId))
                {
                    var answer = await actor.Ask<Subsystem.BlockDeviceResult>(new Subsystem.GetBlockDevice(info.Name), deadline, cancellationToken).ConfigureAwait(false);
                    devices.Add(new PerfDevice(target, answer.Device ?? throw new InvalidOperationException(answer.Error)));
                }

                if (target.NamespaceId is { } wanted && !devices.Any(d => d.Target == target))
                {
                    throw new InvalidOperationException($"'{target.Text}': the subsystem has no namespace {wanted} (it has {string.Join(", ", status.Devices.Select(d => d.NamespaceId))})");
                }
            }

            return new PerfAttach(system, devices);
        }
        catch
        {
            await system.Terminate().ConfigureAwait(false);
            throw;
        }
    }

    public async ValueTask DisposeAsync() => await System.Terminate().WaitAsync(TimeSpan.FromSeconds(30)).ConfigureAwait(false);

    private sealed class Collector : ReceiveActor
    {
        public Collector(ConcurrentQueue<object> events) => ReceiveAny(events.Enqueue);
    }

    /// <summary>
    /// A path that was Live and failed ("lost", with the reason), and a failed path that is Live again (with
    /// how long it was down). Bring-up steps and the first failures of an attach are left to the attach's own error.
    /// </summary>
    internal sealed class PathReporter : ReceiveActor
    {
        private readonly Dictionary<string, (ControllerState State, long Since)> _paths = new(StringComparer.Ordinal);

        public PathReporter(Action<string> report)
        {
            Receive<Controller.StateChanged>(changed =>
            {
                _paths.TryGetValue(changed.Name, out var before);
                long now = Stopwatch.GetTimestamp();
                if (changed.State == ControllerState.Failed && before.State == ControllerState.Live)
                {
                    report($"path {changed.Name} lost: {changed.Reason}");
                    _paths[changed.Name] = (ControllerState.Failed, now);
                }
                else if (changed.State == ControllerState.Live)
                {
                    if (before.State == ControllerState.Failed)
                    {
                        report(string.Create(CultureInfo.InvariantCulture, $"path {changed.Name} Live again after {Stopwatch.GetElapsedTime(before.Since, now).TotalSeconds:0.0} s"));
                    }

                    _paths[changed.Name] = (ControllerState.Live, now);
                }
            });
        }
    }
}
