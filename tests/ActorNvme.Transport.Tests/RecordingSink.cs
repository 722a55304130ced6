using System.Threading.Channels;

namespace ActorNvme.Transport.Tests;

/// <summary>An admin completion sink that records what the queue pair hands over, in order.</summary>
internal sealed class RecordingSink : IAdminCompletionSink
{
    private readonly Channel<AdminCompletion> _completions = Channel.CreateUnbounded<AdminCompletion>();
    private readonly TaskCompletionSource<ConnectionClosed> _closed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _completionsAfterClose;

    public Task<ConnectionClosed> Closed => _closed.Task;

    public int CompletionsAfterClose => Volatile.Read(ref _completionsAfterClose);

    public void OnCompletion(AdminCompletion completion)
    {
        if (_closed.Task.IsCompleted)
        {
            Interlocked.Increment(ref _completionsAfterClose);
        }

        _completions.Writer.TryWrite(completion);
    }

    public void OnClosed(ConnectionClosed closed) => _closed.TrySetResult(closed);

    public async Task<AdminCompletion> NextAsync()
    {
        using var timeout = new CancellationTokenSource(ScriptedPeer.Deadline);
        return await _completions.Reader.ReadAsync(timeout.Token);
    }
}
