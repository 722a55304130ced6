using ActorNvme.Protocol.Data;
using ActorNvme.Protocol.Nvme;

namespace ActorNvme.Target.Tests;

/// <summary>The per-namespace reservation state machine, driven directly, as hostile hosts would drive it.</summary>
public sealed class ReservationStateTests
{
    private static readonly Guid HostA = new("aaaaaaaa-0000-4000-8000-000000000001");
    private static readonly Guid HostB = new("bbbbbbbb-0000-4000-8000-000000000002");
    private static readonly Guid HostC = new("cccccccc-0000-4000-8000-000000000003");
    private const ulong KeyA = 0xA1;
    private const ulong KeyB = 0xB2;
    private const ulong KeyC = 0xC3;

    private static bool IsConflict(NvmeStatus status) =>
        status.Type == StatusCodeType.Generic && status.Code == (byte)GenericStatus.ReservationConflict;

    private static bool IsInvalidField(NvmeStatus status) =>
        status.Type == StatusCodeType.Generic && status.Code == (byte)GenericStatus.InvalidField;

    private static NvmeStatus Register(NamespaceReservations r, Guid host, ulong key) =>
        r.Register(host, (byte)ReservationRegisterAction.Register, false, 0, 0, key);

    private static NvmeStatus Acquire(NamespaceReservations r, Guid host, ulong key, ReservationAcquireAction action = ReservationAcquireAction.Acquire, ReservationType type = ReservationType.WriteExclusive, ulong preempt = 0) =>
        r.Acquire(host, (byte)action, (byte)type, key, preempt, out _);

    [Fact]
    public void Write_exclusive_lets_only_the_holder_write_and_everyone_read()
    {
        var r = new NamespaceReservations();
        Assert.True(Register(r, HostA, KeyA).IsSuccess);
        Assert.True(Register(r, HostB, KeyB).IsSuccess);
        Assert.True(r.Allows(HostB, write: true)); // no reservation yet
        Assert.True(Acquire(r, HostA, KeyA).IsSuccess);

        Assert.Equal(ReservationType.WriteExclusive, r.Type);
        Assert.Equal(HostA, r.Holder);
        Assert.True(r.Allows(HostA, write: true));
        Assert.False(r.Allows(HostB, write: true));
        Assert.True(r.Allows(HostB, write: false));
        Assert.False(r.Allows(HostC, write: true));
    }

    [Fact]
    public void Preempt_and_abort_moves_the_reservation_and_removes_the_old_holders_registration()
    {
        var r = new NamespaceReservations();
        Register(r, HostA, KeyA);
        Acquire(r, HostA, KeyA);
        Register(r, HostB, KeyB);
        uint before = r.Generation;

        var status = r.Acquire(HostB, (byte)ReservationAcquireAction.PreemptAndAbort, (byte)ReservationType.WriteExclusive, KeyB, KeyA, out var preempted);

        Assert.True(status.IsSuccess, status.ToString());
        Assert.Equal([HostA], preempted);
        Assert.Equal(HostB, r.Holder);
        Assert.Null(r.KeyOf(HostA));
        Assert.True(r.Generation > before);
        Assert.False(r.Allows(HostA, write: true));
        Assert.True(r.Allows(HostB, write: true));

        // The fenced host cannot take it back with its old key: it is no longer registered.
        Assert.True(IsConflict(Acquire(r, HostA, KeyA, ReservationAcquireAction.PreemptAndAbort, preempt: KeyB)));
        Assert.True(IsConflict(r.Release(HostA, (byte)ReservationReleaseAction.Release, (byte)ReservationType.WriteExclusive, KeyA)));
    }

    [Fact]
    public void Wrong_keys_are_conflicts_and_change_nothing()
    {
        var r = new NamespaceReservations();
        Register(r, HostA, KeyA);
        Acquire(r, HostA, KeyA);
        Register(r, HostB, KeyB);
        uint generation = r.Generation;

        Assert.True(IsConflict(Register(r, HostA, KeyA + 1))); // registered already, with another key
        Assert.True(IsConflict(r.Register(HostA, (byte)ReservationRegisterAction.Unregister, false, 0, KeyB, 0)));
        Assert.True(IsConflict(r.Register(HostA, (byte)ReservationRegisterAction.Replace, false, 0, KeyB, 0x99)));
        Assert.True(IsConflict(Acquire(r, HostB, KeyA))); // B's key is not KeyA
        Assert.True(IsConflict(Acquire(r, HostB, KeyB))); // held by A
        Assert.True(IsConflict(Acquire(r, HostC, KeyC))); // not registered
        Assert.True(IsConflict(Acquire(r, HostB, KeyB, ReservationAcquireAction.Preempt, preempt: 0x1234))); // nobody holds that key
        Assert.True(IsConflict(r.Release(HostB, (byte)ReservationReleaseAction.Clear, 0, KeyA)));

        Assert.Equal(generation, r.Generation);
        Assert.Equal(HostA, r.Holder);
        Assert.Equal(KeyA, r.KeyOf(HostA));
        Assert.Equal(KeyB, r.KeyOf(HostB));
        Assert.True(r.Conflicts >= 8);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(7)]
    [InlineData(0xFF)]
    public void Unknown_reservation_types_are_invalid_fields(byte type)
    {
        var r = new NamespaceReservations();
        Register(r, HostA, KeyA);
        var status = r.Acquire(HostA, (byte)ReservationAcquireAction.Acquire, type, KeyA, 0, out _);
        Assert.True(IsInvalidField(status), status.ToString());
        Assert.Equal(ReservationType.None, r.Type);
    }

    [Fact]
    public void Unknown_actions_zero_keys_and_unsupported_persistence_are_invalid_fields()
    {
        var r = new NamespaceReservations();
        Assert.True(IsInvalidField(r.Register(HostA, 3, false, 0, 0, KeyA)));
        Assert.True(IsInvalidField(r.Register(HostA, 7, false, 0, 0, KeyA)));
        Assert.True(IsInvalidField(Register(r, HostA, 0)));
        Assert.True(IsInvalidField(r.Register(HostA, 0, false, (byte)PersistThroughPowerLossChange.Set, 0, KeyA)));
        Assert.True(IsInvalidField(r.Register(HostA, 0, false, 1, 0, KeyA)));
        Assert.Empty(r.Registrants());

        Register(r, HostA, KeyA);
        Assert.True(IsInvalidField(r.Acquire(HostA, 3, (byte)ReservationType.WriteExclusive, KeyA, 0, out _)));
        Assert.True(IsInvalidField(r.Release(HostA, 2, (byte)ReservationType.WriteExclusive, KeyA)));
        Acquire(r, HostA, KeyA);
        // Releasing as another type than the one held.
        Assert.True(IsInvalidField(r.Release(HostA, (byte)ReservationReleaseAction.Release, (byte)ReservationType.ExclusiveAccess, KeyA)));
        Assert.Equal(ReservationType.WriteExclusive, r.Type);
        // Preempting with key 0 when that is not the holder's key.
        Register(r, HostB, KeyB);
        Assert.True(IsInvalidField(Acquire(r, HostB, KeyB, ReservationAcquireAction.Preempt, preempt: 0)));
        Assert.Equal(HostA, r.Holder);
    }

    [Fact]
    public void Exclusive_access_refuses_reads_too_and_registrants_only_admits_registrants()
    {
        var r = new NamespaceReservations();
        Register(r, HostA, KeyA);
        Acquire(r, HostA, KeyA, type: ReservationType.ExclusiveAccess);
        Assert.False(r.Allows(HostB, write: false));

        Assert.True(r.Release(HostA, (byte)ReservationReleaseAction.Release, (byte)ReservationType.ExclusiveAccess, KeyA).IsSuccess);
        Assert.Equal(ReservationType.None, r.Type);
        Assert.Equal(KeyA, r.KeyOf(HostA)); // release keeps the registration

        Assert.True(Acquire(r, HostA, KeyA, type: ReservationType.WriteExclusiveRegistrantsOnly).IsSuccess);
        Assert.False(r.Allows(HostB, write: true));
        Register(r, HostB, KeyB);
        Assert.True(r.Allows(HostB, write: true));
        Assert.True(r.Allows(HostC, write: false));
        Assert.False(r.Allows(HostC, write: true));
    }

    [Fact]
    public void Unregistering_the_holder_releases_and_clear_removes_everything()
    {
        var r = new NamespaceReservations();
        Register(r, HostA, KeyA);
        Register(r, HostB, KeyB);
        Acquire(r, HostA, KeyA);
        Assert.True(r.Register(HostA, (byte)ReservationRegisterAction.Unregister, false, 0, KeyA, 0).IsSuccess);
        Assert.Equal(ReservationType.None, r.Type);
        Assert.True(r.Allows(HostC, write: true));

        Assert.True(Acquire(r, HostB, KeyB).IsSuccess);
        Assert.True(r.Register(HostB, (byte)ReservationRegisterAction.Replace, true, 0, 0x5555, KeyC).IsSuccess); // IEKEY: the current key is not checked
        Assert.Equal(KeyC, r.KeyOf(HostB));
        Assert.True(r.Release(HostB, (byte)ReservationReleaseAction.Clear, 0, KeyC).IsSuccess);
        Assert.Empty(r.Registrants());
        Assert.Null(r.Holder);
    }

    [Fact]
    public void All_registrants_reservation_is_held_by_every_registrant_and_preempt_zero_takes_it_alone()
    {
        var r = new NamespaceReservations();
        Register(r, HostA, KeyA);
        Register(r, HostB, KeyB);
        Acquire(r, HostA, KeyA, type: ReservationType.WriteExclusiveAllRegistrants);
        Assert.True(r.Allows(HostB, write: true));
        Assert.True(Acquire(r, HostB, KeyB, type: ReservationType.WriteExclusiveAllRegistrants).IsSuccess); // a holder already

        var status = r.Acquire(HostB, (byte)ReservationAcquireAction.Preempt, (byte)ReservationType.WriteExclusive, KeyB, 0, out var preempted);
        Assert.True(status.IsSuccess, status.ToString());
        Assert.Equal([HostA], preempted);
        Assert.Equal(ReservationType.WriteExclusive, r.Type);
        Assert.Equal(HostB, r.Holder);
        Assert.False(r.Allows(HostA, write: true));
    }

    [Fact]
    public void Report_lists_registrants_in_order_with_the_holder_marked_and_round_trips_the_wire_structure()
    {
        var r = new NamespaceReservations();
        Register(r, HostA, KeyA);
        Register(r, HostB, KeyB);
        Acquire(r, HostB, KeyB);
        var report = r.Report(host => host == HostA ? (ushort)1 : (ushort)0xFFFF);

        var wire = new byte[ReservationStatus.GetSize(2, extended: true)];
        report.WriteTo(wire, extended: true);
        var read = ReservationStatus.Read(wire, extended: true);

        Assert.Equal(ReservationType.WriteExclusive, read.Type);
        Assert.Equal(r.Generation, read.Generation);
        Assert.Equal(2, read.Registrants.Count);
        Assert.Equal(new ReservationRegistrant(1, false, KeyA, NamespaceReservations.HostIdOf(HostA)), read.Registrants[0]);
        Assert.Equal(new ReservationRegistrant(0xFFFF, true, KeyB, NamespaceReservations.HostIdOf(HostB)), read.Registrants[1]);
        Assert.Equal(KeyB, read.Holder!.Value.Key);
        // Host identifier in wire order: the UUID's bytes as written in Connect.
        Assert.Equal(HostB.ToByteArray(bigEndian: true), wire.AsSpan(ReservationStatus.ExtendedHeaderSize + ReservationStatus.ExtendedEntrySize + 16, 16).ToArray());
    }

    [Fact]
    public void A_short_report_buffer_carries_the_head_and_a_buffer_shorter_than_the_header_is_refused()
    {
        var r = new NamespaceReservations();
        Register(r, HostA, KeyA);
        Register(r, HostB, KeyB);
        var wire = new byte[ReservationStatus.ExtendedHeaderSize + ReservationStatus.ExtendedEntrySize]; // room for one of two
        r.Report(_ => 1).WriteTo(wire, extended: true);
        Assert.Equal(2, ReservationStatus.DeclaredRegistrants(wire));
        var read = ReservationStatus.Read(wire, extended: true);
        Assert.Single(read.Registrants);
        Assert.Equal(KeyA, read.Registrants[0].Key);

        Assert.Throws<NvmeDataException>(() => ReservationStatus.Read(wire.AsSpan(0, 63), extended: true));
        wire[4] = 9; // undefined type
        Assert.Throws<NvmeDataException>(() => ReservationStatus.Read(wire, extended: true));
    }
}

/// <summary>Reservation commands on the wire, against the target, from a host that gets things wrong on purpose.</summary>
public sealed class ReservationWireTests
{
    private static byte[] Keys(ulong current, ulong other)
    {
        var keys = new byte[ReservationCommands.KeyPairSize];
        ReservationCommands.WriteKeys(keys, current, other);
        return keys;
    }

    private static async Task<CommandResult> ReportAsync(RawClient io, int length, bool extended)
    {
        var sqe = ReservationCommands.Report(1, length, extended);
        sqe.DataPointer = SglDescriptor.Transport((uint)length);
        return await io.CommandAsync(sqe);
    }

    [Fact]
    public async Task Identify_reports_reservations_in_ONCS_and_every_type_in_RESCAP()
    {
        await using var t = TestTarget.Create();
        var (admin, io, _) = await t.ConnectIoAsync();
        await using var _a = admin;
        await using var _i = io;
        var controller = IdentifyController.Read((await admin.IdentifyAsync((byte)IdentifyCns.Controller)).Data);
        Assert.NotEqual(0, controller.OptionalNvmCommands & OptionalNvmCommandSupport.Reservations);
        var ns = IdentifyNamespace.Read((await admin.IdentifyAsync((byte)IdentifyCns.Namespace, 1)).Data);
        Assert.Equal(ReservationCapabilities.AllTypes, (ReservationCapabilities)ns.ReservationCapabilities & ReservationCapabilities.AllTypes);
    }

    [Theory]
    [MemberData(nameof(Transports.Both), MemberType = typeof(Transports))]
    public async Task Register_acquire_and_report_over_the_wire_in_capsule_and_by_R2T(string transport)
    {
        await using var t = TestTarget.Create(transport);
        var (admin, io, controllerId) = await t.ConnectIoAsync();
        await using var _a = admin;
        await using var _i = io;

        var register = await io.CommandAsync(ReservationCommands.Register(1, ReservationRegisterAction.Register), inCapsule: Keys(0, 0x1234));
        Assert.True(register.Status.IsSuccess, register.Status.ToString(CommandSet.Nvm));
        var acquire = await io.CommandAsync(ReservationCommands.Acquire(1, ReservationAcquireAction.Acquire, ReservationType.WriteExclusive), h2cData: Keys(0x1234, 0));
        Assert.True(acquire.Status.IsSuccess, acquire.Status.ToString(CommandSet.Nvm));
        Assert.NotEmpty(acquire.R2Ts);

        var report = await ReportAsync(io, ReservationStatus.GetSize(4, extended: true), extended: true);
        Assert.True(report.Status.IsSuccess, report.Status.ToString(CommandSet.Nvm));
        var status = ReservationStatus.Read(report.Data, extended: true);
        Assert.Equal(ReservationType.WriteExclusive, status.Type);
        var only = Assert.Single(status.Registrants);
        Assert.Equal(new ReservationRegistrant(controllerId, true, 0x1234, NamespaceReservations.HostIdOf(RawClient.HostId)), only);

        // The holder writes as before.
        var write = await io.WriteAsync(1, 0, new byte[512], 512, inCapsule: true);
        Assert.True(write.Status.IsSuccess, write.Status.ToString());
    }

    [Fact]
    public async Task Short_and_oversized_key_buffers_are_refused_without_touching_the_state()
    {
        await using var t = TestTarget.Create();
        var (admin, io, _) = await t.ConnectIoAsync();
        await using var _a = admin;
        await using var _i = io;

        // Register carries 16 bytes; 8 (a Release's) is too short, 24 too long.
        var shortData = await io.CommandAsync(ReservationCommands.Register(1, ReservationRegisterAction.Register), inCapsule: new byte[8]);
        Assert.Equal((byte)GenericStatus.DataSglLengthInvalid, shortData.Status.Code);
        var longData = await io.CommandAsync(ReservationCommands.Register(1, ReservationRegisterAction.Register), inCapsule: new byte[24]);
        Assert.Equal((byte)GenericStatus.DataSglLengthInvalid, longData.Status.Code);

        // The SGL says 16 but the capsule carries 8.
        var sqe = ReservationCommands.Register(1, ReservationRegisterAction.Register);
        sqe.CommandId = io.NextCommandId();
        sqe.DataPointer = SglDescriptor.InCapsule(16);
        var pdu = new byte[256];
        int length = Protocol.Tcp.PduWriter.WriteCapsuleCommand(pdu, sqe, Keys(0, 7).AsSpan(0, 8).ToArray(), io.Digests);
        await io.SendAsync(pdu.AsMemory(0, length));
        var mismatch = await io.ReceiveCompletionAsync(sqe.CommandId);
        Assert.Equal((byte)GenericStatus.DataSglLengthInvalid, mismatch.Status.Code);

        // No data at all (no SGL): refused too.
        var none = await io.CommandAsync(ReservationCommands.Acquire(1, ReservationAcquireAction.Acquire, ReservationType.WriteExclusive));
        Assert.False(none.Status.IsSuccess);

        Assert.Empty(t.Subsystem.FindNamespace(1)!.Reservations.Registrants());
    }

    [Fact]
    public async Task Report_without_the_extended_structure_is_refused_and_a_short_one_gets_the_head()
    {
        await using var t = TestTarget.Create();
        var (admin, io, _) = await t.ConnectIoAsync();
        await using var _a = admin;
        await using var _i = io;
        await io.CommandAsync(ReservationCommands.Register(1, ReservationRegisterAction.Register), inCapsule: Keys(0, 0x42));

        var basic = await ReportAsync(io, 64, extended: false);
        Assert.Equal((byte)GenericStatus.HostIdentifierInconsistentFormat, basic.Status.Code);
        Assert.True(basic.Status.DoNotRetry);

        var headOnly = await ReportAsync(io, ReservationStatus.ExtendedHeaderSize, extended: true);
        Assert.True(headOnly.Status.IsSuccess, headOnly.Status.ToString());
        Assert.Equal(ReservationStatus.ExtendedHeaderSize, headOnly.Data.Length);
        Assert.Equal(1, ReservationStatus.DeclaredRegistrants(headOnly.Data));
        Assert.Empty(ReservationStatus.Read(headOnly.Data, extended: true).Registrants);

        var huge = await ReportAsync(io, 1 << 20, extended: true);
        Assert.Equal((byte)GenericStatus.InvalidField, huge.Status.Code);
    }

    [Fact]
    public async Task A_host_the_reservation_excludes_gets_Reservation_Conflict_for_writes_and_not_for_reads()
    {
        await using var t = TestTarget.Create();
        var (admin, io, _) = await t.ConnectIoAsync();
        await using var _a = admin;
        await using var _i = io;
        // Another host (not this connection's HOSTID) holds Write Exclusive.
        var other = Guid.NewGuid();
        var reservations = t.Subsystem.FindNamespace(1)!.Reservations;
        Assert.True(reservations.Register(other, 0, false, 0, 0, 0x77).IsSuccess);
        Assert.True(reservations.Acquire(other, 0, (byte)ReservationType.WriteExclusive, 0x77, 0, out _).IsSuccess);

        var write = await io.WriteAsync(1, 0, new byte[512], 512, inCapsule: true);
        Assert.Equal((byte)GenericStatus.ReservationConflict, write.Status.Code);
        Assert.Equal(StatusCodeType.Generic, write.Status.Type);
        var r2tWrite = await io.WriteAsync(1, 0, new byte[8192], 512, inCapsule: false);
        Assert.Equal((byte)GenericStatus.ReservationConflict, r2tWrite.Status.Code);
        var zeroes = await io.CommandAsync(NvmCommands.WriteZeroes(1, 0, 1));
        Assert.Equal((byte)GenericStatus.ReservationConflict, zeroes.Status.Code);
        var read = await io.ReadAsync(1, 0, 1, 512);
        Assert.True(read.Status.IsSuccess, read.Status.ToString());

        // Preempted away from the other host: this one may write.
        Assert.True((await io.CommandAsync(ReservationCommands.Register(1, ReservationRegisterAction.Register), inCapsule: Keys(0, 0x88))).Status.IsSuccess);
        var preempt = await io.CommandAsync(ReservationCommands.Acquire(1, ReservationAcquireAction.PreemptAndAbort, ReservationType.WriteExclusive), inCapsule: Keys(0x88, 0x77));
        Assert.True(preempt.Status.IsSuccess, preempt.Status.ToString(CommandSet.Nvm));
        Assert.True((await io.WriteAsync(1, 0, new byte[512], 512, inCapsule: true)).Status.IsSuccess);
        Assert.False(reservations.Allows(other, write: true));
    }
}
