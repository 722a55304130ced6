using Akka.Actor;
using Akka.Actor.Internal;

namespace ActorNvme.Actors.Supervision;

/// <summary>
/// The only supervision used in this runtime: a child that throws is stopped, never restarted in
/// place, and its parent hears why before the child's <see cref="Terminated"/> arrives, so it can treat
/// the failure as a loss under the loss-timeout rules. A restart would keep the actor's name and
/// mailbox while resetting its state, which is how stale results of the old incarnation were accepted.
/// </summary>
/// <remarks>
/// Failure handling runs inside the parent's cell, on the parent's
/// turn, so <paramref name="onFailure"/> may touch the parent's state.
/// </remarks>
public sealed class StopAndReportStrategy(Action<IActorRef, Exception> onFailure) : OneForOneStrategy(loggingEnabled: false, localOnlyDecider: _ => Directive.Stop)
{
    private readonly Action<IActorRef, Exception> _onFailure = onFailure;

    public override void ProcessFailure(IActorContext context, bool restart, IActorRef child, Exception cause, ChildRestartStats stats, IReadOnlyCollection<ChildRestartStats> children)
    {
        _onFailure(child, cause);
        base.ProcessFailure(context, restart: false, child, cause, stats, children);
    }
}

/// <summary>
/// Generation tags for connect attempts, unique in the process: a controller that replaces a stopped one
/// never reuses a tag, so a late result of any earlier incarnation can never be taken for its own.
/// </summary>
public static class ConnectGenerations
{
    private static long s_last;

    public static long Next() => Interlocked.Increment(ref s_last);
}
