using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;
using ActorNvme.Transport;
using ActorNvme.Transport.Tls;

namespace ActorNvme.Target;

/// <summary>One accepted byte stream, whatever carries it: close it gracefully (FIN) or reset it (RST).</summary>
internal abstract class TargetConnection
{
    public abstract IDuplexPipe Pipe { get; }

    /// <summary>The peer, for logs.</summary>
    public abstract string Remote { get; }

    /// <summary>The local address the peer reached (reported in the discovery log when a listener is bound to a wildcard address).</summary>
    public abstract string LocalHost { get; }

    /// <summary>Sends what is buffered, then ends the stream (FIN).</summary>
    public abstract void Close();

    /// <summary>Drops the stream at once (RST); buffered data is lost.</summary>
    public abstract void Reset();
}

/// <summary>An <see cref="INvmeConnection"/> of an <see cref="ActorNvme.Transport.InMemory.InMemoryNetwork"/>.</summary>
internal sealed class InMemoryTargetConnection(INvmeConnection connection, string localHost) : TargetConnection
{
    private static readonly TimeSpan LingerAfterClose = TimeSpan.FromSeconds(5);

    public override IDuplexPipe Pipe => connection.Pipe;

    public override string Remote => connection.RemoteAddress.ToString();

    public override string LocalHost => localHost;

    /// <summary>
    /// Ends our output only (the peer still reads what was written, then sees the end, like a FIN);
    /// aborting the connection would also discard what the peer has not read yet.
    /// </summary>
    public override void Close()
    {
        connection.Pipe.Output.Complete();
        _ = Task.Delay(LingerAfterClose).ContinueWith(
            _ => connection.Abort(new ConnectionClosed(CloseReason.LocalShutdown, "target closed the connection")),
            TaskScheduler.Default);
    }

    public override void Reset() => connection.Abort(new ConnectionClosed(CloseReason.ConnectionReset, "target reset the connection"));
}

/// <summary>
/// An accepted TCP socket pumped into two pipes by two loops. A raw socket rather than a library
/// connection, so that the target controls exactly when a FIN or an RST leaves.
/// </summary>
internal sealed class SocketTargetConnection : TargetConnection
{
    private static readonly TimeSpan LingerAfterClose = TimeSpan.FromSeconds(5);
    private readonly Socket _socket;
    private readonly Pipe _receive;
    private readonly Pipe _send;
    private readonly DuplexPipe _pipe;
    private int _state; // 0 open, 1 closing, 2 reset/disposed

    /// <summary>For measuring: ACTORNVME_TARGET_INLINE=0 puts the pipes' readers back on the thread pool.</summary>
    private static readonly bool InlineReaders = Environment.GetEnvironmentVariable("ACTORNVME_TARGET_INLINE") != "0";

    public SocketTargetConnection(Socket socket)
    {
        _socket = socket;
        _socket.NoDelay = true;
        // 64 KiB segments: the send loop makes one send per segment, and with the 4 KiB default a 4 KiB
        // read's C2HData PDU spans two, so every read cost a send of its own (measured: reads at a fifth of
        // the rate of writes). 64 KiB segments carry a batch of them per send.
        var options = new PipeOptions(pauseWriterThreshold: 1024 * 1024, resumeWriterThreshold: 512 * 1024, minimumSegmentSize: 64 * 1024, useSynchronizationContext: false);
        // Readers resume inline on the writer's thread: received bytes are parsed, executed, answered and sent
        // by the thread that received them, one wake-up per batch instead of three thread-pool hops (each a
        // chance to wait for a core on a loaded machine). Writers still resume on the pool, so a paused
        // writer never runs the other loop's code.
        var inlineReaders = new PipeOptions(pauseWriterThreshold: 1024 * 1024, resumeWriterThreshold: 512 * 1024, minimumSegmentSize: 64 * 1024, readerScheduler: PipeScheduler.Inline, useSynchronizationContext: false);
        _receive = new Pipe(InlineReaders ? inlineReaders : options);
        _send = new Pipe(InlineReaders ? inlineReaders : options);
        _pipe = new DuplexPipe(_receive.Reader, _send.Writer);
        Remote = socket.RemoteEndPoint?.ToString() ?? "?";
        LocalHost = (socket.LocalEndPoint as IPEndPoint)?.Address.ToString() ?? "?";
        _ = Task.Run(ReceiveLoopAsync);
        _ = Task.Run(SendLoopAsync);
    }

    public override IDuplexPipe Pipe => _pipe;

    public override string Remote { get; }

    public override string LocalHost { get; }

    public override void Close()
    {
        if (Interlocked.CompareExchange(ref _state, 1, 0) != 0)
        {
            return;
        }

        // Called by the association (the writer's owner) after its last write. The send loop drains what
        // was written, then shuts down the send side (FIN).
        _send.Writer.Complete();
        _ = Task.Delay(LingerAfterClose).ContinueWith(_ => Dispose(), TaskScheduler.Default);
    }

    public override void Reset()
    {
        if (Interlocked.Exchange(ref _state, 2) == 2)
        {
            return;
        }

        try
        {
            _socket.LingerState = new LingerOption(true, 0);
        }
        catch (SocketException)
        {
        }
        catch (ObjectDisposedException)
        {
        }

        Dispose();
    }

    private void Dispose()
    {
        // Each pipe end belongs to one loop or to the association; only wake them here, they complete their own ends.
        Volatile.Write(ref _state, 2);
        _socket.Dispose();
        _send.Reader.CancelPendingRead();
    }

    private async Task ReceiveLoopAsync()
    {
        Exception? error = null;
        bool discard = false;
        byte[]? scratch = null;
        try
        {
            while (true)
            {
                if (discard)
                {
                    // Nobody reads any more: drain so that closing does not turn into an RST.
                    scratch ??= new byte[4096];
                    if (await _socket.ReceiveAsync(scratch, SocketFlags.None).ConfigureAwait(false) == 0)
                    {
                        break;
                    }

                    continue;
                }

                if (_socket.Available == 0)
                {
                    // Wait for data with a zero-length receive before taking a segment: an idle connection
                    // (thousands of keep-alive-only controllers) then holds no 64 KiB segment while it waits.
                    await _socket.ReceiveAsync(Memory<byte>.Empty, SocketFlags.None).ConfigureAwait(false);
                }

                var memory = _receive.Writer.GetMemory(16 * 1024);
                int n = await _socket.ReceiveAsync(memory, SocketFlags.None).ConfigureAwait(false);
                if (n == 0)
                {
                    break;
                }

                _receive.Writer.Advance(n);
                var flush = await _receive.Writer.FlushAsync().ConfigureAwait(false);
                if (flush.IsCompleted)
                {
                    discard = true;
                }
            }
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException or InvalidOperationException)
        {
            error = ex;
        }

        try
        {
            _receive.Writer.Complete(error is SocketException ? new ConnectionClosedException(new ConnectionClosed(CloseReason.SocketError, error.Message, error)) : null);
        }
        catch (InvalidOperationException)
        {
        }
    }

    private async Task SendLoopAsync()
    {
        try
        {
            while (true)
            {
                var result = await _send.Reader.ReadAsync().ConfigureAwait(false);
                foreach (var segment in result.Buffer)
                {
                    int sent = 0;
                    while (sent < segment.Length)
                    {
                        sent += await _socket.SendAsync(segment[sent..], SocketFlags.None).ConfigureAwait(false);
                    }
                }

                _send.Reader.AdvanceTo(result.Buffer.End);
                if (result.IsCompleted || result.IsCanceled)
                {
                    break;
                }
            }

            if (Volatile.Read(ref _state) == 1)
            {
                _socket.Shutdown(SocketShutdown.Send);
            }
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException or InvalidOperationException)
        {
        }

        try
        {
            _send.Reader.Complete();
        }
        catch (InvalidOperationException)
        {
        }
    }

    private sealed class DuplexPipe(PipeReader input, PipeWriter output) : IDuplexPipe
    {
        public PipeReader Input { get; } = input;

        public PipeWriter Output { get; } = output;
    }
}

/// <summary>A <see cref="TargetConnection"/> seen as the transport's byte stream, for the TLS handshake over it.</summary>
internal sealed class TargetConnectionStream(TargetConnection connection) : INvmeConnection
{
    private readonly TaskCompletionSource<ConnectionClosed> _closed = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public IDuplexPipe Pipe => connection.Pipe;

    public TransportAddress RemoteAddress { get; } = new(connection.Remote, 0);

    public Task<ConnectionClosed> Closed => _closed.Task;

    public void Abort(ConnectionClosed reason)
    {
        if (_closed.TrySetResult(reason))
        {
            connection.Reset();
        }
    }

    public ValueTask DisposeAsync()
    {
        Abort(new ConnectionClosed(CloseReason.Disposed, "connection disposed"));
        return ValueTask.CompletedTask;
    }
}

/// <summary>The plaintext of a TLS connection accepted on a secure-channel listener, with the PSK identity it used.</summary>
internal sealed class TlsTargetConnection(TargetConnection inner, TlsPskConnection tls) : TargetConnection
{
    public override IDuplexPipe Pipe => tls.Pipe;

    public override string Remote => inner.Remote;

    public override string LocalHost => inner.LocalHost;

    /// <summary>The identity of the handshake (NVMe0R0h hostnqn subnqn): Connect must name the same host and subsystem.</summary>
    public string Identity => tls.Identity;

    public override void Close()
    {
        tls.Pipe.Output.Complete();
        inner.Close();
    }

    public override void Reset()
    {
        tls.Abort(new ConnectionClosed(CloseReason.ConnectionReset, "target reset the connection"));
        inner.Reset();
    }
}
