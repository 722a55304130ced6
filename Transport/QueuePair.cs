using System.Collections.Concurrent;
using System.IO.Pipelines;
using System.Runtime.CompilerServices;
using ActorNvme.Protocol.Nvme;
using ActorNvme.Protocol.Tcp;

namespace ActorNvme.Transport;

/// <summary>What ICResp settled for the life of a connection.</summary>
/// <param name="Digests">Header and data digests in use, both directions.</param>
/// <param name="ControllerDataAlignment">CPDA as bytes: where data must start in the PDUs this host sends.</param>
/// <param name="MaxH2CData">Largest H2CData PDU data the controller accepts.</param>
public readonly record struct NegotiatedParameters(DigestOptions Digests, int ControllerDataAlignment, uint MaxH2CData);

/// <summary>
/// One NVMe/TCP queue pair over an <see cref="INvmeConnection"/>: connection initialization, command
/// capsules, R2T/H2CData, C2HData, digests and fatal-error handling. <see cref="AdminQueuePair"/> and
/// <see cref="IoQueuePair"/> decide how completions reach their owner.
/// </summary>
/// <remarks>
/// Ownership, so that no lock is needed:
/// <list type="bullet">
/// <item>The <b>read loop</b> alone reads the connection's input, parses PDUs, places received data
/// and answers commands; when it ends it fails every outstanding command.</item>
/// <item>The <b>send path</b> writes the output: whichever thread wins the writer flag drains the
/// send queue (capsules, H2CData, a final H2CTermReq) and flushes once; a thread that loses leaves
/// its PDU queued for the winner, who checks the queue again after releasing the flag.</item>
/// <item>Submissions may come from any thread: command ids come from a lock-free pool over the
/// preallocated command table; a command's fields are published by its state transition.</item>
/// <item>Submissions made on the read loop's thread while it parses (continuations of completed
/// commands) are only queued; the read loop sends them in one flush after the last PDU buffered.</item>
/// </list>
/// </remarks>
public abstract partial class QueuePair : IAsyncDisposable, IReceiveDemand
{
    private readonly INvmeConnection _connection;
    private readonly PipeReader _input;
    private readonly PipeWriter _output;
    private readonly CommandSlot[] _slots;
    private readonly CommandIdPool _freeIds;
    private readonly ConcurrentQueue<SendItem> _sendQueue = new();
    private readonly TaskCompletionSource<ConnectionClosed> _closedSource = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _initialized = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private ConnectionClosed? _closeReason;
    private int _closed;
    private int _readerExited;
    private int _unfinished;
    private int _drainedNotified;

    private protected QueuePair(INvmeConnection connection, QueuePairOptions options, ushort queueId)
    {
        ArgumentNullException.ThrowIfNull(connection);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        _connection = connection;
        _input = connection.Pipe.Input;
        _output = connection.Pipe.Output;
        Options = options;
        QueueId = queueId;

        // One entry stays empty so a full submission queue never wraps onto its head. Slots are made
        // the first time their id is rented (by the renter, who owns the id): an idle I/O queue of 128
        // entries then holds one slot, not 127 (thousands of idle controllers per process).
        _slots = new CommandSlot[options.QueueSize - 1];

        _freeIds = new CommandIdPool(_slots.Length);
        _framerOptions = PduFramerOptions.Host(options.MaxReceivePduLength);
        if (connection is IDemandPacedConnection paced)
        {
            paced.SetReceiveDemand(this);
        }
    }

    public QueuePairOptions Options { get; }

    /// <summary>The queue id (0 for the admin queue) this pair sends in Fabrics Connect.</summary>
    public ushort QueueId { get; }

    public TransportAddress RemoteAddress => _connection.RemoteAddress;

    /// <summary>The settings ICResp settled; default until initialization completes.</summary>
    public NegotiatedParameters Negotiated { get; private set; }

    /// <summary>Commands that can be outstanding at once (queue size - 1).</summary>
    public int Capacity => _slots.Length;

    /// <summary>Completes once, after every outstanding command has been failed, with why the queue pair closed.</summary>
    public Task<ConnectionClosed> Closed => _closedSource.Task;

    public bool IsClosed => Volatile.Read(ref _closed) != 0;

    /// <summary>Commands submitted and not yet delivered (so answers are due), or a handshake under way.</summary>
    bool IReceiveDemand.AwaitsData => Volatile.Read(ref _unfinished) > 0 || !_initializedOnReadLoop;

    private long _completionsReceived;

    /// <summary>Completions the controller sent (CapsuleResp, or C2HData with SUCCESS) since the queue pair opened.</summary>
    public long CompletionsReceived => Volatile.Read(ref _completionsReceived);

    /// <summary>Commands accepted and not yet finished (sent or waiting to be sent, and their answers not yet delivered).</summary>
    public int Outstanding => Math.Max(0, Volatile.Read(ref _unfinished));

    long IReceiveDemand.CompletionsReceived => CompletionsReceived;

    int IReceiveDemand.Outstanding => Outstanding;

    /// <summary>Closes the queue pair with <paramref name="reason"/> (first reason wins); outstanding commands fail with ConnectionClosed.</summary>
    public void Abort(ConnectionClosed reason)
    {
        ArgumentNullException.ThrowIfNull(reason);
        Close(reason);
    }

    public async ValueTask DisposeAsync()
    {
        Close(new ConnectionClosed(CloseReason.Disposed, "queue pair disposed by its owner"));
        await Closed.ConfigureAwait(false);
        await _connection.DisposeAsync().ConfigureAwait(false);
        GC.SuppressFinalize(this);
    }

    /// <summary>Delivers a finished command to the owner. Called exactly once per submitted command.</summary>
    private protected abstract void OnFinished(CommandSlot slot);

    /// <summary>Called once, after the queue pair closed and the last command was delivered.</summary>
    private protected virtual void OnDrained(ConnectionClosed closed)
    {
    }

    /// <summary>The completion given to commands that the connection's loss ended: a host pathing error, retryable on another path.</summary>
    private protected CompletionQueueEntry ClosedCompletion(ushort commandId) =>
        new(0, 0, 0, QueueId, commandId, NvmeStatus.Create(StatusCodeType.PathRelated, (byte)PathStatus.HostPathingError));

    internal void ReturnSlot(CommandSlot slot)
    {
        Volatile.Write(ref slot.State, CommandSlot.Free);
        _freeIds.Return(slot.CommandId);
    }

    /// <summary>
    /// Returns the id of a command whose completion was delivered to the pool; false (and nothing
    /// changes) when <paramref name="commandId"/> is not awaiting release, so a repeated or stray
    /// release cannot free an id that is in use.
    /// </summary>
    /// <summary>Command slots made and held now (tests: an idle admin queue holds none once its answers are released).</summary>
    internal int SlotsHeld
    {
        get
        {
            int held = 0;
            for (int i = 0; i < _slots.Length; i++)
            {
                held += Volatile.Read(ref _slots[i]) is null ? 0 : 1;
            }

            return held;
        }
    }

    /// <summary>Makes the slot of a rented id on its first use; only the renter of the id writes it.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private CommandSlot CreateSlot(int index)
    {
        var slot = new CommandSlot(this, (ushort)index);
        Volatile.Write(ref _slots[index], slot);
        return slot;
    }

    private protected bool TryReleaseDelivered(ushort commandId)
    {
        if (commandId >= _slots.Length)
        {
            return false;
        }

        var slot = Volatile.Read(ref _slots[commandId]);
        if (slot is null || Interlocked.CompareExchange(ref slot.State, CommandSlot.Free, CommandSlot.Delivered) != CommandSlot.Delivered)
        {
            return false;
        }

        if (QueueId == 0)
        {
            // The admin queue is not a hot path, and its ids rotate first-in-first-out: kept, every one of its
            // slots would be made within a minute of keep-alives and held for good (~7 KiB per idle
            // controller). Dropped before the id is free, the next renter of the id makes a fresh one; a late
            // PDU naming the id finds no slot, refused like any id that is not outstanding.
            Volatile.Write(ref _slots[commandId], null!);
        }

        _freeIds.Return(commandId);
        return true;
    }

    /// <summary>Records the first reason, stops both directions and lets the loops finish up.</summary>
    private void Close(ConnectionClosed reason, byte[]? termReq = null)
    {
        if (Interlocked.CompareExchange(ref _closeReason, reason, null) is not null)
        {
            return;
        }

        _termReq = termReq;
        Interlocked.Exchange(ref _closed, 1);
        _initialized.TrySetException(new ConnectionClosedException(reason));
        if (termReq is null)
        {
            _connection.Abort(reason);
        }
        else
        {
            // The send path aborts the connection once the H2CTermReq is out; this bounds the wait
            // when the peer no longer reads.
            _ = AbortAfterAsync(reason, Options.TermReqTimeout);
        }

        RunWriter();
    }

    private async Task AbortAfterAsync(ConnectionClosed reason, TimeSpan delay)
    {
        await Task.Delay(delay).ConfigureAwait(false);
        _connection.Abort(reason);
    }

    private void FinishCommand(CommandSlot slot)
    {
        OnFinished(slot);
        if (Interlocked.Decrement(ref _unfinished) == 0 && Volatile.Read(ref _readerExited) != 0)
        {
            NotifyDrained();
        }
    }

    private void NotifyDrained()
    {
        if (Interlocked.Exchange(ref _drainedNotified, 1) == 0)
        {
            OnDrained(_closeReason!);
        }
    }

    /// <summary>Runs when the read loop has ended: nothing reads into callers' buffers any more, so every outstanding command can fail.</summary>
    private void FailOutstandingCommands()
    {
        Interlocked.Increment(ref _unfinished);
        Interlocked.Exchange(ref _readerExited, 1);
        foreach (var slot in _slots)
        {
            if (slot is not null && Volatile.Read(ref slot.State) == CommandSlot.Outstanding)
            {
                Answer(slot, CommandOutcome.ConnectionClosed, ClosedCompletion(slot.CommandId));
            }
        }

        _closedSource.TrySetResult(_closeReason!);
        if (Interlocked.Decrement(ref _unfinished) == 0)
        {
            NotifyDrained();
        }
    }

    /// <summary>Takes the single "answered" transition of a command; false when it was answered already.</summary>
    private bool Answer(CommandSlot slot, CommandOutcome outcome, in CompletionQueueEntry completion)
    {
        if (Interlocked.CompareExchange(ref slot.State, CommandSlot.Answered, CommandSlot.Outstanding) != CommandSlot.Outstanding)
        {
            return false;
        }

        slot.Completion = completion;
        slot.Outcome = outcome;
        DropReference(slot);
        return true;
    }

    private void DropReference(CommandSlot slot)
    {
        if (Interlocked.Decrement(ref slot.References) == 0)
        {
            FinishCommand(slot);
        }
    }

    /// <summary>A PDU the send path owes the controller: a command capsule, or H2CData answering one R2T.</summary>
    private readonly record struct SendItem(CommandSlot Slot, bool IsCapsule, ushort TransferTag, uint Offset, uint Length)
    {
        public static SendItem Capsule(CommandSlot slot) => new(slot, true, 0, 0, 0);

        public static SendItem Data(CommandSlot slot, in R2THeader r2t) => new(slot, false, r2t.TransferTag, r2t.Offset, r2t.Length);
    }
}
