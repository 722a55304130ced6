using System.IO.Pipelines;
using System.Net.Sockets;
using System.Runtime.CompilerServices;

namespace ActorNvme.Transport.RawSocket;

/// <summary>
/// A <see cref="PipeWriter"/> that buffers one batch in an array and sends it on flush, on the
/// flushing thread. Only the queue pair's writer-flag holder uses it (single writer). The array is
/// rented from the shared pool for a batch and returned once it is sent: a queue pair that sends
/// nothing holds no send buffer (thousands of idle queue pairs would otherwise hold one each).
/// </summary>
internal sealed class SocketWriter(Socket socket, int initialSize) : PipeWriter
{
    private const int FirstBufferSize = 4096;

    private byte[] _buffer = [];
    private int _written;
    private bool _completed;

    public override bool CanGetUnflushedBytes => true;

    public override long UnflushedBytes => _written;

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public override void Advance(int bytes) => _written += bytes;

    public override Memory<byte> GetMemory(int sizeHint = 0)
    {
        Reserve(sizeHint);
        return _buffer.AsMemory(_written);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public override Span<byte> GetSpan(int sizeHint = 0)
    {
        Reserve(sizeHint);
        return _buffer.AsSpan(_written);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public override ValueTask<FlushResult> FlushAsync(CancellationToken cancellationToken = default)
    {
        int sent = 0;
        while (sent < _written)
        {
            int n = socket.Send(_buffer.AsSpan(sent, _written - sent), SocketFlags.None, out var error);
            if (error == SocketError.WouldBlock)
            {
                socket.Poll(-1, SelectMode.SelectWrite);
                continue;
            }

            if (error != SocketError.Success)
            {
                _written = 0;
                ReleaseBuffer();
                throw new SocketException((int)error);
            }

            sent += n;
        }

        _written = 0;
        ReleaseBuffer();
        return new ValueTask<FlushResult>(new FlushResult(isCanceled: false, isCompleted: _completed));
    }

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
