using System.Buffers;
using System.IO.Pipelines;
using System.Runtime.CompilerServices;
using ActorNvme.Protocol.Tcp;

namespace ActorNvme.Transport;

public abstract partial class QueuePair
{
    /// <summary>Flush at least this often while draining a long queue, so one pass does not buffer unboundedly.</summary>
    private const int FlushThreshold = 256 * 1024;

    private int _writerBusy;
    private long _capsulesWritten; // command capsules put in the output (the writer-flag holder's count)
    private bool _outputFinished; // owned by the writer-flag holder
    private byte[]? _termReq;     // set before _closed; written once by the send path
    private int _dispatchThreadId; // the read loop's managed thread id while it parses, else 0
    private bool _sendOnSubmit;    // read loop only: the PDU being handled is the last one buffered

    /// <summary>
    /// Sends what is queued, unless the caller is the read loop in the middle of a parse pass: then
    /// the read loop sends everything in one flush after its pass.
    /// </summary>
    private void ScheduleSend()
    {
        if (_dispatchThreadId == Environment.CurrentManagedThreadId)
        {
            // Nothing else is buffered to batch with: send now, not after the pass has unwound
            // (at queue depth 1 that is a quarter of the host's turnaround).
            if (_sendOnSubmit)
            {
                _sendOnSubmit = false;
                RunWriter();
            }

            return;
        }

        RunWriter();
    }

    private bool HasPendingSends => !_sendQueue.IsEmpty || (Volatile.Read(ref _closed) != 0 && !Volatile.Read(ref _outputFinished));

    /// <summary>
    /// Becomes the writer if nobody is, drains the send queue into the output and flushes once.
    /// A thread that finds the flag taken leaves: the holder looks at the queue again after
    /// releasing it (the release and the check are both full fences, so no PDU is left behind).
    /// </summary>
    private void RunWriter()
    {
        while (Interlocked.CompareExchange(ref _writerBusy, 1, 0) == 0)
        {
            if (!WriteAndFlush())
            {
                return; // an asynchronous flush holds the flag and resumes later
            }

            Interlocked.Exchange(ref _writerBusy, 0);
            if (!HasPendingSends)
            {
                return;
            }
        }
    }

    /// <summary>Returns false when it handed the flag to an asynchronous continuation.</summary>
    private bool WriteAndFlush()
    {
        try
        {
            while (true)
            {
                if (Volatile.Read(ref _closed) != 0)
                {
                    return FinishOutput();
                }

                if (WriteQueued() == 0)
                {
                    return true;
                }

                var flush = _output.FlushAsync();
                if (!flush.IsCompletedSuccessfully)
                {
                    _ = AwaitFlushAsync(flush);
                    return false;
                }

                // IsCompleted / IsCanceled mean the connection is ending; the read loop reports why.
                if (flush.Result.IsCompleted || flush.Result.IsCanceled || _sendQueue.IsEmpty)
                {
                    return true;
                }
            }
        }
        catch (Exception e)
        {
            Close(new ConnectionClosed(CloseReason.SocketError, $"sending to {RemoteAddress} failed: {e.Message}", e));
            return true;
        }
    }

    private async Task AwaitFlushAsync(ValueTask<FlushResult> flush)
    {
        try
        {
            await flush.ConfigureAwait(false);
        }
        catch (Exception e)
        {
            Close(new ConnectionClosed(CloseReason.SocketError, $"sending to {RemoteAddress} failed: {e.Message}", e));
        }

        Interlocked.Exchange(ref _writerBusy, 0);
        if (HasPendingSends)
        {
            RunWriter();
        }
    }

    /// <summary>Writes queued PDUs until the queue is empty or a flush is due; returns the bytes written.</summary>
    private int WriteQueued()
    {
        int written = 0;
        while (written < FlushThreshold && _sendQueue.TryDequeue(out var item))
        {
            try
            {
                if (Volatile.Read(ref _closed) == 0 && Volatile.Read(ref item.Slot.State) == CommandSlot.Outstanding)
                {
                    written += item.IsCapsule ? WriteCapsule(item.Slot) : WriteData(item);
                }
            }
            finally
            {
                // The caller's buffer has been copied (or is no longer needed).
                DropReference(item.Slot);
            }
        }

        return written;
    }

    private int WriteCapsule(CommandSlot slot)
    {
        Volatile.Write(ref _capsulesWritten, _capsulesWritten + 1); // only the writer-flag holder writes it
        int dataLength = slot.InCapsule ? slot.TransferLength : 0;
        int length = PduWriter.PduLength(PduSizes.CapsuleCmdHeader, dataLength, _digests, _dataAlignment);
        var span = _output.GetSpan(length);
        PduWriter.WriteCapsuleCommand(span, slot.Command, slot.InCapsule ? slot.Outgoing.Span : default, _digests, _dataAlignment);
        _output.Advance(length);
        return length;
    }

    /// <summary>Answers one R2T: its range of the caller's buffer as H2CData PDUs of at most MAXH2CDATA bytes each.</summary>
    private int WriteData(in SendItem item)
    {
        bool headerDigest = (_digests & DigestOptions.Header) != 0;
        bool dataDigest = (_digests & DigestOptions.Data) != 0;
        int prefixLength = PduWriter.DataOffset(PduSizes.DataHeader, headerDigest, _dataAlignment);
        var source = item.Slot.Outgoing.Span;
        uint offset = item.Offset;
        uint end = item.Offset + item.Length;
        int written = 0;
        while (offset < end)
        {
            uint chunk = Math.Min(end - offset, _maxH2CData);
            bool last = offset + chunk == end;
            var header = new DataPduHeader(item.Slot.CommandId, item.TransferTag, offset, chunk);
            var prefix = _output.GetSpan(prefixLength);
            PduWriter.WriteDataPduPrefix(prefix, PduType.H2CData, header, _digests, last, success: false, _dataAlignment);
            _output.Advance(prefixLength);
            var data = source.Slice((int)offset, (int)chunk);
            _output.Write(data);
            if (dataDigest)
            {
                PduWriter.WriteDigest(_output.GetSpan(PduSizes.Digest), data);
                _output.Advance(PduSizes.Digest);
            }

            written += prefixLength + (int)chunk + (dataDigest ? PduSizes.Digest : 0);
            offset += chunk;
        }

        return written;
    }

    /// <summary>
    /// After close: sends the H2CTermReq if one is due, ends the output, aborts the connection and
    /// releases everything still queued. Holds the writer flag.
    /// </summary>
    private bool FinishOutput()
    {
        if (!_outputFinished && _termReq is { } termReq)
        {
            // Attempted once: a connection too broken to take it is closed all the same.
            _termReq = null;
            try
            {
                _output.Write(termReq);
                var flush = _output.FlushAsync();
                if (!flush.IsCompletedSuccessfully)
                {
                    _ = FinishOutputAfterAsync(flush);
                    return false;
                }
            }
            catch (Exception)
            {
                // The close reason recorded already says why the connection ends.
            }
        }

        EndOutput();
        return true;
    }

    private async Task FinishOutputAfterAsync(ValueTask<FlushResult> flush)
    {
        try
        {
            await flush.ConfigureAwait(false);
        }
        catch (Exception)
        {
            // The connection is already closing for a better reason than this one.
        }

        EndOutput();
        Interlocked.Exchange(ref _writerBusy, 0);
        if (HasPendingSends)
        {
            RunWriter();
        }
    }

    private void EndOutput()
    {
        if (!_outputFinished)
        {
            Volatile.Write(ref _outputFinished, true);
            try
            {
                _output.Complete();
            }
            catch (InvalidOperationException)
            {
                // Already completed by the transport.
            }

            _connection.Abort(_closeReason!);
        }

        while (_sendQueue.TryDequeue(out var item))
        {
            DropReference(item.Slot);
        }
    }
}
