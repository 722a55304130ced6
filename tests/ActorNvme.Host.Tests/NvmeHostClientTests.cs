using System.Threading.Channels;
using Akka.Actor;
using Akka.Configuration;
using ActorNvme.Actors.Host;
using ActorNvme.Actors.Settings;
using ActorNvme.Actors.Subsystem;
using ActorNvme.Target;

namespace ActorNvme.Host.Tests;

/// <summary>NvmeHostClient: devices by name, waiting for one, and a subscriber that joins after the devices appeared.</summary>
public sealed class NvmeHostClientTests : IAsyncLifetime
{
    private const string Nqn = "nqn.2016-06.io.actornvme:client";
    private readonly ActorSystem _system = ActorSystem.Create("host-client", ConfigurationFactory.ParseString("akka.loglevel = WARNING"));
    private readonly NvmeTarget _target = new();
    private NvmeHostClient _client = null!;
    private TargetListener _listener = null!;

    public Task InitializeAsync()
    {
        var subsystem = _target.AddSubsystem(Nqn);
        subsystem.AddNamespace(NamespaceOptions.Ram(1024 * 1024, 512));
        subsystem.AddNamespace(NamespaceOptions.Ram(1024 * 1024, 512));
        _listener = _target.ListenTcp("127.0.0.1", 0);
        var host = _system.ActorOf(NvmeHost.Props(NvmeHostSettings.Default with { Resiliency = ResiliencySettings.FromSeconds(30, 1, 0) }), NvmeHost.ActorName);
        _client = new NvmeHostClient(_system, host);
        return Task.CompletedTask;
    }

    public async Task DisposeAsync()
    {
        await _system.Terminate();
        await _target.DisposeAsync();
    }

    [Fact]
    public async Task Waiting_gets_a_device_that_appears_later_and_a_late_subscriber_is_told_of_every_existing_one()
    {
        Assert.Null(await _client.GetBlockDeviceAsync("nvme0n1"));
        var waiting = _client.WaitForBlockDeviceAsync("nvme0n2", TimeSpan.FromSeconds(60));
        var attached = await _client.Host.Ask<object>(new NvmeHost.AttachController("nvme0", _listener.Address, Nqn), TimeSpan.FromSeconds(30));
        Assert.IsType<NvmeHost.ControllerAttached>(attached);
        var second = await waiting;
        Assert.Equal("nvme0n2", second.Name);
        Assert.Same(second, await _client.GetBlockDeviceAsync("nvme0n2"));
        Assert.Same(second, await _client.WaitForBlockDeviceAsync("nvme0n2", TimeSpan.FromSeconds(1))); // there already: at once

        var events = Channel.CreateUnbounded<object>();
        var late = _system.ActorOf(Props.Create(() => new Collector(events)));
        await _client.SubscribeAsync(late);
        var announced = new HashSet<string>();
        while (announced.Count < 2)
        {
            var message = await events.Reader.ReadAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(10));
            announced.Add(Assert.IsType<BlockDeviceAdded>(message).Device.Name);
        }

        Assert.Equal(["nvme0n1", "nvme0n2"], announced.Order());
        Assert.Equal(2, (await _client.ListBlockDevicesAsync()).Count);

        // After the subscription: a removal reaches it too.
        await _client.Host.Ask<object>(new NvmeHost.DetachController("nvme0"), TimeSpan.FromSeconds(30));
        var removed = new HashSet<string>();
        while (removed.Count < 2)
        {
            if (await events.Reader.ReadAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(10)) is BlockDeviceRemoved gone)
            {
                removed.Add(gone.Device.Name);
            }
        }
    }

    [Fact]
    public async Task Waiting_for_a_device_that_never_comes_times_out_naming_it()
    {
        var error = await Assert.ThrowsAsync<TimeoutException>(() => _client.WaitForBlockDeviceAsync("nvme7n1", TimeSpan.FromMilliseconds(300)));
        Assert.Contains("nvme7n1", error.Message, StringComparison.Ordinal);
    }

    private sealed class Collector : ReceiveActor
    {
        public Collector(Channel<object> events) => ReceiveAny(m => events.Writer.TryWrite(m));
    }
}
