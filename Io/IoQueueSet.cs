using System.Runtime.CompilerServices;
using System.Diagnostics;
using ActorNvme.Protocol.Auth;
using ActorNvme.Transport;

namespace ActorNvme.Io;

/// <summary>
/// The I/O queues of one controller association (one path): qid 1..N to the same controller. The
/// controller actor that connected them owns the set and ends it with <see cref="Abort"/>; block
/// devices only submit through it. The first queue to close closes the whole set (the path is lost),
/// and <see cref="Closed"/> carries that queue's reason.
/// </summary>
/// <remarks>
/// Thread safety without locks: the queue list is immutable; submission state is a few counters
/// changed with <see cref="Interlocked"/>; I/O that finds every queue full waits in a bounded
/// lock-free line (<see cref="BoundedRing{T}"/>) that every completion on the set drains first, so
/// a command never waits behind one submitted after it. The rules that keep a waiting command from
/// being forgotten are in <see cref="Submit"/> and <see cref="CommandFinished"/>.
/// </remarks>
public sealed class IoQueueSet
{
    /// <summary>The default bound on I/O waiting for a free queue entry.</summary>
    public const int DefaultWaitLimit = 4096;

    [ThreadStatic]
    private static IoQueueSet? t_completingSet;

    [ThreadStatic]
    private static int t_completingIndex;

    private readonly IoQueuePair[] _queues;
    // 1 while an authentication command waits for an entry of that queue (see HoldQueue).
    private readonly int[] _held;
    // Made the first time I/O waits: an idle queue set (thousands per process) holds no ring of waitLimit cells.
    private BoundedRing<IoOperation>? _waiting;
    private readonly int _waitLimit;
    private readonly TaskCompletionSource<ConnectionClosed> _closed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private ConnectionClosed? _closeReason;
    private int _unusable;
    private int _inFlight;
    private int _waitingCount;
    private int _nextQueue;
    private long _lostAt;
    private int _completionSeen;
    private long _anaUnavailableUntil;
    private long _writeResubmitDelayTicks;
    private long _anaTransitionTimeTicks = TimeSpan.FromSeconds(10).Ticks;
    private long[][]? _issuedAt;
    private TimeSpan[] _commandRetryDelays = [TimeSpan.Zero, TimeSpan.Zero, TimeSpan.Zero];

    /// <summary>Wraps queue pairs that are connected already (a connector builds sets; tests may build one with no queues).</summary>
    /// <param name="address">The controller's address.</param>
    /// <param name="queues">I/O queue pairs of one controller association, qid order.</param>
    /// <param name="maxTransferSize">Largest data transfer of one command; larger I/O is split.</param>
    /// <param name="sqFlowControlDisabled">Whether the controller agreed to disable SQ flow control on every queue.</param>
    /// <param name="waitLimit">I/O that may wait for a free queue entry at once.</param>
    public IoQueueSet(TransportAddress address, IReadOnlyList<IoQueuePair> queues, int maxTransferSize, bool sqFlowControlDisabled, int waitLimit = DefaultWaitLimit)
    {
        ArgumentNullException.ThrowIfNull(address);
        ArgumentNullException.ThrowIfNull(queues);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxTransferSize, 512);
        ArgumentOutOfRangeException.ThrowIfNegative(waitLimit);
        Address = address;
        _queues = [.. queues];
        _held = new int[_queues.Length];
        MaxTransferSize = maxTransferSize;
        SqFlowControlDisabled = sqFlowControlDisabled;
        _waitLimit = waitLimit;
        foreach (var queue in _queues)
        {
            // The first queue to close ends the path; the others are aborted with the same reason.
            _ = queue.Closed.ContinueWith(static (t, s) => ((IoQueueSet)s!).Abort(t.Result), this, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously | TaskContinuationOptions.OnlyOnRanToCompletion, TaskScheduler.Default);
        }
    }

    public TransportAddress Address { get; }

    /// <summary>The queue pairs, qid 1..N.</summary>
    public IReadOnlyList<IoQueuePair> Queues => _queues;

    /// <summary>Largest data transfer of one command (from MDTS and the queue pairs' limit).</summary>
    public int MaxTransferSize { get; }

    /// <summary>True when the controller answered every Connect with SQHD FFFFh (SQ flow control disabled).</summary>
    public bool SqFlowControlDisabled { get; }

    /// <summary>Completes once, with the reason of the first queue to close (or of <see cref="Abort"/>).</summary>
    public Task<ConnectionClosed> Closed => _closed.Task;

    public bool IsClosed => Volatile.Read(ref _closeReason) is not null;

    /// <summary>Commands submitted through the set and not yet finished.</summary>
    public int InFlight => Volatile.Read(ref _inFlight);

    /// <summary>I/O waiting for a free queue entry.</summary>
    public int Waiting => Volatile.Read(ref _waitingCount);

    /// <summary>
    /// How long after this association's loss a command that modifies data (write, write zeroes,
    /// deallocate) and was in flight on it may be sent again, on any path: until then the old association
    /// may still execute its copy (KATO until the target drops it, plus its command quiesce time). Set by
    /// the owner from KATO and CQT; zero resubmits at once (only for tests and targets known to fence).
    /// </summary>
    public TimeSpan WriteResubmitDelay
    {
        get => TimeSpan.FromTicks(Volatile.Read(ref _writeResubmitDelayTicks));
        set
        {
            ArgumentOutOfRangeException.ThrowIfLessThan(value, TimeSpan.Zero);
            Volatile.Write(ref _writeResubmitDelayTicks, value.Ticks);
        }
    }

    /// <summary>ANATT of the controller: how long a path that answered "ANA transition" or "ANA inaccessible" is left alone.</summary>
    public TimeSpan AnaTransitionTime
    {
        get => TimeSpan.FromTicks(Volatile.Read(ref _anaTransitionTimeTicks));
        set
        {
            ArgumentOutOfRangeException.ThrowIfLessThan(value, TimeSpan.Zero);
            Volatile.Write(ref _anaTransitionTimeTicks, value.Ticks);
        }
    }

    /// <summary>
    /// CRDT1..CRDT3 of the controller (Identify Controller, units of 100 ms): how long a command whose status
    /// carries Command Retry Delay 1..3 waits before it is retried. Set by the owner; zeros: retry at once.
    /// </summary>
    public IReadOnlyList<TimeSpan> CommandRetryDelays
    {
        get => Volatile.Read(ref _commandRetryDelays);
        set
        {
            ArgumentNullException.ThrowIfNull(value);
            if (value.Count != 3 || value.Any(d => d < TimeSpan.Zero))
            {
                throw new ArgumentException("three non-negative delays (CRDT1..CRDT3)", nameof(value));
            }

            Volatile.Write(ref _commandRetryDelays, [.. value]);
        }
    }

    /// <summary>The delay a status's CRD field (1..3) asks for; zero for CRD 0 or a CRDT of zero.</summary>
    internal TimeSpan CommandRetryDelay(byte crd) => crd is >= 1 and <= 3 ? Volatile.Read(ref _commandRetryDelays)[crd - 1] : TimeSpan.Zero;

    /// <summary>
    /// Records when each command was submitted, by queue and command id, so the owner can find the ones
    /// older than the command timeout (<see cref="TakeTimedOut"/>). Off until the owner calls this.
    /// </summary>
    public void TrackCommandAges()
    {
        if (Volatile.Read(ref _issuedAt) is null)
        {
            Interlocked.CompareExchange(ref _issuedAt, [.. _queues.Select(q => new long[q.Capacity])], null);
        }
    }

    /// <summary>A command older than the command timeout: where it is (SQID, CID) and how long it has been out.</summary>
    public readonly record struct TimedOutCommand(ushort QueueId, ushort CommandId, TimeSpan Age);

    /// <summary>
    /// Commands in flight longer than <paramref name="timeout"/> that no earlier call reported (each is
    /// reported once), and in <paramref name="stillOutstanding"/> those reported before that are still in flight
    /// <paramref name="timeout"/> after they were reported (an Abort did not end them). Needs <see cref="TrackCommandAges"/>.
    /// </summary>
    public IReadOnlyList<TimedOutCommand> TakeTimedOut(TimeSpan timeout, out IReadOnlyList<TimedOutCommand> stillOutstanding)
    {
        List<TimedOutCommand>? timedOut = null;
        List<TimedOutCommand>? stuck = null;
        var table = Volatile.Read(ref _issuedAt);
        if (table is not null)
        {
            long now = Stopwatch.GetTimestamp();
            long limit = (long)(timeout.TotalSeconds * Stopwatch.Frequency);
            for (int q = 0; q < table.Length; q++)
            {
                var row = table[q];
                for (int cid = 0; cid < row.Length; cid++)
                {
                    long stamp = Volatile.Read(ref row[cid]);
                    if (stamp > 0 && now - stamp >= limit)
                    {
                        // Reported: from now on the stamp (negated) says when, so a second timeout finds it stuck.
                        if (Interlocked.CompareExchange(ref row[cid], -now, stamp) == stamp)
                        {
                            (timedOut ??= []).Add(new TimedOutCommand(_queues[q].QueueId, (ushort)cid, Stopwatch.GetElapsedTime(stamp, now)));
                        }
                    }
                    else if (stamp < 0 && now + stamp >= limit)
                    {
                        (stuck ??= []).Add(new TimedOutCommand(_queues[q].QueueId, (ushort)cid, Stopwatch.GetElapsedTime(-stamp, now) + timeout));
                    }
                }
            }
        }

        stillOutstanding = (IReadOnlyList<TimedOutCommand>?)stuck ?? [];
        return (IReadOnlyList<TimedOutCommand>?)timedOut ?? [];
    }

    /// <summary>Notes that command <paramref name="commandId"/> went out on queue <paramref name="index"/> (before its completion can be delivered).</summary>
    /// <param name="issuedAt">A fresh <see cref="Stopwatch"/> timestamp the caller already holds (the I/O's start, or the completion that sends its next chunk); 0 reads the clock.</param>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal void CommandIssued(int index, ushort commandId, long issuedAt = 0)
    {
        if (Volatile.Read(ref _issuedAt) is { } table && commandId < table[index].Length)
        {
            Volatile.Write(ref table[index][commandId], issuedAt > 0 ? issuedAt : Stopwatch.GetTimestamp());
        }
    }

    /// <summary>Notes that command <paramref name="commandId"/> of queue <paramref name="index"/> ended.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal void CommandEnded(int index, ushort commandId)
    {
        if (Volatile.Read(ref _issuedAt) is { } table && commandId < table[index].Length)
        {
            Volatile.Write(ref table[index][commandId], 0);
        }
    }

    /// <summary>
    /// Whether a command finished since the last call (which clears it): for traffic-based keep alive, where
    /// I/O that completed in a keep-alive interval stands in for that interval's Keep Alive.
    /// </summary>
    public bool TakeCompletionSeen() => Interlocked.Exchange(ref _completionSeen, 0) != 0;

    /// <summary>When the path was first seen lost (<see cref="Stopwatch.GetTimestamp"/>), 0 while it is not.</summary>
    internal long LostAt => Volatile.Read(ref _lostAt);

    /// <summary>Until when (<see cref="Stopwatch"/> timestamp) the path is not to be chosen after an ANA status; 0: no such status.</summary>
    internal long AnaUnavailableUntil => Volatile.Read(ref _anaUnavailableUntil);

    /// <summary>Whether an ANA status (inaccessible, transition, persistent loss) keeps this path out of the choice now.</summary>
    public bool IsAnaUnavailable
    {
        get
        {
            long until = Volatile.Read(ref _anaUnavailableUntil);
            return until != 0 && Stopwatch.GetTimestamp() < until;
        }
    }

    /// <summary>The path answered with an ANA status: leave it alone until <paramref name="until"/> (a <see cref="Stopwatch"/> timestamp).</summary>
    internal void MarkAnaUnavailable(long until)
    {
        while (true)
        {
            long current = Volatile.Read(ref _anaUnavailableUntil);
            if (current >= until || Interlocked.CompareExchange(ref _anaUnavailableUntil, until, current) == current)
            {
                return;
            }
        }
    }

    /// <summary>The path's ANA log entry says it is accessible again: an earlier ANA status no longer keeps it out.</summary>
    internal void ClearAnaUnavailable() => Volatile.Write(ref _anaUnavailableUntil, 0);

    /// <summary>The bound on I/O waiting for a free queue entry.</summary>
    internal int WaitLimit => _waitLimit;

    /// <summary>Whether block devices may route I/O here: open, and with at least one queue.</summary>
    internal bool IsUsable => _queues.Length > 0 && Volatile.Read(ref _unusable) == 0 && Volatile.Read(ref _closeReason) is null;

    /// <summary>The set whose completion the current thread is delivering, if any (so follow-up I/O stays on that queue).</summary>
    internal static IoQueueSet? CompletingSet => t_completingSet;

    /// <summary>Closes every queue with <paramref name="reason"/> (first reason wins). Their outstanding commands fail with a path error; block devices retry them elsewhere or hold them.</summary>
    public void Abort(ConnectionClosed reason)
    {
        ArgumentNullException.ThrowIfNull(reason);
        if (Interlocked.CompareExchange(ref _closeReason, reason, null) is not null)
        {
            return;
        }

        NoteLoss();
        Volatile.Write(ref _unusable, 1);
        foreach (var queue in _queues)
        {
            queue.Abort(reason);
        }

        _closed.TrySetResult(reason);

        // Whatever waits for a queue entry goes elsewhere; not on the caller's thread (an actor).
        if (Volatile.Read(ref _waitingCount) != 0)
        {
            ThreadPool.UnsafeQueueUserWorkItem(static set => set.Pump(), this, preferLocal: false);
        }
    }

    /// <summary>
    /// Re-authenticates every queue while its I/O goes on: a new DH-HMAC-CHAP transaction on each, all at once, each
    /// message answered within <paramref name="stepTimeout"/>. A refusal or a timeout on any queue ends the whole set
    /// (the path is lost, as when a queue is refused at its Connect) and fails with that reason. Returns the queues done.
    /// </summary>
    public async Task<int> ReauthenticateAsync(DhChapHostCredentials credentials, string hostNqn, string subsystemNqn, TimeSpan stepTimeout, CancellationToken cancel)
    {
        ArgumentNullException.ThrowIfNull(credentials);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(stepTimeout, TimeSpan.Zero);
        var runs = new Task<DhChapStep.Authenticated>[_queues.Length];
        for (int i = 0; i < runs.Length; i++)
        {
            var queue = _queues[i];
            var exchange = new DhChapHostExchange(credentials, hostNqn, subsystemNqn, queue.QueueId);
            int index = i;
            runs[i] = IoQueueAuthentication.RunAsync(queue, exchange, Address, subsystemNqn, stepTimeout, CloseReason.CommandTimeout, hold => HoldQueue(index, hold), cancel);
        }

        try
        {
            await Task.WhenAll(runs).ConfigureAwait(false);
        }
        catch (Exception) when (!cancel.IsCancellationRequested)
        {
            var reason = runs.Where(r => r.IsFaulted).Select(r => r.Exception!.InnerException).OfType<ConnectionClosedException>().FirstOrDefault()?.Closed
                ?? new ConnectionClosed(CloseReason.AuthenticationFailed, $"{Address}: re-authentication of the I/O queues of {subsystemNqn} failed: {runs.First(r => r.IsFaulted).Exception!.InnerException!.Message}");
            Abort(reason);
            throw new ConnectionClosedException(reason);
        }

        return runs.Length;
    }

    /// <summary>
    /// While an authentication command waits for an entry of queue <paramref name="index"/>, new I/O is sent to the other
    /// queues (or waits); released, or when the command's entry came free, I/O that waited may go.
    /// </summary>
    private void HoldQueue(int index, bool hold)
    {
        Volatile.Write(ref _held[index], hold ? 1 : 0);
        if (!hold && Volatile.Read(ref _waitingCount) != 0)
        {
            ThreadPool.UnsafeQueueUserWorkItem(static set => set.Pump(), this, preferLocal: false);
        }
    }

    public override string ToString() => $"{_queues.Length} I/O queue(s) to {Address}{(IsClosed ? " (closed)" : string.Empty)}";

    internal static (IoQueueSet? Set, int Index) EnterCompletion(IoQueueSet set, int index)
    {
        var previous = (t_completingSet, t_completingIndex);
        t_completingSet = set;
        t_completingIndex = index;
        return previous;
    }

    internal static void ExitCompletion((IoQueueSet? Set, int Index) previous)
    {
        t_completingSet = previous.Set;
        t_completingIndex = previous.Index;
    }

    /// <summary>A queue answered "closed" before the set heard of it: stop routing here; the queue's own close reason arrives through <see cref="Closed"/>.</summary>
    internal void MarkUnusable()
    {
        NoteLoss();
        if (Interlocked.Exchange(ref _unusable, 1) == 0 && Volatile.Read(ref _waitingCount) != 0)
        {
            Pump();
        }
    }

    private void NoteLoss()
    {
        if (Volatile.Read(ref _lostAt) == 0)
        {
            Interlocked.CompareExchange(ref _lostAt, Stopwatch.GetTimestamp(), 0);
        }
    }

    /// <summary>
    /// Submits the operation's next command on one of the queues: the queue whose completion the
    /// current thread is delivering (its send is then batched with the read loop's), otherwise round
    /// robin; a full queue passes to the next. When all are full the operation waits in line.
    /// </summary>
    /// <remarks>
    /// No lost wake-up: a waiter counts itself (<c>_waitingCount</c>) before it enqueues and reads
    /// <c>_inFlight</c> after; a completion decrements <c>_inFlight</c> before it reads
    /// <c>_waitingCount</c>. Both are full fences, so either the completion sees the waiter and drains
    /// the line, or the waiter sees nothing in flight and drains it itself.
    /// </remarks>
    /// <param name="operation">The operation whose next command goes out.</param>
    /// <param name="issuedAt">A <see cref="Stopwatch"/> timestamp taken just now by the caller (its age starts there), or 0 to read the clock if ages are tracked.</param>
    internal SubmitOutcome Submit(IoOperation operation, long issuedAt = 0)
    {
        if (!IsUsable)
        {
            return SubmitOutcome.Closed;
        }

        Interlocked.Increment(ref _inFlight);

        var attempt = TryQueues(operation, issuedAt);
        if (attempt == Attempt.Submitted)
        {
            return SubmitOutcome.Submitted;
        }

        Interlocked.Decrement(ref _inFlight);
        if (attempt == Attempt.Closed)
        {
            MarkUnusable();
            return SubmitOutcome.Closed;
        }

        if (Interlocked.Increment(ref _waitingCount) > _waitLimit || !WaitingRing().TryEnqueue(operation))
        {
            Interlocked.Decrement(ref _waitingCount);
            return SubmitOutcome.Overloaded;
        }

        Interlocked.MemoryBarrier();
        if (Volatile.Read(ref _inFlight) == 0 || !IsUsable)
        {
            Pump();
        }

        return SubmitOutcome.Waiting;
    }

    /// <summary>Called by an operation when its command finished (its command id is free again): lets the line move first.</summary>
    internal void CommandFinished()
    {
        if (Volatile.Read(ref _completionSeen) == 0)
        {
            Volatile.Write(ref _completionSeen, 1);
        }

        Interlocked.Decrement(ref _inFlight);
        if (Volatile.Read(ref _waitingCount) != 0)
        {
            Pump();
        }
    }

    private BoundedRing<IoOperation> WaitingRing() =>
        Volatile.Read(ref _waiting) ?? Interlocked.CompareExchange(ref _waiting, new BoundedRing<IoOperation>(Math.Max(1, _waitLimit)), null) ?? _waiting!;

    /// <summary>Moves waiting operations onto free queue entries, or elsewhere when the set is no longer usable.</summary>
    private void Pump()
    {
        var waiting = Volatile.Read(ref _waiting);
        while (waiting is not null && waiting.TryDequeue(out var operation))
        {
            Interlocked.Decrement(ref _waitingCount);
            if (!IsUsable)
            {
                operation.Redispatch();
                continue;
            }

            Interlocked.Increment(ref _inFlight);

            // It waited in line: its age starts now, not when it was started.
            var attempt = TryQueues(operation, issuedAt: 0);
            if (attempt == Attempt.Submitted)
            {
                continue;
            }

            Interlocked.Decrement(ref _inFlight);
            if (attempt == Attempt.Closed)
            {
                Volatile.Write(ref _unusable, 1);
                operation.Redispatch();
                continue;
            }

            // Still full: back in line. A command in flight drains the line when it finishes.
            Interlocked.Increment(ref _waitingCount);
            if (!WaitingRing().TryEnqueue(operation))
            {
                Interlocked.Decrement(ref _waitingCount);
                operation.FailOverloaded(_waitLimit);
                continue;
            }

            Interlocked.MemoryBarrier();
            if (Volatile.Read(ref _inFlight) != 0 && IsUsable)
            {
                return;
            }
        }
    }

    private Attempt TryQueues(IoOperation operation, long issuedAt)
    {
        var queues = _queues;
        int count = queues.Length;
        int start;
        if (ReferenceEquals(t_completingSet, this))
        {
            start = t_completingIndex;
        }
        else
        {
            start = count == 1 ? 0 : (int)((uint)Interlocked.Increment(ref _nextQueue) % (uint)count);
        }

        for (int i = 0; i < count; i++)
        {
            int index = start + i;
            if (index >= count)
            {
                index -= count;
            }

            if (Volatile.Read(ref _held[index]) != 0)
            {
                continue;
            }

            var pending = operation.Issue(queues[index], MaxTransferSize);
            if (!pending.IsCompleted)
            {
                operation.AwaitCompletion(pending, this, index, issuedAt);
                return Attempt.Submitted;
            }

            var result = pending.Result;
            switch (result.Outcome)
            {
                case CommandOutcome.QueueFull:
                    continue;
                case CommandOutcome.ConnectionClosed:
                    return Attempt.Closed;
                default:
                    // Answered before we could wait for it (not seen in practice): finish it here.
                    operation.CompletedSynchronously(result, this, index);
                    return Attempt.Submitted;
            }
        }

        return Attempt.Full;
    }

    private enum Attempt
    {
        Submitted,
        Full,
        Closed,
    }
}

/// <summary>What became of a submission to an <see cref="IoQueueSet"/>.</summary>
internal enum SubmitOutcome
{
    /// <summary>On a queue; the operation hears of its completion.</summary>
    Submitted,

    /// <summary>Every queue was full: waiting in the set's line.</summary>
    Waiting,

    /// <summary>The set is closed (or closing): route elsewhere.</summary>
    Closed,

    /// <summary>The line is full too (io-hold-limit).</summary>
    Overloaded,
}
