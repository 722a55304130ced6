using System.IO.Pipelines;
using System.Security.Cryptography;
using System.Text;
using ActorNvme.Protocol.Tls;
using Org.BouncyCastle.Tls;

namespace ActorNvme.Transport.Tls;

/// <summary>What one controller association's TLS needs: the configured PSK and the NQNs its identity names.</summary>
/// <param name="Psk">The configured PSK (an interchange string's key); its length picks the cipher suite.</param>
/// <param name="HostNqn">The host NQN sent in Connect (it also salts the retained PSK).</param>
/// <param name="SubsystemNqn">The subsystem NQN sent in Connect.</param>
public sealed record TlsPskSession(NvmeTlsPsk Psk, string HostNqn, string SubsystemNqn)
{
    /// <summary>Bound on the TLS handshake of one connection.</summary>
    public TimeSpan HandshakeTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>The cipher suite offered (only one: the PSK's hash fixes it).</summary>
    public NvmeTlsCipherSuite CipherSuite => Psk.CipherSuite;

    /// <summary>1: offer the TP 8018 identity with the PSK digest (<c>NVMe1R0h hostnqn subnqn digest</c>); 0: <c>NVMe0R0h hostnqn subnqn</c>.</summary>
    public int IdentityVersion { get; init; }

    /// <summary>The PSK identity sent in the ClientHello.</summary>
    public string Identity => ParsedIdentity().ToString();

    /// <summary>The identity with its parts; a version-1 identity computes its digest from the retained PSK.</summary>
    public NvmeTlsPskIdentity ParsedIdentity()
    {
        if (IdentityVersion != 1)
        {
            return new NvmeTlsPskIdentity(0, CipherSuite, HostNqn, SubsystemNqn);
        }

        byte[] retained = Psk.RetainedPsk(HostNqn);
        try
        {
            return new NvmeTlsPskIdentity(1, CipherSuite, HostNqn, SubsystemNqn, NvmeTlsPskDerivation.PskDigest(retained, CipherSuite, HostNqn, SubsystemNqn));
        }
        finally
        {
            CryptographicOperations.ZeroMemory(retained);
        }
    }

    public override string ToString() => $"TLS PSK {Identity} ({CipherSuite})";
}

/// <summary>
/// NVMe/TCP over TLS 1.3 with an external PSK (the secure channel of the NVMe/TCP transport): opens the byte
/// stream with <paramref name="inner"/>, runs the TLS handshake over it (BouncyCastle, one PSK identity, one cipher
/// suite), and hands the queue pair a plaintext stream whose read loop runs on a thread of its own. A refused
/// handshake fails the connect with <see cref="CloseReason.TlsHandshakeFailed"/> naming the subsystem.
/// </summary>
public sealed class TlsPskTransport(INvmeTransport inner, TlsPskSession session) : INvmeTransport
{
    public async ValueTask<INvmeConnection> ConnectAsync(TransportAddress address, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(address);
        var connection = await inner.ConnectAsync(address, cancellationToken).ConfigureAwait(false);
        // Records straight on the socket when the transport offers that; else through the connection's pipe.
        Stream stream = connection is Tcp.IStreamConnection direct ? direct.Stream : new DuplexPipeStream(connection.Pipe);
        var protocol = new TlsClientProtocol(stream);
        var client = new NvmeTlsPskClient(session);

        // BouncyCastle's blocking handshake runs off the caller's thread; a timeout or cancel aborts the byte stream, which ends it.
        var handshake = Task.Run(() => protocol.Connect(client), CancellationToken.None);
        try
        {
            await handshake.WaitAsync(session.HandshakeTimeout, cancellationToken).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            var timedOut = new ConnectionClosed(CloseReason.InitializationTimeout, $"TLS handshake with {session.SubsystemNqn} at {address}: no answer within {session.HandshakeTimeout.TotalSeconds:0.###} s");
            connection.Abort(timedOut);
            await Observe(handshake).ConfigureAwait(false);
            throw new ConnectionClosedException(timedOut);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            connection.Abort(new ConnectionClosed(CloseReason.LocalShutdown, "TLS handshake cancelled"));
            await Observe(handshake).ConfigureAwait(false);
            throw;
        }
        catch (Exception e)
        {
            // SPDK's target knows only version-0 identities and refuses a version-1 one as it refuses a wrong key.
            string version1 = session.IdentityVersion == 1 ? $"; the identity was NVMe1R0{(int)session.CipherSuite} (psk-identity-version 1), which some controllers (SPDK's) do not know: psk-identity-version 0 offers NVMe0R0{(int)session.CipherSuite}" : string.Empty;
            var refused = new ConnectionClosed(CloseReason.TlsHandshakeFailed, $"TLS handshake with {session.SubsystemNqn} at {address} failed: {Describe(e, client)}{version1}", e);
            connection.Abort(refused);
            throw new ConnectionClosedException(refused);
        }

        return new TlsPskConnection(connection, protocol, session.CipherSuite, session.Identity);
    }

    private static async Task Observe(Task task)
    {
        try
        {
            await task.ConfigureAwait(false);
        }
        catch (Exception)
        {
            // The handshake was abandoned; its failure is the abort we caused.
        }
    }

    private static string Describe(Exception e, NvmeTlsPskClient client) => e switch
    {
        TlsFatalAlertReceived received => $"the controller sent alert {AlertDescription.GetText(received.AlertDescription)} ({Hint(received.AlertDescription)})",
        TlsFatalAlert raised when client.PskRefused => $"the controller did not accept the PSK identity {client.Session.Identity} (wrong PSK, or this host NQN has no PSK there)",
        // BouncyCastle raises a bare handshake_failure when the stream ends before the handshake completed.
        TlsFatalAlert raised when raised.AlertDescription == AlertDescription.handshake_failure && raised.Message == AlertDescription.GetText(raised.AlertDescription)
            => $"the controller closed the connection before the handshake completed, without an alert (Linux's tlshd does so for a wrong PSK, or one it binds to another hash, for identity {client.Session.Identity})",
        TlsFatalAlert raised => $"this host stopped it with alert {AlertDescription.GetText(raised.AlertDescription)}{(raised.Message is { Length: > 0 } m ? $": {m}" : string.Empty)}",
        ConnectionClosedException closed => closed.Closed.Detail,
        EndOfStreamException or IOException or OperationCanceledException => $"the controller closed the connection during the handshake (wrong PSK, no PSK for this host NQN, or a listener without TLS): {e.Message}",
        _ => e.Message,
    };

    private static string Hint(short alert) => alert switch
    {
        AlertDescription.decrypt_error or AlertDescription.illegal_parameter => "wrong PSK",
        AlertDescription.handshake_failure or AlertDescription.unknown_psk_identity => "the controller has no PSK for this identity, or a different one",
        AlertDescription.protocol_version => "the controller does not speak TLS 1.3",
        _ => "refused",
    };
}

/// <summary>The TLS 1.3 client: offers one external PSK with the one cipher suite its hash allows, nothing else.</summary>
internal sealed class NvmeTlsPskClient(TlsPskSession session) : AbstractTlsClient(new Org.BouncyCastle.Tls.Crypto.Impl.BC.BcTlsCrypto())
{
    public TlsPskSession Session => session;

    /// <summary>True when the controller answered without choosing our PSK.</summary>
    public bool PskRefused { get; private set; }

    protected override ProtocolVersion[] GetSupportedVersions() => ProtocolVersion.TLSv13.Only();

    protected override int[] GetSupportedCipherSuites() =>
        [session.CipherSuite == NvmeTlsCipherSuite.Aes256GcmSha384 ? CipherSuite.TLS_AES_256_GCM_SHA384 : CipherSuite.TLS_AES_128_GCM_SHA256];

    public override IList<TlsPskExternal> GetExternalPsks()
    {
        var identity = session.ParsedIdentity();
        byte[] retained = session.Psk.RetainedPsk(session.HostNqn);
        byte[] tlsPsk = NvmeTlsPskDerivation.TlsPsk(retained, identity);
        try
        {
            int prf = session.CipherSuite == NvmeTlsCipherSuite.Aes256GcmSha384 ? PrfAlgorithm.tls13_hkdf_sha384 : PrfAlgorithm.tls13_hkdf_sha256;
            return [new BasicTlsPskExternal(Encoding.UTF8.GetBytes(identity.ToString()), Crypto.CreateSecret(tlsPsk), prf)];
        }
        finally
        {
            CryptographicOperations.ZeroMemory(retained);
            CryptographicOperations.ZeroMemory(tlsPsk);
        }
    }

    public override void NotifySelectedPsk(TlsPsk? selectedPsk)
    {
        if (selectedPsk is null)
        {
            PskRefused = true;
            throw new TlsFatalAlert(AlertDescription.handshake_failure, "the controller did not select the PSK");
        }
    }

    // A PSK handshake has no certificates; a controller that asks for them is not the one configured.
    public override TlsAuthentication GetAuthentication() => throw new TlsFatalAlert(AlertDescription.handshake_failure, "the controller wants certificate authentication; only PSK is configured");
}

/// <summary>The plaintext side of one TLS connection (either end), over the byte stream it was opened on.</summary>
public sealed class TlsPskConnection : INvmeConnection, ITcpUserTimeoutConnection
{
    private const int ReadBufferSize = 64 * 1024;

    private readonly INvmeConnection _inner;
    private readonly TaskCompletionSource<ConnectionClosed> _closed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly PipeReader _input;
    private readonly PipeWriter _output;

    internal TlsPskConnection(INvmeConnection inner, TlsProtocol protocol, NvmeTlsCipherSuite cipherSuite, string identity)
    {
        _inner = inner;
        CipherSuite = cipherSuite;
        Identity = identity;
        var plaintext = new TlsPlaintextStream(protocol);
        _input = PipeReader.Create(plaintext, new StreamPipeReaderOptions(bufferSize: ReadBufferSize, minimumReadSize: ReadBufferSize / 4, leaveOpen: true));
        _output = PipeWriter.Create(plaintext, new StreamPipeWriterOptions(minimumBufferSize: ReadBufferSize, leaveOpen: true));
        Pipe = new DuplexPipe(_input, _output);
        _ = inner.Closed.ContinueWith(t => _closed.TrySetResult(t.Result), CancellationToken.None, TaskContinuationOptions.OnlyOnRanToCompletion, TaskScheduler.Default);
    }

    public NvmeTlsCipherSuite CipherSuite { get; }

    /// <summary>The PSK identity the handshake used (NVMe0R0h hostnqn subnqn).</summary>
    public string Identity { get; }

    public IDuplexPipe Pipe { get; }

    public TransportAddress RemoteAddress => _inner.RemoteAddress;

    public Task<ConnectionClosed> Closed => _closed.Task;

    public bool TrySetUserTimeout(TimeSpan timeout) => _inner is ITcpUserTimeoutConnection tcp && tcp.TrySetUserTimeout(timeout);

    public TimeSpan? TryGetUserTimeout() => (_inner as ITcpUserTimeoutConnection)?.TryGetUserTimeout();

    /// <summary>Decryption blocks in BouncyCastle: the read loop gets a thread of its own, as the raw socket's does.</summary>
    public Task RunReadLoop(Func<Task> readLoop)
    {
        ArgumentNullException.ThrowIfNull(readLoop);
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var thread = new Thread(() =>
        {
            try
            {
                readLoop().GetAwaiter().GetResult();
                done.TrySetResult();
            }
            catch (Exception e)
            {
                done.TrySetException(e);
            }
        })
        {
            IsBackground = true,
            Name = $"nvme-tcp tls receive {RemoteAddress}",
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

        _input.CancelPendingRead();
        _output.CancelPendingFlush();
        _inner.Abort(reason); // wakes a read blocked in the TLS layer
    }

    public ValueTask DisposeAsync()
    {
        Abort(new ConnectionClosed(CloseReason.Disposed, "connection disposed"));
        return ValueTask.CompletedTask;
    }
}

/// <summary>
/// Application data of a TLS connection as a stream whose reads and writes complete synchronously: the pipe
/// reader's loop runs on its own thread, and a flush writes its batch as TLS records on the flushing thread
/// (BouncyCastle serializes record writes against a KeyUpdate answer the reader may send).
/// </summary>
internal sealed class TlsPlaintextStream(TlsProtocol protocol) : Stream
{
    public override bool CanRead => true;

    public override bool CanSeek => false;

    public override bool CanWrite => true;

    public override long Length => throw new NotSupportedException();

    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    public override int Read(byte[] buffer, int offset, int count)
    {
        try
        {
            return Math.Max(0, protocol.ReadApplicationData(buffer, offset, count));
        }
        catch (TlsNoCloseNotifyException)
        {
            return 0; // the peer closed the TCP connection without close_notify: an end like any other here
        }
    }

    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        try
        {
            if (System.Runtime.InteropServices.MemoryMarshal.TryGetArray<byte>(buffer, out var segment))
            {
                return ValueTask.FromResult(Read(segment.Array!, segment.Offset, segment.Count));
            }

            var copy = new byte[buffer.Length];
            int read = Read(copy, 0, copy.Length);
            copy.AsSpan(0, read).CopyTo(buffer.Span);
            return ValueTask.FromResult(read);
        }
        catch (Exception) when (cancellationToken.IsCancellationRequested)
        {
            // Aborted on purpose: the pipe reader reports a canceled read, and the connection knows why.
            return ValueTask.FromCanceled<int>(cancellationToken);
        }
    }

    public override void Write(byte[] buffer, int offset, int count) => protocol.WriteApplicationData(buffer, offset, count);

    public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (System.Runtime.InteropServices.MemoryMarshal.TryGetArray(buffer, out var segment))
        {
            Write(segment.Array!, segment.Offset, segment.Count);
        }
        else
        {
            var copy = buffer.ToArray();
            Write(copy, 0, copy.Length);
        }

        return ValueTask.CompletedTask;
    }

    public override void Flush()
    {
    }

    public override Task FlushAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();
}

/// <summary>
/// The ciphertext side: BouncyCastle's blocking reads and writes over the inner connection's pipes. Reads block
/// the calling thread (the handshake's, then the plaintext read loop's); writes flush at once.
/// </summary>
internal sealed class DuplexPipeStream(IDuplexPipe pipe) : Stream
{
    private readonly Stream _input = pipe.Input.AsStream(leaveOpen: true);
    private readonly Stream _output = pipe.Output.AsStream(leaveOpen: true);

    public override bool CanRead => true;

    public override bool CanSeek => false;

    public override bool CanWrite => true;

    public override long Length => throw new NotSupportedException();

    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    public override int Read(byte[] buffer, int offset, int count) => _input.Read(buffer, offset, count);

    public override int Read(Span<byte> buffer) => _input.Read(buffer);

    public override void Write(byte[] buffer, int offset, int count)
    {
        _output.Write(buffer, offset, count);
        _output.Flush();
    }

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        _output.Write(buffer);
        _output.Flush();
    }

    public override void Flush() => _output.Flush();

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();
}
