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
}
