using ActorNvme.Host.Demo;
using Xunit;

namespace ActorNvme.Host.Tests;

/// <summary>
/// The demo's check that no acknowledged write was lost across owner changes: node-c owned the subsystem and
/// acknowledged blocks 1 and 2, node-b read them back at 10 s and wrote, node-a read back at 20 s.
/// </summary>
public sealed class LedgerAuditTests
{
    private const string Nqn = "nqn.2016-06.io.actornvme:cluster-demo-1";

    private static readonly LedgerAck[] Acks =
    [
        new(Nqn, "node-c", 1, "node-c:1", TimeSpan.FromSeconds(1)),
        new(Nqn, "node-c", 2, "node-c:2", TimeSpan.FromSeconds(2)),
        new(Nqn, "node-b", 1, "node-b:1", TimeSpan.FromSeconds(11)),
    ];

    private static LedgerReadback NodeB => new(Nqn, "node-b", Blocks("node-c:1", "node-c:2"), TimeSpan.FromSeconds(10));

    private static Dictionary<long, string> Blocks(string lba1, string lba2) => new() { [1] = lba1, [2] = lba2 };

    private static (int Subsystems, int Checked, int Lost, string Detail) AuditNodeA(string lba1, string lba2) =>
        LedgerAudit.Check(Acks, [NodeB, new(Nqn, "node-a", Blocks(lba1, lba2), TimeSpan.FromSeconds(20))], [Nqn], TimeSpan.FromSeconds(15), "node-b");

    [Fact]
    public void Blocks_holding_the_last_acknowledged_writes_are_not_lost()
    {
        var audit = AuditNodeA("node-b:1", "node-c:2");
        Assert.Equal((1, 2, 0), (audit.Subsystems, audit.Checked, audit.Lost));
    }

    [Fact]
    public void The_one_write_the_leaving_owner_had_in_flight_may_land_over_an_earlier_owners_acknowledged_block()
    {
        // node-b's second write (sequence 2) went to block 2 and landed, but node-b left before it printed the acknowledgement.
        var audit = AuditNodeA("node-b:1", "node-b:2");
        Assert.Equal(0, audit.Lost);
    }

    [Fact]
    public void A_block_holding_an_older_write_than_the_acknowledged_one_is_a_loss_named_in_the_detail()
    {
        var audit = AuditNodeA("node-c:1", "node-c:2");
        Assert.Equal(1, audit.Lost);
        Assert.Contains("cluster-demo-1 lba 1: acknowledged node-b:1, read node-c:1", audit.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public void A_writers_stamp_past_the_one_write_it_could_have_in_flight_is_a_loss()
    {
        var audit = AuditNodeA("node-b:1", "node-b:3");
        Assert.Equal(1, audit.Lost);
    }

    [Fact]
    public void An_unacknowledged_write_of_a_node_that_never_read_the_ledger_back_after_the_acknowledgement_is_a_loss()
    {
        // node-x read back before node-c acknowledged block 2: its write there cannot have come after that acknowledgement.
        var early = new LedgerReadback(Nqn, "node-x", Blocks("-", "-"), TimeSpan.FromSeconds(0.5));
        var audit = LedgerAudit.Check(Acks, [early, NodeB, new(Nqn, "node-a", Blocks("node-b:1", "node-x:1"), TimeSpan.FromSeconds(20))], [Nqn], TimeSpan.FromSeconds(15), "node-b");
        Assert.Equal(1, audit.Lost);
    }

    [Fact]
    public void A_subsystem_nobody_read_back_is_reported_missing()
    {
        var audit = LedgerAudit.Check(Acks, [NodeB], [Nqn], TimeSpan.FromSeconds(15), "node-b");
        Assert.Equal(0, audit.Subsystems);
        Assert.Contains("no ledger read back for 1", audit.Detail, StringComparison.Ordinal);
    }
}
