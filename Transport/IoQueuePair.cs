using System.Runtime.CompilerServices;
using ActorNvme.Protocol.Nvme;

namespace ActorNvme.Transport;

/// <summary>
/// An I/O queue. Each submission returns a <see cref="ValueTask{IoResult}"/> backed by the command's
/// preallocated table entry: nothing is allocated per command, and the awaiter's continuation runs
/// on the thread that received the completion (no thread hop). Submissions are safe from any thread
/// and never block: a full queue answers <see cref="CommandOutcome.QueueFull"/> at once.
/// </summary>
/// <remarks>
/// Await every returned task exactly once: the command id returns to the pool when the result is
/// taken. Continuations that block hold up the read loop of this queue.
/// </remarks>
public sealed class IoQueuePair : QueuePair
{
    private IoQueuePair(INvmeConnection connection, QueuePairOptions options, ushort queueId)
        : base(connection, options, queueId)
    {
    }

    /// <summary>
    /// Opens a connection, initializes it (ICReq/ICResp) and, given <paramref name="connect"/>, sends
    /// Fabrics Connect for queue <paramref name="queueId"/>. Throws <see cref="ConnectionClosedException"/>
    /// (ConnectRejected when the controller refuses the Connect).
    /// </summary>
    public static async Task<IoQueuePair> ConnectAsync(
        INvmeTransport transport,
        TransportAddress address,
        ushort queueId,
        QueuePairOptions options,
        FabricsConnectParameters? connect,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(transport);
        var connection = await transport.ConnectAsync(address, cancellationToken).ConfigureAwait(false);
        return await StartAsync(connection, queueId, options, connect, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Same as <see cref="ConnectAsync"/> over a connection that is already open.</summary>
    public static async Task<IoQueuePair> StartAsync(INvmeConnection connection, ushort queueId, QueuePairOptions options, FabricsConnectParameters? connect, CancellationToken cancellationToken = default)
    {
        var queuePair = new IoQueuePair(connection, options, queueId);
        try
        {
            await queuePair.InitializeAsync(cancellationToken).ConfigureAwait(false);
            if (connect is not null)
            {
                await queuePair.ConnectQueueAsync(connect, cancellationToken).ConfigureAwait(false);

                // The Connect answer resumed us on the receive thread; the caller must not run there.
                await Task.Yield();
            }
        }
        catch
        {
            await queuePair.DisposeAsync().ConfigureAwait(false);
            throw;
        }

        return queuePair;
    }

    /// <summary>Submits a command without data.</summary>
    public ValueTask<IoResult> SubmitAsync(in SubmissionQueueEntry command) =>
        Submit(command, DataDirection.None, default, default);

    /// <summary>Submits a command that reads into <paramref name="destination"/>.</summary>
    public ValueTask<IoResult> SubmitReadAsync(in SubmissionQueueEntry command, Memory<byte> destination) =>
        Submit(command, DataDirection.ControllerToHost, default, destination);

    /// <summary>Submits a command that writes <paramref name="source"/> (in-capsule up to the in-capsule size, otherwise on R2T).</summary>
    public ValueTask<IoResult> SubmitWriteAsync(in SubmissionQueueEntry command, ReadOnlyMemory<byte> source) =>
        Submit(command, DataDirection.HostToController, source, default);

    /// <summary>NVM Read of <paramref name="blockCount"/> blocks into <paramref name="destination"/> (exactly their size).</summary>
    public ValueTask<IoResult> ReadAsync(uint namespaceId, ulong startLba, int blockCount, Memory<byte> destination) =>
        SubmitReadAsync(NvmCommands.Read(namespaceId, startLba, blockCount), destination);

    /// <summary>NVM Write of <paramref name="blockCount"/> blocks from <paramref name="source"/> (exactly their size).</summary>
    public ValueTask<IoResult> WriteAsync(uint namespaceId, ulong startLba, int blockCount, ReadOnlyMemory<byte> source) =>
        SubmitWriteAsync(NvmCommands.Write(namespaceId, startLba, blockCount), source);

    /// <summary>Sends Fabrics Connect for this queue and returns its completion (CNTLID in dword 0).</summary>
    public ValueTask<IoResult> SendConnectAsync(FabricsConnectParameters parameters)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        var data = new byte[FabricsConnectData.Size];
        FabricsConnectData.Write(data, parameters);
        return SubmitWriteAsync(FabricsConnectData.Command(QueueId, Options.QueueSize, parameters), data);
    }

    private async Task ConnectQueueAsync(FabricsConnectParameters parameters, CancellationToken cancellationToken)
    {
        IoResult result;
        try
        {
            result = await SendConnectAsync(parameters).AsTask().WaitAsync(Options.InitializationTimeout, cancellationToken).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            var timeout = new ConnectionClosed(CloseReason.InitializationTimeout, $"no answer to Fabrics Connect (queue {QueueId}) from {RemoteAddress} within {Options.InitializationTimeout.TotalSeconds:0.###} s");
            Abort(timeout);
            throw new ConnectionClosedException(timeout);
        }

        if (result.Outcome == CommandOutcome.ConnectionClosed)
        {
            throw new ConnectionClosedException(await Closed.ConfigureAwait(false));
        }

        if (!result.IsSuccess)
        {
            var rejected = new ConnectionClosed(
                CloseReason.ConnectRejected,
                $"{RemoteAddress} refused Fabrics Connect for queue {QueueId} of {parameters.SubsystemNqn}: {(result.Outcome == CommandOutcome.Completed ? result.Status.ToString(CommandSet.Fabrics) : result.Outcome.ToString())}");
            Abort(rejected);
            throw new ConnectionClosedException(rejected);
        }
    }

    /// <summary>
    /// As <see cref="SubmitAsync(in SubmissionQueueEntry)"/>, <see cref="SubmitReadAsync(in SubmissionQueueEntry, Memory{byte})"/> and
    /// <see cref="SubmitWriteAsync(in SubmissionQueueEntry, ReadOnlyMemory{byte})"/> (by <paramref name="direction"/>), telling the
    /// command id the command got (0 when it was not submitted): what an Abort command names, with <see cref="QueuePair.QueueId"/>.
    /// </summary>
    public ValueTask<IoResult> SubmitAsync(in SubmissionQueueEntry command, DataDirection direction, ReadOnlyMemory<byte> outgoing, Memory<byte> incoming, out ushort commandId)
    {
        var status = TrySubmitCore(command, direction, outgoing, incoming, null, out var slot);
        commandId = status == SubmitStatus.Submitted ? slot!.CommandId : (ushort)0;
        return status switch
        {
            SubmitStatus.Submitted => new ValueTask<IoResult>(slot!, slot!.Version),
            SubmitStatus.QueueFull => ValueTask.FromResult(new IoResult(CommandOutcome.QueueFull, default, 0)),
            _ => ValueTask.FromResult(new IoResult(CommandOutcome.ConnectionClosed, ClosedCompletion(0), 0)),
        };
    }

    private ValueTask<IoResult> Submit(in SubmissionQueueEntry command, DataDirection direction, ReadOnlyMemory<byte> outgoing, Memory<byte> incoming)
    {
        var status = TrySubmitCore(command, direction, outgoing, incoming, null, out var slot);
        return status switch
        {
            SubmitStatus.Submitted => new ValueTask<IoResult>(slot!, slot!.Version),
            SubmitStatus.QueueFull => ValueTask.FromResult(new IoResult(CommandOutcome.QueueFull, default, 0)),
            _ => ValueTask.FromResult(new IoResult(CommandOutcome.ConnectionClosed, ClosedCompletion(0), 0)),
        };
    }

    private protected override void OnFinished(CommandSlot slot)
    {
        var result = new IoResult(slot.Outcome, slot.Completion, slot.BytesTransferred);
        slot.ClearRequest();

        // The awaiter is the owner: the id returns to the pool when it takes the result (GetResult),
        // not before, so a submission from any thread cannot reuse the slot under an unread result.
        Volatile.Write(ref slot.State, CommandSlot.Delivered);
        slot.SetResult(result);
    }
}
