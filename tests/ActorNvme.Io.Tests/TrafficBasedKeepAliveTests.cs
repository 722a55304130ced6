using ActorNvme.Target;

namespace ActorNvme.Io.Tests;

/// <summary>
/// Traffic-based keep alive (CTRATT.TBKAS): while I/O completes, the host skips the Keep Alives the I/O
/// stands in for; a controller without TBKAS gets every one. Counted at the target.
/// </summary>
public sealed class TrafficBasedKeepAliveTests
{
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task Keep_alives_are_skipped_while_io_flows_only_when_the_controller_reports_tbkas(bool tbkas)
    {
        // KATO 1 s: a Keep Alive every 0.5 s when not skipped.
        await using var rig = await IoRig.StartAsync(targetOptions: new TargetOptions { TrafficBasedKeepAlive = tbkas });
        var device = rig.Device;
        var buffer = new byte[device.BlockSize];
        long before = rig.TargetSubsystem.KeepAlivesReceived;
        var until = DateTime.UtcNow + TimeSpan.FromSeconds(4);
        long reads = 0;
        while (DateTime.UtcNow < until)
        {
            await device.ReadAsync((ulong)(reads % 64), buffer).AsTask().WaitAsync(IoRig.Deadline);
            reads++;
        }

        long keepAlives = rig.TargetSubsystem.KeepAlivesReceived - before;
        if (tbkas)
        {
            // At most one: the interval in which the I/O started may not have seen a completion yet.
            Assert.True(keepAlives <= 1, $"{keepAlives} Keep Alives during 4 s of continuous I/O ({reads} reads) to a TBKAS controller");
        }
        else
        {
            Assert.True(keepAlives >= 4, $"only {keepAlives} Keep Alives in 4 s to a controller without TBKAS (one is due every 0.5 s)");
        }

        // The association stayed Live all along: no loss, the same path.
        Assert.Equal(1, device.PathCount);
    }
}
