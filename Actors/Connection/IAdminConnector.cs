using ActorNvme.Transport.Tls;
using ActorNvme.Actors.Settings;
using ActorNvme.Io;
using ActorNvme.Protocol.Nvme;
using ActorNvme.Protocol.Tcp;
using ActorNvme.Transport;

namespace ActorNvme.Actors.Connection;

/// <summary>What a controller actor needs to open its admin queue. Tests substitute a scripted one.</summary>
public interface IAdminConnector
{
    /// <summary>
    /// Opens the byte stream (no PDU is exchanged yet). The returned connection is aborted as soon as
    /// <paramref name="lifetime"/> is cancelled, also after this task completes: the caller ends a
    /// connection's life by cancelling that token, so a connection that arrives after its owner stopped
    /// is never stranded.
    /// </summary>
    Task<IAdminConnection> ConnectAsync(AdminConnectRequest request, IAdminEvents events, CancellationToken lifetime);

    /// <summary>
    /// The connector for the I/O queues of the associations this connector opens, so they go where
    /// the admin queue went (NVMe/TCP, an in-memory network, a test fabric). <paramref name="settings"/>
    /// tunes it (io-receive-spin).
    /// </summary>
    IIoQueueConnector IoQueueConnector(NvmeHostSettings settings);
}

/// <summary>Where and how to connect an admin queue.</summary>
public sealed record AdminConnectRequest(TransportAddress Address, DigestOptions Digests, int QueueSize, string Owner)
{
    /// <summary>TCP_USER_TIMEOUT for the admin queue's socket (zero: the kernel's default).</summary>
    public TimeSpan TcpUserTimeout { get; init; }

    /// <summary>TLS 1.3 with this PSK over the connection; null: plain TCP.</summary>
    public TlsPskSession? Tls { get; init; }
}

/// <summary>Callbacks from the queue pair's read loop. The actor turns each into a message to itself.</summary>
public interface IAdminEvents
{
    void Completed(AdminResponse completion);

    void Closed(ConnectionClosed reason);
}

/// <summary>An admin command's completion, with the data the controller sent for it.</summary>
public sealed record AdminResponse(ushort CommandId, CompletionQueueEntry Entry, ReadOnlyMemory<byte> Data, bool DataDigestError);

/// <summary>An open admin queue.</summary>
public interface IAdminConnection
{
    /// <summary>Exchanges ICReq/ICResp; fails when the controller refuses the settings or does not answer.</summary>
    Task InitializeAsync(CancellationToken cancellationToken);

    /// <summary>Completes once, when the connection has ended, with why.</summary>
    Task<ConnectionClosed> Closed { get; }

    /// <summary>
    /// Queues a command. Returns false (never blocks) when every command id is in use or the queue is
    /// closed. <paramref name="dataInLength"/> bytes are received for it (C2HData) when positive.
    /// </summary>
    bool TrySubmit(in SubmissionQueueEntry command, ReadOnlyMemory<byte> dataOut, int dataInLength, out ushort commandId);

    /// <summary>
    /// The owner has handled the completion of <paramref name="commandId"/>: the id may be used again.
    /// Until then it stays in use, so a completion the owner has not read yet can never be credited
    /// to a newer command. A release of an id that is not awaiting one changes nothing.
    /// </summary>
    void Release(ushort commandId);

    /// <summary>Closes the queue, recording why.</summary>
    void Abort(ConnectionClosed reason);
}
