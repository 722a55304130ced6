using System.Diagnostics;
using System.Numerics;
using System.Runtime.CompilerServices;
using ActorNvme.Protocol.Data;

namespace ActorNvme.Io;

/// <summary>Limits of one block device's resilience (from io-retries, io-hold-limit and io-path-loss-retries).</summary>
/// <param name="Retries">Retries of a command that failed with a status without DNR (path losses do not count), over the I/O's whole life, across reconnects; -1: no limit (SPDK's bdev_retry_count -1).</param>
/// <param name="HoldLimit">I/Os held at once while no path is usable; beyond this, I/O fails with PathUnavailable. 0 fails at once.</param>
/// <param name="PathLossRetries">Resubmissions of one I/O after the path it was in flight on was lost, across reconnects; one more loss fails it with PathLost.</param>
public sealed record BlockDeviceOptions(int Retries = BlockDeviceOptions.DefaultRetries, int HoldLimit = BlockDeviceOptions.DefaultHoldLimit, int PathLossRetries = BlockDeviceOptions.DefaultPathLossRetries)
{
    public const int DefaultRetries = 5;
    public const int DefaultHoldLimit = 4096;
    public const int DefaultPathLossRetries = 8;

    public static BlockDeviceOptions Default { get; } = new();
}

/// <summary>SPDK's multipath policies (bdev_nvme_set_multipath_policy).</summary>
public enum MultipathPolicyMode
{
    /// <summary>All I/O on one path; the next usable one only when it is unusable.</summary>
    ActivePassive,

    /// <summary>I/O spread over every usable path by <see cref="MultipathSelector"/>.</summary>
    ActiveActive,
}

/// <summary>How active_active spreads I/O.</summary>
public enum MultipathSelector
{
    /// <summary>Each path in turn, <see cref="MultipathPolicy.RoundRobinMinIo"/> I/Os at a time.</summary>
    RoundRobin,

    /// <summary>The path with the fewest commands in flight.</summary>
    QueueDepth,
}

/// <summary>A block device's path policy, as SPDK's bdev_nvme_set_multipath_policy takes it.</summary>
public sealed record MultipathPolicy(MultipathPolicyMode Mode, MultipathSelector Selector = MultipathSelector.RoundRobin, int RoundRobinMinIo = 1)
{
    public int RoundRobinMinIo { get; init; } = RoundRobinMinIo >= 1 ? RoundRobinMinIo : throw new ArgumentOutOfRangeException(nameof(RoundRobinMinIo), RoundRobinMinIo, "rr_min_io is at least 1");
}

/// <summary>
/// A namespace as a block device (nvme0n1): reads and writes of whole blocks from any thread, each
/// a <see cref="ValueTask"/> that allocates nothing in the steady state and completes on the thread
/// that received the answer. I/O goes to whichever path (controller association) is attached and
/// usable; when none is, it is held until one attaches, fails at once after fast-io-fail-timeout,
/// and fails with <see cref="BlockDeviceErrorKind.Deleted"/> when the device is deleted.
/// </summary>
/// <remarks>
/// <para>This is the public surface: I/O, identity and geometry. Paths, fail-fast and deletion belong
/// to the <see cref="BlockDeviceOwner"/> created with the device, which only its subsystem actor
/// holds, so whoever is handed a device cannot detach its paths or delete it. The set of paths
/// is an immutable array replaced with compare-and-swap; flags are volatile; held I/O waits in a
/// bounded lock-free line. A hold and an attach cannot miss each other: the holder publishes itself
/// and then looks for a path, the owner publishes the path and then looks for held I/O, both behind
/// full fences.</para>
/// <para>Continuations of the returned tasks run on the I/O thread serving the queue pair, which serves
/// many queue pairs: they must not block (hand long work to another thread).</para>
/// </remarks>
public sealed partial class BlockDevice
{
    private static readonly PathEntry[] NoPaths = [];

    private readonly BlockDeviceOptions _options;
    // Made on the first hold: an idle device (thousands per process) holds no ring of io-hold-limit cells.
    private BoundedRing<IoOperation>? _held;
    private readonly int _blockShift;
    private PathEntry[] _paths = NoPaths;
    private ulong _blockCount;
    private int _heldCount;
    private int _nextPath;
    private int _failFast;
    private string? _deletedReason;
    private readonly Lock _fenceSync = new();
    private List<IoOperation>? _fenced;
    private ITimer? _fenceTimer;
    private long _fenceTimerDue = long.MaxValue;
    private int _fencedCount;
    private MultipathPolicy? _policy;

    /// <summary>Only <see cref="BlockDeviceOwner"/> creates devices, so every device has exactly one owner.</summary>
    internal BlockDevice(string name, string subsystemNqn, uint namespaceId, int blockSize, ulong blockCount, BlockDeviceOptions? options)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        if (blockSize < 512 || !BitOperations.IsPow2(blockSize))
        {
            throw new ArgumentOutOfRangeException(nameof(blockSize), blockSize, "a block is a power of two of at least 512 bytes");
        }

        ArgumentOutOfRangeException.ThrowIfZero(blockCount);
        _options = options ?? BlockDeviceOptions.Default;
        ArgumentOutOfRangeException.ThrowIfLessThan(_options.Retries, -1, "options.Retries");
        ArgumentOutOfRangeException.ThrowIfNegative(_options.HoldLimit, "options.HoldLimit");
        ArgumentOutOfRangeException.ThrowIfNegative(_options.PathLossRetries, "options.PathLossRetries");
        Name = name;
        SubsystemNqn = subsystemNqn ?? string.Empty;
        NamespaceId = namespaceId;
        BlockSize = blockSize;
        _blockCount = blockCount;
        _blockShift = BitOperations.Log2((uint)blockSize);
    }

    /// <summary>The device's name, e.g. nvme0n1.</summary>
    public string Name { get; }

    public string SubsystemNqn { get; }

    public uint NamespaceId { get; }

    /// <summary>Bytes per logical block.</summary>
    public int BlockSize { get; }

    /// <summary>Logical blocks in the namespace (NSZE); changes when the namespace is resized.</summary>
    public ulong BlockCount => Volatile.Read(ref _blockCount);

    public ulong SizeBytes => BlockCount << _blockShift;

    /// <summary>NGUID (0 when the namespace reports none).</summary>
    public UInt128 Nguid { get; internal init; }

    /// <summary>EUI-64 (0 when the namespace reports none).</summary>
    public ulong Eui64 { get; internal init; }

    /// <summary>Namespace UUID (empty when the namespace reports none).</summary>
    public Guid Uuid { get; internal init; }

    /// <summary>Operations, bytes, latencies and errors per kind of I/O since attach (or the last reset).</summary>
    public IoStatistics Statistics { get; } = new();

    /// <summary>Commands completed successfully on each attached path, by path key (counts survive the path's reconnects).</summary>
    public IReadOnlyDictionary<string, long> CompletedPerPath =>
        Volatile.Read(ref _paths).ToDictionary(p => p.Key, p => Volatile.Read(ref p.Counter.Completed), StringComparer.Ordinal);

    /// <summary>Paths attached now (usable or not).</summary>
    public int PathCount => Volatile.Read(ref _paths).Length;

    /// <summary>
    /// The attached paths by key, with their I/O queues (a snapshot). Internal: a queue set can be
    /// aborted, which is the owner's business; our own tools (perf --bare, tests) read it.
    /// </summary>
    internal IReadOnlyList<KeyValuePair<string, IoQueueSet>> Paths => [.. Volatile.Read(ref _paths).Select(p => new KeyValuePair<string, IoQueueSet>(p.Key, p.Set))];

    /// <summary>Whether any attached path can take I/O now.</summary>
    public bool HasUsablePath => FirstUsable(Volatile.Read(ref _paths)) is not null;

    /// <summary>I/Os held for want of a path.</summary>
    public int HeldCount => Volatile.Read(ref _heldCount);

    /// <summary>
    /// I/Os waiting out a fence: writes whose path was lost while they were in flight (until the old
    /// association can no longer execute them), and I/O waiting for a path's ANA transition time.
    /// </summary>
    public int FencedCount => Volatile.Read(ref _fencedCount);

    public bool IsFailingFast => Volatile.Read(ref _failFast) != 0;

    public bool IsDeleted => Volatile.Read(ref _deletedReason) is not null;

    public BlockDeviceOptions Options => _options;

    /// <summary>Reads <c>destination.Length / BlockSize</c> blocks starting at <paramref name="lba"/>.</summary>
    /// <exception cref="ArgumentException">The buffer is not a whole number of blocks, or the range leaves the namespace.</exception>
    /// <exception cref="BlockDeviceException">Through the task: the read failed (see <see cref="BlockDeviceException.Kind"/>).</exception>
    public ValueTask ReadAsync(ulong lba, Memory<byte> destination)
    {
        ulong blocks = BlocksIn(destination.Length, nameof(destination));
        CheckRange(lba, blocks, nameof(destination));
        return Start(IoKind.Read, lba, blocks, destination, default);
    }

    /// <summary>Writes <c>source.Length / BlockSize</c> blocks starting at <paramref name="lba"/>. The buffer must stay unchanged until the task completes.</summary>
    /// <exception cref="ArgumentException">The buffer is not a whole number of blocks, or the range leaves the namespace.</exception>
    public ValueTask WriteAsync(ulong lba, ReadOnlyMemory<byte> source)
    {
        ulong blocks = BlocksIn(source.Length, nameof(source));
        CheckRange(lba, blocks, nameof(source));
        return Start(IoKind.Write, lba, blocks, default, source);
    }

    /// <summary>RESCAP of the namespace: which reservation types it supports (None: no reservations).</summary>
    public Protocol.Nvme.ReservationCapabilities ReservationCapabilities { get; internal init; }

    /// <summary>Whether the namespace supports Write Exclusive reservations (what <see cref="FenceAsync"/> takes).</summary>
    public bool SupportsReservations => (ReservationCapabilities & Protocol.Nvme.ReservationCapabilities.WriteExclusive) != 0;

    /// <summary>Commands the target refused with Reservation Conflict.</summary>
    public long ReservationConflicts => Interlocked.Read(ref _reservationConflicts);

    private long _reservationConflicts;

    /// <summary>Makes every completed write durable (NVM Flush).</summary>
    public ValueTask FlushAsync() => Start(IoKind.Flush, 0, 1, default, default);

    /// <summary>Sets <paramref name="blocks"/> blocks from <paramref name="lba"/> to zero without sending data (Write Zeroes).</summary>
    public ValueTask WriteZeroesAsync(ulong lba, ulong blocks)
    {
        CheckBlockCount(blocks);
        CheckRange(lba, blocks, nameof(blocks));
        return Start(IoKind.WriteZeroes, lba, blocks, default, default);
    }

    /// <summary>Tells the controller that <paramref name="blocks"/> blocks from <paramref name="lba"/> are unused (Dataset Management, deallocate).</summary>
    public ValueTask DeallocateAsync(ulong lba, ulong blocks)
    {
        CheckBlockCount(blocks);
        CheckRange(lba, blocks, nameof(blocks));
        return Start(IoKind.Deallocate, lba, blocks, default, default);
    }

    /// <summary>
    /// Routes I/O through <paramref name="queues"/> under <paramref name="pathKey"/> (replacing
    /// what that key held), and resubmits held I/O.
    /// </summary>
    internal void AttachPath(string pathKey, IoQueueSet queues)
    {
        ArgumentException.ThrowIfNullOrEmpty(pathKey);
        ArgumentNullException.ThrowIfNull(queues);
        UpdatePaths(paths =>
        {
            var counter = paths.FirstOrDefault(p => p.Key == pathKey)?.Counter ?? new PathCounter();
            return [.. paths.Where(p => p.Key != pathKey), new PathEntry(pathKey, queues, counter)];
        });
        ReleaseHeldElsewhere();
    }

    /// <summary>
    /// Stops routing new I/O through <paramref name="pathKey"/>. Commands in flight there finish
    /// there; those the path's loss fails (its owner aborts the queues) are retried on another path or held.
    /// </summary>
    /// <summary>
    /// Records the path's ANA state for this namespace (from the ANA log page). I/O never goes to a path
    /// that is inaccessible, in persistent loss or in change; non-optimized paths serve only when no
    /// optimized one can. A path becoming accessible releases held I/O.
    /// </summary>
    internal void SetPathAnaState(string pathKey, AnaState state)
    {
        ArgumentException.ThrowIfNullOrEmpty(pathKey);
        UpdatePaths(paths => paths.Any(p => p.Key == pathKey && p.Ana != state) ? [.. paths.Select(p => p.Key == pathKey ? p with { Ana = state } : p)] : paths);
        if (state is AnaState.Optimized or AnaState.NonOptimized)
        {
            // The log page read after the change notice is newer than any ANA status an I/O got before it:
            // the path serves again now, not when that status's ANATT has run out.
            foreach (var path in Volatile.Read(ref _paths))
            {
                if (path.Key == pathKey)
                {
                    path.Set.ClearAnaUnavailable();
                }
            }

            ReleaseHeldElsewhere();
        }
    }

    /// <summary>The ANA state recorded for <paramref name="pathKey"/>, or null when no such path is attached.</summary>
    internal AnaState? PathAnaState(string pathKey) => Volatile.Read(ref _paths).FirstOrDefault(p => p.Key == pathKey)?.Ana;

    internal void DetachPath(string pathKey)
    {
        ArgumentException.ThrowIfNullOrEmpty(pathKey);
        UpdatePaths(paths => paths.Any(p => p.Key == pathKey) ? [.. paths.Where(p => p.Key != pathKey)] : paths);
    }

    /// <summary>The multipath policy (null: round robin that keeps follow-up I/O on the completing path).</summary>
    public MultipathPolicy? Policy => Volatile.Read(ref _policy);

    internal void SetPolicy(MultipathPolicy? policy) => Volatile.Write(ref _policy, policy);

    /// <summary>While true and no path is usable, held and new I/O fails at once (fast-io-fail-timeout passed).</summary>
    internal void SetFailFast(bool failFast)
    {
        Interlocked.Exchange(ref _failFast, failFast ? 1 : 0);
        if (failFast)
        {
            ReleaseHeldElsewhere();
        }
    }

    /// <summary>The device is gone. Held and new I/O fails with <see cref="BlockDeviceErrorKind.Deleted"/>, naming <paramref name="reason"/>.</summary>
    internal void Delete(string reason)
    {
        ArgumentException.ThrowIfNullOrEmpty(reason);
        if (Interlocked.CompareExchange(ref _deletedReason, reason, null) is not null)
        {
            return;
        }

        UpdatePaths(_ => NoPaths);
        ReleaseHeldElsewhere();
        ReleaseFencedElsewhere(all: true);
    }

    /// <summary>
    /// The namespace was resized (its Identify Namespace NSZE changed): I/O is checked against the new
    /// size from now on. I/O already started keeps its range; the controller refuses what lies beyond
    /// a shrunk end.
    /// </summary>
    internal void Resize(ulong blockCount)
    {
        ArgumentOutOfRangeException.ThrowIfZero(blockCount);
        Volatile.Write(ref _blockCount, blockCount);
    }

    public override string ToString() => $"{Name} ({BlockCount} blocks of {BlockSize} bytes, {PathCount} path(s){(IsDeleted ? ", deleted" : string.Empty)})";

    internal int BytesOf(ulong blocks) => (int)(blocks << _blockShift);

    /// <summary>log2 of <see cref="BlockSize"/>.</summary>
    internal int BlockShift => _blockShift;

    /// <summary>Sends the operation's next command down a usable path, or holds it.</summary>
    /// <param name="operation">The operation whose next command goes out.</param>
    /// <param name="now">A <see cref="Stopwatch"/> timestamp the caller took just now (reused as the command's issue time), or 0.</param>
    internal void Dispatch(IoOperation operation, long now = 0)
    {
        while (true)
        {
            if (Volatile.Read(ref _deletedReason) is { } reason)
            {
                operation.Fail(Deleted(operation, reason));
                return;
            }

            var set = ChoosePath(operation);
            if (set is null)
            {
                Hold(operation);
                return;
            }

            switch (set.Submit(operation, now))
            {
                case SubmitOutcome.Submitted:
                case SubmitOutcome.Waiting:
                    return;
                case SubmitOutcome.Overloaded:
                    operation.FailOverloaded(set.WaitLimit);
                    return;
                default:
                    continue; // that set is closed now; ChoosePath skips it
            }
        }
    }

    /// <summary>A command of <paramref name="operation"/> ended on <paramref name="set"/>: next chunk, done, retry, or fail.</summary>
    internal void OnResult(IoOperation operation, IoQueueSet set, in Transport.IoResult result)
    {
        if (Volatile.Read(ref _deletedReason) is { } deletedReason)
        {
            // The device went away while this was in flight (its namespace was removed, or the device
            // deleted): whatever the controller answered, the I/O ends with the deletion, as held I/O does.
            operation.Fail(Deleted(operation, deletedReason));
            return;
        }

        if (result.IsSuccess)
        {
            CountOnPath(set);
            operation.ChunkSucceeded();

            // One clock reading per completion: the latency of a finished I/O, or the issue time of its next chunk.
            long now = Stopwatch.GetTimestamp();
            if (operation.BlocksDone >= operation.Blocks)
            {
                Statistics.Completed(
                    operation.Kind,
                    operation.Kind == IoKind.Flush ? 0 : (long)(operation.Blocks << _blockShift),
                    now - operation.StartedAt);
                operation.Complete();
            }
            else
            {
                Dispatch(operation, now);
            }

            return;
        }

        if (result.Outcome == Transport.CommandOutcome.ConnectionClosed)
        {
            OnPathLost(operation, set);
            return;
        }

        var status = result.Status;
        bool digestError = result.Outcome == Transport.CommandOutcome.DataDigestError;
        if (!digestError && status.Type == Protocol.Nvme.StatusCodeType.PathRelated && IsAnaWait(status))
        {
            Statistics.AnaRefused();
        }

        if (!digestError && IsReservationConflict(status))
        {
            // Fenced (or never allowed): retrying cannot help, and a writer that was fenced off must learn it at once.
            Interlocked.Increment(ref _reservationConflicts);
            operation.Fail(new BlockDeviceException(
                BlockDeviceErrorKind.ReservationConflict,
                Name,
                $"{operation.Describe()} failed: reservation conflict: another host holds the reservation of namespace {NamespaceId} of {SubsystemNqn} (this host was fenced off, or never held it); not retried ({status.ToString(Protocol.Nvme.CommandSet.Nvm)})",
                status));
            return;
        }

        if (!digestError && status.Type == Protocol.Nvme.StatusCodeType.Generic && status.Code == (byte)Protocol.Nvme.GenericStatus.AbortRequested)
        {
            // Aborted on purpose (its command timeout passed, action abort): that is how this I/O ends.
            operation.Fail(new BlockDeviceException(BlockDeviceErrorKind.DeviceError, Name, $"{operation.Describe()} failed: aborted after its command timeout ({status.ToString(Protocol.Nvme.CommandSet.Nvm)})", status));
            return;
        }

        if ((!digestError && status.DoNotRetry) || (_options.Retries >= 0 && operation.Retries >= _options.Retries))
        {
            operation.Fail(DeviceError(operation, status, digestError));
            return;
        }

        operation.Retries++;
        var retryDelay = digestError ? TimeSpan.Zero : set.CommandRetryDelay(status.RetryDelay);
        if (retryDelay > TimeSpan.Zero)
        {
            // The controller asked for this pause (CRD, with the CRDT it reported) before the command comes again.
            if (status.Type == Protocol.Nvme.StatusCodeType.PathRelated)
            {
                operation.Avoid = set;
            }

            Fence(operation, Stopwatch.GetTimestamp() + (long)(retryDelay.TotalSeconds * Stopwatch.Frequency));
            return;
        }

        if (status.Type == Protocol.Nvme.StatusCodeType.PathRelated)
        {
            operation.Avoid = set;
            if (IsAnaWait(status))
            {
                OnAnaUnavailable(operation, set);
                return;
            }
        }

        Dispatch(operation);
    }

    /// <summary>
    /// The path went away while a command of <paramref name="operation"/> was in flight on it (not a
    /// retry; io-path-loss-retries bounds it). A read moves at once. A command that modifies data waits
    /// until the old association can no longer execute its copy — <see cref="IoQueueSet.WriteResubmitDelay"/>
    /// from the loss — so that a stale copy cannot land on top of a newer write acknowledged meanwhile.
    /// </summary>
    private void OnPathLost(IoOperation operation, IoQueueSet set)
    {
        set.MarkUnusable();
        if (operation.PathLosses >= _options.PathLossRetries)
        {
            operation.Fail(new BlockDeviceException(
                BlockDeviceErrorKind.PathLost,
                Name,
                $"{operation.Describe()} failed: its path was lost under it {operation.PathLosses + 1} times (io-path-loss-retries is {_options.PathLossRetries}){(operation.ModifiesData ? "; the target may or may not have executed it" : string.Empty)}"));
            return;
        }

        operation.PathLosses++;
        var delay = set.WriteResubmitDelay;
        if (operation.ModifiesData && delay > TimeSpan.Zero)
        {
            long lostAt = set.LostAt;
            Fence(operation, (lostAt == 0 ? Stopwatch.GetTimestamp() : lostAt) + (long)(delay.TotalSeconds * Stopwatch.Frequency));
            return;
        }

        Dispatch(operation);
    }

    /// <summary>ANA inaccessible or transition: the path may serve again within ANATT; persistent loss: it will not.</summary>
    internal static bool IsReservationConflict(Protocol.Nvme.NvmeStatus status) =>
        status.Type == Protocol.Nvme.StatusCodeType.Generic && status.Code == (byte)Protocol.Nvme.GenericStatus.ReservationConflict;

    private static bool IsAnaWait(Protocol.Nvme.NvmeStatus status) =>
        status.Code is (byte)Protocol.Nvme.PathStatus.AsymmetricAccessInaccessible
            or (byte)Protocol.Nvme.PathStatus.AsymmetricAccessTransition
            or (byte)Protocol.Nvme.PathStatus.AsymmetricAccessPersistentLoss;

    /// <summary>
    /// The path refused the command with an ANA state: it is left out of path choice for ANATT, and the
    /// operation goes to another usable path at once, or, when there is none, waits for that ANATT
    /// (counted as one retry) instead of spending its retries on the same refusal.
    /// </summary>
    private void OnAnaUnavailable(IoOperation operation, IoQueueSet set)
    {
        long until = Stopwatch.GetTimestamp() + (long)(set.AnaTransitionTime.TotalSeconds * Stopwatch.Frequency);
        set.MarkAnaUnavailable(until);
        foreach (var path in Volatile.Read(ref _paths))
        {
            if (path.Set != set && path.Serves && !path.Set.IsAnaUnavailable)
            {
                Dispatch(operation);
                return;
            }
        }

        operation.WaitsForAna = true;
        Fence(operation, set.AnaUnavailableUntil);
    }

    /// <summary>Keeps <paramref name="operation"/> out of every path until <paramref name="notBefore"/> (a <see cref="Stopwatch"/> timestamp), then dispatches it.</summary>
    private void Fence(IoOperation operation, long notBefore)
    {
        operation.NotBefore = notBefore;
        bool deleted;
        lock (_fenceSync)
        {
            deleted = Volatile.Read(ref _deletedReason) is not null;
            if (!deleted)
            {
                (_fenced ??= []).Add(operation);
                Volatile.Write(ref _fencedCount, _fenced.Count);
                if (notBefore < _fenceTimerDue)
                {
                    _fenceTimerDue = notBefore;
                    _fenceTimer ??= TimeProvider.System.CreateTimer(static device => ((BlockDevice)device!).ReleaseFenced(all: false), this, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
                    _fenceTimer.Change(Until(notBefore), Timeout.InfiniteTimeSpan);
                }
            }
        }

        if (deleted)
        {
            Dispatch(operation); // fails it naming the deletion
        }
    }

    /// <summary>Dispatches fenced operations that are due (or all of them, when the device is deleted) and re-arms the timer for the rest.</summary>
    private void ReleaseFenced(bool all, bool anaWaits = false)
    {
        List<IoOperation>? due = null;
        lock (_fenceSync)
        {
            if (_fenced is null || _fenced.Count == 0)
            {
                _fenceTimerDue = long.MaxValue;
                return;
            }

            long now = Stopwatch.GetTimestamp();
            long next = long.MaxValue;
            for (int i = 0; i < _fenced.Count; i++)
            {
                var operation = _fenced[i];
                if (all || operation.NotBefore <= now || (anaWaits && operation.WaitsForAna))
                {
                    (due ??= []).Add(operation);
                }
                else
                {
                    next = Math.Min(next, operation.NotBefore);
                }
            }

            if (due is not null)
            {
                _fenced.RemoveAll(o => all || o.NotBefore <= now || (anaWaits && o.WaitsForAna));
            }

            Volatile.Write(ref _fencedCount, _fenced.Count);
            _fenceTimerDue = next;
            if (next != long.MaxValue)
            {
                _fenceTimer!.Change(Until(next), Timeout.InfiniteTimeSpan);
            }
        }

        if (due is null)
        {
            return;
        }

        foreach (var operation in due)
        {
            operation.NotBefore = 0;
            operation.WaitsForAna = false;
            Dispatch(operation);
        }
    }

    private void ReleaseFencedElsewhere(bool all)
    {
        if (Volatile.Read(ref _fencedCount) != 0)
        {
            ThreadPool.UnsafeQueueUserWorkItem(static state => state.Device.ReleaseFenced(state.All), (Device: this, All: all), preferLocal: false);
        }
    }

    private static TimeSpan Until(long timestamp)
    {
        long now = Stopwatch.GetTimestamp();
        return timestamp <= now ? TimeSpan.Zero : Stopwatch.GetElapsedTime(now, timestamp) + TimeSpan.FromMilliseconds(1);
    }

    private ValueTask Start(IoKind kind, ulong lba, ulong blocks, Memory<byte> destination, ReadOnlyMemory<byte> source)
    {
        if (Volatile.Read(ref _deletedReason) is { } reason)
        {
            Statistics.Failed(kind);
            return ValueTask.FromException(new BlockDeviceException(BlockDeviceErrorKind.Deleted, Name, $"the device was deleted ({reason})"));
        }

        return IoOperation.Rent(this, kind, lba, blocks, destination, source).Start();
    }

    private ulong BlocksIn(int length, string parameter)
    {
        if (length == 0 || (length & (BlockSize - 1)) != 0)
        {
            throw new ArgumentException($"{parameter} is {length} bytes, not a whole number (at least one) of {Name}'s {BlockSize}-byte blocks", parameter);
        }

        return (ulong)length >> _blockShift;
    }

    private static void CheckBlockCount(ulong blocks)
    {
        if (blocks == 0)
        {
            throw new ArgumentOutOfRangeException(nameof(blocks), blocks, "blocks must be at least 1");
        }
    }

    private void CheckRange(ulong lba, ulong blocks, string lengthParameter)
    {
        ulong blockCount = BlockCount;
        if (lba >= blockCount || blocks > blockCount - lba)
        {
            throw new ArgumentOutOfRangeException(
                lba >= blockCount ? nameof(lba) : lengthParameter,
                lba,
                $"LBA {lba} + {blocks} block(s) is beyond the end of {Name} ({blockCount} blocks of {BlockSize} bytes)");
        }
    }

    private IoQueueSet? ChoosePath(IoOperation operation)
    {
        var paths = Volatile.Read(ref _paths);
        if (paths.Length == 1)
        {
            var only = paths[0];
            return only.Serves ? only.Set : null;
        }

        if (paths.Length == 0)
        {
            return null;
        }

        var policy = Volatile.Read(ref _policy);
        if (policy is not null)
        {
            return ChooseByPolicy(paths, policy, operation);
        }

        // No policy set: round robin, but follow-up I/O stays on the path whose completion this thread
        // is delivering, when it is still ours (its send is batched with that queue's read loop).
        var completing = IoQueueSet.CompletingSet;
        if (completing is not null && completing != operation.Avoid && completing.IsUsable && !completing.IsAnaUnavailable)
        {
            foreach (var path in paths)
            {
                if (path.Set == completing)
                {
                    if (path.Ana == AnaState.Optimized)
                    {
                        return completing;
                    }

                    break;
                }
            }
        }

        int start = (int)((uint)Interlocked.Increment(ref _nextPath) % (uint)paths.Length);
        return FirstFrom(paths, start, operation);
    }

    /// <summary>
    /// SPDK's policies: active_passive uses the first usable path in attach order (the others only when
    /// it is unusable); active_active spreads I/O, round robin (a path takes rr_min_io I/Os in a row) or to
    /// the path with the fewest commands in flight (queue_depth). Paths refused by an ANA status, or the
    /// operation's last path-related refusal, come last.
    /// </summary>
    private IoQueueSet? ChooseByPolicy(PathEntry[] paths, MultipathPolicy policy, IoOperation operation)
    {
        if (policy.Mode == MultipathPolicyMode.ActivePassive)
        {
            return FirstFrom(paths, 0, operation);
        }

        if (policy.Selector == MultipathSelector.QueueDepth)
        {
            IoQueueSet? best = null;
            IoQueueSet? avoided = null;
            foreach (var path in paths)
            {
                var set = path.Set;
                if (!path.Serves)
                {
                    continue;
                }

                if (set == operation.Avoid || set.IsAnaUnavailable || path.Ana != AnaState.Optimized)
                {
                    avoided ??= set;
                    continue;
                }

                if (best is null || set.InFlight < best.InFlight)
                {
                    best = set;
                }
            }

            return best ?? avoided;
        }

        uint turn = (uint)Interlocked.Increment(ref _nextPath) / (uint)policy.RoundRobinMinIo;
        return FirstFrom(paths, (int)(turn % (uint)paths.Length), operation);
    }

    private static IoQueueSet? FirstFrom(PathEntry[] paths, int start, IoOperation operation)
    {
        IoQueueSet? avoided = null;
        for (int i = 0; i < paths.Length; i++)
        {
            var path = paths[(start + i) % paths.Length];
            var set = path.Set;
            if (!path.Serves)
            {
                continue;
            }

            if (set == operation.Avoid || set.IsAnaUnavailable || path.Ana != AnaState.Optimized)
            {
                avoided ??= set;
                continue;
            }

            return set;
        }

        return avoided;
    }

    /// <summary>The path new I/O goes to first under the policy (active_passive), or null when I/O is spread.</summary>
    internal IoQueueSet? PreferredPath()
    {
        var policy = Volatile.Read(ref _policy);
        if (policy is null || policy.Mode != MultipathPolicyMode.ActivePassive)
        {
            return null;
        }

        IoQueueSet? fallback = null;
        foreach (var path in Volatile.Read(ref _paths))
        {
            if (path.Serves && !path.Set.IsAnaUnavailable)
            {
                if (path.Ana == AnaState.Optimized)
                {
                    return path.Set;
                }

                fallback ??= path.Set;
            }
        }

        return fallback;
    }

    private static IoQueueSet? FirstUsable(PathEntry[] paths)
    {
        foreach (var path in paths)
        {
            if (path.Serves)
            {
                return path.Set;
            }
        }

        return null;
    }

    /// <summary>Keeps an operation until a path attaches, fast-io-fail, or delete.</summary>
    private void Hold(IoOperation operation)
    {
        if (Volatile.Read(ref _failFast) != 0)
        {
            operation.Fail(new BlockDeviceException(BlockDeviceErrorKind.FailFast, Name, $"{operation.Describe()} failed: no path has been Live for fast-io-fail-timeout, so I/O fails at once"));
            return;
        }

        if (Interlocked.Increment(ref _heldCount) > _options.HoldLimit || !Held().TryEnqueue(operation))
        {
            Interlocked.Decrement(ref _heldCount);
            operation.Fail(new BlockDeviceException(BlockDeviceErrorKind.PathUnavailable, Name, $"{operation.Describe()} failed: no path is usable and {_options.HoldLimit} I/O(s) are held already (io-hold-limit)"));
            return;
        }

        // Publish first, then look: an attach, fail-fast or delete that came meanwhile must not miss us.
        Interlocked.MemoryBarrier();
        if (HasUsablePath || Volatile.Read(ref _failFast) != 0 || IsDeleted)
        {
            ReleaseHeld();
        }
    }

    /// <summary>Resubmits (or fails) what is held. Bounded by what was held at the start, so a re-hold cannot spin.</summary>
    private BoundedRing<IoOperation> Held() =>
        Volatile.Read(ref _held) ?? Interlocked.CompareExchange(ref _held, new BoundedRing<IoOperation>(Math.Max(1, _options.HoldLimit)), null) ?? _held!;

    private void ReleaseHeld()
    {
        int budget = Volatile.Read(ref _heldCount);
        var held = Volatile.Read(ref _held);
        while (budget-- > 0 && held is not null && held.TryDequeue(out var operation))
        {
            Interlocked.Decrement(ref _heldCount);
            Dispatch(operation);
        }
    }

    /// <summary>From the owner (an actor): release on the thread pool, so callers' continuations never run inside the actor.</summary>
    private void ReleaseHeldElsewhere()
    {
        Interlocked.MemoryBarrier();
        if (Volatile.Read(ref _heldCount) != 0)
        {
            ThreadPool.UnsafeQueueUserWorkItem(static device => device.ReleaseHeld(), this, preferLocal: false);
        }

        // A path that serves again also ends the wait of I/O that every path had refused with an ANA state:
        // it need not sit out the rest of ANATT (write fences after a loss are not touched).
        if (Volatile.Read(ref _fencedCount) != 0)
        {
            ThreadPool.UnsafeQueueUserWorkItem(static device => device.ReleaseFenced(all: false, anaWaits: true), this, preferLocal: false);
        }
    }

    private void CountOnPath(IoQueueSet set)
    {
        foreach (var path in Volatile.Read(ref _paths))
        {
            if (path.Set == set)
            {
                Interlocked.Increment(ref path.Counter.Completed);
                return;
            }
        }
    }

    private void UpdatePaths(Func<PathEntry[], PathEntry[]> change)
    {
        while (true)
        {
            var current = Volatile.Read(ref _paths);
            var next = change(current);
            if (ReferenceEquals(next, current) || Interlocked.CompareExchange(ref _paths, next, current) == current)
            {
                return;
            }
        }
    }

    private BlockDeviceException Deleted(IoOperation operation, string reason) =>
        new(BlockDeviceErrorKind.Deleted, Name, $"{operation.Describe()} failed: the device was deleted ({reason})");

    private BlockDeviceException DeviceError(IoOperation operation, Protocol.Nvme.NvmeStatus status, bool digestError)
    {
        string why = digestError
            ? "the data failed its data digest"
            : status.ToString(Protocol.Nvme.CommandSet.Nvm);
        string attempts = status.DoNotRetry && !digestError ? "not retried (DNR)" : $"after {operation.Retries} retr{(operation.Retries == 1 ? "y" : "ies")}";
        return new BlockDeviceException(BlockDeviceErrorKind.DeviceError, Name, $"{operation.Describe()} failed: {why}, {attempts}", status);
    }

    /// <summary>Per-path count, shared by every entry of one path key (an ANA change or a reconnect makes a new entry).</summary>
    private sealed class PathCounter
    {
        public long Completed;
    }

    /// <param name="Ana">The path's ANA state for this namespace, from the controller's ANA log page (optimized until one says otherwise).</param>
    private sealed record PathEntry(string Key, IoQueueSet Set, PathCounter Counter, AnaState Ana = AnaState.Optimized)
    {
        /// <summary>The ANA state lets I/O through (optimized or non-optimized).</summary>
        public bool Accessible => Ana is AnaState.Optimized or AnaState.NonOptimized;

        /// <summary>Usable and accessible: I/O may be sent here.</summary>
        public bool Serves => Accessible && Set.IsUsable;
    }
}
