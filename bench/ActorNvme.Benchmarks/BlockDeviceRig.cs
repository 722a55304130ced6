using Akka.Actor;
using Akka.Configuration;
using ActorNvme.Actors.Connection;
using ActorNvme.Io;
using ActorNvme.Actors.Settings;
using ActorNvme.Actors.Subsystem;
using ActorNvme.Target;
using ActorNvme.Transport;
using ActorNvme.Transport.InMemory;

namespace ActorNvme.Benchmarks;

/// <summary>
/// The in-process Target (one null namespace) on the in-memory transport, and the runtime attached
/// to it through its actors: a subsystem actor whose controller actor connects the admin queue and
/// the I/O queues. The block device is the one a user would get from <see cref="BlockDeviceAdded"/>.
/// </summary>
public sealed class BlockDeviceRig : IAsyncDisposable
{
    private const string Nqn = "nqn.2016-06.io.spdk:bench";

    private BlockDeviceRig(NvmeTarget target, ActorSystem system, BlockDevice device)
    {
        Target = target;
        System = system;
        Device = device;
    }

    public NvmeTarget Target { get; }

    public ActorSystem System { get; }

    public BlockDevice Device { get; }

    /// <summary>The device's first I/O queue pair, for the bare baseline.</summary>
    public IoQueuePair FirstQueue => Device.Paths[0].Value.Queues[0];

    public static async Task<BlockDeviceRig> StartAsync(int ioQueues = 1, int queueSize = 256)
    {
        var network = new InMemoryNetwork();
        var address = new TransportAddress("10.0.0.1", 4420);
        var target = new NvmeTarget(TargetOptions.Default with { MaxIoQueueSize = queueSize });
        target.AddSubsystem(Nqn).AddNamespace(NamespaceOptions.Null(1L << 30));
        target.ListenInMemory(network, address);

        var system = ActorSystem.Create("bench", ConfigurationFactory.ParseString("akka.loglevel = WARNING"));
        var settings = NvmeHostSettings.Default with { IoQueues = ioQueues, IoQueueSize = queueSize };
        var added = new TaskCompletionSource<BlockDevice>(TaskCreationOptions.RunContinuationsAsynchronously);
        var listener = system.ActorOf(Props.Create(() => new AddedListener(added)));
        system.EventStream.Subscribe(listener, typeof(BlockDeviceAdded));
        var transport = new InMemoryTransport(network);
        system.ActorOf(Subsystem.Props(new SubsystemOptions("nvme0", Nqn, [address], settings), new TransportAdminConnector(transport), new TransportIoQueueConnector(transport)), "nvme0");
        var device = await added.Task.WaitAsync(TimeSpan.FromSeconds(30)).ConfigureAwait(false);
        return new BlockDeviceRig(target, system, device);
    }

    public async ValueTask DisposeAsync()
    {
        await System.Terminate().ConfigureAwait(false);
        await Target.DisposeAsync().ConfigureAwait(false);
    }

    private sealed class AddedListener : ReceiveActor
    {
        public AddedListener(TaskCompletionSource<BlockDevice> added) =>
            Receive<BlockDeviceAdded>(m => added.TrySetResult(m.BlockDevice!));
    }
}

/// <summary><c>QueueDepth</c> workers, each awaiting one 4 KiB read (or write) at a time, through the block device or (baseline) straight on its queue pair.</summary>
public sealed class DeviceLoop(BlockDeviceRig rig, int queueDepth, bool bare, bool write = false, int transferSize = 4096)
{
    private readonly byte[][] _buffers = Enumerable.Range(0, queueDepth).Select(_ => new byte[transferSize]).ToArray();

    public async Task<long> RunCountAsync(int perWorker)
    {
        var workers = new Task<long>[queueDepth];
        for (int w = 0; w < queueDepth; w++)
        {
            workers[w] = bare ? BareWorkerAsync(w, perWorker) : WorkerAsync(w, perWorker);
        }

        long total = 0;
        foreach (var count in await Task.WhenAll(workers).ConfigureAwait(false))
        {
            total += count;
        }

        return total;
    }

    private async Task<long> WorkerAsync(int worker, int reads)
    {
        await Task.Yield();
        var device = rig.Device;
        var buffer = _buffers[worker];
        ulong lba = (ulong)(worker * (transferSize / device.BlockSize));
        for (int i = 0; i < reads; i++)
        {
            if (write)
            {
                await device.WriteAsync(lba, buffer).ConfigureAwait(false);
            }
            else
            {
                await device.ReadAsync(lba, buffer).ConfigureAwait(false);
            }
        }

        return reads;
    }

    private async Task<long> BareWorkerAsync(int worker, int reads)
    {
        await Task.Yield();
        var queue = rig.FirstQueue;
        var buffer = _buffers[worker];
        int blocks = transferSize / rig.Device.BlockSize;
        ulong lba = (ulong)(worker * blocks);
        for (int i = 0; i < reads; i++)
        {
            var result = write
                ? await queue.WriteAsync(rig.Device.NamespaceId, lba, blocks, buffer).ConfigureAwait(false)
                : await queue.ReadAsync(rig.Device.NamespaceId, lba, blocks, buffer).ConfigureAwait(false);
            if (!result.IsSuccess)
            {
                throw new InvalidOperationException($"read failed: {result}");
            }
        }

        return reads;
    }
}
