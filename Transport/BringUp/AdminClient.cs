using ActorNvme.Protocol.Data;
using ActorNvme.Protocol.Nvme;

namespace ActorNvme.Transport.BringUp;

/// <summary>A bring-up or shutdown that failed; <see cref="Failure"/> names the step.</summary>
public sealed class ControllerBringUpException : Exception
{
    public ControllerBringUpException(BringUpFailure failure)
        : base(failure?.ToString())
    {
        Failure = failure ?? throw new ArgumentNullException(nameof(failure));
    }

    public ControllerBringUpException()
        : this(new BringUpFailure(BringUpStep.FabricsConnect, "bring-up", BringUpFailureKind.NotCompleted, null, "failed"))
    {
    }

    public ControllerBringUpException(string message)
        : this(new BringUpFailure(BringUpStep.FabricsConnect, "bring-up", BringUpFailureKind.NotCompleted, null, message))
    {
    }

    public ControllerBringUpException(string message, Exception innerException)
        : base(message, innerException)
    {
        Failure = new BringUpFailure(BringUpStep.FabricsConnect, "bring-up", BringUpFailureKind.NotCompleted, null, message);
    }

    public BringUpFailure Failure { get; }
}

/// <summary>
/// An admin queue driven by awaited calls, for short-lived clients (the one-shot <c>discover</c>,
/// test harnesses): each submission's completion completes its own task. It drives
/// <see cref="ControllerBringUp"/> and <see cref="ControllerShutdown"/> with the wall clock. The host's
/// controllers do not use it: their actor drives the same machines from its mailbox.
/// </summary>
public sealed class AdminClient : IAdminCompletionSink, IAsyncDisposable
{
    private readonly TaskCompletionSource<ConnectionClosed> _closed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private AdminQueuePair? _queue;

    private AdminClient()
    {
    }

    /// <summary>The admin queue pair (for submissions of the caller's own).</summary>
    public AdminQueuePair Queue => _queue ?? throw new InvalidOperationException("not connected");

    /// <summary>Completes once, when the queue pair has closed.</summary>
    public Task<ConnectionClosed> Closed => _closed.Task;

    /// <summary>Opens the connection and exchanges ICReq/ICResp. Throws <see cref="ConnectionClosedException"/> (or the transport's socket error).</summary>
    public static async Task<AdminClient> ConnectAsync(INvmeTransport transport, TransportAddress address, QueuePairOptions options, CancellationToken cancellationToken = default)
    {
        var client = new AdminClient();
        client._queue = await AdminQueuePair.ConnectAsync(transport, address, options, client, cancellationToken).ConfigureAwait(false);
        return client;
    }

    /// <summary>Runs the bring-up script; throws <see cref="ControllerBringUpException"/> naming the step that failed.</summary>
    public Task<ControllerBringUpResult> BringUpAsync(BringUpOptions options, CancellationToken cancellationToken = default) =>
        AdminScriptDriver.RunAsync(new ControllerBringUp(options), SubmitAsync, cancellationToken);

    /// <summary>CC.SHN normal, then waits for CSTS.SHST complete within <paramref name="timeout"/>; throws <see cref="ControllerBringUpException"/>.</summary>
    public Task ShutdownAsync(ControllerConfiguration configuration, TimeSpan pollInterval, TimeSpan timeout, CancellationToken cancellationToken = default) =>
        AdminScriptDriver.RunAsync(new ControllerShutdown(configuration, pollInterval, timeout), SubmitAsync, cancellationToken);

    /// <summary>Submits a script's command; its data (if any) comes back with the completion.</summary>
    public async Task<BringUpCompletion> SubmitAsync(BringUpCommand command, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(command);
        var (completion, data) = await SubmitAsync(command.Command, command.DataOut, command.DataInLength, cancellationToken).ConfigureAwait(false);
        return new BringUpCompletion(completion.Completion, data, completion.Outcome == CommandOutcome.DataDigestError);
    }

    /// <summary>Submits one command and waits for its completion (or the end of the connection).</summary>
    public async Task<(AdminCompletion Completion, ReadOnlyMemory<byte> Data)> SubmitAsync(SubmissionQueueEntry command, ReadOnlyMemory<byte> dataOut, int dataInLength, CancellationToken cancellationToken = default)
    {
        var answered = new TaskCompletionSource<AdminCompletion>(TaskCreationOptions.RunContinuationsAsynchronously);
        byte[]? buffer = dataInLength > 0 ? new byte[dataInLength] : null;
        var status = buffer is not null ? Queue.TrySubmitRead(command, buffer, answered, out _)
            : !dataOut.IsEmpty ? Queue.TrySubmitWrite(command, dataOut, answered, out _)
            : Queue.TrySubmit(command, answered, out _);
        if (status != SubmitStatus.Submitted)
        {
            throw new ConnectionClosedException(Closed.IsCompleted ? Closed.Result : new ConnectionClosed(CloseReason.LocalShutdown, $"the admin queue refused the submission ({status})"));
        }

        var finished = await Task.WhenAny(answered.Task, Closed).WaitAsync(cancellationToken).ConfigureAwait(false);
        if (finished != answered.Task && !answered.Task.IsCompleted)
        {
            throw new ConnectionClosedException(Closed.Result);
        }

        var completion = await answered.Task.ConfigureAwait(false);
        if (completion.Outcome == CommandOutcome.ConnectionClosed)
        {
            throw new ConnectionClosedException(Closed.IsCompleted ? Closed.Result : new ConnectionClosed(CloseReason.SocketError, "the connection closed before the answer"));
        }

        var data = buffer is null ? ReadOnlyMemory<byte>.Empty : buffer.AsMemory(0, Math.Clamp(completion.BytesTransferred, 0, buffer.Length));
        return (completion, data);
    }

    void IAdminCompletionSink.OnCompletion(AdminCompletion completion)
    {
        if (completion.State is TaskCompletionSource<AdminCompletion> waiter)
        {
            waiter.TrySetResult(completion);
        }

        // Matched by its waiter, not by id: the id can go back to the pool at once.
        _queue?.Release(completion.CommandId);
    }

    void IAdminCompletionSink.OnClosed(ConnectionClosed closed) => _closed.TrySetResult(closed);

    public void Abort(ConnectionClosed reason) => _queue?.Abort(reason);

    public async ValueTask DisposeAsync()
    {
        if (_queue is not null)
        {
            await _queue.DisposeAsync().ConfigureAwait(false);
        }
    }
}
