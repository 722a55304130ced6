using System.Diagnostics;

namespace ActorNvme.Transport.BringUp;

/// <summary>
/// Drives an <see cref="IAdminScript"/> with awaited submissions and the wall clock: for short-lived
/// clients (<see cref="AdminClient"/>, test harnesses that speak PDUs themselves). An actor drives the
/// same scripts from its mailbox with its timers instead.
/// </summary>
public static class AdminScriptDriver
{
    /// <summary>
    /// Runs <paramref name="script"/> to its end. <paramref name="submit"/> sends one command and returns
    /// its completion; a <see cref="ConnectionClosedException"/> from it ends the step. Throws
    /// <see cref="ControllerBringUpException"/> naming the step that failed.
    /// </summary>
    public static async Task<ControllerBringUpResult> RunAsync(IAdminScript script, Func<BringUpCommand, CancellationToken, Task<BringUpCompletion>> submit, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(script);
        ArgumentNullException.ThrowIfNull(submit);
        var action = script.Start();
        Stopwatch? statusClock = null;
        var statusTimeout = TimeSpan.Zero;
        while (true)
        {
            switch (action)
            {
                case BringUpAction.Submit next:
                    if (next.StatusTimeout is { } timeout)
                    {
                        statusClock = Stopwatch.StartNew();
                        statusTimeout = timeout;
                    }

                    try
                    {
                        action = script.OnCompletion(await submit(next.Command, cancellationToken).ConfigureAwait(false));
                    }
                    catch (ConnectionClosedException e)
                    {
                        action = script.Abandon(BringUpFailureKind.NotCompleted, $"the connection ended: {e.Closed.Detail}");
                    }

                    break;
                case BringUpAction.Wait wait:
                    if (statusClock is not null && statusClock.Elapsed > statusTimeout)
                    {
                        action = script.Abandon(BringUpFailureKind.StatusTimeout, $"not done within {statusTimeout.TotalSeconds:0.###} s");
                        break;
                    }

                    await Task.Delay(wait.Delay, cancellationToken).ConfigureAwait(false);
                    action = script.PollAgain();
                    break;
                case BringUpAction.Succeeded succeeded:
                    return succeeded.Result;
                case BringUpAction.Failed failed:
                    throw new ControllerBringUpException(failed.Failure);
                default:
                    throw new InvalidOperationException($"unknown action {action}");
            }
        }
    }
}
