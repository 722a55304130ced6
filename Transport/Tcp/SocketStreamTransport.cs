using System.IO.Pipelines;
using System.Net.Sockets;

namespace ActorNvme.Transport.Tcp;

/// <summary>A connection that is also a blocking byte stream over its socket, for a layer (TLS) that reads and writes records itself.</summary>
public interface IStreamConnection : INvmeConnection
{
    /// <summary>The socket as a stream: reads block in the kernel until bytes arrive, writes until the kernel took them.</summary>
    Stream Stream { get; }
}

/// <summary>
/// TCP whose bytes are read and written by blocking socket calls on the caller's thread, with no pipe or thread
/// pool in between: what TLS needs underneath, as BouncyCastle's record layer blocks anyway. A TLS record then
/// goes from the socket to the decrypting read thread, and from the encrypting writer to the socket, directly.
/// </summary>
public sealed class SocketStreamTransport(TimeSpan? connectTimeout = null) : INvmeTransport
{
    private readonly TimeSpan _connectTimeout = connectTimeout ?? TcpTransportOptions.Default.ConnectTimeout;

    public async ValueTask<INvmeConnection> ConnectAsync(TransportAddress address, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(address);
        var socket = await TcpConnect.OpenAsync(address, _connectTimeout, cancellationToken, blocking: true).ConfigureAwait(false);
        return new SocketStreamConnection(socket, address);
    }
}

/// <summary>One TCP connection read and written through <see cref="Stream"/>; <see cref="Pipe"/> wraps the same stream for a reader that wants pipes.</summary>
internal sealed class SocketStreamConnection : IStreamConnection, ITcpUserTimeoutConnection
{
    private readonly Socket _socket;
    private readonly TaskCompletionSource<ConnectionClosed> _closed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly Lazy<IDuplexPipe> _pipe;

    public SocketStreamConnection(Socket socket, TransportAddress remote)
    {
        _socket = socket;
        RemoteAddress = remote;
        Stream = new SocketStream(socket);
        _pipe = new(() => new DuplexPipe(PipeReader.Create(Stream, new StreamPipeReaderOptions(leaveOpen: true)), PipeWriter.Create(Stream, new StreamPipeWriterOptions(leaveOpen: true))));
    }

    public Stream Stream { get; }

    public IDuplexPipe Pipe => _pipe.Value;

    public TransportAddress RemoteAddress { get; }

    public Task<ConnectionClosed> Closed => _closed.Task;

    public bool TrySetUserTimeout(TimeSpan timeout) => TcpUserTimeout.TrySet(_socket, timeout);

    public TimeSpan? TryGetUserTimeout() => TcpUserTimeout.TryGet(_socket);

    public void Abort(ConnectionClosed reason)
    {
        if (!_closed.TrySetResult(reason))
        {
            return;
        }

        // Shutdown wakes a read or write blocked in the kernel on another thread; then the descriptor goes.
        try
        {
            _socket.Shutdown(SocketShutdown.Both);
        }
        catch (SocketException)
        {
            // Already reset by the peer.
        }
        catch (ObjectDisposedException)
        {
        }

        _socket.Dispose();
    }

    public ValueTask DisposeAsync()
    {
        Abort(new ConnectionClosed(CloseReason.Disposed, "connection disposed"));
        return ValueTask.CompletedTask;
    }
}

/// <summary>
/// Blocking reads (through a receive buffer, so a record header and its body usually cost one system call) and
/// blocking writes on one socket. One reading thread at a time, one writing thread at a time; the two may overlap.
/// </summary>
internal sealed class SocketStream(Socket socket) : Stream
{
    private const int ReceiveBufferSize = 64 * 1024;

    private readonly byte[] _receiveBuffer = new byte[ReceiveBufferSize];
    private int _receiveStart;
    private int _receiveEnd;

    public override bool CanRead => true;

    public override bool CanSeek => false;

    public override bool CanWrite => true;

    public override long Length => throw new NotSupportedException();

    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        if (buffer.IsEmpty)
        {
            return 0;
        }

        if (_receiveStart == _receiveEnd)
        {
            // A read as large as the buffer goes straight to the caller's memory.
            if (buffer.Length >= ReceiveBufferSize)
            {
                return socket.Receive(buffer, SocketFlags.None);
            }

            _receiveStart = 0;
            _receiveEnd = socket.Receive(_receiveBuffer, SocketFlags.None);
            if (_receiveEnd == 0)
            {
                return 0; // the peer closed its end
            }
        }

        int copied = Math.Min(buffer.Length, _receiveEnd - _receiveStart);
        _receiveBuffer.AsSpan(_receiveStart, copied).CopyTo(buffer);
        _receiveStart += copied;
        return copied;
    }

    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
        ValueTask.FromResult(Read(buffer.Span));

    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        while (!buffer.IsEmpty)
        {
            buffer = buffer[socket.Send(buffer, SocketFlags.None)..];
        }
    }

    public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        Write(buffer.Span);
        return ValueTask.CompletedTask;
    }

    public override void Flush()
    {
    }

    public override Task FlushAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();
}
