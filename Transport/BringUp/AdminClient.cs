using System.Diagnostics;
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
    public async Task<ControllerBringUpResult> BringUpAsync(BringUpOptions options, CancellationToken cancellationToken = default)
    {
        var machine = new ControllerBringUp(options);
        return await DriveAsync(machine.Start(), machine.OnCompletion, machine.PollAgain, machine.Abandon, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>CC.SHN normal, then waits for CSTS.SHST complete within <paramref name="timeout"/>; throws <see cref="ControllerBringUpException"/>.</summary>
    public async Task ShutdownAsync(ControllerConfiguration configuration, TimeSpan pollInterval, TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        var machine = new ControllerShutdown(configuration, pollInterval);
        var deadline = Stopwatch.StartNew();
        BringUpAction.Failed GiveUp(BringUpFailureKind kind, string detail) =>
            new(new BringUpFailure(machine.Step, machine.Step.ToString(), kind, null, detail));
        await DriveAsync(machine.Start(), machine.OnCompletion, () => deadline.Elapsed > timeout ? GiveUp(BringUpFailureKind.ReadyTimeout, $"CSTS.SHST not complete within {timeout.TotalSeconds:0.###} s") : machine.PollAgain(), GiveUp, cancellationToken).ConfigureAwait(false);
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

    private async Task<ControllerBringUpResult> DriveAsync(
        BringUpAction action,
        Func<BringUpCompletion, BringUpAction> onCompletion,
        Func<BringUpAction> pollAgain,
        Func<BringUpFailureKind, string, BringUpAction.Failed> abandon,
        CancellationToken cancellationToken)
    {
        Stopwatch? readyClock = null;
        TimeSpan readyTimeout = TimeSpan.Zero;
        while (true)
        {
            switch (action)
            {
                case BringUpAction.Submit submit:
                    if (submit.ReadyTimeout is { } timeout)
                    {
                        readyClock = Stopwatch.StartNew();
                        readyTimeout = timeout;
                    }

                    try
                    {
                        var (completion, data) = await SubmitAsync(submit.Command.Command, submit.Command.DataOut, submit.Command.DataInLength, cancellationToken).ConfigureAwait(false);
                        action = onCompletion(new BringUpCompletion(completion.Completion, data, completion.Outcome == CommandOutcome.DataDigestError));
                    }
                    catch (ConnectionClosedException e)
                    {
                        action = abandon(BringUpFailureKind.NotCompleted, $"the connection ended: {e.Closed.Detail}");
                    }

                    break;
                case BringUpAction.Wait wait:
                    if (readyClock is not null && readyClock.Elapsed > readyTimeout)
                    {
                        action = abandon(BringUpFailureKind.ReadyTimeout, $"CSTS.RDY not set within {readyTimeout.TotalSeconds:0.###} s of CC.EN");
                        break;
                    }

                    await Task.Delay(wait.Delay, cancellationToken).ConfigureAwait(false);
                    action = pollAgain();
                    break;
                case BringUpAction.Succeeded succeeded:
                    return succeeded.Result;
                case BringUpAction.Failed failed:
                    throw new ControllerBringUpException(failed.Failure);
                default:
                    throw new InvalidOperationException($"unknown bring-up action {action}");
            }
        }
    }
}
