using Akka.Actor;
using Akka.Configuration;
using Akka.TestKit.Xunit2;
using ActorNvme.Actors.Connection;
using ActorNvme.Io;
using ActorNvme.Actors.Settings;
using ActorNvme.Actors.Subsystem;
using ActorNvme.RealPeer.Tests.Harness;
using ActorNvme.Transport;
using Xunit;
using Xunit.Abstractions;

namespace ActorNvme.RealPeer.Tests;

/// <summary>
/// Namespaces that come and go at run time, against the Linux kernel target: with cnode0 attached
/// (nvme0n1), the guest enables namespace 2 in configfs; nvmet tells the host with a Namespace
/// Attribute Changed notice, and the host (which does not poll) publishes nvme0n2, which takes writes
/// and reads them back. Then the guest disables and removes it, and the host publishes its removal.
/// </summary>
public sealed class NamespaceChangeTests : TestKit
{
    private const string Subsystem0 = "nqn.2016-06.io.spdk:cnode0";
    private const string SpareDevice = "/dev/ram2"; // free in nvmet-default's configuration
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(60); // the guest is emulated (TCG)
    private static readonly TimeSpan GuestTimeout = TimeSpan.FromSeconds(30);
    private readonly ITestOutputHelper _output;

    public NamespaceChangeTests(ITestOutputHelper output)
        : base(ConfigurationFactory.ParseString("akka.loglevel = WARNING"), output: output)
    {
        _output = output;
    }

    [RealPeerFact]
    public async Task Namespace_enabled_at_the_target_becomes_a_block_device_and_goes_away_when_disabled()
    {
        var target = LinuxTarget.Current;
        var events = CreateTestProbe();
        Sys.EventStream.Subscribe(events.Ref, typeof(BlockDeviceAdded));
        Sys.EventStream.Subscribe(events.Ref, typeof(BlockDeviceRemoved));
        var settings = NvmeHostSettings.Default with { IoQueues = 1 };
        var address = new TransportAddress(target.Address.ToString(), LinuxTarget.IoPort);
        Sys.ActorOf(Subsystem.Props(new SubsystemOptions("nvme0", Subsystem0, [address], settings), TransportAdminConnector.Tcp(), TransportIoQueueConnector.Tcp()), "nvme0");

        var first = events.ExpectMsg<BlockDeviceAdded>(Deadline);
        Assert.Equal("nvme0n1", first.Device.Name);
        bool added = false;
        try
        {
            var clock = System.Diagnostics.Stopwatch.StartNew();
            target.ExecChecked($"nvmet-ns add {Subsystem0} 2 {SpareDevice}", GuestTimeout);
            added = true;
            var second = events.ExpectMsg<BlockDeviceAdded>(Deadline);
            var addedAfter = clock.Elapsed;
            Assert.Equal("nvme0n2", second.Device.Name);
            Assert.Equal(2u, second.Device.NamespaceId);
            Assert.Equal(Subsystem0, second.Device.SubsystemNqn);
            Assert.Equal(64UL * 1024 * 1024 / 512, second.Device.BlockCount);
            var device = second.BlockDevice!;

            var data = new byte[64 * 1024];
            new Random(13).NextBytes(data);
            await device.WriteAsync(4096, data).AsTask().WaitAsync(Deadline);
            var back = new byte[data.Length];
            await device.ReadAsync(4096, back).AsTask().WaitAsync(Deadline);
            Assert.True(data.AsSpan().SequenceEqual(back), "nvme0n2 read back differently from what was written");

            clock.Restart();
            target.ExecChecked($"nvmet-ns remove {Subsystem0} 2", GuestTimeout);
            added = false;
            var removed = events.ExpectMsg<BlockDeviceRemoved>(Deadline);
            var removedAfter = clock.Elapsed;
            Assert.Equal("nvme0n2", removed.Device.Name);
            _output.WriteLine($"nvme0n2 published {addedAfter.TotalSeconds:F2} s after nvmet-ns add began, removed {removedAfter.TotalSeconds:F2} s after nvmet-ns remove began ({removed.Reason})");

            // Namespace 1 was left alone throughout.
            events.ExpectNoMsg(TimeSpan.FromSeconds(1));
            var one = new byte[512];
            await first.BlockDevice!.ReadAsync(0, one).AsTask().WaitAsync(Deadline);
        }
        finally
        {
            if (added)
            {
                target.Exec($"nvmet-ns remove {Subsystem0} 2", GuestTimeout);
            }
        }
    }
}
