using ActorNvme.Protocol.Nvme;

namespace ActorNvme.Transport;

/// <summary>How a command ended, apart from the NVMe status the controller returned.</summary>
public enum CommandOutcome : byte
{
    /// <summary>
    /// The controller answered; the completion's status says whether the command succeeded. A read
    /// that the controller completed before every byte of its transfer arrived (short, gapped or no
    /// C2HData) carries Data Transfer Error (generic SC 0x04) in place of the controller's status.
    /// </summary>
    Completed = 0,

    /// <summary>
    /// Data received for this command failed its data digest. The bytes in the caller's buffer are
    /// not to be trusted, whatever the controller's status says; the connection stays up.
    /// </summary>
    DataDigestError = 1,

    /// <summary>The queue pair closed before the controller answered; <see cref="QueuePair.Closed"/> says why.</summary>
    ConnectionClosed = 2,

    /// <summary>Not submitted: every command id of the queue is in use.</summary>
    QueueFull = 3,
}

/// <summary>Result of an admin submission that does not block.</summary>
public enum SubmitStatus : byte
{
    Submitted = 0,
    QueueFull = 1,
    Closed = 2,
}

/// <summary>Which way a command's data moves.</summary>
public enum DataDirection : byte
{
    None = 0,

    /// <summary>A write: in-capsule, or sent as H2CData when the controller asks with R2T.</summary>
    HostToController = 1,

    /// <summary>A read: placed into the caller's buffer from C2HData PDUs.</summary>
    ControllerToHost = 2,
}

/// <summary>The end of one I/O command.</summary>
public readonly record struct IoResult(CommandOutcome Outcome, CompletionQueueEntry Completion, int BytesTransferred)
{
    public NvmeStatus Status => Completion.Status;

    /// <summary>The controller answered with success and the data (if any) arrived intact.</summary>
    public bool IsSuccess => Outcome == CommandOutcome.Completed && Completion.Status.IsSuccess;

    public override string ToString() =>
        Outcome == CommandOutcome.Completed ? $"cid {Completion.CommandId}: {Completion.Status} ({BytesTransferred} bytes)" : $"cid {Completion.CommandId}: {Outcome}";
}

/// <summary>The end of one admin command, handed to the queue pair's <see cref="IAdminCompletionSink"/>.</summary>
/// <param name="CommandId">The CID the command was sent with.</param>
/// <param name="Completion">The controller's completion (a synthesized path error when <paramref name="Outcome"/> is ConnectionClosed).</param>
/// <param name="BytesTransferred">Bytes placed into the read buffer, or bytes sent for a write.</param>
/// <param name="State">Whatever the submitter passed along with the command.</param>
/// <param name="Outcome">Whether the answer is to be trusted (see <see cref="CommandOutcome"/>).</param>
public sealed record AdminCompletion(ushort CommandId, CompletionQueueEntry Completion, int BytesTransferred, object? State, CommandOutcome Outcome)
{
    public NvmeStatus Status => Completion.Status;

    public bool IsSuccess => Outcome == CommandOutcome.Completed && Completion.Status.IsSuccess;
}

/// <summary>
/// Receives an admin queue pair's completions. Calls come from the queue pair's I/O threads (its
/// read loop, rarely its send path); an actor that Tells itself each call is the intended owner.
/// Every <see cref="OnCompletion"/> precedes the single <see cref="OnClosed"/>. Implementations must
/// return quickly and must not block: the read loop waits for them.
/// </summary>
public interface IAdminCompletionSink
{
    /// <summary>A command ended. Its id stays in use until the owner calls <see cref="AdminQueuePair.Release"/> for it.</summary>
    void OnCompletion(AdminCompletion completion);

    void OnClosed(ConnectionClosed closed);
}
