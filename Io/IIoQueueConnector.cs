using ActorNvme.Protocol.Auth;
using ActorNvme.Protocol.Tcp;
using ActorNvme.Transport;
using ActorNvme.Transport.Tls;

namespace ActorNvme.Io;

/// <summary>What a controller actor needs to open its I/O queues. Tests substitute a scripted one.</summary>
public interface IIoQueueConnector
{
    /// <summary>
    /// Connects queues 1..<see cref="IoQueueConnectRequest.QueueCount"/> (ICReq/ICResp, then Fabrics
    /// Connect with the admin queue's CNTLID). Fails with <see cref="ConnectionClosedException"/> when any
    /// queue cannot be connected; the queues already connected are closed then. The returned set is
    /// aborted as soon as <paramref name="lifetime"/> is cancelled, also after this task completed: the
    /// caller ends the set's life by cancelling that token, so a set that arrives after its owner stopped
    /// is never stranded.
    /// </summary>
    Task<IoQueueSet> ConnectAsync(IoQueueConnectRequest request, CancellationToken lifetime);
}

/// <summary>Where and how to connect the I/O queues of one controller association.</summary>
/// <param name="Address">The controller's transport address (the admin queue's).</param>
/// <param name="SubsystemNqn">SUBNQN sent in Connect.</param>
/// <param name="HostNqn">HOSTNQN sent in Connect (must match the admin queue's).</param>
/// <param name="HostId">HOSTID sent in Connect (must match the admin queue's).</param>
/// <param name="ControllerId">CNTLID the admin queue's Connect returned.</param>
/// <param name="QueueCount">I/O queues to connect (qid 1..QueueCount), as granted by Set Features Number of Queues.</param>
/// <param name="QueueSize">Entries per queue (SQSIZE + 1): the configured io-queue-size, at most CAP.MQES + 1.</param>
/// <param name="InCapsuleDataSize">Largest write sent in the capsule (from IOCCSZ).</param>
/// <param name="MaxTransferSize">Largest data transfer of one command (from MDTS); larger I/O is split.</param>
/// <param name="Digests">Header/data digests to ask for.</param>
/// <param name="DisableSqFlowControl">Ask for SQ flow control to be disabled (CATTR bit 2).</param>
/// <param name="WaitLimit">I/O that may wait for a free queue entry at once (io-hold-limit).</param>
/// <param name="ConnectTimeout">Bound on ICReq/ICResp and on the Connect answer of each queue.</param>
/// <param name="Owner">Who holds the set (for logs and the ownership ledger).</param>
public sealed record IoQueueConnectRequest(
    TransportAddress Address,
    string SubsystemNqn,
    string HostNqn,
    Guid HostId,
    ushort ControllerId,
    int QueueCount,
    int QueueSize,
    int InCapsuleDataSize,
    int MaxTransferSize,
    DigestOptions Digests,
    bool DisableSqFlowControl,
    int WaitLimit,
    TimeSpan ConnectTimeout,
    string Owner)
{
    /// <summary>TCP_USER_TIMEOUT for each I/O queue's socket (zero: the kernel's default).</summary>
    public TimeSpan TcpUserTimeout { get; init; }

    /// <summary>DH-HMAC-CHAP credentials for queues whose Connect answer asks for authentication (AUTHREQ.ATR); null: none.</summary>
    public DhChapHostCredentials? Authentication { get; init; }

    /// <summary>TLS 1.3 with this PSK over each queue's connection; null: plain TCP.</summary>
    public TlsPskSession? Tls { get; init; }
}
