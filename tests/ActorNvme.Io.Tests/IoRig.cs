using System.Collections.Concurrent;
using Akka.Actor;
using Akka.Configuration;
using ActorNvme.Actors.Connection;
using ActorNvme.Io;
using ActorNvme.Actors.Settings;
using ActorNvme.Actors.Subsystem;
using ActorNvme.Target;
using ActorNvme.Transport;

namespace ActorNvme.Io.Tests;

/// <summary>
/// Our Target on TCP 127.0.0.1 (one NVM subsystem, one RAM namespace, one or more listeners) and an
/// actor system whose subsystem actor connects a path to each listener; the block device comes from
/// <see cref="BlockDeviceAdded"/> on the event stream, as a user would get it.
/// </summary>
public sealed class IoRig : IAsyncDisposable
{
    public const string Nqn = "nqn.2024-01.io.actornvme:io-tests";

    /// <summary>Generous: these tests wait for keep-alive, reconnects and timeouts on a shared machine.</summary>
    public static readonly TimeSpan Deadline = TimeSpan.FromSeconds(90);

    private static readonly Config Quiet = ConfigurationFactory.ParseString("akka.loglevel = WARNING\nakka.stdout-loglevel = WARNING");

    private readonly ConcurrentQueue<object> _events = new();

    private IoRig(NvmeTarget target, NvmSubsystem subsystem, IReadOnlyList<TargetListener> listeners, ActorSystem system, NvmeHostSettings settings)
    {
        Target = target;
        TargetSubsystem = subsystem;
        Listeners = listeners;
        System = system;
        Settings = settings;
    }

    public NvmeTarget Target { get; }

    public NvmSubsystem TargetSubsystem { get; }

    public IReadOnlyList<TargetListener> Listeners { get; }

    public TargetFaults Faults => Target.Faults;

    public ActorSystem System { get; }

    public NvmeHostSettings Settings { get; }

    public IActorRef Subsystem { get; private set; } = ActorRefs.Nobody;

    public BlockDevice Device { get; private set; } = null!;

    /// <summary>Events seen on the stream (FastIoFailChanged, BlockDeviceRemoved, ...), in order.</summary>
    public IReadOnlyCollection<object> Events => _events;

    /// <summary>Fast settings for fault tests: keep-alive 1 s, connect steps 2 s, reconnect every 1 s.</summary>
    public static NvmeHostSettings FastSettings(double lossSeconds = 60, double fastIoFailSeconds = 0) => NvmeHostSettings.Default with
    {
        KeepAliveTimeout = TimeSpan.FromSeconds(1),
        ConnectTimeout = TimeSpan.FromSeconds(2),
        AdminCommandTimeout = TimeSpan.FromSeconds(5),
        IoQueues = 2,
        Resiliency = new ResiliencySettings(TimeSpan.FromSeconds(lossSeconds), TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(fastIoFailSeconds)).Validated(),
    };

    public static async Task<IoRig> StartAsync(
        NvmeHostSettings? settings = null,
        TargetOptions? targetOptions = null,
        int blockSize = 512,
        long namespaceBytes = 32L * 1024 * 1024,
        int paths = 1,
        int extraNamespaces = 0,
        Action<NvmeTarget>? configureTarget = null)
    {
        settings = (settings ?? FastSettings()).Validated();
        var target = new NvmeTarget(targetOptions);
        configureTarget?.Invoke(target);
        var subsystem = target.AddSubsystem(Nqn);
        subsystem.AddNamespace(NamespaceOptions.Ram(namespaceBytes, blockSize));
        for (int i = 0; i < extraNamespaces; i++)
        {
            subsystem.AddNamespace(NamespaceOptions.Null(1024 * 1024, blockSize));
        }
        var listeners = Enumerable.Range(0, paths).Select(_ => target.ListenTcp("127.0.0.1", 0)).ToArray();
        var system = ActorSystem.Create($"io-{Guid.NewGuid():N}", Quiet);
        var rig = new IoRig(target, subsystem, listeners, system, settings);
        await rig.AttachAsync();
        return rig;
    }

    /// <summary>Waits (generously) until <paramref name="condition"/> holds.</summary>
    public static async Task WaitUntilAsync(Func<bool> condition, string what)
    {
        var until = DateTime.UtcNow + Deadline;
        while (!condition())
        {
            if (DateTime.UtcNow > until)
            {
                throw new TimeoutException($"waited {Deadline.TotalSeconds:0} s for {what}");
            }

            await Task.Delay(20);
        }
    }

    public bool Saw<T>(Func<T, bool> match) => _events.OfType<T>().Any(match);

    /// <summary>Waits (generously) for the <see cref="BlockDeviceAdded"/> of <paramref name="name"/> and returns its device.</summary>
    public async Task<BlockDevice> WaitForDeviceAsync(string name)
    {
        await WaitUntilAsync(() => Saw<BlockDeviceAdded>(a => a.Device.Name == name), $"block device {name} to be added");
        return _events.OfType<BlockDeviceAdded>().Last(a => a.Device.Name == name).BlockDevice!;
    }

    public async ValueTask DisposeAsync()
    {
        await System.Terminate().WaitAsync(Deadline);
        await Target.DisposeAsync();
    }

    private async Task AttachAsync()
    {
        var added = new TaskCompletionSource<BlockDeviceAdded>(TaskCreationOptions.RunContinuationsAsynchronously);
        var listener = System.ActorOf(Props.Create(() => new EventCollector(_events, added)));
        System.EventStream.Subscribe(listener, typeof(BlockDeviceAdded));
        System.EventStream.Subscribe(listener, typeof(BlockDeviceRemoved));
        System.EventStream.Subscribe(listener, typeof(BlockDeviceResized));
        System.EventStream.Subscribe(listener, typeof(FastIoFailChanged));

        var options = new SubsystemOptions("nvme0", Nqn, [.. Listeners.Select(l => l.Address)], Settings);
        Subsystem = System.ActorOf(ActorNvme.Actors.Subsystem.Subsystem.Props(options, TransportAdminConnector.Tcp(), TransportIoQueueConnector.Tcp()), "nvme0");
        var device = (await added.Task.WaitAsync(Deadline)).BlockDevice;
        Device = device ?? throw new InvalidOperationException("BlockDeviceAdded carried no BlockDevice");
        await WaitUntilAsync(() => Device.PathCount == Listeners.Count, $"{Listeners.Count} path(s) attached to {Device.Name}");
    }

    private sealed class EventCollector : ReceiveActor
    {
        public EventCollector(ConcurrentQueue<object> events, TaskCompletionSource<BlockDeviceAdded> added)
        {
            ReceiveAny(message =>
            {
                events.Enqueue(message);
                if (message is BlockDeviceAdded first)
                {
                    added.TrySetResult(first);
                }
            });
        }
    }
}
