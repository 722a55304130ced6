using ActorNvme.Protocol.Nvme;

namespace ActorNvme.Protocol.Tests.Nvme;

public sealed class ReservationCommandTests
{
    [Fact]
    public void Opcodes_and_CDW10_fields_are_where_the_specification_puts_them()
    {
        var register = ReservationCommands.Register(7, ReservationRegisterAction.Replace, ignoreExistingKey: true, PersistThroughPowerLossChange.Clear);
        Assert.Equal(0x0D, register.Opcode);
        Assert.Equal(7u, register.NamespaceId);
        Assert.Equal(0x8000_000Au, register.Cdw10); // RREGA 2, IEKEY bit 3, CPTPL 10b in bits 31:30

        var acquire = ReservationCommands.Acquire(1, ReservationAcquireAction.PreemptAndAbort, ReservationType.WriteExclusive);
        Assert.Equal(0x11, acquire.Opcode);
        Assert.Equal(0x0102u, acquire.Cdw10); // RACQA 2, RTYPE 1 in bits 15:8
        Assert.Equal(2, ReservationCommands.Action(acquire));
        Assert.Equal(1, ReservationCommands.Type(acquire));

        var release = ReservationCommands.Release(1, ReservationReleaseAction.Clear, ReservationType.ExclusiveAccessAllRegistrants);
        Assert.Equal(0x15, release.Opcode);
        Assert.Equal(0x0601u, release.Cdw10);

        var report = ReservationCommands.Report(1, 4096, extended: true);
        Assert.Equal(0x0E, report.Opcode);
        Assert.Equal(1023u, report.Cdw10); // NUMD, 0's based dwords
        Assert.Equal(1u, report.Cdw11); // EDS
        Assert.Equal(4096, ReservationCommands.ReportLength(report));
        Assert.Throws<ArgumentOutOfRangeException>(() => ReservationCommands.Report(1, 6));
    }

    [Fact]
    public void Keys_are_little_endian_current_key_first()
    {
        var keys = new byte[16];
        ReservationCommands.WriteKeys(keys, 0x0102030405060708, 0x1112131415161718);
        Assert.Equal(new byte[] { 8, 7, 6, 5, 4, 3, 2, 1, 0x18, 0x17, 0x16, 0x15, 0x14, 0x13, 0x12, 0x11 }, keys);
        Assert.Equal((0x0102030405060708UL, 0x1112131415161718UL), ReservationCommands.ReadKeys(keys));
    }

    [Fact]
    public void Basic_report_structure_carries_the_64_bit_host_identifier_before_the_key()
    {
        var status = new ReservationStatus(5, ReservationType.WriteExclusive, false, [new ReservationRegistrant(3, true, 0xAB, 0x0102030405060708)]);
        var wire = new byte[ReservationStatus.GetSize(1, extended: false)];
        status.WriteTo(wire, extended: false);
        Assert.Equal(48, wire.Length);
        Assert.Equal(5, wire[0]);
        Assert.Equal(1, wire[4]);
        Assert.Equal(1, wire[5]); // REGCTL
        Assert.Equal(3, wire[24]);
        Assert.Equal(1, wire[26]);
        Assert.Equal(new byte[] { 1, 2, 3, 4, 5, 6, 7, 8 }, wire[32..40]);
        Assert.Equal(0xAB, wire[40]);
        Assert.Equal(status.Registrants, ReservationStatus.Read(wire, extended: false).Registrants);
    }
}
