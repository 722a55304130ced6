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

    /// <summary>Records why the stream is being closed (first reason wins) and closes it.</summary>
    void Abort(ConnectionClosed reason);
}
