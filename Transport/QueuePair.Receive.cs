using System.Buffers;
using System.IO.Pipelines;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using ActorNvme.Protocol.Nvme;
using ActorNvme.Protocol.Tcp;

namespace ActorNvme.Transport;

public abstract partial class QueuePair
{
    // Field offsets reported as FEI when the host terminates the connection.
    private const uint FlagsFieldOffset = 1;
    private const uint DataCommandIdFieldOffset = 8;
    private const uint DataLengthFieldOffset = 16;
    private const uint ResponseCommandIdFieldOffset = CommonHeader.Size + 12;

    private PduFramerOptions _framerOptions;

    /// <summary>What a read whose data did not all arrive completes with (retryable: another attempt may get it all).</summary>
    private static NvmeStatus ShortTransferStatus => NvmeStatus.Generic(GenericStatus.DataTransferError);

    /// <summary>
    /// The only reader of the connection. Parses every PDU already buffered before it reads again,
    /// then sends what those PDUs made ready in one flush.
    /// </summary>
    private async Task ReadLoopAsync()
    {
        try
        {
            while (true)
            {
                var result = await _input.ReadAsync().ConfigureAwait(false);
                if (result.IsCanceled)
                {
                    // Only an abort cancels a read; the connection knows why (its peer may have aborted).
                    var connectionClosed = _connection.Closed;
                    Close(connectionClosed.IsCompletedSuccessfully ? connectionClosed.Result : new ConnectionClosed(CloseReason.LocalShutdown, "receive canceled"));
                    break;
                }

                var buffer = result.Buffer;
                bool keepReading;
                _dispatchThreadId = Environment.CurrentManagedThreadId;
                try
                {
                    keepReading = ParseBuffered(ref buffer);
                }
                finally
                {
                    _dispatchThreadId = 0;
                }

                _input.AdvanceTo(buffer.Start, buffer.End);
                if (!_sendQueue.IsEmpty)
                {
                    RunWriter();
                }

                if (!keepReading)
                {
                    break;
                }

                if (result.IsCompleted)
                {
                    Close(new ConnectionClosed(
                        CloseReason.PeerClosed,
                        buffer.IsEmpty ? $"{RemoteAddress} closed the connection" : $"{RemoteAddress} closed the connection in the middle of a PDU ({buffer.Length} bytes left)"));
                    break;
                }
            }
        }
        catch (Exception e)
        {
            Close(DescribeReceiveFailure(e));
        }
        finally
        {
            try
            {
                await _input.CompleteAsync().ConfigureAwait(false);
            }
            catch (InvalidOperationException)
            {
                // Completed by the transport already.
            }

            FailOutstandingCommands();
        }
    }

    private ConnectionClosed DescribeReceiveFailure(Exception e)
    {
        var socketError = e as SocketException ?? e.InnerException as SocketException;
        if (socketError?.SocketErrorCode is SocketError.ConnectionReset or SocketError.ConnectionAborted)
        {
            return new ConnectionClosed(CloseReason.ConnectionReset, $"{RemoteAddress} reset the connection", e);
        }

        if (socketError is not null || e is IOException or ObjectDisposedException)
        {
            return new ConnectionClosed(CloseReason.SocketError, $"receiving from {RemoteAddress} failed: {e.Message}", e);
        }

        return new ConnectionClosed(CloseReason.InternalError, $"the read loop of queue {QueueId} failed: {e.Message}", e);
    }

    /// <summary>Handles every complete PDU in <paramref name="buffer"/>; false when the connection must end.</summary>
    private bool ParseBuffered(ref ReadOnlySequence<byte> buffer)
    {
        int every = Options.SendEveryCompletions;
        long flushAt = every > 0 ? _completionsReceived + every : long.MaxValue;
        while (true)
        {
            if (_completionsReceived >= flushAt)
            {
                flushAt = _completionsReceived + every;

                // Only while the target is short of work (fewer than 4N commands sent and unanswered): a deep
                // queue keeps it busy anyway, and there an early send only costs a system call.
                if (!_sendQueue.IsEmpty && Volatile.Read(ref _capsulesWritten) - _completionsReceived < 4L * every)
                {
                    RunWriter();
                }
            }

            switch (PduFramer.TryParse(buffer, _framerOptions, out var frame, out var fault))
            {
                case FrameStatus.NeedMoreData:
                    return true;
                case FrameStatus.Error:
                    RefuseMalformedPdu(buffer, fault);
                    return false;
            }

            _sendOnSubmit = frame.Length == buffer.Length;
            bool handled = Dispatch(frame);
            _sendOnSubmit = false;
            if (!handled)
            {
                return false;
            }

            buffer = buffer.Slice(frame.Length);
        }
    }

    private bool Dispatch(in PduFrame frame)
    {
        Span<byte> scratch = stackalloc byte[PduSizes.ICResp];
        var header = frame.GetHeader(scratch);
        if (!_initializedOnReadLoop)
        {
            return frame.Type == PduType.ICResp
                ? AcceptInitialization(header)
                : Violation(CloseReason.UnexpectedPdu, $"{frame.Type} arrived before ICResp", TermReqError.PduSequenceError, 0, header);
        }

        return frame.Type switch
        {
            PduType.CapsuleResp => OnCapsuleResponse(header),
            PduType.C2HData => OnData(header, frame),
            PduType.R2T => OnReadyToTransfer(header),
            PduType.C2HTermReq => OnControllerTermination(header),
            _ => Violation(CloseReason.UnexpectedPdu, $"{frame.Type} is not expected after connection initialization", TermReqError.PduSequenceError, 0, header),
        };
    }

    private bool OnCapsuleResponse(ReadOnlySpan<byte> header)
    {
        var completion = CompletionQueueEntry.Read(header[CommonHeader.Size..]);
        if (!TryGetOutstanding(completion.CommandId, out var slot))
        {
            return Violation(CloseReason.UnknownCommandId, $"CapsuleResp for CID {completion.CommandId}, which is not outstanding", TermReqError.InvalidHeaderField, ResponseCommandIdFieldOffset, header);
        }

        AnswerWithData(slot, completion);
        return true;
    }

    private bool OnData(ReadOnlySpan<byte> header, in PduFrame frame)
    {
        var data = DataPduHeader.Read(header);
        var flags = frame.Common.Flags;
        if (!TryGetOutstanding(data.CommandId, out var slot))
        {
            return Violation(CloseReason.UnknownCommandId, $"C2HData for CID {data.CommandId}, which is not outstanding", TermReqError.InvalidHeaderField, DataCommandIdFieldOffset, header);
        }

        if (data.DataLength != frame.Data.Length)
        {
            return Violation(CloseReason.MalformedPdu, $"C2HData for CID {data.CommandId} says DATAL {data.DataLength} but carries {frame.Data.Length} bytes", TermReqError.InvalidHeaderField, DataLengthFieldOffset, header);
        }

        bool success = (flags & PduFlags.Success) != 0;
        bool last = (flags & PduFlags.LastPdu) != 0;
        if (success && !last)
        {
            return Violation(CloseReason.SuccessWithoutLastPdu, $"C2HData for CID {data.CommandId} has SUCCESS without LAST_PDU", TermReqError.InvalidHeaderField, FlagsFieldOffset, header);
        }

        if (slot.Direction != DataDirection.ControllerToHost)
        {
            return Violation(CloseReason.DataOutOfRange, $"C2HData for CID {data.CommandId}, which reads no data", TermReqError.DataTransferOutOfRange, 0, header);
        }

        if (data.DataOffset != (uint)slot.BytesReceived)
        {
            Violation(CloseReason.DataOutOfRange, $"C2HData for CID {data.CommandId} at DATAO {data.DataOffset}, expected {slot.BytesReceived} (data arrives in order)", TermReqError.DataTransferOutOfRange, 0, header);
            return FailTransfer(slot);
        }

        if ((ulong)data.DataOffset + data.DataLength > (ulong)slot.TransferLength)
        {
            Violation(CloseReason.DataOutOfRange, $"C2HData for CID {data.CommandId} ends at byte {(ulong)data.DataOffset + data.DataLength}, beyond the command's {slot.TransferLength}-byte buffer", TermReqError.DataTransferOutOfRange, 0, header);
            return FailTransfer(slot);
        }

        frame.Data.CopyTo(slot.Incoming.Span[(int)data.DataOffset..]);
        slot.BytesReceived += (int)data.DataLength;
        if (!frame.DataDigestValid)
        {
            slot.DataDigestFailed = true;
        }

        if (success)
        {
            // The controller skips the CapsuleResp: this PDU is the successful completion.
            var completion = new CompletionQueueEntry(0, 0, 0, QueueId, slot.CommandId, NvmeStatus.Success);
            AnswerWithData(slot, completion);
        }

        return true;
    }

    /// <summary>
    /// Answers a command the controller completed. A read is a success only when every byte of its
    /// transfer arrived (in order, which <see cref="OnData"/> enforces): a success with fewer bytes
    /// fails that command with Data Transfer Error. The controller's other completion fields are kept.
    /// The connection stays up: the stream itself is still in step. Authentication Receive is the
    /// exception: AL is room for the message, and controllers send only the message (its own lengths are checked).
    /// </summary>
    private void AnswerWithData(CommandSlot slot, CompletionQueueEntry completion)
    {
        _completionsReceived++; // the read loop's own counter: only it answers from the wire
        if (slot.Direction == DataDirection.ControllerToHost && slot.BytesReceived != slot.TransferLength && completion.Status.IsSuccess && !IsAuthenticationReceive(slot.Command))
        {
            completion = completion with { Status = ShortTransferStatus };
        }

        Answer(slot, slot.DataDigestFailed ? CommandOutcome.DataDigestError : CommandOutcome.Completed, completion);
    }

    private static bool IsAuthenticationReceive(in SubmissionQueueEntry command) =>
        command.Opcode == FabricsCommands.Opcode && command.FabricsType == FabricsCommandType.AuthenticationReceive;

    /// <summary>
    /// The read whose data broke the rules fails with Data Transfer Error rather than as a lost path:
    /// its data went wrong, whatever happens to the connection. Called after <see cref="Violation"/>
    /// has closed the queue pair, so the owner cannot resubmit onto it. Always false.
    /// </summary>
    private bool FailTransfer(CommandSlot slot)
    {
        var completion = new CompletionQueueEntry(0, 0, 0, QueueId, slot.CommandId, ShortTransferStatus);
        Answer(slot, slot.DataDigestFailed ? CommandOutcome.DataDigestError : CommandOutcome.Completed, completion);
        return false;
    }

    private bool OnReadyToTransfer(ReadOnlySpan<byte> header)
    {
        var r2t = R2THeader.Read(header);
        if (!TryGetOutstanding(r2t.CommandId, out var slot))
        {
            return Violation(CloseReason.UnknownCommandId, $"R2T for CID {r2t.CommandId}, which is not outstanding", TermReqError.InvalidHeaderField, DataCommandIdFieldOffset, header);
        }

        if (slot.Direction != DataDirection.HostToController || slot.InCapsule)
        {
            return Violation(CloseReason.DataOutOfRange, $"R2T for CID {r2t.CommandId}, which has no data to send on request", TermReqError.DataTransferOutOfRange, 0, header);
        }

        if (r2t.Length == 0 || r2t.Offset != (uint)slot.BytesRequested || (ulong)r2t.Offset + r2t.Length > (ulong)slot.TransferLength)
        {
            return Violation(CloseReason.DataOutOfRange, $"R2T for CID {r2t.CommandId} asks for {r2t.Length} bytes at {r2t.Offset}; the command has {slot.TransferLength} bytes and {slot.BytesRequested} were requested already", TermReqError.DataTransferOutOfRange, 0, header);
        }

        slot.BytesRequested += (int)r2t.Length;

        // The queued H2CData holds the caller's buffer until it is copied out.
        Interlocked.Increment(ref slot.References);
        _sendQueue.Enqueue(SendItem.Data(slot, r2t));
        return true;
    }

    private bool OnControllerTermination(ReadOnlySpan<byte> header)
    {
        var termination = TermReq.Read(header);
        Close(new ConnectionClosed(CloseReason.PeerTerminated, $"{RemoteAddress} sent C2HTermReq: {termination.Status} (FEI 0x{termination.ErrorInformation:x})"));
        return false;
    }

    private bool TryGetOutstanding(ushort commandId, out CommandSlot slot)
    {
        if (commandId < _slots.Length)
        {
            slot = Volatile.Read(ref _slots[commandId])!;
            return slot is not null && Volatile.Read(ref slot.State) == CommandSlot.Outstanding;
        }

        slot = null!;
        return false;
    }

    private void RefuseMalformedPdu(in ReadOnlySequence<byte> buffer, in PduFault fault)
    {
        var reason = fault.Error switch
        {
            PduError.HeaderDigestMismatch => CloseReason.HeaderDigestError,
            PduError.PduLengthTooLarge => CloseReason.PduTooLarge,
            PduError.UnexpectedPduType => CloseReason.UnexpectedPdu,
            _ => CloseReason.MalformedPdu,
        };

        // The offending header as far as it arrived: HLEN bytes (bounded), at least the common header.
        Span<byte> common = stackalloc byte[CommonHeader.Size];
        buffer.Slice(0, CommonHeader.Size).CopyTo(common);
        int headerLength = Math.Max(CommonHeader.Size, (int)common[2]);
        int length = (int)Math.Min(buffer.Length, Math.Min(headerLength, PduSizes.MaxTermReqData));
        Span<byte> offending = stackalloc byte[PduSizes.MaxTermReqData];
        buffer.Slice(0, length).CopyTo(offending);
        uint fieldOffset = fault.TermReqStatus == TermReqError.InvalidHeaderField ? (uint)fault.FieldOffset : 0;
        Violation(reason, fault.Describe(), fault.TermReqStatus, fieldOffset, offending[..length]);
    }

    /// <summary>A fatal protocol error: queue an H2CTermReq carrying the offending header, then close. Always false.</summary>
    private bool Violation(CloseReason reason, string detail, TermReqError status, uint fieldOffset, ReadOnlySpan<byte> offendingHeader)
    {
        var offending = offendingHeader.Length > PduSizes.MaxTermReqData ? offendingHeader[..PduSizes.MaxTermReqData] : offendingHeader;
        var termReq = new byte[TermReq.HeaderSize + offending.Length];
        new TermReq(status, fieldOffset).WriteTo(termReq, PduType.H2CTermReq, offending);
        Close(new ConnectionClosed(reason, $"{RemoteAddress}: {detail}; sent H2CTermReq ({status})"), termReq);
        return false;
    }
}
