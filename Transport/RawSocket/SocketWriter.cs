using System.IO.Pipelines;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using System.Threading.Tasks.Sources;

namespace ActorNvme.Transport.RawSocket;

/// <summary>
/// A <see cref="PipeWriter"/> that buffers one batch in an array and sends it on flush, on the
/// flushing thread. Only the queue pair's writer-flag holder uses it (single writer). The array is
/// rented from the shared pool for a batch and returned once it is sent: a queue pair that sends
/// nothing holds no send buffer (thousands of idle queue pairs would otherwise hold one each).
/// <para>
/// A flush never blocks its thread. When the socket's send buffer is full (a peer that reads slowly,
/// or not at all) the flush stays pending with the rest of the batch: on an <see cref="IoThread"/> the
/// thread sends the rest when epoll says the socket is writable again, so the other connections it
/// serves, and this connection's own receives, go on meanwhile; without one, an asynchronous send does.
/// </para>
/// </summary>
internal sealed class SocketWriter(Socket socket, int initialSize, IoThread? ioThread = null) : PipeWriter, IValueTaskSource<FlushResult>
{
    private const int FirstBufferSize = 4096;

    private byte[] _buffer = [];
    private int _written;
    private int _sent;              // bytes of the pending batch already sent
    private bool _completed;
    private bool _awaitingWritable; // I/O thread only: the rest waits for the socket to become writable
    private bool _detached;         // I/O thread only: the socket is gone; a pending flush fails
    private ManualResetValueTaskSourceCore<FlushResult> _pendingFlush;

    public override bool CanGetUnflushedBytes => true;

    public override long UnflushedBytes => _written - _sent;

    public override void Advance(int bytes) => _written += bytes;

    public override Memory<byte> GetMemory(int sizeHint = 0)
    {
        Reserve(sizeHint);
        return _buffer.AsMemory(_written);
    }

    public override Span<byte> GetSpan(int sizeHint = 0)
    {
        Reserve(sizeHint);
        return _buffer.AsSpan(_written);
    }

    public override ValueTask<FlushResult> FlushAsync(CancellationToken cancellationToken = default)
    {
        if (TrySendRest())
        {
            FinishBatch();
            return new ValueTask<FlushResult>(new FlushResult(isCanceled: false, isCompleted: _completed));
        }

        // The socket's send buffer is full: the rest leaves when the socket is writable again.
        _pendingFlush.Reset();
        if (ioThread is null)
        {
            _ = SendRestAsync();
        }
        else
        {
            ioThread.Post(ContinueOnIoThread);
        }

        return new ValueTask<FlushResult>(this, _pendingFlush.Version);
    }

    /// <summary>On the I/O thread: epoll says the socket can take more.</summary>
    internal void OnWritable()
    {
        if (_awaitingWritable)
        {
            _awaitingWritable = false;
            ContinueOnIoThread();
        }
    }

    /// <summary>On the I/O thread, when the connection is gone: a flush still waiting fails instead of waiting forever.</summary>
    internal void OnDetached()
    {
        _detached = true;
        if (_awaitingWritable)
        {
            _awaitingWritable = false;
            FailPending(ClosedWithDataToSend());
        }
    }

    /// <summary>
    /// Sends until the batch is out (true) or the socket would block (false). Throws on a socket error,
    /// after dropping the batch.
    /// </summary>
    private bool TrySendRest()
    {
        while (_sent < _written)
        {
            int n;
            SocketError error;
            try
            {
                n = socket.Send(_buffer.AsSpan(_sent, _written - _sent), SocketFlags.None, out error);
            }
            catch (ObjectDisposedException)
            {
                FinishBatch();
                throw;
            }

            if (error == SocketError.WouldBlock)
            {
                return false;
            }

            if (error != SocketError.Success)
            {
                FinishBatch();
                throw new SocketException((int)error);
            }

            _sent += n;
        }

        return true;
    }

    private void FinishBatch()
    {
        _written = 0;
        _sent = 0;
        ReleaseBuffer();
    }

    // On the I/O thread. The epoll registration is edge-triggered for writability: a send that would
    // block here arms the next edge, and that edge is handled on this same thread, so none is missed.
    // Runs once per pending flush (posted by FlushAsync), then again on each writability edge it waited for.
    private void ContinueOnIoThread()
    {
        if (_detached)
        {
            FailPending(ClosedWithDataToSend());
            return;
        }

        try
        {
            if (!TrySendRest())
            {
                _awaitingWritable = true;
                return;
            }
        }
        catch (Exception e)
        {
            FailPending(e);
            return;
        }

        SucceedPending();
    }

    // Without an I/O thread (a dedicated receive thread, or no epoll): the socket's own asynchronous send.
    private async Task SendRestAsync()
    {
        try
        {
            while (_sent < _written)
            {
                _sent += await socket.SendAsync(_buffer.AsMemory(_sent, _written - _sent), SocketFlags.None).ConfigureAwait(false);
            }
        }
        catch (Exception e)
        {
            FailPending(e);
            return;
        }

        SucceedPending();
    }

    private void SucceedPending()
    {
        FinishBatch();
        _pendingFlush.SetResult(new FlushResult(isCanceled: false, isCompleted: _completed));
    }

    private void FailPending(Exception e)
    {
        FinishBatch();
        _pendingFlush.SetException(e);
    }

    private static ObjectDisposedException ClosedWithDataToSend() => new(nameof(Socket), "the connection was closed with data still to send");

    FlushResult IValueTaskSource<FlushResult>.GetResult(short token) => _pendingFlush.GetResult(token);

    ValueTaskSourceStatus IValueTaskSource<FlushResult>.GetStatus(short token) => _pendingFlush.GetStatus(token);

    void IValueTaskSource<FlushResult>.OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
        _pendingFlush.OnCompleted(continuation, state, token, flags);

    public override void CancelPendingFlush()
    {
    }

    public override void Complete(Exception? exception = null)
    {
        _completed = true;
    }

    private void Reserve(int sizeHint)
    {
        int needed = _written + Math.Max(sizeHint, 1);
        if (needed > _buffer.Length)
        {
            // Small first (a connect's PDUs, a batch of capsules), doubling within a batch up to what it needs.
            var larger = TransportBufferPool.Rent(Math.Max(needed, Math.Max(Math.Min(FirstBufferSize, initialSize), _buffer.Length * 2)));
            Buffer.BlockCopy(_buffer, 0, larger, 0, _written);
            ReleaseBuffer();
            _buffer = larger;
        }
    }

    private void ReleaseBuffer()
    {
        if (_buffer.Length != 0)
        {
            TransportBufferPool.Return(_buffer);
            _buffer = [];
        }
    }
}
