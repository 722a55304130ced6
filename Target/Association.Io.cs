using ActorNvme.Protocol.Data;
using System.Buffers;
using ActorNvme.Protocol.Nvme;
using ActorNvme.Protocol.Tcp;

namespace ActorNvme.Target;

// NVM I/O commands, and the R2T/H2CData exchange that brings write data the capsule did not carry.
internal sealed partial class Association
{
    private const int DsmRangeSize = 16;

    private readonly Dictionary<ushort, Transfer> _transfers = [];
    private readonly Queue<Transfer> _waitingTransfers = new();
    private long _dataInFlight;
    private ushort _nextTransferTag;

    private enum TransferKind : byte
    {
        Write,
        DatasetManagement,
        Reservation,
    }

    private ValueTask HandleIoAsync(Controller controller, SubmissionQueueEntry sqe, ReadOnlySequence<byte> data)
    {
        var nvm = controller.Nvm!;
        var opcode = (NvmOpcode)sqe.Opcode;
        if (opcode is not (NvmOpcode.Read or NvmOpcode.Write or NvmOpcode.Flush or NvmOpcode.WriteZeroes or NvmOpcode.DatasetManagement) && !IsReservationCommand(opcode))
        {
            return CompleteAsync(sqe.CommandId, NvmeStatus.Generic(GenericStatus.InvalidOpcode, true));
        }

        if (opcode == NvmOpcode.Flush && sqe.NamespaceId == 0xFFFFFFFF)
        {
            return CompleteAsync(sqe.CommandId, NvmeStatus.Success);
        }

        if (!nvm.NamespaceMap.TryGetValue(sqe.NamespaceId, out var ns))
        {
            return CompleteAsync(sqe.CommandId, NvmeStatus.Generic(GenericStatus.InvalidNamespaceOrFormat, true));
        }

        var path = PathStatus(nvm, ns);
        if (!path.IsSuccess)
        {
            return CompleteAsync(sqe.CommandId, path);
        }

        if (IsReservationCommand(opcode))
        {
            return HandleReservationAsync(controller, sqe, ns, data);
        }

        var reservation = ReservationStatusFor(controller, ns, opcode);
        if (!reservation.IsSuccess)
        {
            return CompleteAsync(sqe.CommandId, reservation);
        }

        controller.NoteIo(ns, opcode is NvmOpcode.Write or NvmOpcode.WriteZeroes);

        switch (opcode)
        {
            case NvmOpcode.Flush:
                return CompleteAsync(sqe.CommandId, NvmeStatus.Success);
            case NvmOpcode.DatasetManagement:
                return DatasetManagementAsync(controller, sqe, ns, data);
        }

        ulong startLba = NvmCommands.StartLba(sqe);
        int blocks = NvmCommands.BlockCount(sqe);
        if (startLba >= (ulong)ns.BlockCount || (ulong)blocks > (ulong)ns.BlockCount - startLba)
        {
            return CompleteAsync(sqe.CommandId, NvmeStatus.Generic(GenericStatus.LbaOutOfRange, true));
        }

        long offset = (long)startLba << ns.BlockSizeShift;
        long length = (long)blocks << ns.BlockSizeShift;
        if (opcode == NvmOpcode.WriteZeroes)
        {
            if (data.Length > 0)
            {
                return CompleteAsync(sqe.CommandId, NvmeStatus.Generic(GenericStatus.InvalidField, true));
            }

            ns.Zero(offset, length);
            return CompleteAsync(sqe.CommandId, NvmeStatus.Success);
        }

        if (length > _options.MaxDataTransferSize)
        {
            return CompleteAsync(sqe.CommandId, NvmeStatus.Generic(GenericStatus.InvalidField, true));
        }

        var sgl = sqe.DataPointer;
        if (opcode == NvmOpcode.Read)
        {
            if (!sgl.IsTransport || data.Length > 0)
            {
                return CompleteAsync(sqe.CommandId, NvmeStatus.Generic(GenericStatus.SglDescriptorTypeInvalid, true));
            }

            if (sgl.Length != length)
            {
                return CompleteAsync(sqe.CommandId, NvmeStatus.Generic(GenericStatus.DataSglLengthInvalid, true));
            }

            var readDelay = _target.Faults.ExecutionDelay(Listener);
            if (readDelay > TimeSpan.Zero)
            {
                ExecuteReadLater(controller, readDelay, sqe.CommandId, ns, offset, (int)length);
                return ValueTask.CompletedTask;
            }

            return SendReadAsync(sqe.CommandId, ns, offset, (int)length);
        }

        // Write
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

            if (length > _options.InCapsuleDataSize || data.Length != length)
            {
                return CompleteAsync(sqe.CommandId, NvmeStatus.Generic(GenericStatus.DataSglLengthInvalid, true));
            }

            var writeDelay = _target.Faults.ExecutionDelay(Listener);
            if (writeDelay > TimeSpan.Zero)
            {
                ExecuteWriteLater(controller, writeDelay, sqe.CommandId, ns, offset, data.ToArray());
                return ValueTask.CompletedTask;
            }

            WriteFromSequence(ns, offset, data);
            return CompleteAsync(sqe.CommandId, NvmeStatus.Success);
        }

        if (!sgl.IsTransport || data.Length > 0)
        {
            return CompleteAsync(sqe.CommandId, NvmeStatus.Generic(GenericStatus.SglDescriptorTypeInvalid, true));
        }

        return StartTransferAsync(new Transfer(sqe.CommandId, TransferKind.Write, ns, offset, (int)length, sqe) { Controller = controller });
    }

    private ValueTask DatasetManagementAsync(Controller controller, SubmissionQueueEntry sqe, TargetNamespace ns, ReadOnlySequence<byte> data)
    {
        int length = NvmCommands.RangeCount(sqe) * DsmRangeSize;
        var sgl = sqe.DataPointer;
        if (sgl.Length != length)
        {
            return CompleteAsync(sqe.CommandId, NvmeStatus.Generic(GenericStatus.DataSglLengthInvalid, true));
        }

        if (sgl.IsInCapsule)
        {
            if (data.Length != length)
            {
                return CompleteAsync(sqe.CommandId, NvmeStatus.Generic(GenericStatus.DataSglLengthInvalid, true));
            }

            var ranges = ArrayPool<byte>.Shared.Rent(length);
            try
            {
                data.CopyTo(ranges);
                return CompleteAsync(sqe.CommandId, Deallocate(sqe, ns, ranges.AsSpan(0, length)));
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(ranges);
            }
        }

        if (!sgl.IsTransport || data.Length > 0)
        {
            return CompleteAsync(sqe.CommandId, NvmeStatus.Generic(GenericStatus.SglDescriptorTypeInvalid, true));
        }

        return StartTransferAsync(new Transfer(sqe.CommandId, TransferKind.DatasetManagement, ns, 0, length, sqe) { Controller = controller });
    }

    private static NvmeStatus Deallocate(in SubmissionQueueEntry sqe, TargetNamespace ns, ReadOnlySpan<byte> ranges)
    {
        if (!NvmCommands.DeallocateAttribute(sqe))
        {
            return NvmeStatus.Success; // integral read/write hints: nothing to do
        }

        for (int i = 0; i < ranges.Length; i += DsmRangeSize)
        {
            var (start, count, _) = NvmCommands.ReadRange(ranges[i..]);
            if (start > (ulong)ns.BlockCount || count > (ulong)ns.BlockCount - start)
            {
                return NvmeStatus.Generic(GenericStatus.LbaOutOfRange, true);
            }
        }

        for (int i = 0; i < ranges.Length; i += DsmRangeSize)
        {
            var (start, count, _) = NvmCommands.ReadRange(ranges[i..]);
            ns.Zero((long)start << ns.BlockSizeShift, (long)count << ns.BlockSizeShift);
        }

        return NvmeStatus.Success;
    }

    private NvmeStatus PathStatus(NvmSubsystem nvm, TargetNamespace ns) => nvm.GetAnaState(ns.AnaGroupId, Listener) switch
    {
        AnaState.Inaccessible => NvmeStatus.Create(StatusCodeType.PathRelated, (byte)Protocol.Nvme.PathStatus.AsymmetricAccessInaccessible),
        AnaState.PersistentLoss => NvmeStatus.Create(StatusCodeType.PathRelated, (byte)Protocol.Nvme.PathStatus.AsymmetricAccessPersistentLoss),
        AnaState.Change => NvmeStatus.Create(StatusCodeType.PathRelated, (byte)Protocol.Nvme.PathStatus.AsymmetricAccessTransition),
        _ => NvmeStatus.Success,
    };

    /// <summary>
    /// The Abort command for <paramref name="commandId"/> of this queue: a command still waiting to execute
    /// (a slow backend) never executes and completes with Command Abort Requested. False when it is not
    /// waiting (done already, or never seen): the Abort then reports "not aborted".
    /// </summary>
    internal bool TryAbortWaitingCommand(ushort commandId)
    {
        if (!_delayedCommands.TryRemove(commandId, out var waiting))
        {
            return false;
        }

        _target.Faults.DelayedExecutionEnded(write: waiting.Write, executed: false, stale: false);
        _target.Faults.CountAbortedCommand();
        // Sent from the admin queue's loop, not this queue's: it flushes itself.
        _ = SendLaterAsync(() => WriteResponseAsync(commandId, NvmeStatus.Generic(GenericStatus.AbortRequested), 0, 0, false, flush: true));
        return true;
    }

    /// <summary>A slow backend (fault injection): the read runs later, unless the controller is gone by then.</summary>
    private void ExecuteReadLater(Controller controller, TimeSpan delay, ushort commandId, TargetNamespace ns, long offset, int length)
    {
        var faults = _target.Faults;
        faults.DelayedExecutionStarted(write: false);
        var waiting = new WaitingCommand(Interlocked.Increment(ref _waitingCommandSequence), Write: false);
        _delayedCommands[commandId] = waiting;
        _ = Task.Run(async () =>
        {
            await Task.Delay(delay).ConfigureAwait(false);
            if (!_delayedCommands.TryRemove(KeyValuePair.Create(commandId, waiting)))
            {
                return; // aborted meanwhile (the abort counted it)
            }

            bool executed = !controller.IsTornDown;
            faults.DelayedExecutionEnded(write: false, executed, stale: false);
            if (executed)
            {
                var copy = ArrayPool<byte>.Shared.Rent(length);
                ns.Read(offset, copy.AsSpan(0, length));
                await SendLaterAsync(() => WriteDataAsync(commandId, copy, length, flush: true)).ConfigureAwait(false);
            }
        });
    }

    /// <summary>
    /// A slow backend (fault injection): the write lands later — even after its controller was torn down,
    /// as long as that was no longer than the quiesce time (CQT) ago: the stale copy hosts must wait out.
    /// </summary>
    private void ExecuteWriteLater(Controller controller, TimeSpan delay, ushort commandId, TargetNamespace ns, long offset, byte[] data)
    {
        var faults = _target.Faults;
        long quiesceMs = (long)_options.CommandQuiesceTime.TotalMilliseconds;
        faults.DelayedExecutionStarted(write: true);
        var waiting = new WaitingCommand(Interlocked.Increment(ref _waitingCommandSequence), Write: true);
        _delayedCommands[commandId] = waiting;
        _ = Task.Run(async () =>
        {
            await Task.Delay(delay).ConfigureAwait(false);
            if (!_delayedCommands.TryRemove(KeyValuePair.Create(commandId, waiting)))
            {
                return; // aborted meanwhile (the abort counted it)
            }

            long tornDownAt = controller.TornDownAt;
            bool executed = tornDownAt == 0 || Environment.TickCount64 - tornDownAt <= quiesceMs;
            if (executed && !ns.Reservations.Allows(controller.HostId, write: true))
            {
                // Preempted while it waited (and not aborted): a fenced host's write never lands.
                faults.DelayedExecutionEnded(write: true, executed: false, stale: false);
                if (tornDownAt == 0)
                {
                    await SendLaterAsync(() => WriteResponseAsync(commandId, NamespaceReservations.ReservationConflictStatus, 0, 0, false, flush: true)).ConfigureAwait(false);
                }

                return;
            }

            if (executed)
            {
                ns.Write(offset, data);
            }

            faults.DelayedExecutionEnded(write: true, executed, stale: executed && tornDownAt != 0);
            if (executed && tornDownAt == 0)
            {
                await SendLaterAsync(() => WriteResponseAsync(commandId, NvmeStatus.Success, 0, 0, false, flush: true)).ConfigureAwait(false);
            }
        });
    }

    private static async Task SendLaterAsync(Func<ValueTask> send)
    {
        try
        {
            await send().ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is OperationCanceledException or InvalidOperationException or IOException or ObjectDisposedException)
        {
        }
    }

    private static void WriteFromSequence(TargetNamespace ns, long offset, ReadOnlySequence<byte> data)
    {
        foreach (var segment in data)
        {
            ns.Write(offset, segment.Span);
            offset += segment.Length;
        }
    }

    /// <summary>Solicits the data of a write with R2T, or queues it while the connection's data in flight is at its bound.</summary>
    private ValueTask StartTransferAsync(Transfer transfer)
    {
        if (_transfers.Count > 0 && _dataInFlight + transfer.Length > _options.MaxDataInFlightPerConnection)
        {
            _waitingTransfers.Enqueue(transfer);
            return ValueTask.CompletedTask;
        }

        do
        {
            _nextTransferTag++;
        }
        while (_transfers.ContainsKey(_nextTransferTag));

        transfer.Tag = _nextTransferTag;
        if (transfer.Kind != TransferKind.Write || transfer.Namespace.Backend != NamespaceBackend.Null)
        {
            transfer.Buffer = ArrayPool<byte>.Shared.Rent(transfer.Length);
        }

        _transfers.Add(transfer.Tag, transfer);
        _dataInFlight += transfer.Length;
        transfer.WindowEnd = Math.Min(transfer.Length, _options.MaxH2CData);
        return WriteR2TAsync(transfer.CommandId, transfer.Tag, 0, transfer.WindowEnd);
    }

    private async ValueTask<bool> HandleH2CDataAsync(PduFrame frame)
    {
        var header = DataPduHeader.Read(_header);
        if (!_transfers.TryGetValue(header.TransferTag, out var transfer))
        {
            return await SendTermReqAsync(TermReqError.InvalidHeaderField, 10, PduSizes.DataHeader, $"H2CData for unknown TTAG {header.TransferTag}").ConfigureAwait(false);
        }

        if (transfer.CommandId != header.CommandId)
        {
            return await SendTermReqAsync(TermReqError.InvalidHeaderField, 8, PduSizes.DataHeader, $"H2CData CCCID {header.CommandId} does not match TTAG {header.TransferTag}").ConfigureAwait(false);
        }

        if (header.DataLength != frame.Data.Length)
        {
            return await SendTermReqAsync(TermReqError.InvalidHeaderField, 16, PduSizes.DataHeader, $"H2CData DATAL {header.DataLength} does not match the PDU's {frame.Data.Length} bytes").ConfigureAwait(false);
        }

        if (header.DataOffset != transfer.Received)
        {
            return await SendTermReqAsync(TermReqError.InvalidHeaderField, 12, PduSizes.DataHeader, $"H2CData DATAO {header.DataOffset}, expected {transfer.Received}").ConfigureAwait(false);
        }

        if (transfer.Received + (long)header.DataLength > transfer.WindowEnd)
        {
            return await SendTermReqAsync(TermReqError.DataTransferOutOfRange, 0, PduSizes.DataHeader, $"H2CData beyond the R2T window ending at {transfer.WindowEnd}").ConfigureAwait(false);
        }

        if (transfer.Buffer is not null)
        {
            frame.Data.CopyTo(transfer.Buffer.AsSpan(transfer.Received));
        }

        if (!frame.DataDigestValid)
        {
            transfer.DigestError = true;
        }

        transfer.Received += (int)header.DataLength;
        if (transfer.Received < transfer.WindowEnd)
        {
            return true;
        }

        if (transfer.Received < transfer.Length)
        {
            transfer.WindowEnd = Math.Min(transfer.Length, transfer.Received + _options.MaxH2CData);
            await WriteR2TAsync(transfer.CommandId, transfer.Tag, transfer.Received, transfer.WindowEnd - transfer.Received).ConfigureAwait(false);
            return true;
        }

        await FinishTransferAsync(transfer).ConfigureAwait(false);
        return true;
    }

    private async ValueTask FinishTransferAsync(Transfer transfer)
    {
        _transfers.Remove(transfer.Tag);
        _dataInFlight -= transfer.Length;
        NvmeStatus status;
        if (transfer.DigestError)
        {
            status = NvmeStatus.Generic(GenericStatus.TransientTransportError);
        }
        else if (transfer.Kind == TransferKind.Reservation)
        {
            var keys = new byte[ReservationCommands.KeyPairSize];
            transfer.Buffer.AsSpan(0, transfer.Length).CopyTo(keys);
            status = ExecuteReservation(transfer.Controller!, transfer.Command, transfer.Namespace, keys);
        }
        else if (transfer.Controller is { } writer && !(status = ReservationStatusFor(writer, transfer.Namespace, (NvmOpcode)transfer.Command.Opcode)).IsSuccess)
        {
            // Preempted while its data was arriving: the data is dropped.
        }
        else if (transfer.Kind == TransferKind.Write)
        {
            if (transfer.Buffer is not null)
            {
                transfer.Namespace.Write(transfer.Offset, transfer.Buffer.AsSpan(0, transfer.Length));
            }

            status = NvmeStatus.Success;
        }
        else
        {
            status = Deallocate(transfer.Command, transfer.Namespace, transfer.Buffer.AsSpan(0, transfer.Length));
        }

        if (transfer.Buffer is not null)
        {
            ArrayPool<byte>.Shared.Return(transfer.Buffer);
            transfer.Buffer = null;
        }

        await CompleteAsync(transfer.CommandId, status).ConfigureAwait(false);
        while (_waitingTransfers.Count > 0 && (_transfers.Count == 0 || _dataInFlight + _waitingTransfers.Peek().Length <= _options.MaxDataInFlightPerConnection))
        {
            await StartTransferAsync(_waitingTransfers.Dequeue()).ConfigureAwait(false);
        }
    }

    private void ReleaseTransfers()
    {
        foreach (var transfer in _transfers.Values)
        {
            if (transfer.Buffer is not null)
            {
                ArrayPool<byte>.Shared.Return(transfer.Buffer);
                transfer.Buffer = null;
            }
        }

        _transfers.Clear();
        _waitingTransfers.Clear();
    }

    private sealed class Transfer(ushort commandId, TransferKind kind, TargetNamespace ns, long offset, int length, SubmissionQueueEntry command)
    {
        public ushort CommandId { get; } = commandId;

        public TransferKind Kind { get; } = kind;

        public TargetNamespace Namespace { get; } = ns;

        public long Offset { get; } = offset;

        public int Length { get; } = length;

        public SubmissionQueueEntry Command { get; } = command;

        /// <summary>Whose command it is: the reservation is checked again when the data has arrived.</summary>
        public Controller? Controller { get; init; }

        public ushort Tag { get; set; }

        public byte[]? Buffer { get; set; }

        public int Received { get; set; }

        public int WindowEnd { get; set; }

        public bool DigestError { get; set; }
    }
}
