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
        var added = new TaskCompletionSource<BlockDevice>(TaskCreationOptions.RunContinuationsAsynchronously);
        var failures = Channel.CreateUnbounded<string>();
        var listener = system.ActorOf(Props.Create(() => new Listener(added, failures)));
        system.EventStream.Subscribe(listener, typeof(BlockDeviceAdded));
        system.EventStream.Subscribe(listener, typeof(Controller.StateChanged));
        system.ActorOf(Subsystem.Props(new SubsystemOptions("nvme0", subsystemNqn, [address], settings), TransportAdminConnector.Tcp(), TransportIoQueueConnector.Tcp()), "nvme0");
        return (added, failures);
    }

    private sealed class Listener : ReceiveActor
    {
        public Listener(TaskCompletionSource<BlockDevice> added, Channel<string> failures)
        {
            Receive<BlockDeviceAdded>(m => added.TrySetResult(m.BlockDevice!));
            Receive<Controller.StateChanged>(m =>
            {
                if (m.State == ControllerState.Failed)
                {
                    failures.Writer.TryWrite(m.Reason ?? "failed");
                }
            });
        }
    }
}
