using System.Runtime.CompilerServices;
using System.Threading.Tasks.Sources;
using ActorNvme.Protocol.Nvme;

namespace ActorNvme.Transport;

/// <summary>
/// One entry of a queue pair's preallocated command table, indexed by CID. Doubles as the pooled
/// awaitable of an I/O command, so submitting and completing allocate nothing.
/// </summary>
/// <remarks>
/// Ownership: the submitter fills the request fields while the id is rented and publishes them by
/// setting <see cref="State"/> to Outstanding. After that the read loop alone touches the
/// receive-side fields (<see cref="BytesReceived"/>, <see cref="BytesRequested"/>,
/// <see cref="DataDigestFailed"/>) and the send path only reads the request fields. The command
/// finishes when <see cref="References"/> drops to zero: one reference stands for "no answer yet",
/// one for each PDU still queued for sending from the caller's buffer, so the buffer is never handed
/// back while the send path may still copy from it.
/// </remarks>
internal sealed class CommandSlot : IValueTaskSource<IoResult>
{
    /// <summary>In the pool of free ids (or rented by a submitter that has not published yet).</summary>
    public const int Free = 0;

    /// <summary>Sent, or about to be; the only state in which a PDU from the controller may name this id.</summary>
    public const int Outstanding = 1;

    /// <summary>Answered; the owner has not been told yet.</summary>
    public const int Answered = 2;

    /// <summary>
    /// Handed to the owner, the id still reserved: it returns to the pool only when the owner says
    /// it has handled the completion, so a new command never takes an id whose answer is unread.
    /// </summary>
    public const int Delivered = 3;

    private readonly QueuePair _owner;
    private ManualResetValueTaskSourceCore<IoResult> _source;
    private int _resultPending;

    public CommandSlot(QueuePair owner, ushort commandId)
    {
        _owner = owner;
        CommandId = commandId;

        // Continuations run on the thread that completes the command (the read loop): no thread
        // hop per I/O, which the measurements on these machines showed to be the expensive part.
        _source.RunContinuationsAsynchronously = false;
    }

    public ushort CommandId { get; }

    // Request, written by the submitter before publication.
    public SubmissionQueueEntry Command;
    public DataDirection Direction;
    public ReadOnlyMemory<byte> Outgoing;
    public Memory<byte> Incoming;
    public int TransferLength;
    public bool InCapsule;
    public object? UserState;

    // Receive side, owned by the read loop.
    public int BytesReceived;
    public int BytesRequested;
    public bool DataDigestFailed;

    // Answer, written by whoever wins the Outstanding → Answered transition.
    public CompletionQueueEntry Completion;
    public CommandOutcome Outcome;

    public int State;
    public int References;

    public short Version => _source.Version;

    public void Prepare(in SubmissionQueueEntry command, DataDirection direction, ReadOnlyMemory<byte> outgoing, Memory<byte> incoming, bool inCapsule, object? userState)
    {
        Command = command;
        Command.CommandId = CommandId;
        Direction = direction;
        Outgoing = outgoing;
        Incoming = incoming;
        TransferLength = direction switch
        {
            DataDirection.HostToController => outgoing.Length,
            DataDirection.ControllerToHost => incoming.Length,
            _ => 0,
        };
        InCapsule = inCapsule;
        UserState = userState;
        BytesReceived = 0;
        BytesRequested = 0;
        DataDigestFailed = false;
        Completion = default;
        Outcome = CommandOutcome.Completed;
        _source.Reset();
    }

    /// <summary>Forgets the caller's buffers and state so a finished command keeps nothing alive.</summary>
    public void ClearRequest()
    {
        Outgoing = default;
        Incoming = default;
        UserState = null;
    }

    public int BytesTransferred => Direction == DataDirection.ControllerToHost ? BytesReceived : Direction == DataDirection.HostToController ? TransferLength : 0;

    public void SetResult(in IoResult result)
    {
        Volatile.Write(ref _resultPending, 1);
        _source.SetResult(result);
    }

    public IoResult GetResult(short token)
    {
        var result = _source.GetResult(token);

        // The id goes back to the pool only once the awaiter holds its result, so a new command
        // cannot reset this source under an awaiter that has not looked yet.
        if (Interlocked.Exchange(ref _resultPending, 0) == 1)
        {
            _owner.ReturnSlot(this);
        }

        return result;
    }

    public ValueTaskSourceStatus GetStatus(short token) => _source.GetStatus(token);

    public void OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
        _source.OnCompleted(continuation, state, token, flags);
}
