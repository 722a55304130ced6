using System.Runtime.CompilerServices;
using System.Threading.Tasks.Sources;
using ActorNvme.Protocol.Nvme;
using ActorNvme.Transport;

namespace ActorNvme.Io;

/// <summary>What a block-device operation does.</summary>
internal enum IoKind : byte
{
    Read,
    Write,
    Flush,
    WriteZeroes,
    Deallocate,

    /// <summary>A reservation command (Register, Acquire, Release, Report) prepared by the caller.</summary>
    Reservation,
}

/// <summary>
/// One block-device operation from the caller's call to its result: the pooled awaitable behind the
/// <see cref="ValueTask"/> the caller holds, and the state machine that issues its commands (one per
/// chunk when the I/O is larger than a command may carry), retries them and moves them between paths.
/// Operations come from a pool and return to it when the caller takes the result, so the steady state
/// allocates nothing.
/// </summary>
/// <remarks>
/// Ownership: between <see cref="Start"/> and the caller's <see cref="GetResult"/> exactly one party
/// holds the operation at a time — the submitting thread, a queue pair (until its completion
/// continuation runs), a waiting line (an <see cref="IoQueueSet"/>'s or the device's hold line). Each
/// hand-over goes through an interlocked publication (the queue pair's command state, the line's
/// cell sequence), so the fields need no lock.
/// </remarks>
internal sealed class IoOperation : IValueTaskSource
{
    private const int PoolSize = 4096;
    private const int RangeSize = 16;
    private const int MaxRangesPerCommand = 256;
    private const uint MaxBlocksPerRange = uint.MaxValue;

    private const int ThreadCacheSize = 64;

    private static readonly BoundedRing<IoOperation> Pool = new(PoolSize);

    // A few operations kept by the thread that returned them: a caller that starts its next I/O from
    // the continuation of the last one (on the I/O thread) takes it back without an interlocked
    // exchange on the shared pool. Only the owning thread touches its cache.
    [ThreadStatic]
    private static IoOperation?[]? t_cache;

    [ThreadStatic]
    private static int t_cached;

    private readonly Action _onCommandCompleted;
    private ManualResetValueTaskSourceCore<bool> _source;
    private ConfiguredValueTaskAwaitable<IoResult>.ConfiguredValueTaskAwaiter _awaiter;
    private IoQueueSet? _set;
    private int _queueIndex;
    private ushort _commandId;
    private byte[]? _ranges;

    private IoOperation()
    {
        _onCommandCompleted = OnCommandCompleted;

        // The caller's continuation runs on the thread that completed the command (a queue pair's
        // receive thread): no hop per I/O.
        _source.RunContinuationsAsynchronously = false;
    }

    public BlockDevice Device { get; private set; } = null!;

    public IoKind Kind { get; private set; }

    public ulong Lba { get; private set; }

    public ulong Blocks { get; private set; }

    /// <summary>Blocks done by commands that succeeded.</summary>
    public ulong BlocksDone { get; private set; }

    /// <summary>Blocks of the command in flight.</summary>
    public ulong ChunkBlocks { get; private set; }

    /// <summary>Retries spent on error statuses (path losses do not count).</summary>
    public int Retries { get; set; }

    /// <summary>Times a command of this operation was in flight on a path that was lost (io-path-loss-retries bounds them, across reconnects).</summary>
    public int PathLosses { get; set; }

    /// <summary>While fenced: the <see cref="System.Diagnostics.Stopwatch"/> timestamp before which it must not be sent again.</summary>
    public long NotBefore { get; set; }

    /// <summary>Fenced only because every path answered with an ANA state: released early when a path serves again.</summary>
    public bool WaitsForAna { get; set; }

    /// <summary>Whether a stale copy of this operation's command, executed late by an old association, could overwrite newer data.</summary>
    public bool ModifiesData => Kind is IoKind.Write or IoKind.WriteZeroes or IoKind.Deallocate;

    /// <summary>A path that answered with a path-related status: tried last next time.</summary>
    public IoQueueSet? Avoid { get; set; }

    /// <summary>The <see cref="System.Diagnostics.Stopwatch"/> timestamp at which the caller started it (for latency statistics).</summary>
    public long StartedAt { get; private set; }

    public Memory<byte> Destination { get; private set; }

    public ReadOnlyMemory<byte> Source { get; private set; }

    /// <summary>For <see cref="IoKind.Reservation"/>: the command (NSID filled at issue).</summary>
    public SubmissionQueueEntry Command { get; set; }

    public static IoOperation Rent(BlockDevice device, IoKind kind, ulong lba, ulong blocks, Memory<byte> destination, ReadOnlyMemory<byte> source)
    {
        IoOperation? operation;
        var cache = t_cache;
        int cached = t_cached;
        if (cache is not null && cached > 0)
        {
            cached--;
            operation = cache[cached]!;
            cache[cached] = null;
            t_cached = cached;
        }
        else if (!Pool.TryDequeue(out operation))
        {
            operation = new IoOperation();
        }

        operation.Device = device;
        operation.Kind = kind;
        operation.Lba = lba;
        operation.Blocks = blocks;
        operation.Destination = destination;
        operation.Source = source;
        return operation;
    }

    /// <summary>Hands the operation to its device and returns the caller's task.</summary>
    public ValueTask Start()
    {
        var task = new ValueTask(this, _source.Version);
        long now = System.Diagnostics.Stopwatch.GetTimestamp();
        StartedAt = now;

        // The same clock reading is the first command's issue time (command ages): one read, not two.
        Device.Dispatch(this, now);
        return task;
    }

    /// <summary>The next command of this operation, submitted on <paramref name="queue"/>.</summary>
    public ValueTask<IoResult> Issue(IoQueuePair queue, int maxTransferSize)
    {
        var device = Device;
        uint nsid = device.NamespaceId;
        ulong lba = Lba + BlocksDone;
        ulong remaining = Blocks - BlocksDone;
        switch (Kind)
        {
            case IoKind.Read:
            {
                int blocks = DataBlocks(remaining, maxTransferSize);
                ChunkBlocks = (ulong)blocks;
                var buffer = Destination.Slice(device.BytesOf(BlocksDone), device.BytesOf((ulong)blocks));
                return queue.SubmitAsync(NvmCommands.Read(nsid, lba, blocks), DataDirection.ControllerToHost, default, buffer, out _commandId);
            }

            case IoKind.Write:
            {
                int blocks = DataBlocks(remaining, maxTransferSize);
                ChunkBlocks = (ulong)blocks;
                var buffer = Source.Slice(device.BytesOf(BlocksDone), device.BytesOf((ulong)blocks));
                return queue.SubmitAsync(NvmCommands.Write(nsid, lba, blocks), DataDirection.HostToController, buffer, default, out _commandId);
            }

            case IoKind.Flush:
                ChunkBlocks = remaining;
                return queue.SubmitAsync(NvmCommands.Flush(nsid), DataDirection.None, default, default, out _commandId);

            case IoKind.WriteZeroes:
            {
                int blocks = (int)Math.Min(remaining, NvmCommands.MaxBlocksPerCommand);
                ChunkBlocks = (ulong)blocks;
                return queue.SubmitAsync(NvmCommands.WriteZeroes(nsid, lba, blocks), DataDirection.None, default, default, out _commandId);
            }

            case IoKind.Reservation:
            {
                ChunkBlocks = remaining;
                var command = Command;
                command.NamespaceId = nsid;
                var direction = !Source.IsEmpty ? DataDirection.HostToController : !Destination.IsEmpty ? DataDirection.ControllerToHost : DataDirection.None;
                return queue.SubmitAsync(command, direction, Source, Destination, out _commandId);
            }

            default:
            {
                var ranges = _ranges ??= new byte[MaxRangesPerCommand * RangeSize];
                int count = 0;
                ulong covered = 0;
                while (count < MaxRangesPerCommand && covered < remaining)
                {
                    uint length = (uint)Math.Min(remaining - covered, MaxBlocksPerRange);
                    NvmCommands.WriteRange(ranges.AsSpan(count * RangeSize, RangeSize), lba + covered, length);
                    covered += length;
                    count++;
                }

                ChunkBlocks = covered;
                return queue.SubmitAsync(NvmCommands.DatasetManagement(nsid, count, deallocate: true), DataDirection.HostToController, ranges.AsMemory(0, count * RangeSize), default, out _commandId);
            }
        }

        int DataBlocks(ulong left, int maxBytes)
        {
            ulong perCommand = Math.Max(1UL, (ulong)maxBytes >> device.BlockShift);
            return (int)Math.Min(Math.Min(left, perCommand), NvmCommands.MaxBlocksPerCommand);
        }
    }

    /// <summary>Waits for the command just submitted on queue <paramref name="index"/> of <paramref name="set"/>.</summary>
    /// <param name="issuedAt">A <see cref="System.Diagnostics.Stopwatch"/> timestamp taken just before the submission, or 0 to read the clock.</param>
    public void AwaitCompletion(ValueTask<IoResult> pending, IoQueueSet set, int index, long issuedAt)
    {
        _set = set;
        _queueIndex = index;

        // Noted before the continuation is hooked, so the completion (which clears it) always comes after.
        set.CommandIssued(index, _commandId, issuedAt);
        _awaiter = pending.ConfigureAwait(false).GetAwaiter();
        _awaiter.UnsafeOnCompleted(_onCommandCompleted);
    }

    /// <summary>A command answered before anyone waited for it.</summary>
    public void CompletedSynchronously(in IoResult result, IoQueueSet set, int index)
    {
        set.CommandFinished();
        Deliver(result, set, index);
    }

    /// <summary>Back to the device for another path (or the hold line): its set closed while it waited.</summary>
    public void Redispatch() => Device.Dispatch(this);

    public void Complete() => _source.SetResult(true);

    public void Fail(BlockDeviceException error)
    {
        Device.Statistics.Failed(Kind);
        _source.SetException(error);
    }

    public void FailOverloaded(int limit) =>
        Fail(new BlockDeviceException(BlockDeviceErrorKind.Overloaded, Device.Name, $"{Describe()} failed: {limit} I/Os already wait for a free queue entry (io-hold-limit)"));

    /// <summary>"read of 8 block(s) at LBA 1024", for error messages.</summary>
    public string Describe() => Kind switch
    {
        IoKind.Flush => "flush",
        IoKind.WriteZeroes => $"write zeroes of {Blocks} block(s) at LBA {Lba}",
        IoKind.Deallocate => $"deallocate of {Blocks} block(s) at LBA {Lba}",
        IoKind.Reservation => $"{(NvmOpcode)Command.Opcode} (action {ReservationCommands.Action(Command)})",
        _ => $"{(Kind == IoKind.Read ? "read" : "write")} of {Blocks} block(s) at LBA {Lba}",
    };

    public void GetResult(short token)
    {
        try
        {
            _source.GetResult(token);
        }
        finally
        {
            Return();
        }
    }

    public ValueTaskSourceStatus GetStatus(short token) => _source.GetStatus(token);

    public void OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
        _source.OnCompleted(continuation, state, token, flags);

    private void OnCommandCompleted()
    {
        var set = _set!;
        int index = _queueIndex;
        _set = null;

        // Before GetResult hands the command id back for reuse, so a new command's age is never cleared.
        set.CommandEnded(index, _commandId);
        IoResult result;
        try
        {
            result = _awaiter.GetResult();
        }
        finally
        {
            _awaiter = default;
        }

        // The command id is free again: let I/O waiting for one go first.
        set.CommandFinished();
        Deliver(result, set, index);
    }

    private void Deliver(in IoResult result, IoQueueSet set, int index)
    {
        // Follow-up I/O submitted from here (the caller's continuation, the next chunk) stays on this
        // queue, so the read loop sends it in its batch.
        var previous = IoQueueSet.EnterCompletion(set, index);
        try
        {
            Device.OnResult(this, set, result);
        }
        finally
        {
            IoQueueSet.ExitCompletion(previous);
        }
    }

    public void ChunkSucceeded() => BlocksDone += ChunkBlocks;

    private void Return()
    {
        Device = null!;
        Destination = default;
        Source = default;
        Command = default;
        Avoid = null;
        _set = null;
        BlocksDone = 0;
        ChunkBlocks = 0;
        Retries = 0;
        PathLosses = 0;
        NotBefore = 0;
        WaitsForAna = false;
        _source.Reset();
        var cache = t_cache ??= new IoOperation?[ThreadCacheSize];
        int cached = t_cached;
        if (cached < cache.Length)
        {
            cache[cached] = this;
            t_cached = cached + 1;
        }
        else
        {
            Pool.TryEnqueue(this);
        }
    }
}
