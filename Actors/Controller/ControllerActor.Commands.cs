using Akka.Actor;
using ActorNvme.Actors.Connection;
using ActorNvme.Protocol.Nvme;
using ActorNvme.Transport;

namespace ActorNvme.Actors.Controller;

public sealed partial class ControllerActor
{
    private const string SweepTimerKey = "command-sweep";

    /// <summary>A command in flight: who waits for it (a caller, or the actor's own next step).</summary>
    private sealed record PendingCommand(
        SubmissionQueueEntry Command,
        IActorRef? ReplyTo,
        object? Tag,
        Action<AdminResponse>? Continue,
        DateTimeOffset SubmittedAt,
        bool IsAsyncEvent);

    private sealed record SweepCommands
    {
        public static SweepCommands Instance { get; } = new();
    }

    /// <summary>A caller's admin command (Live and Deleting only; the other states refuse it in <see cref="Common"/>).</summary>
    private void OnSubmitAdmin(Controller.SubmitAdmin request)
    {
        if (!TrySubmit(request.Command, request.DataOut, request.DataInLength, Sender, request.Tag, continuation: null, out string? error))
        {
            Sender.Tell(new Controller.AdminFailed(error, request.Tag));
        }
    }

    /// <summary>Submits a command whose completion continues the actor's own work.</summary>
    private void SubmitInternal(SubmissionQueueEntry command, Action<AdminResponse> continuation, ReadOnlyMemory<byte> dataOut = default, int dataInLength = 0)
    {
        if (!TrySubmit(command, dataOut, dataInLength, replyTo: null, tag: null, continuation, out string? error))
        {
            Lose(new ConnectionClosed(CloseReason.LocalShutdown, $"could not submit {command}: {error}"));
        }
    }

    private bool TrySubmit(SubmissionQueueEntry command, ReadOnlyMemory<byte> dataOut, int dataInLength, IActorRef? replyTo, object? tag, Action<AdminResponse>? continuation, [System.Diagnostics.CodeAnalysis.NotNullWhen(false)] out string? error)
    {
        if (_association?.Connection is not { } connection)
        {
            error = $"controller {_options.Name} has no connection";
            return false;
        }

        var pendingCommands = _association.Pending;
        if (!connection.TrySubmit(command, dataOut, dataInLength, out ushort commandId))
        {
            error = $"the admin queue of {_options.Name} is full ({pendingCommands.Count} commands in flight) or closed";
            return false;
        }

        bool isAsyncEvent = command.Opcode == (byte)AdminOpcode.AsynchronousEventRequest;
        pendingCommands[commandId] = new PendingCommand(command, replyTo, tag, continuation, Context.System.Scheduler.Now, isAsyncEvent);
        if (!Timers.IsTimerActive(SweepTimerKey))
        {
            var period = TimeSpan.FromTicks(Math.Max(TimeSpan.FromMilliseconds(100).Ticks, _options.Settings.AdminCommandTimeout.Ticks / 4));
            Timers.StartPeriodicTimer(SweepTimerKey, SweepCommands.Instance, period);
        }

        error = null;
        return true;
    }

    private void OnAdminCompleted(AdminCompleted message)
    {
        if (!IsCurrent(message.Generation))
        {
            return;
        }

        var pendingCommands = _association!.Pending;
        var completion = message.Completion;
        if (!pendingCommands.Remove(completion.CommandId, out var pending))
        {
            // The queue pair matches CIDs itself; an unknown one here means our table and its disagree.
            Lose(new ConnectionClosed(CloseReason.UnknownCommandId, $"completion for command id {completion.CommandId} that {_options.Name} is not waiting for"));
            return;
        }

        // Only now, with the entry gone, may the queue pair hand this id to a new command.
        _association.Connection?.Release(completion.CommandId);

        if (pendingCommands.Count == 0)
        {
            Timers.Cancel(SweepTimerKey);
        }

        if (pending.Continue is not null)
        {
            pending.Continue(completion);
        }
        else if (completion.DataDigestError)
        {
            pending.ReplyTo?.Tell(new Controller.AdminFailed($"data digest error in the data of {pending.Command}", pending.Tag));
        }
        else
        {
            pending.ReplyTo?.Tell(new Controller.AdminResult(completion.Entry, completion.Data, pending.Tag));
        }
    }

    private void OnSweepCommands()
    {
        if (_association is not { } association)
        {
            Timers.Cancel(SweepTimerKey);
            return;
        }

        var now = Context.System.Scheduler.Now;
        foreach (var (commandId, pending) in association.Pending)
        {
            if (!pending.IsAsyncEvent && now - pending.SubmittedAt > _options.Settings.AdminCommandTimeout)
            {
                Lose(new ConnectionClosed(CloseReason.CommandTimeout, $"{pending.Command} (cid {commandId}) unanswered after {_options.Settings.AdminCommandTimeout.TotalSeconds:0.###}s"));
                return;
            }
        }
    }
}
