using ActorNvme.Protocol.Data;
using ActorNvme.Protocol.Nvme;

namespace ActorNvme.Target.Tests;

/// <summary>The counts a cluster test reads to prove single writer: hosts doing I/O to a namespace at once, and CC.SHN per host NQN.</summary>
public sealed class SingleWriterCountTests
{
    [Fact]
    public async Task Two_controllers_writing_one_namespace_count_as_two_and_a_shut_down_one_no_longer_counts()
    {
        await using var t = TestTarget.Create();
        var ns = t.Subsystem.FindNamespace(1)!;
        var (admin1, io1, _) = await t.ConnectIoAsync();
        var (admin2, io2, _) = await t.ConnectIoAsync();
        await using var a1 = admin1;
        await using var i1 = io1;
        await using var a2 = admin2;
        await using var i2 = io2;
        var data = new byte[512];

        Assert.True((await io1.WriteAsync(1, 0, data, 512, inCapsule: true)).Status.IsSuccess);
        Assert.True((await io1.WriteAsync(1, 1, data, 512, inCapsule: true)).Status.IsSuccess);
        Assert.Equal(1, ns.ConcurrentIoHosts);
        Assert.True((await io2.ReadAsync(1, 0, 1, 512)).Status.IsSuccess);
        Assert.Equal(2, ns.ConcurrentIoHosts);
        Assert.Equal(2, ns.PeakConcurrentIoHosts);

        await admin1.CommandAsync(FabricsCommands.PropertySet(ControllerConfiguration.Offset, ControllerConfiguration.ForFabrics.Enabled.WithShutdown(ShutdownNotification.Normal).Value, false));
        Assert.Equal(1, ns.ConcurrentIoHosts);
        Assert.Equal(2, ns.PeakConcurrentIoHosts); // the peak stays: it is what a test reads at the end
        Assert.Equal(1, t.Subsystem.ShutdownsByHost[RawClient.HostNqn]);
        Assert.Equal(1, t.Subsystem.ShutdownsRequested);
    }

    [Fact]
    public async Task A_controller_that_goes_away_no_longer_counts_among_the_hosts_doing_io()
    {
        await using var t = TestTarget.Create();
        var ns = t.Subsystem.FindNamespace(1)!;
        var (admin, io, _) = await t.ConnectIoAsync();
        Assert.True((await io.WriteAsync(1, 0, new byte[512], 512, inCapsule: true)).Status.IsSuccess);
        Assert.Equal(1, ns.ConcurrentIoHosts);

        await io.DisposeAsync();
        await admin.DisposeAsync();
        var deadline = DateTime.UtcNow + RawClient.Deadline;
        while (ns.ConcurrentIoHosts != 0 && DateTime.UtcNow < deadline)
        {
            await Task.Delay(20);
        }

        Assert.Equal(0, ns.ConcurrentIoHosts);
        Assert.Empty(t.Subsystem.ShutdownsByHost); // gone without CC.SHN
    }

    [Fact]
    public async Task Writes_are_counted_per_host_and_a_second_host_beginning_io_while_the_first_still_does_is_an_overlap()
    {
        await using var t = TestTarget.Create();
        var ns = t.Subsystem.FindNamespace(1)!;
        const string otherHost = "nqn.2014-08.org.nvmexpress:uuid:6f1c3b2a-0000-4000-8000-0000000000ff";
        var (admin1, io1, _) = await t.ConnectIoAsync();
        await using var a1 = admin1;
        await using var i1 = io1;
        var data = new byte[512];
        for (int i = 0; i < 3; i++)
        {
            Assert.True((await io1.WriteAsync(1, (ulong)i, data, 512, inCapsule: true)).Status.IsSuccess);
        }

        Assert.True((await io1.ReadAsync(1, 0, 1, 512)).Status.IsSuccess);

        // A second controller of the same host (host NQN and host id) is no second writer.
        var (admin2, io2, _) = await t.ConnectIoAsync();
        await using var a2 = admin2;
        await using var i2 = io2;
        Assert.True((await io2.WriteAsync(1, 5, data, 512, inCapsule: true)).Status.IsSuccess);
        Assert.Equal(0, ns.OverlappingIoHosts);

        // Another host while the first one's controllers are neither shut down nor gone: an overlap.
        var (admin3, io3, _) = await t.ConnectIoAsync(hostNqn: otherHost);
        await using var a3 = admin3;
        await using var i3 = io3;
        Assert.True((await io3.WriteAsync(1, 7, data, 512, inCapsule: true)).Status.IsSuccess);
        Assert.Equal(1, ns.OverlappingIoHosts);
        Assert.Contains(ns.Overlaps, o => o.StartsWith(otherHost + " ", StringComparison.Ordinal));

        var writes = ns.WritesByHost;
        Assert.Equal(4, writes.Single(w => w.Key.StartsWith(RawClient.HostNqn + " ", StringComparison.Ordinal)).Value);
        Assert.Equal(1, writes.Single(w => w.Key.StartsWith(otherHost + " ", StringComparison.Ordinal)).Value);

        // The counts outlive the controllers that made them.
        await admin1.CommandAsync(FabricsCommands.PropertySet(ControllerConfiguration.Offset, ControllerConfiguration.ForFabrics.Enabled.WithShutdown(ShutdownNotification.Normal).Value, false));
        Assert.Equal(4, ns.WritesByHost.Single(w => w.Key.StartsWith(RawClient.HostNqn + " ", StringComparison.Ordinal)).Value);
    }
}
