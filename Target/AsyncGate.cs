namespace ActorNvme.Target;

/// <summary>
/// A gate that is open or closed; waiters pass when it is open. A blackholed listener closes its gate
/// and every connection through it waits here before it reads or writes anything.
/// </summary>
internal sealed class AsyncGate
{
    private TaskCompletionSource? _closed;

    public bool IsOpen => Volatile.Read(ref _closed) is null;

    public Task WaitOpenAsync(CancellationToken cancellationToken)
    {
        var closed = Volatile.Read(ref _closed);
        return closed is null ? Task.CompletedTask : closed.Task.WaitAsync(cancellationToken);
    }

    public void Close() => Interlocked.CompareExchange(ref _closed, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously), null);

    public void Open() => Interlocked.Exchange(ref _closed, null)?.TrySetResult();
}
