using ActorNvme.Protocol.Nvme;

namespace ActorNvme.Transport;

/// <summary>
/// The admin queue (queue id 0) of one controller association. Submissions never block; every
/// completion goes to the owner's <see cref="IAdminCompletionSink"/>, then <see cref="IAdminCompletionSink.OnClosed"/>
/// once the queue pair has closed and the last command was delivered. A delivered command keeps its
/// id until the owner calls <see cref="Release"/>.
/// </summary>
public sealed class AdminQueuePair : QueuePair
{
    private readonly IAdminCompletionSink _sink;

    private AdminQueuePair(INvmeConnection connection, QueuePairOptions options, IAdminCompletionSink sink)
        : base(connection, options, queueId: 0)
    {
        _sink = sink;
    }

    /// <summary>
    /// Opens a connection through <paramref name="transport"/> and initializes it (ICReq/ICResp).
    /// The Fabrics Connect command is the owner's to send (the bring-up script, <see cref="BringUp.ControllerBringUp"/>),
    /// so the owner sees its answer like any other completion. Throws <see cref="ConnectionClosedException"/>.
    /// </summary>
    public static async Task<AdminQueuePair> ConnectAsync(
        INvmeTransport transport,
        TransportAddress address,
        QueuePairOptions options,
        IAdminCompletionSink sink,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(transport);
        ArgumentNullException.ThrowIfNull(sink);
        var connection = await transport.ConnectAsync(address, cancellationToken).ConfigureAwait(false);
        return await StartAsync(connection, options, sink, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Initializes an admin queue pair over a connection that is already open.</summary>
    public static async Task<AdminQueuePair> StartAsync(INvmeConnection connection, QueuePairOptions options, IAdminCompletionSink sink, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(sink);
        var queuePair = new AdminQueuePair(connection, options, sink);
        try
        {
            await queuePair.InitializeAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            // The connection ends with the handshake's reason, not a plain "disposed", so whoever
            // watches its Closed task learns why.
            if (e is ConnectionClosedException closed)
            {
                connection.Abort(closed.Closed);
            }

            await connection.DisposeAsync().ConfigureAwait(false);
            throw;
        }

        return queuePair;
    }

    /// <summary>Submits a command without data.</summary>
    public SubmitStatus TrySubmit(in SubmissionQueueEntry command, object? state, out ushort commandId) =>
        Submit(command, DataDirection.None, default, default, state, out commandId);

    /// <summary>Submits a command whose data the controller returns into <paramref name="destination"/> (Identify, Get Log Page, ...).</summary>
    public SubmitStatus TrySubmitRead(in SubmissionQueueEntry command, Memory<byte> destination, object? state, out ushort commandId) =>
        Submit(command, DataDirection.ControllerToHost, default, destination, state, out commandId);

    /// <summary>Submits a command that sends <paramref name="source"/> (in-capsule up to 8 KiB, beyond that on R2T).</summary>
    public SubmitStatus TrySubmitWrite(in SubmissionQueueEntry command, ReadOnlyMemory<byte> source, object? state, out ushort commandId) =>
        Submit(command, DataDirection.HostToController, source, default, state, out commandId);

    private SubmitStatus Submit(in SubmissionQueueEntry command, DataDirection direction, ReadOnlyMemory<byte> outgoing, Memory<byte> incoming, object? state, out ushort commandId)
    {
        var status = TrySubmitCore(command, direction, outgoing, incoming, state, out var slot);
        commandId = slot?.CommandId ?? 0;
        return status;
    }

    private protected override void OnFinished(CommandSlot slot)
    {
        var completion = new AdminCompletion(slot.CommandId, slot.Completion, slot.BytesTransferred, slot.UserState, slot.Outcome);
        slot.ClearRequest();

        // The id stays reserved until the owner releases it: an owner that handles completions later
        // (an actor's mailbox) must not see a new command take the id of an answer it has not read.
        // Until then a PDU naming this id is refused like any id that is not outstanding.
        Volatile.Write(ref slot.State, CommandSlot.Delivered);
        _sink.OnCompletion(completion);
    }

    /// <summary>
    /// Returns the id of a completion the owner has handled to the pool. Every completion delivered
    /// with <see cref="CommandOutcome.Completed"/> or <see cref="CommandOutcome.DataDigestError"/>
    /// must be released once, or its id stays in use; releasing after the queue pair closed is
    /// harmless. Returns false when <paramref name="commandId"/> was not awaiting release (nothing changes).
    /// </summary>
    public bool Release(ushort commandId) => TryReleaseDelivered(commandId);

    private protected override void OnDrained(ConnectionClosed closed) => _sink.OnClosed(closed);
}
