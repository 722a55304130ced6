using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;
using Pipelines.Sockets.Unofficial;

namespace ActorNvme.Transport.Tcp;

/// <summary>
/// NVMe/TCP over TCP sockets, through Pipelines.Sockets.Unofficial tuned as the measurements on these
/// machines found fast: inline reads and writes (no thread hop between socket and queue pair),
/// 64 KiB segments, Nagle off. No Pipelines.Sockets.Unofficial type crosses the seam.
/// </summary>
public sealed class TcpTransport : INvmeTransport
{
    private readonly TcpTransportOptions _options;
    private readonly PipeOptions _sendPipe;
    private readonly PipeOptions _receivePipe;

    public TcpTransport(TcpTransportOptions? options = null)
    {
        _options = options ?? TcpTransportOptions.Default;
        _options.Validate();
        _sendPipe = Tuned(_options.SendBufferLimit);
        _receivePipe = Tuned(_options.ReceiveBufferLimit);
    }

    public async ValueTask<INvmeConnection> ConnectAsync(TransportAddress address, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(address);
        var socket = await TcpConnect.OpenAsync(address, _options.ConnectTimeout, cancellationToken).ConfigureAwait(false);
        var connectionOptions = SocketConnectionOptions.InlineReads | SocketConnectionOptions.InlineWrites;
        if (_options.ZeroLengthReads)
        {
            connectionOptions |= SocketConnectionOptions.ZeroLengthReads;
        }

        var connection = SocketConnection.Create(socket, _sendPipe, _receivePipe, connectionOptions, address.ToString());
        return new TcpConnection(connection, address);
    }

    /// <summary>
    /// Opens one connection from an already connected socket (for listeners and tests), tuned the same way.
    /// </summary>
    public INvmeConnection Wrap(Socket socket, TransportAddress remote)
    {
        ArgumentNullException.ThrowIfNull(socket);
        socket.NoDelay = true;
        var connection = SocketConnection.Create(socket, _sendPipe, _receivePipe, SocketConnectionOptions.InlineReads | SocketConnectionOptions.InlineWrites, remote.ToString());
        return new TcpConnection(connection, remote);
    }

    private PipeOptions Tuned(int bufferLimit) => new(
        pool: null,
        readerScheduler: PipeScheduler.Inline,
        writerScheduler: PipeScheduler.Inline,
        pauseWriterThreshold: bufferLimit,
        resumeWriterThreshold: bufferLimit / 2,
        minimumSegmentSize: _options.SegmentSize,
        useSynchronizationContext: false);
}

/// <summary>One TCP connection. Abort cancels pending reads and flushes, then closes the socket.</summary>
internal sealed class TcpConnection : INvmeConnection, ITcpUserTimeoutConnection
{
    private readonly SocketConnection _connection;
    private readonly TaskCompletionSource<ConnectionClosed> _closed = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public TcpConnection(SocketConnection connection, TransportAddress remote)
    {
        _connection = connection;
        RemoteAddress = remote;
    }

    public IDuplexPipe Pipe => _connection;

    public bool TrySetUserTimeout(TimeSpan timeout) => TcpUserTimeout.TrySet(_connection.Socket, timeout);

    public TimeSpan? TryGetUserTimeout() => TcpUserTimeout.TryGet(_connection.Socket);

    public TransportAddress RemoteAddress { get; }

    public Task<ConnectionClosed> Closed => _closed.Task;

    public void Abort(ConnectionClosed reason)
    {
        if (!_closed.TrySetResult(reason))
        {
            return;
        }

        _connection.Input.CancelPendingRead();
        _connection.Output.CancelPendingFlush();
        _connection.Dispose();
    }

    public ValueTask DisposeAsync()
    {
        Abort(new ConnectionClosed(CloseReason.Disposed, "connection disposed"));
        return ValueTask.CompletedTask;
    }
}
