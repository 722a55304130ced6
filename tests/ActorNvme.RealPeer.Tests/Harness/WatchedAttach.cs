using System.Threading.Channels;
using Akka.Actor;
using ActorNvme.Actors.Connection;
using ActorNvme.Actors.Controller;
using ActorNvme.Actors.Settings;
using ActorNvme.Actors.Subsystem;
using ActorNvme.Io;
using ActorNvme.Transport;

namespace ActorNvme.RealPeer.Tests.Harness;

/// <summary>
/// Attaches one subsystem as <c>nvme0</c> and watches it: the first block device it hands out, and the reason of
/// every controller that fails on the way (a refused key, a refused handshake), for the security tests.
/// </summary>
internal static class WatchedAttach
{
    public static (TaskCompletionSource<BlockDevice> Added, Channel<string> Failures) Start(ActorSystem system, string subsystemNqn, TransportAddress address, NvmeHostSettings settings)
    {
        var run = StartCounted(system, subsystemNqn, address, settings);
        return (run.Added, run.Failures);
    }

    /// <summary>As <see cref="Start"/>, also counting the admin connection attempts and telling when the subsystem has stopped (given up at ctrlr-loss-timeout).</summary>
    public static WatchedRun StartCounted(ActorSystem system, string subsystemNqn, TransportAddress address, NvmeHostSettings settings)
    {
        var added = new TaskCompletionSource<BlockDevice>(TaskCreationOptions.RunContinuationsAsynchronously);
        var stopped = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var failures = Channel.CreateUnbounded<string>();
        var connector = new CountingAdminConnector(TransportAdminConnector.Tcp());
        var listener = system.ActorOf(Props.Create(() => new Listener(added, failures, stopped)));
        system.EventStream.Subscribe(listener, typeof(BlockDeviceAdded));
        system.EventStream.Subscribe(listener, typeof(Controller.StateChanged));
        var subsystem = system.ActorOf(Subsystem.Props(new SubsystemOptions("nvme0", subsystemNqn, [address], settings), connector, TransportIoQueueConnector.Tcp()), "nvme0");
        listener.Tell(new WatchIt(subsystem));
        return new WatchedRun(added, failures, stopped.Task, () => connector.Attempts);
    }

    private sealed record WatchIt(IActorRef Subsystem);

    private sealed class Listener : ReceiveActor
    {
        public Listener(TaskCompletionSource<BlockDevice> added, Channel<string> failures, TaskCompletionSource stopped)
        {
            Receive<BlockDeviceAdded>(m => added.TrySetResult(m.BlockDevice!));
            Receive<Controller.StateChanged>(m =>
            {
                if (m.State == ControllerState.Failed && m.Reason != ControllerActor.StoppedReason)
                {
                    failures.Writer.TryWrite(m.Reason ?? "failed");
                }
            });
            Receive<WatchIt>(m => Context.Watch(m.Subsystem));
            Receive<Terminated>(_ => stopped.TrySetResult());
        }
    }
}

/// <summary>A watched attach: its first block device, every failed controller's reason, when it stopped, and how many connections it tried.</summary>
internal sealed record WatchedRun(TaskCompletionSource<BlockDevice> Added, Channel<string> Failures, Task Stopped, Func<int> ConnectAttempts);

/// <summary>Counts the admin connection attempts (one per association) the host makes through it.</summary>
internal sealed class CountingAdminConnector(IAdminConnector inner) : IAdminConnector
{
    private int _attempts;

    public int Attempts => Volatile.Read(ref _attempts);

    public Task<IAdminConnection> ConnectAsync(AdminConnectRequest request, IAdminEvents events, CancellationToken lifetime)
    {
        Interlocked.Increment(ref _attempts);
        return inner.ConnectAsync(request, events, lifetime);
    }

    public IIoQueueConnector IoQueueConnector(NvmeHostSettings settings) => inner.IoQueueConnector(settings);
}
