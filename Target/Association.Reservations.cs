using System.Buffers;
using ActorNvme.Protocol.Nvme;

namespace ActorNvme.Target;

// Reservation Register / Acquire / Release / Report, and the reservation check on every other I/O command.
internal sealed partial class Association
{
    /// <summary>Longest Reservation Report this target answers (the structure for far more registrants than it will hold).</summary>
    private const int MaxReservationReportLength = 64 * 1024;

    private static bool IsReservationCommand(NvmOpcode opcode) =>
        opcode is NvmOpcode.ReservationRegister or NvmOpcode.ReservationAcquire or NvmOpcode.ReservationRelease or NvmOpcode.ReservationReport;

    /// <summary>Commands that modify the namespace: a Write Exclusive reservation refuses them to non-holders.</summary>
    private static bool ModifiesNamespace(NvmOpcode opcode) =>
        opcode is NvmOpcode.Write or NvmOpcode.WriteZeroes or NvmOpcode.DatasetManagement or NvmOpcode.Flush;

    /// <summary>Reservation Conflict when the namespace's reservation excludes this controller's host from the command.</summary>
    private static NvmeStatus ReservationStatusFor(Controller controller, TargetNamespace ns, NvmOpcode opcode) =>
        ns.Reservations.Allows(controller.HostId, ModifiesNamespace(opcode)) ? NvmeStatus.Success : NamespaceReservations.ReservationConflictStatus;

    private ValueTask HandleReservationAsync(Controller controller, SubmissionQueueEntry sqe, TargetNamespace ns, ReadOnlySequence<byte> data)
    {
        var opcode = (NvmOpcode)sqe.Opcode;
        if (opcode == NvmOpcode.ReservationReport)
        {
            return ReservationReportAsync(controller, sqe, ns, data);
        }

        int length = opcode == NvmOpcode.ReservationRelease ? ReservationCommands.KeySize : ReservationCommands.KeyPairSize;
        var sgl = sqe.DataPointer;
        if (sgl.Length != length)
        {
            return CompleteAsync(sqe.CommandId, NvmeStatus.Generic(GenericStatus.DataSglLengthInvalid, true));
        }

        if (sgl.IsInCapsule)
        {
            if (sgl.Address != 0)
            {
                return CompleteAsync(sqe.CommandId, NvmeStatus.Generic(GenericStatus.SglOffsetInvalid, true));
            }

            if (data.Length != length)
            {
                return CompleteAsync(sqe.CommandId, NvmeStatus.Generic(GenericStatus.DataSglLengthInvalid, true));
            }

            Span<byte> keys = stackalloc byte[ReservationCommands.KeyPairSize];
            keys.Clear();
            data.CopyTo(keys);
            return CompleteAsync(sqe.CommandId, ExecuteReservation(controller, sqe, ns, keys));
        }

        if (!sgl.IsTransport || data.Length > 0)
        {
            return CompleteAsync(sqe.CommandId, NvmeStatus.Generic(GenericStatus.SglDescriptorTypeInvalid, true));
        }

        return StartTransferAsync(new Transfer(sqe.CommandId, TransferKind.Reservation, ns, 0, length, sqe) { Controller = controller });
    }

    /// <summary>Runs Register, Acquire or Release with its key data (<paramref name="keys"/>, 16 bytes, zero-padded).</summary>
    private NvmeStatus ExecuteReservation(Controller controller, in SubmissionQueueEntry sqe, TargetNamespace ns, ReadOnlySpan<byte> keys)
    {
        var (currentKey, otherKey) = ReservationCommands.ReadKeys(keys);
        byte action = ReservationCommands.Action(sqe);
        var reservations = ns.Reservations;
        NvmeStatus status;
        switch ((NvmOpcode)sqe.Opcode)
        {
            case NvmOpcode.ReservationRegister:
                status = reservations.Register(controller.HostId, action, ReservationCommands.IgnoreExistingKey(sqe), ReservationCommands.PersistChange(sqe), currentKey, otherKey);
                break;
            case NvmOpcode.ReservationAcquire:
                status = reservations.Acquire(controller.HostId, action, ReservationCommands.Type(sqe), currentKey, otherKey, out var preempted);
                if (status.IsSuccess && action == (byte)ReservationAcquireAction.PreemptAndAbort && preempted.Count > 0)
                {
                    AbortCommandsOf(controller.Subsystem, preempted);
                }

                break;
            default:
                status = reservations.Release(controller.HostId, action, ReservationCommands.Type(sqe), currentKey);
                break;
        }

        _target.Log.Reservation(controller.HostNqn, controller.HostId, ns.NamespaceId, ((NvmOpcode)sqe.Opcode).ToString(), action, status.ToString(CommandSet.Nvm));
        return status;
    }

    /// <summary>
    /// Preempt and abort: commands of the preempted hosts still waiting to execute never do. (Writes whose data
    /// is still arriving are checked against the reservation when it has arrived, and refused then.)
    /// </summary>
    private void AbortCommandsOf(SubsystemBase subsystem, IReadOnlyList<Guid> hosts)
    {
        foreach (var preemptedController in subsystem.Controllers().Where(c => hosts.Contains(c.HostId)))
        {
            foreach (var queue in preemptedController.IoQueues())
            {
                queue.AbortWaitingCommands(NvmeStatus.Generic(GenericStatus.AbortedPreemptAndAbort));
            }
        }
    }

    /// <summary>Every command of this queue still waiting to execute completes with <paramref name="status"/> instead (from any thread).</summary>
    internal int AbortWaitingCommands(NvmeStatus status)
    {
        int aborted = 0;
        foreach (var (commandId, waiting) in _delayedCommands.ToArray())
        {
            if (!_delayedCommands.TryRemove(KeyValuePair.Create(commandId, waiting)))
            {
                continue; // it executed meanwhile
            }

            _target.Faults.DelayedExecutionEnded(write: waiting.Write, executed: false, stale: false);
            _target.Faults.CountAbortedCommand();
            aborted++;
            _ = SendLaterAsync(() => WriteResponseAsync(commandId, status, 0, 0, false, flush: true));
        }

        return aborted;
    }

    private ValueTask ReservationReportAsync(Controller controller, SubmissionQueueEntry sqe, TargetNamespace ns, ReadOnlySequence<byte> data)
    {
        long length = ReservationCommands.ReportLength(sqe);
        if (data.Length > 0 || length > MaxReservationReportLength)
        {
            return CompleteAsync(sqe.CommandId, NvmeStatus.Generic(GenericStatus.InvalidField, true));
        }

        bool extended = ReservationCommands.ReportExtended(sqe);
        if (!extended)
        {
            // Fabrics hosts are known by 128-bit identifiers, which the basic structure cannot carry.
            return CompleteAsync(sqe.CommandId, NvmeStatus.Generic(GenericStatus.HostIdentifierInconsistentFormat, true));
        }

        var sgl = sqe.DataPointer;
        if (!sgl.IsTransport)
        {
            return CompleteAsync(sqe.CommandId, NvmeStatus.Generic(GenericStatus.SglDescriptorTypeInvalid, true));
        }

        if (sgl.Length < length)
        {
            return CompleteAsync(sqe.CommandId, NvmeStatus.Generic(GenericStatus.DataSglLengthInvalid, true));
        }

        var controllers = controller.Subsystem.Controllers();
        var status = ns.Reservations.Report(host => controllers.FirstOrDefault(c => c.HostId == host)?.Id ?? 0xFFFF);
        var buffer = ArrayPool<byte>.Shared.Rent((int)length);
        status.WriteTo(buffer.AsSpan(0, (int)length), extended);
        return SendDataAsync(sqe.CommandId, buffer, (int)length);
    }
}
