using Akka.Actor;
using ActorNvme.Actors.Connection;

namespace ActorNvme.Io.Tests;

/// <summary>The ownership ledger counts I/O connections like admin ones, and nothing is left when the owner stops.</summary>
public sealed class OwnershipTests
{
    [Fact]
    public async Task The_ledger_counts_the_io_queues_and_is_empty_after_the_subsystem_stops()
    {
        await using var rig = await IoRig.StartAsync(IoRig.FastSettings() with { IoQueues = 3 });
        var ledger = OwnershipLedger.Get(rig.System);
        await IoRig.WaitUntilAsync(() => ledger.Total.Connections == 4, "1 admin + 3 I/O connections in the ledger");

        var set = rig.Device.Paths.Single().Value;
        await rig.Subsystem.GracefulStop(IoRig.Deadline);
        await set.Closed.WaitAsync(IoRig.Deadline);
        Assert.All(set.Queues, q => Assert.True(q.IsClosed));
        await IoRig.WaitUntilAsync(() => ledger.Total.IsEmpty, "an empty ledger");
        await IoRig.WaitUntilAsync(() => rig.Target.ConnectionCount == 0, "the target to see every connection closed");
        Assert.True(rig.Device.IsDeleted);
    }
}
