using System.Collections.Concurrent;
using Akka.Actor;
using Akka.Configuration;
using Akka.Event;
using ActorNvme.Actors.Connection;
using ActorNvme.Actors.Host;
using ActorNvme.Io;
using ActorNvme.Actors.Settings;
using ActorNvme.Actors.Subsystem;
using ActorNvme.Target;
using ControllerMessages = ActorNvme.Actors.Controller.Controller;

namespace ActorNvme.HostileTarget.Tests;

/// <summary>
/// One actor system for the whole suite: the real <see cref="NvmeHost"/> root over TCP, a healthy
/// controller attached to our own Target whose block device runs a write + read-verify loop for as
/// long as the suite runs, and a listener that keeps every warning, error, state change and new
/// block device, so each fault mode can be judged by what the actors said and did.
/// </summary>
public sealed class HostileRig
{
    public const string HealthyName = "healthy";
    public const string HealthyNqn = "nqn.2016-06.io.actornvme:healthy";

    /// <summary>Generous: the machine is shared; nothing here asserts how fast anything is.</summary>
    public static readonly TimeSpan Deadline = TimeSpan.FromSeconds(45);

    private static readonly Lazy<Task<HostileRig>> Shared = new(StartAsync, LazyThreadSafetyMode.ExecutionAndPublication);

    private static readonly Config Quiet = ConfigurationFactory.ParseString("akka.loglevel = WARNING\nakka.stdout-loglevel = WARNING");

    private HostileRig(ActorSystem system, IActorRef host, NvmeTarget healthyTarget, Observations observations)
    {
        System = system;
        Host = host;
        HealthyTarget = healthyTarget;
        Seen = observations;
    }

    public ActorSystem System { get; }

    public IActorRef Host { get; }

    public NvmeTarget HealthyTarget { get; }

    public Observations Seen { get; }

    public HealthyIoLoop HealthyIo { get; private set; } = null!;

    /// <summary>
    /// Short bring-up steps so that a mode that never answers costs seconds, not minutes; a keep-alive
    /// long enough that the healthy controller survives a busy shared machine (no mode waits for it).
    /// One I/O thread: every hostile I/O queue shares it with the healthy controller's, so a mode that
    /// could hold the thread would show as the healthy I/O stalling. The TCP user timeout is long, so
    /// that it cannot end a stalled connection (and so hide a held thread) before a mode has judged it;
    /// on loopback it never ends anything else (the peer's kernel acknowledges all it receives).
    /// </summary>
    public static NvmeHostSettings Settings => NvmeHostSettings.Default with
    {
        KeepAliveTimeout = TimeSpan.FromSeconds(6),
        ConnectTimeout = TimeSpan.FromSeconds(2),
        AdminCommandTimeout = TimeSpan.FromSeconds(5),
        IoQueues = 1,
        IoThreads = 1,
        TcpUserTimeout = TimeSpan.FromSeconds(60),
    };

    public static Task<HostileRig> GetAsync() => Shared.Value;

    private static async Task<HostileRig> StartAsync()
    {
        var system = ActorSystem.Create($"hostile-{Guid.NewGuid():N}", Quiet);
        var observations = new Observations();
        var listener = system.ActorOf(Props.Create(() => new ObservationCollector(observations)), "observer");
        system.EventStream.Subscribe(listener, typeof(Warning));
        system.EventStream.Subscribe(listener, typeof(Error));
        system.EventStream.Subscribe(listener, typeof(ControllerMessages.StateChanged));
        system.EventStream.Subscribe(listener, typeof(BlockDeviceAdded));

        var target = new NvmeTarget();
        var healthyListener = target.ListenTcp("127.0.0.1", 0);
        target.AddSubsystem(HealthyNqn).AddNamespace(NamespaceOptions.Ram(4 * 1024 * 1024));
        var host = system.ActorOf(NvmeHost.Props(Settings.Validated(), TransportAdminConnector.Tcp()), NvmeHost.ActorName);
        var rig = new HostileRig(system, host, target, observations);

        var reply = await host.Ask<object>(new NvmeHost.AttachController(HealthyName, healthyListener.Address, HealthyNqn, AttachTimeout: TimeSpan.FromSeconds(30)), Deadline);
        if (reply is not NvmeHost.ControllerAttached)
        {
            throw new InvalidOperationException($"the healthy controller did not attach: {reply}");
        }

        var device = await observations.WaitForDeviceAsync(HealthyName, Deadline);
        rig.HealthyIo = HealthyIoLoop.Start(device);
        AppDomain.CurrentDomain.ProcessExit += (_, _) =>
        {
            rig.HealthyIo.Stop();
            system.Terminate().Wait(TimeSpan.FromSeconds(10));
            target.DisposeAsync().AsTask().Wait(TimeSpan.FromSeconds(10));
        };
        return rig;
    }

    /// <summary>Everything the actors reported, kept for the modes to judge.</summary>
    public sealed class Observations
    {
        private readonly ConcurrentQueue<LogEvent> _logs = new();
        private readonly ConcurrentQueue<ControllerMessages.StateChanged> _states = new();
        private readonly ConcurrentQueue<BlockDeviceAdded> _devices = new();

        public IReadOnlyCollection<LogEvent> Logs => _logs;

        public IReadOnlyCollection<ControllerMessages.StateChanged> States => _states;

        public IReadOnlyCollection<BlockDeviceAdded> Devices => _devices;

        internal void Add(object message)
        {
            switch (message)
            {
                case LogEvent log:
                    _logs.Enqueue(log);
                    break;
                case ControllerMessages.StateChanged state:
                    _states.Enqueue(state);
                    break;
                case BlockDeviceAdded added:
                    _devices.Enqueue(added);
                    break;
            }
        }

        public async Task<BlockDevice> WaitForDeviceAsync(string controller, TimeSpan deadline)
        {
            var until = DateTime.UtcNow + deadline;
            while (DateTime.UtcNow < until)
            {
                var added = _devices.FirstOrDefault(d => d.Device.Controller == controller && d.BlockDevice is not null);
                if (added is not null)
                {
                    return added.BlockDevice!;
                }

                await Task.Delay(20);
            }

            throw new TimeoutException($"no block device of {controller} within {deadline.TotalSeconds:0}s");
        }
    }

    private sealed class ObservationCollector : ReceiveActor
    {
        public ObservationCollector(Observations observations)
        {
            ReceiveAny(observations.Add);
        }
    }
}

/// <summary>
/// Write a block, read it back, compare, over and over on the healthy device, from the start of the
/// suite to its end: any failure or mismatch is kept, and progress is counted.
/// </summary>
public sealed class HealthyIoLoop
{
    private readonly BlockDevice _device;
    private readonly CancellationTokenSource _stop = new();
    private readonly ConcurrentQueue<string> _failures = new();
    private long _rounds;

    private HealthyIoLoop(BlockDevice device)
    {
        _device = device;
    }

    public long Rounds => Interlocked.Read(ref _rounds);

    public IReadOnlyCollection<string> Failures => _failures;

    public static HealthyIoLoop Start(BlockDevice device)
    {
        var loop = new HealthyIoLoop(device);
        _ = Task.Run(loop.RunAsync);
        return loop;
    }

    public void Stop() => _stop.Cancel();

    /// <summary>Waits (generously: <paramref name="within"/>, else the rig's deadline) until the loop has done <paramref name="more"/> rounds past <paramref name="from"/>.</summary>
    public async Task<bool> ProgressesAsync(long from, int more, TimeSpan? within = null)
    {
        var until = DateTime.UtcNow + (within ?? HostileRig.Deadline);
        while (Rounds < from + more)
        {
            if (DateTime.UtcNow > until)
            {
                return false;
            }

            await Task.Delay(20);
        }

        return true;
    }

    private async Task RunAsync()
    {
        int blockSize = _device.BlockSize;
        var written = new byte[4096];
        var read = new byte[4096];
        ulong blocksPerRound = (ulong)(written.Length / blockSize);
        ulong slots = Math.Max(1, (_device.BlockCount / blocksPerRound) - 1);
        while (!_stop.IsCancellationRequested)
        {
            long round = Rounds;
            ulong lba = (ulong)round % slots * blocksPerRound;
            Random.Shared.NextBytes(written);
            try
            {
                await _device.WriteAsync(lba, written).AsTask().WaitAsync(HostileRig.Deadline);
                await _device.ReadAsync(lba, read).AsTask().WaitAsync(HostileRig.Deadline);
                if (!written.AsSpan().SequenceEqual(read))
                {
                    _failures.Enqueue($"round {round}: LBA {lba} read back different data");
                }
            }
            catch (Exception e)
            {
                _failures.Enqueue($"round {round}: LBA {lba}: {e.GetType().Name}: {e.Message}");
                await Task.Delay(100);
            }

            Interlocked.Increment(ref _rounds);
        }
    }
}
