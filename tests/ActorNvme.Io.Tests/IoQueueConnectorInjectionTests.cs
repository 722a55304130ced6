using System.Collections.Concurrent;
using Akka.Actor;
using Akka.Configuration;
using ActorNvme.Actors.Connection;
using ActorNvme.Actors.Settings;
using ActorNvme.Actors.Subsystem;
using ActorNvme.Target;
using ActorNvme.Transport;
using ActorNvme.Transport.InMemory;

namespace ActorNvme.Io.Tests;

/// <summary>
/// The I/O-queue connector is injected: the admin connector provides the one that matches it, so the
/// actors never look at which transport is underneath.
/// </summary>
public sealed class IoQueueConnectorInjectionTests
{
    private const string Nqn = "nqn.2014-08.org.example:injection";

    private static readonly Config Quiet = ConfigurationFactory.ParseString("akka.loglevel = WARNING\nakka.stdout-loglevel = WARNING");

    [Fact]
    public async Task A_subsystem_given_only_an_in_memory_admin_connector_does_its_io_over_that_network()
    {
        var network = new InMemoryNetwork();
        var address = new TransportAddress("10.255.255.1", 4420); // nothing listens there over TCP
        await using var target = new NvmeTarget(TargetOptions.Default);
        target.AddSubsystem(Nqn).AddNamespace(NamespaceOptions.Ram(4L * 1024 * 1024));
        target.ListenInMemory(network, address);

        using var system = ActorSystem.Create($"inject-{Guid.NewGuid():N}", Quiet);
        var added = new TaskCompletionSource<BlockDevice>(TaskCreationOptions.RunContinuationsAsynchronously);
        var listener = system.ActorOf(Props.Create(() => new AddedListener(added)));
        system.EventStream.Subscribe(listener, typeof(BlockDeviceAdded));
        var settings = IoRig.FastSettings().Validated();
        system.ActorOf(Subsystem.Props(new SubsystemOptions("nvme0", Nqn, [address], settings), new TransportAdminConnector(new InMemoryTransport(network))), "nvme0");

        var device = await added.Task.WaitAsync(IoRig.Deadline);
        await IoRig.WaitUntilAsync(() => device.PathCount == 1 && device.HasUsablePath, "the in-memory path to carry I/O");
        var written = new byte[4096];
        new Random(10).NextBytes(written);
        await device.WriteAsync(16, written).AsTask().WaitAsync(IoRig.Deadline);
        var read = new byte[4096];
        await device.ReadAsync(16, read).AsTask().WaitAsync(IoRig.Deadline);
        Assert.Equal(written, read);

        await system.Terminate().WaitAsync(IoRig.Deadline);
    }

    [Fact]
    public void A_transport_admin_connector_hands_the_settings_to_the_io_connector_it_was_given()
    {
        var seen = new ConcurrentQueue<NvmeHostSettings>();
        var ioConnector = new TransportIoQueueConnector(new InMemoryTransport(new InMemoryNetwork()));
        var admin = new TransportAdminConnector(new InMemoryTransport(new InMemoryNetwork()), settings =>
        {
            seen.Enqueue(settings);
            return ioConnector;
        });
        var custom = NvmeHostSettings.Default with { IoReceiveSpin = TimeSpan.FromMicroseconds(50) };

        Assert.Same(ioConnector, admin.IoQueueConnector(custom));
        Assert.Same(custom, Assert.Single(seen));
        Assert.IsType<TransportIoQueueConnector>(TransportAdminConnector.Tcp().IoQueueConnector(NvmeHostSettings.Default));
    }

    private sealed class AddedListener : ReceiveActor
    {
        public AddedListener(TaskCompletionSource<BlockDevice> added) =>
            Receive<BlockDeviceAdded>(m => added.TrySetResult(m.BlockDevice!));
    }
}
