using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;

namespace ActorNvme.Transport.RawSocket;

/// <summary>How <see cref="RawSocketTransport"/> waits for data.</summary>
public sealed record RawSocketTransportOptions
{
    public static RawSocketTransportOptions Default { get; } = new();

    /// <summary>Give up a TCP connect after this long (ConnectTimeout).</summary>
    public TimeSpan ConnectTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// How long the receive thread polls the socket before it blocks. Zero blocks at once (least
    /// CPU); a few tens of microseconds save the wake-up at queue depth 1 at the price of a busy core.
    /// </summary>
    public TimeSpan SpinBeforeBlocking { get; init; } = TimeSpan.Zero;

    /// <summary>
    /// First size of the receive and send buffers; they grow (rarely) to hold the largest PDU seen.
    /// They come from the shared pool while a queue pair is busy and go back when it is idle.
    /// </summary>
    public int InitialBufferSize { get; init; } = 256 * 1024;

    /// <summary>
    /// Cores for the I/O threads (Linux): one I/O thread per listed core, pinned to it; each new
    /// connection goes to the next of them in turn, so the queue pairs of a run spread over these
    /// cores as SPDK's workers do. Null or empty: <see cref="IoThreads"/> unpinned threads.
    /// </summary>
    public IReadOnlyList<int>? ReceiveThreadCores { get; init; }

    /// <summary>
    /// I/O threads serving all connections of this shape (Linux; shared process-wide): 0 means one
    /// per core. Each serves many queue pairs; an idle queue pair owns no thread.
    /// </summary>
    public int IoThreads { get; init; }

    /// <summary>
    /// A dedicated receive thread per connection (the design before I/O threads; the only one where
    /// epoll is not available). For comparisons in the benchmarks.
    /// </summary>
    public bool DedicatedReceiveThreads { get; init; }
}

/// <summary>
/// NVMe/TCP over a raw <see cref="Socket"/>: the queue pair's read loop runs on one of a bounded set
/// of I/O threads (<see cref="IoThread"/>: one per core, each serving many sockets through epoll),
/// receives straight into one buffer, and the send path writes one batch per flush with a single
/// send on the thread that flushes. No pipe, no thread pool, no hop. The measurements behind
/// this design are in the project's performance notes; the benchmarks compare it with <see cref="Tcp.TcpTransport"/>.
/// </summary>
public sealed class RawSocketTransport(RawSocketTransportOptions? options = null) : INvmeTransport
{
    private readonly RawSocketTransportOptions _options = options ?? RawSocketTransportOptions.Default;
    private int _connections;

    public async ValueTask<INvmeConnection> ConnectAsync(TransportAddress address, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(address);
        var endpoint = IPAddress.TryParse(address.Host, out var ip)
            ? new IPEndPoint(ip, address.Port)
            : new IPEndPoint((await Dns.GetHostAddressesAsync(address.Host, cancellationToken).ConfigureAwait(false))[0], address.Port);

        // Connect without the socket engine: an asynchronous connect registers the socket with
        // .NET's epoll thread, which then wakes on every readiness change of a socket that this
        // design only ever reads and writes synchronously (measured: a third of a core at QD128).
        var cores = _options.ReceiveThreadCores;
        var ioThreads = _options.DedicatedReceiveThreads ? null : IoThreadGroup.For(_options.IoThreads, cores);
        if (ioThreads is not null)
        {
            // The connect waits on the I/O thread's epoll, not on a blocked thread: thousands of
            // connects in flight cost no thread each.
            var ioThread = ioThreads.Next();
            var connected = await ConnectOnIoThreadAsync(ioThread, endpoint, address, cancellationToken).ConfigureAwait(false);
            return new RawSocketConnection(connected, address, _options, ioThread: ioThread);
        }

        var socket = await Task.Run(() => Connect(endpoint, address), cancellationToken).ConfigureAwait(false);

        int? core = cores is { Count: > 0 } ? cores[(int)((uint)(Interlocked.Increment(ref _connections) - 1) % (uint)cores.Count)] : null;
        return new RawSocketConnection(socket, address, _options, core);
    }

    private async Task<Socket> ConnectOnIoThreadAsync(IoThread ioThread, IPEndPoint endpoint, TransportAddress address, CancellationToken cancellationToken)
    {
        var socket = DescriptorLimit.OpenTcpSocket(endpoint.AddressFamily, address);
        socket.NoDelay = true;
        socket.Blocking = false;
        try
        {
            try
            {
                socket.Connect(endpoint);
                return socket;
            }
            catch (SocketException e) when (e.SocketErrorCode is SocketError.WouldBlock or SocketError.InProgress)
            {
            }

            using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            deadline.CancelAfter(_options.ConnectTimeout);
            try
            {
                await ioThread.WaitWritableAsync((int)socket.Handle, deadline.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                throw new ConnectionClosedException(new ConnectionClosed(CloseReason.ConnectTimeout, $"no TCP connection to {address} within {_options.ConnectTimeout.TotalSeconds:0.###} s"));
            }

            var error = (SocketError)(int)socket.GetSocketOption(SocketOptionLevel.Socket, SocketOptionName.Error)!;
            if (error != SocketError.Success)
            {
                throw new SocketException((int)error);
            }

            return socket;
        }
        catch (SocketException e)
        {
            DisposeAfterUnregistering(ioThread, socket);
            throw new ConnectionClosedException(new ConnectionClosed(CloseReason.ConnectFailed, $"TCP connect to {address} failed: {e.SocketErrorCode}", e));
        }
        catch
        {
            DisposeAfterUnregistering(ioThread, socket);
            throw;
        }
    }

    /// <summary>Closes on the I/O thread, after any posted unregistration of the descriptor has run.</summary>
    private static void DisposeAfterUnregistering(IoThread ioThread, Socket socket) => ioThread.Post(socket.Dispose);

    private Socket Connect(IPEndPoint endpoint, TransportAddress address)
    {
        // Near the descriptor limit a connection is refused here, not left to abort the process later.
        var socket = DescriptorLimit.OpenTcpSocket(endpoint.AddressFamily, address);
        socket.NoDelay = true;
        socket.Blocking = false;
        try
        {
            try
            {
                socket.Connect(endpoint);
            }
            catch (SocketException e) when (e.SocketErrorCode is SocketError.WouldBlock or SocketError.InProgress)
            {
                long microseconds = (long)_options.ConnectTimeout.TotalMicroseconds;
                if (!socket.Poll((int)Math.Min(microseconds, int.MaxValue), SelectMode.SelectWrite))
                {
                    throw new ConnectionClosedException(new ConnectionClosed(CloseReason.ConnectTimeout, $"no TCP connection to {address} within {_options.ConnectTimeout.TotalSeconds:0.###} s"));
                }

                var error = (SocketError)(int)socket.GetSocketOption(SocketOptionLevel.Socket, SocketOptionName.Error)!;
                if (error != SocketError.Success)
                {
                    throw new SocketException((int)error);
                }
            }

            return socket;
        }
        catch (SocketException e)
        {
            socket.Dispose();
            throw new ConnectionClosedException(new ConnectionClosed(CloseReason.ConnectFailed, $"TCP connect to {address} failed: {e.SocketErrorCode}", e));
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }
}

/// <summary>One raw-socket connection: a blocking reader for a dedicated thread, a writer that sends on flush.</summary>
internal sealed class RawSocketConnection : INvmeConnection, IDuplexPipe, ITcpUserTimeoutConnection, IDemandPacedConnection
{
    private readonly Socket _socket;
    private readonly SocketReader _reader;
    private readonly SocketWriter _writer;
    private readonly TaskCompletionSource<ConnectionClosed> _closed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly int? _core;
    private readonly IoThread? _ioThread;

    public RawSocketConnection(Socket socket, TransportAddress remote, RawSocketTransportOptions options, int? core = null, IoThread? ioThread = null)
    {
        _socket = socket;
        _core = core;
        _ioThread = ioThread;

        // Non-blocking: both directions try first and wait in poll() only when the kernel says so,
        // so a receive can spin briefly before it sleeps.
        _socket.Blocking = false;
        RemoteAddress = remote;
        _reader = new SocketReader(socket, options.InitialBufferSize, (long)(options.SpinBeforeBlocking.TotalSeconds * System.Diagnostics.Stopwatch.Frequency), ioThread);
        _writer = new SocketWriter(socket, options.InitialBufferSize, ioThread);
        _reader.Writer = _writer;
    }

    public IDuplexPipe Pipe => this;

    public bool TrySetUserTimeout(TimeSpan timeout) => TcpUserTimeout.TrySet(_socket, timeout);

    public TimeSpan? TryGetUserTimeout() => TcpUserTimeout.TryGet(_socket);

    public PipeReader Input => _reader;

    public PipeWriter Output => _writer;

    public TransportAddress RemoteAddress { get; }

    public Task<ConnectionClosed> Closed => _closed.Task;

    public void SetReceiveDemand(IReceiveDemand demand) => _reader.Demand = demand;

    public Task RunReadLoop(Func<Task> readLoop)
    {
        ArgumentNullException.ThrowIfNull(readLoop);
        if (_ioThread is { } ioThread)
        {
            // The loop starts on its I/O thread and stays there: each read either completes at once or
            // parks until the thread sees data, then resumes inline on it.
            var started = new TaskCompletionSource<Task>(TaskCreationOptions.RunContinuationsAsynchronously);
            ioThread.Post(() =>
            {
                if (_closed.Task.IsCompleted)
                {
                    started.TrySetResult(readLoop());
                    return;
                }

                ioThread.Attach(_reader, (int)_socket.Handle);
                started.TrySetResult(readLoop());
            });
            return started.Task.Unwrap();
        }

        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var thread = new Thread(() =>
        {
            if (_core is { } core)
            {
                // Best effort: a core outside the process's allowed set leaves the thread unpinned.
                ThreadAffinity.TryPinCurrentThread(core);
            }

            // Every read completes synchronously here, so the whole loop runs on this thread.
            readLoop().GetAwaiter().GetResult();
            done.TrySetResult();
        })
        {
            IsBackground = true,
            Name = $"nvme-tcp receive {RemoteAddress}",
        };
        thread.Start();
        return done.Task;
    }

    public void Abort(ConnectionClosed reason)
    {
        if (!_closed.TrySetResult(reason))
        {
            return;
        }

        _reader.CancelPendingRead();

        // Wakes a receive blocked in poll(); the read loop then sees the end and finishes.
        try
        {
            _socket.Shutdown(SocketShutdown.Both);
        }
        catch (SocketException)
        {
        }
        catch (ObjectDisposedException)
        {
        }

        if (_ioThread is { } ioThread)
        {
            // After the posted cancel has ended a parked read: unregister, then close, on the I/O thread.
            ioThread.Post(() =>
            {
                ioThread.Detach(_reader, (int)_socket.Handle);
                _reader.OnDetached();
                _writer.OnDetached();
                _socket.Dispose();
            });
            return;
        }

        _socket.Dispose();
    }

    public ValueTask DisposeAsync()
    {
        Abort(new ConnectionClosed(CloseReason.Disposed, "connection disposed"));
        return ValueTask.CompletedTask;
    }
}
