using System.Buffers;
using ActorNvme.Protocol;
using ActorNvme.Protocol.Nvme;
using ActorNvme.Protocol.Tcp;

namespace ActorNvme.Target;

// Everything the association writes: completions, C2HData, R2T. Each write takes the send lock and waits
// while the listener is blackholed. Writes from the read loop are flushed at the end of its batch; writes
// from elsewhere (AER completions, delayed completions) flush themselves.
internal sealed partial class Association
{
    /// <summary>Completes a command with a CapsuleResp (after the injected delay, if any).</summary>
    private ValueTask CompleteAsync(ushort commandId, NvmeStatus status, uint dw0 = 0, uint dw1 = 0, bool connectResponse = false)
    {
        var delay = _target.Faults.CompletionDelay(SubsystemNqn);
        if (delay > TimeSpan.Zero)
        {
            CompleteLater(delay, commandId, status, dw0, dw1, connectResponse);
            return ValueTask.CompletedTask;
        }

        return WriteResponseAsync(commandId, status, dw0, dw1, connectResponse, flush: false);
    }

    // The closures live in methods of their own: a lambda capturing the parameters of the method above
    // would allocate its closure on every call, delayed or not (measured: 40 bytes per I/O command).
    private void CompleteLater(TimeSpan delay, ushort commandId, NvmeStatus status, uint dw0, uint dw1, bool connectResponse) =>
        _ = DelayedAsync(delay, () => WriteResponseAsync(commandId, status, dw0, dw1, connectResponse, flush: true));

    private void SendDataLater(TimeSpan delay, ushort commandId, byte[] data, int length) =>
        _ = DelayedAsync(delay, () => WriteDataAsync(commandId, data, length, flush: true));

    /// <summary>Sends <paramref name="length"/> bytes of <paramref name="data"/> (a rented array, returned here) then completes.</summary>
    private ValueTask SendDataAsync(ushort commandId, byte[] data, int length)
    {
        var delay = _target.Faults.CompletionDelay(SubsystemNqn);
        if (delay > TimeSpan.Zero)
        {
            SendDataLater(delay, commandId, data, length);
            return ValueTask.CompletedTask;
        }

        return WriteDataAsync(commandId, data, length, flush: false);
    }

    /// <summary>Sends a read straight from the namespace into the output (no intermediate copy) then completes.</summary>
    private ValueTask SendReadAsync(ushort commandId, TargetNamespace ns, long offset, int length)
    {
        var delay = _target.Faults.CompletionDelay(SubsystemNqn);
        if (delay > TimeSpan.Zero)
        {
            var copy = ArrayPool<byte>.Shared.Rent(length);
            ns.Read(offset, copy.AsSpan(0, length));
            SendDataLater(delay, commandId, copy, length);
            return ValueTask.CompletedTask;
        }

        return WriteReadAsync(commandId, ns, offset, length);
    }

    /// <summary>Completes an AER from any thread.</summary>
    internal void CompleteAsyncEvent(ushort commandId, uint dw0) =>
        _ = DelayedAsync(TimeSpan.Zero, () => WriteResponseAsync(commandId, NvmeStatus.Success, dw0, 0, false, flush: true));

    private async Task DelayedAsync(TimeSpan delay, Func<ValueTask> send)
    {
        try
        {
            if (delay > TimeSpan.Zero)
            {
                await Task.Delay(delay, _stop.Token).ConfigureAwait(false);
            }

            await send().ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is OperationCanceledException or InvalidOperationException or IOException or ObjectDisposedException)
        {
        }
    }

    private async ValueTask<bool> AcquireSendAsync()
    {
        await _sendLock.WaitAsync(_stop.Token).ConfigureAwait(false);
        try
        {
            await Listener.Gate.WaitOpenAsync(_stop.Token).ConfigureAwait(false);
        }
        catch
        {
            _sendLock.Release();
            throw;
        }

        if (_writesClosed)
        {
            _sendLock.Release();
            return false;
        }

        return true;
    }

    private async ValueTask ReleaseSendAsync(bool flush)
    {
        try
        {
            if (flush)
            {
                await _output.FlushAsync(_stop.Token).ConfigureAwait(false);
            }
        }
        finally
        {
            _sendLock.Release();
        }
    }

    private async ValueTask WriteResponseAsync(ushort commandId, NvmeStatus status, uint dw0, uint dw1, bool connectResponse, bool flush)
    {
        if (!await AcquireSendAsync().ConfigureAwait(false))
        {
            return;
        }

        try
        {
            WriteResponse(commandId, status, dw0, dw1, connectResponse);
        }
        finally
        {
            await ReleaseSendAsync(flush).ConfigureAwait(false);
        }
    }

    private async ValueTask WriteDataAsync(ushort commandId, byte[] data, int length, bool flush)
    {
        try
        {
            if (!await AcquireSendAsync().ConfigureAwait(false))
            {
                return;
            }

            try
            {
                bool success = WriteC2HData(commandId, data.AsSpan(0, length), null, 0, length);
                if (!success)
                {
                    WriteResponse(commandId, NvmeStatus.Success, 0, 0, false);
                }
                else
                {
                    Interlocked.Decrement(ref _outstanding);
                }
            }
            finally
            {
                await ReleaseSendAsync(flush).ConfigureAwait(false);
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(data);
        }
    }

    private async ValueTask WriteReadAsync(ushort commandId, TargetNamespace ns, long offset, int length)
    {
        if (!await AcquireSendAsync().ConfigureAwait(false))
        {
            return;
        }

        try
        {
            bool success = WriteC2HData(commandId, default, ns, offset, length);
            if (!success)
            {
                WriteResponse(commandId, NvmeStatus.Success, 0, 0, false);
            }
            else
            {
                Interlocked.Decrement(ref _outstanding);
            }
        }
        finally
        {
            await ReleaseSendAsync(false).ConfigureAwait(false);
        }
    }

    private async ValueTask WriteR2TAsync(ushort commandId, ushort transferTag, int offset, int length)
    {
        if (!await AcquireSendAsync().ConfigureAwait(false))
        {
            return;
        }

        try
        {
            var span = _output.GetSpan(PduSizes.R2T + PduSizes.Digest);
            int n = PduWriter.WriteR2T(span, new R2THeader(commandId, transferTag, (uint)offset, (uint)length), _digests);
            _output.Advance(n);
        }
        finally
        {
            await ReleaseSendAsync(false).ConfigureAwait(false);
        }
    }

    // Under the send lock.
    private void WriteResponse(ushort commandId, NvmeStatus status, uint dw0, uint dw1, bool connectResponse)
    {
        // SQHD: with SQ flow control disabled, FFFFh in the Connect response and not maintained after (as nvmet).
        ushort sqHead = _sqFlowControlDisabled ? (connectResponse ? (ushort)0xFFFF : (ushort)0) : (ushort)_sqHead;
        var cqe = new CompletionQueueEntry(dw0, dw1, sqHead, _queueId, commandId, status);
        var span = _output.GetSpan(PduSizes.CapsuleResp + PduSizes.Digest);
        int n = PduWriter.WriteCapsuleResponse(span, cqe, _digests);
        _output.Advance(n);
        Interlocked.Decrement(ref _outstanding);
    }

    /// <summary>
    /// Writes the data of a command as C2HData PDUs of at most MaxC2HData bytes, from <paramref name="source"/> or from
    /// <paramref name="ns"/>. Returns true when the last PDU carried SUCCESS (SQ flow control disabled), so that no
    /// CapsuleResp follows. Under the send lock.
    /// </summary>
    private bool WriteC2HData(ushort commandId, ReadOnlySpan<byte> source, TargetNamespace? ns, long nsOffset, int length)
    {
        bool dataDigest = (_digests & DigestOptions.Data) != 0;
        bool success = _sqFlowControlDisabled;
        int sent = 0;
        Span<byte> digestBytes = stackalloc byte[PduSizes.Digest];
        do
        {
            int chunk = Math.Min(length - sent, _options.MaxC2HData);
            bool last = sent + chunk == length;
            var header = new DataPduHeader(commandId, 0, (uint)sent, (uint)chunk);
            var prefix = _output.GetSpan(PduSizes.DataHeader + PduSizes.Digest + 128);
            int prefixLength = PduWriter.WriteDataPduPrefix(prefix, PduType.C2HData, header, _digests, last, last && success, _hostAlignment);
            _output.Advance(prefixLength);

            uint crc = 0xFFFFFFFF;
            int written = 0;
            while (written < chunk)
            {
                var span = _output.GetSpan(1);
                int n = Math.Min(span.Length, chunk - written);
                var target = span[..n];
                if (ns is not null)
                {
                    ns.Read(nsOffset + sent + written, target);
                }
                else
                {
                    source.Slice(sent + written, n).CopyTo(target);
                }

                if (dataDigest)
                {
                    crc = Crc32C.Append(crc, target);
                }

                _output.Advance(n);
                written += n;
            }

            if (dataDigest)
            {
                uint digest = ~crc;
                if (_target.Faults.TakeDigestCorruption())
                {
                    digest ^= 0xA5A5A5A5;
                    _target.Log.DigestCorrupted(Remote, commandId);
                }

                System.Buffers.Binary.BinaryPrimitives.WriteUInt32LittleEndian(digestBytes, digest);
                _output.Write(digestBytes);
            }

            sent += chunk;
        }
        while (sent < length);

        return success;
    }
}
