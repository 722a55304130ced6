using Akka.Actor;
using ActorNvme.Actors.Subsystem;
using ActorNvme.Io;

namespace ActorNvme.Actors.Host;

/// <summary>
/// The embedding surface over the host actor for code that is not an actor: get a block device by name,
/// wait for one to appear, list the devices there are, and hand the current devices to a subscriber that
/// joins late followed by every later change. Each call is a few messages to the host actor; nothing here
/// holds state of its own.
/// </summary>
/// <example>
/// <code>
/// var nvme = new NvmeHostClient(system, await registry.GetAsync&lt;NvmeHostActor&gt;());
/// BlockDevice device = await nvme.WaitForBlockDeviceAsync("nvme0n1", TimeSpan.FromSeconds(30));
/// </code>
/// </example>
public sealed class NvmeHostClient
{
    private static readonly TimeSpan AskTimeout = TimeSpan.FromSeconds(10);

    private readonly ActorSystem _system;

    public NvmeHostClient(ActorSystem system, IActorRef host)
    {
        ArgumentNullException.ThrowIfNull(system);
        ArgumentNullException.ThrowIfNull(host);
        _system = system;
        Host = host;
    }

    /// <summary>The host actor (<c>/user/nvme</c>).</summary>
    public IActorRef Host { get; }

    /// <summary>The block device named <paramref name="name"/> (e.g. nvme0n1), or null when there is none now.</summary>
    public async Task<BlockDevice?> GetBlockDeviceAsync(string name, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        var list = await Host.Ask<NvmeHost.BlockDeviceList>(NvmeHost.ListBlockDevices.Instance, AskTimeout, cancellationToken).ConfigureAwait(false);
        return list.Devices.FirstOrDefault(d => d.Name == name) is { } info ? await DeviceOf(info, cancellationToken).ConfigureAwait(false) : null;
    }

    /// <summary>Every block device there is now, with its description.</summary>
    public async Task<IReadOnlyList<(BlockDeviceInfo Info, BlockDevice Device)>> ListBlockDevicesAsync(CancellationToken cancellationToken = default)
    {
        var list = await Host.Ask<NvmeHost.BlockDeviceList>(NvmeHost.ListBlockDevices.Instance, AskTimeout, cancellationToken).ConfigureAwait(false);
        var result = new List<(BlockDeviceInfo, BlockDevice)>(list.Devices.Count);
        foreach (var info in list.Devices)
        {
            if (await DeviceOf(info, cancellationToken).ConfigureAwait(false) is { } device)
            {
                result.Add((info, device)); // one that went away between the two questions is left out
            }
        }

        return result;
    }

    /// <summary>
    /// The block device named <paramref name="name"/>, as soon as it exists (at once when it does).
    /// </summary>
    /// <exception cref="TimeoutException">It did not appear within <paramref name="timeout"/>; the message names it.</exception>
    public async Task<BlockDevice> WaitForBlockDeviceAsync(string name, TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        var appeared = new TaskCompletionSource<BlockDevice>(TaskCreationOptions.RunContinuationsAsynchronously);
        var watcher = _system.ActorOf(Props.Create(() => new NameWatcher(name, appeared)));
        try
        {
            // Subscribed before looking, so a device that appears in between is not missed.
            _system.EventStream.Subscribe(watcher, typeof(BlockDeviceAdded));
            if (await GetBlockDeviceAsync(name, cancellationToken).ConfigureAwait(false) is { } present)
            {
                return present;
            }

            try
            {
                return await appeared.Task.WaitAsync(timeout, cancellationToken).ConfigureAwait(false);
            }
            catch (TimeoutException)
            {
                throw new TimeoutException($"block device {name} did not appear within {timeout.TotalSeconds:0.###} s");
            }
        }
        finally
        {
            _system.Stop(watcher); // its subscriptions end with it
        }
    }

    /// <summary>
    /// Subscribes <paramref name="subscriber"/> to <see cref="BlockDeviceAdded"/>, <see cref="BlockDeviceRemoved"/> and
    /// <see cref="BlockDeviceResized"/>, then sends it a <see cref="BlockDeviceAdded"/> for every device that exists
    /// already. A device that appears while this runs may be announced twice, with the same device object.
    /// </summary>
    public async Task SubscribeAsync(IActorRef subscriber, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(subscriber);
        _system.EventStream.Subscribe(subscriber, typeof(BlockDeviceAdded));
        _system.EventStream.Subscribe(subscriber, typeof(BlockDeviceRemoved));
        _system.EventStream.Subscribe(subscriber, typeof(BlockDeviceResized));
        foreach (var (info, device) in await ListBlockDevicesAsync(cancellationToken).ConfigureAwait(false))
        {
            subscriber.Tell(new BlockDeviceAdded(info, device));
        }
    }

    private async Task<BlockDevice?> DeviceOf(BlockDeviceInfo info, CancellationToken cancellationToken)
    {
        var answer = await Host.Ask<object>(new NvmeHost.ToSubsystem(info.Controller, new Subsystem.Subsystem.GetBlockDevice(info.Name)), AskTimeout, cancellationToken).ConfigureAwait(false);
        return answer is Subsystem.Subsystem.BlockDeviceResult { Device: { } device } ? device : null;
    }

    private sealed class NameWatcher : ReceiveActor
    {
        public NameWatcher(string name, TaskCompletionSource<BlockDevice> appeared) =>
            Receive<BlockDeviceAdded>(added =>
            {
                if (added.Device.Name == name && added.BlockDevice is { } device)
                {
                    appeared.TrySetResult(device);
                }
            });
    }
}
