using System.IO.Pipelines;

namespace ActorNvme.Transport;

/// <summary>
/// Our seam over the byte stream a queue pair runs on. The TCP implementation and the in-memory one
/// (tests, in-process targets) are interchangeable; no Pipelines.Sockets.Unofficial type leaks out.
/// </summary>
public interface INvmeTransport
{
    /// <summary>Opens a byte stream to <paramref name="address"/>. Fails with <see cref="ConnectionClosedException"/> (ConnectFailed / ConnectTimeout).</summary>
    ValueTask<INvmeConnection> ConnectAsync(TransportAddress address, CancellationToken cancellationToken);
}

/// <summary>One open byte stream. Disposing it closes it; <see cref="Closed"/> says why it ended.</summary>
public interface INvmeConnection : IAsyncDisposable
{
    IDuplexPipe Pipe { get; }

    TransportAddress RemoteAddress { get; }

    /// <summary>Completes once, when the stream has ended, with the first reason recorded.</summary>
    Task<ConnectionClosed> Closed { get; }

    /// <summary>
    /// Records why the stream is being closed (first reason wins) and stops it: pending reads and
    /// flushes of this end are canceled and the socket (or in-memory peer) is told. The pipes
    /// themselves are completed by the loops that own them.
    /// </summary>
    void Abort(ConnectionClosed reason);

    /// <summary>
    /// Runs the owner's read loop. By default on the calling thread until its first wait; a
    /// transport whose reads block (a dedicated receive thread) starts the loop on its own thread.
    /// </summary>
    Task RunReadLoop(Func<Task> readLoop)
    {
        ArgumentNullException.ThrowIfNull(readLoop);
        return readLoop();
    }
}
