namespace ActorNvme.Transport;

/// <summary>
/// Why a connection closed, grouped by cause in number ranges (as Pipelines.Sockets.Unofficial's
/// PipeShutdownKind does) so logs and metric tags can aggregate by <see cref="CloseCause"/>.
/// </summary>
public enum CloseReason
{
    // 1xx: this side chose to close.
    LocalShutdown = 100,
    Disposed = 101,
    KeepAliveTimeout = 102,
    CommandTimeout = 103,
    ControllerDeleted = 104,
    InternalError = 105, // a bug on this side; the exception says where
    ResetRequested = 106,

    // 2xx: the peer closed or said it failed.
    PeerClosed = 200,
    ConnectionReset = 201,
    PeerTerminated = 202, // C2HTermReq / H2CTermReq received
    ConnectRejected = 203, // Fabrics Connect (or another set-up command) answered with an error status
    AuthenticationFailed = 204, // DH-HMAC-CHAP refused the host, the controller failed to prove itself, or no key for a controller that requires one
    TlsHandshakeFailed = 205, // the TLS handshake was refused (wrong PSK, no PSK for this host there, a listener without TLS)

    // 3xx: the peer broke the protocol; we sent a TermReq and closed.
    MalformedPdu = 300,
    UnexpectedPdu = 301,
    HeaderDigestError = 302,
    UnknownCommandId = 303,
    DataOutOfRange = 304,
    SuccessWithoutLastPdu = 305,
    InitializationRefused = 306, // ICResp answered with settings we did not ask for
    PduTooLarge = 307,

    // 4xx: the network failed us.
    ConnectFailed = 400,
    ConnectTimeout = 401,
    SocketError = 402,
    InitializationTimeout = 403,
}

/// <summary>The group a <see cref="CloseReason"/> belongs to.</summary>
public enum CloseCause
{
    Local = 1,
    Remote = 2,
    Protocol = 3,
    Network = 4,
}

public static class CloseReasonExtensions
{
    public static CloseCause Cause(this CloseReason reason) => (CloseCause)((int)reason / 100);
}

/// <summary>A closed connection: why, a sentence for a person, and the exception if one was involved.</summary>
public sealed record ConnectionClosed(CloseReason Reason, string Detail, Exception? Exception = null)
{
    public CloseCause Cause => Reason.Cause();

    /// <summary>The status a controller answered a set-up command (Fabrics Connect, say) with, for <see cref="CloseReason.ConnectRejected"/>; its DNR bit says whether retrying can help.</summary>
    public Protocol.Nvme.NvmeStatus? RefusalStatus { get; init; }

    public override string ToString() => $"{Reason} ({Cause}): {Detail}";
}

/// <summary>Thrown to callers whose operation could not complete because the connection closed.</summary>
public sealed class ConnectionClosedException : Exception
{
    public ConnectionClosedException(ConnectionClosed closed)
        : base($"NVMe/TCP connection closed: {closed}", closed.Exception)
    {
        Closed = closed;
    }

    public ConnectionClosedException()
        : this(new ConnectionClosed(CloseReason.Disposed, "closed"))
    {
    }

    public ConnectionClosedException(string message)
        : this(new ConnectionClosed(CloseReason.Disposed, message))
    {
    }

    public ConnectionClosedException(string message, Exception inner)
        : this(new ConnectionClosed(CloseReason.SocketError, message, inner))
    {
    }

    public ConnectionClosed Closed { get; }
}
