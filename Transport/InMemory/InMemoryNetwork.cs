using System.Collections.Concurrent;
using System.IO.Pipelines;

namespace ActorNvme.Transport.InMemory;

/// <summary>
/// An in-process "network": listeners registered by address, connections made of two pipes.
/// Lets tests and users' specs run a host against an in-process target without sockets.
/// </summary>
public sealed class InMemoryNetwork
{
    private readonly ConcurrentDictionary<TransportAddress, Func<INvmeConnection, Task>> _listeners = new();

    /// <summary>
    /// Accepts connections to <paramref name="address"/> by handing the server end to
    /// <paramref name="accept"/>. Disposing the result stops listening (new connects are refused).
    /// </summary>
    public IDisposable Listen(TransportAddress address, Func<INvmeConnection, Task> accept)
    {
        ArgumentNullException.ThrowIfNull(address);
        ArgumentNullException.ThrowIfNull(accept);
        if (!_listeners.TryAdd(address, accept))
        {
            throw new InvalidOperationException($"address {address} is already in use on this in-memory network");
        }

        return new Registration(this, address, accept);
    }

    public bool IsListening(TransportAddress address) => _listeners.ContainsKey(address);

    internal INvmeConnection Connect(TransportAddress address)
    {
        if (!_listeners.TryGetValue(address, out var accept))
        {
            throw new ConnectionClosedException(new ConnectionClosed(CloseReason.ConnectFailed, $"connection to {address} refused: nothing listens there"));
        }

        // Thresholds well above the largest PDU: a reader waiting for the rest of a PDU must never
        // find the writer paused (both would wait forever).
        var options = new PipeOptions(pauseWriterThreshold: 64 * 1024 * 1024, resumeWriterThreshold: 32 * 1024 * 1024, minimumSegmentSize: 64 * 1024, useSynchronizationContext: false);
        var toServer = new Pipe(options);
        var toClient = new Pipe(options);
        var client = new InMemoryConnection(new DuplexPipe(toClient.Reader, toServer.Writer), address);
        var server = new InMemoryConnection(new DuplexPipe(toServer.Reader, toClient.Writer), new TransportAddress("in-memory-client", 0));
        client.Peer = server;
        server.Peer = client;
        _ = Task.Run(() => accept(server));
        return client;
    }

    private sealed class Registration(InMemoryNetwork network, TransportAddress address, Func<INvmeConnection, Task> accept) : IDisposable
    {
        public void Dispose() => network._listeners.TryRemove(new KeyValuePair<TransportAddress, Func<INvmeConnection, Task>>(address, accept));
    }
}

/// <summary>The <see cref="INvmeTransport"/> over an <see cref="InMemoryNetwork"/>.</summary>
public sealed class InMemoryTransport(InMemoryNetwork network) : INvmeTransport
{
    public ValueTask<INvmeConnection> ConnectAsync(TransportAddress address, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        return ValueTask.FromResult(network.Connect(address));
    }
}

/// <summary>
/// One end of an in-memory connection. Aborting either end ends both, like a TCP reset: pending
/// reads and flushes on both ends are canceled and each end records why. The pipes themselves are
/// completed by their owners (the loops that read and write them), never from a foreign thread.
/// </summary>
internal sealed class InMemoryConnection(IDuplexPipe pipe, TransportAddress remote) : INvmeConnection
{
    private readonly TaskCompletionSource<ConnectionClosed> _closed = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public IDuplexPipe Pipe { get; } = pipe;

    public TransportAddress RemoteAddress { get; } = remote;

    public Task<ConnectionClosed> Closed => _closed.Task;

    internal InMemoryConnection? Peer { get; set; }

    public void Abort(ConnectionClosed reason)
    {
        if (!_closed.TrySetResult(reason))
        {
            return;
        }

        Pipe.Input.CancelPendingRead();
        Pipe.Output.CancelPendingFlush();
        Peer?.Abort(new ConnectionClosed(CloseReason.PeerClosed, "the peer closed the in-memory connection"));
    }

    public ValueTask DisposeAsync()
    {
        Abort(new ConnectionClosed(CloseReason.Disposed, "connection disposed"));
        return ValueTask.CompletedTask;
    }
}
