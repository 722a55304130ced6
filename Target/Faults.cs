using ActorNvme.Protocol.Data;
using ActorNvme.Protocol.Nvme;
using ActorNvme.Protocol.Tcp;

namespace ActorNvme.Target;

/// <summary>Which queue a command arrives on: admin and NVM opcodes overlap (0x02 is Get Log Page and Read).</summary>
public enum CommandQueueKind
{
    Admin,
    Io,
}

/// <summary>
/// Fault injection: how a test (or a user's spec) makes the target fail the way networks and storage
/// arrays fail. Every fault takes effect at once on live connections.
/// </summary>
public sealed class TargetFaults
{
    private readonly NvmeTarget _target;
    private readonly object _sync = new();
    private readonly List<FailureRule> _failures = [];
    private readonly Dictionary<string, TimeSpan> _delays = new(StringComparer.Ordinal);
    private readonly Dictionary<TargetListener, TimeSpan> _executionDelays = [];
    private readonly Dictionary<byte, int> _resetsOnIo = [];
    private TimeSpan _globalDelay;
    private int _digestCorruptions;
    private int _executionDelayCount;
    private int _resetOnIoRules;
    private int _delayedReadsPending;
    private int _delayedWritesPending;
    private int _staleWritesExecuted;
    private int _delayedCommandsDropped;

    internal TargetFaults(NvmeTarget target)
    {
        _target = target;
    }

    /// <summary>
    /// A pulled cable: the listener stops accepting (TCP: the socket stays open, so a host's connect completes
    /// in the kernel and is never served) and every connection through it is frozen — nothing read, nothing
    /// written, no FIN or RST — until <see cref="Restore"/>. Keep-alive timers keep running: a controller whose
    /// KATO expires meanwhile is dropped, and its connections are reset once the listener is restored.
    /// </summary>
    public void Blackhole(TargetListener listener)
    {
        ArgumentNullException.ThrowIfNull(listener);
        listener.Gate.Close();
        _target.Log.FaultApplied("blackhole", listener.ToString());
    }

    /// <summary>Ends a <see cref="Blackhole"/>: frozen connections resume where they stopped, new ones are served.</summary>
    public void Restore(TargetListener listener)
    {
        ArgumentNullException.ThrowIfNull(listener);
        listener.Gate.Open();
        _target.Log.FaultApplied("restore", listener.ToString());
    }

    /// <summary>Closes the listener and every connection through it; the subsystems stay linked to it. A discovery log change.</summary>
    public Task TakeDownListenerAsync(TargetListener listener) => _target.TakeDownListenerAsync(listener);

    /// <summary>Listens again on the same address (for TCP, the same port) after <see cref="TakeDownListenerAsync"/>.</summary>
    public void BringUpListener(TargetListener listener) => _target.BringUpListener(listener);

    /// <summary>Resets (RST) every connection, or those through <paramref name="listener"/> and/or to <paramref name="subsystemNqn"/>. Returns how many.</summary>
    public int ResetConnections(TargetListener? listener = null, string? subsystemNqn = null)
    {
        int count = 0;
        foreach (var association in _target.Associations(listener, subsystemNqn))
        {
            association.Close("fault injection: connection reset", reset: true);
            count++;
        }

        _target.Log.FaultApplied("reset connections", $"{count}");
        return count;
    }

    /// <summary>Delays every completion (of one subsystem, or all with null) by <paramref name="delay"/>; <see cref="TimeSpan.Zero"/> clears it.</summary>
    public void DelayCompletions(TimeSpan delay, string? subsystemNqn = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(delay, TimeSpan.Zero);
        lock (_sync)
        {
            if (subsystemNqn is null)
            {
                _globalDelay = delay;
            }
            else if (delay == TimeSpan.Zero)
            {
                _delays.Remove(subsystemNqn);
            }
            else
            {
                _delays[subsystemNqn] = delay;
            }
        }
    }

    /// <summary>
    /// A slow backend behind one port: Read commands and Write commands that carry their data in the capsule,
    /// arriving on connections through <paramref name="listener"/>, execute <paramref name="delay"/> after
    /// they arrive (<see cref="TimeSpan.Zero"/> clears it). A delayed write whose controller was torn down
    /// meanwhile still lands when it is due within <see cref="TargetOptions.CommandQuiesceTime"/> of the
    /// teardown (the stale copy an old association may execute), and is dropped after that; a delayed read of
    /// a torn-down controller is dropped.
    /// </summary>
    public void DelayIoExecution(TargetListener listener, TimeSpan delay)
    {
        ArgumentNullException.ThrowIfNull(listener);
        ArgumentOutOfRangeException.ThrowIfLessThan(delay, TimeSpan.Zero);
        lock (_sync)
        {
            if (delay == TimeSpan.Zero)
            {
                _executionDelays.Remove(listener);
            }
            else
            {
                _executionDelays[listener] = delay;
            }

            Volatile.Write(ref _executionDelayCount, _executionDelays.Count);
        }

        _target.Log.FaultApplied("delay I/O execution", $"{listener} by {delay.TotalMilliseconds:0} ms");
    }

    /// <summary>Abort commands received (any controller).</summary>
    public int AbortRequests => Volatile.Read(ref _abortRequests);

    /// <summary>Commands an Abort stopped before they executed (they completed with Command Abort Requested).</summary>
    public int AbortedCommands => Volatile.Read(ref _abortedCommands);

    private int _abortRequests;
    private int _abortedCommands;

    internal void CountAbortRequest() => Interlocked.Increment(ref _abortRequests);

    internal void CountAbortedCommand() => Interlocked.Increment(ref _abortedCommands);

    /// <summary>Reads held by <see cref="DelayIoExecution"/> and not yet executed or dropped.</summary>
    public int DelayedReadsPending => Volatile.Read(ref _delayedReadsPending);

    /// <summary>Writes held by <see cref="DelayIoExecution"/> and not yet executed or dropped.</summary>
    public int DelayedWritesPending => Volatile.Read(ref _delayedWritesPending);

    /// <summary>Delayed writes that landed after their controller had been torn down (within the quiesce time).</summary>
    public int StaleWritesExecuted => Volatile.Read(ref _staleWritesExecuted);

    /// <summary>Delayed commands dropped because their controller was torn down (longer ago than the quiesce time, for writes).</summary>
    public int DelayedCommandsDropped => Volatile.Read(ref _delayedCommandsDropped);

    /// <summary>
    /// A target that breaks the protocol on a command: the next <paramref name="count"/> I/O commands with
    /// <paramref name="opcode"/> reset their connection (RST) when they arrive, unexecuted.
    /// </summary>
    public void ResetOnNextIo(NvmOpcode opcode, int count)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(count, 1);
        lock (_sync)
        {
            _resetsOnIo[(byte)opcode] = count;
            Volatile.Write(ref _resetOnIoRules, _resetsOnIo.Count);
        }
    }

    /// <summary>Fails the next <paramref name="count"/> commands with <paramref name="opcode"/> on <paramref name="queue"/> queues with <paramref name="status"/>, without executing them.</summary>
    public void FailNext(CommandQueueKind queue, byte opcode, int count, NvmeStatus status, string? subsystemNqn = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(count, 1);
        lock (_sync)
        {
            _failures.Add(new FailureRule(queue, opcode, status, subsystemNqn) { Remaining = count });
        }
    }

    public void FailNextAdmin(AdminOpcode opcode, int count, NvmeStatus status, string? subsystemNqn = null) =>
        FailNext(CommandQueueKind.Admin, (byte)opcode, count, status, subsystemNqn);

    public void FailNextIo(NvmOpcode opcode, int count, NvmeStatus status, string? subsystemNqn = null) =>
        FailNext(CommandQueueKind.Io, (byte)opcode, count, status, subsystemNqn);

    /// <summary>Sends a wrong data digest on the next <paramref name="count"/> C2HData PDUs (of connections that negotiated data digests).</summary>
    public void CorruptNextDataDigest(int count = 1)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(count, 1);
        Interlocked.Add(ref _digestCorruptions, count);
    }

    /// <summary>Sends C2HTermReq to every matching connection, then closes each. Returns how many.</summary>
    public async Task<int> SendTermReqAsync(TermReqError status = TermReqError.InvalidHeaderField, uint errorInformation = 0, TargetListener? listener = null, string? subsystemNqn = null)
    {
        var tasks = _target.Associations(listener, subsystemNqn).Select(a => a.InjectTermReqAsync(status, errorInformation)).ToList();
        await Task.WhenAll(tasks).ConfigureAwait(false);
        _target.Log.FaultApplied("C2HTermReq", $"{tasks.Count}");
        return tasks.Count;
    }

    /// <summary>Unlinks a subsystem from a listener (its controllers there are dropped; discovery log change).</summary>
    public void UnlinkSubsystem(string subsystemNqn, TargetListener listener) => Subsystem(subsystemNqn).Unlink(listener);

    public void RelinkSubsystem(string subsystemNqn, TargetListener listener) => Subsystem(subsystemNqn).Link(listener);

    /// <summary>Adds a namespace (namespace-attribute-changed AEN to every controller of the subsystem).</summary>
    public TargetNamespace AddNamespace(string subsystemNqn, NamespaceOptions options) => Subsystem(subsystemNqn).AddNamespace(options);

    public bool RemoveNamespace(string subsystemNqn, uint namespaceId) => Subsystem(subsystemNqn).RemoveNamespace(namespaceId);

    public bool ResizeNamespace(string subsystemNqn, uint namespaceId, long sizeBytes) => Subsystem(subsystemNqn).ResizeNamespace(namespaceId, sizeBytes);

    /// <summary>Changes an ANA group's state (ANA change AEN to controllers on the affected listeners).</summary>
    public void SetAnaState(string subsystemNqn, uint groupId, AnaState state, TargetListener? listener = null) =>
        Subsystem(subsystemNqn).SetAnaState(groupId, state, listener);

    /// <summary>Clears command failures, delays and digest corruptions, and restores every blackholed listener.</summary>
    public void Clear()
    {
        lock (_sync)
        {
            _failures.Clear();
            _delays.Clear();
            _executionDelays.Clear();
            _resetsOnIo.Clear();
            Volatile.Write(ref _resetOnIoRules, 0);
            Volatile.Write(ref _executionDelayCount, 0);
            _globalDelay = TimeSpan.Zero;
        }

        Interlocked.Exchange(ref _digestCorruptions, 0);
        foreach (var listener in _target.Listeners)
        {
            listener.Gate.Open();
        }
    }

    internal bool TryTakeFailure(CommandQueueKind queue, byte opcode, string? subsystemNqn, out NvmeStatus status)
    {
        status = default;
        lock (_sync)
        {
            if (_failures.Count == 0)
            {
                return false;
            }

            for (int i = 0; i < _failures.Count; i++)
            {
                var rule = _failures[i];
                if (rule.Queue != queue || rule.Opcode != opcode || (rule.SubsystemNqn is not null && rule.SubsystemNqn != subsystemNqn))
                {
                    continue;
                }

                status = rule.Status;
                if (--rule.Remaining == 0)
                {
                    _failures.RemoveAt(i);
                }

                return true;
            }
        }

        return false;
    }

    internal bool TakeResetOnIo(byte opcode)
    {
        if (Volatile.Read(ref _resetOnIoRules) == 0)
        {
            return false;
        }

        lock (_sync)
        {
            if (_resetsOnIo.Count == 0 || !_resetsOnIo.TryGetValue(opcode, out int remaining))
            {
                return false;
            }

            if (remaining <= 1)
            {
                _resetsOnIo.Remove(opcode);
                Volatile.Write(ref _resetOnIoRules, _resetsOnIo.Count);
            }
            else
            {
                _resetsOnIo[opcode] = remaining - 1;
            }

            return true;
        }
    }

    internal TimeSpan ExecutionDelay(TargetListener listener)
    {
        if (Volatile.Read(ref _executionDelayCount) == 0)
        {
            return TimeSpan.Zero;
        }

        lock (_sync)
        {
            return _executionDelays.TryGetValue(listener, out var delay) ? delay : TimeSpan.Zero;
        }
    }

    internal void DelayedExecutionStarted(bool write) => Interlocked.Increment(ref write ? ref _delayedWritesPending : ref _delayedReadsPending);

    /// <summary>A delayed command's turn came: <paramref name="executed"/> or dropped; <paramref name="stale"/> when it landed after its controller's teardown.</summary>
    internal void DelayedExecutionEnded(bool write, bool executed, bool stale)
    {
        if (!executed)
        {
            Interlocked.Increment(ref _delayedCommandsDropped);
        }
        else if (stale)
        {
            Interlocked.Increment(ref _staleWritesExecuted);
        }

        Interlocked.Decrement(ref write ? ref _delayedWritesPending : ref _delayedReadsPending);
    }

    internal TimeSpan CompletionDelay(string? subsystemNqn)
    {
        lock (_sync)
        {
            if (subsystemNqn is not null && _delays.TryGetValue(subsystemNqn, out var delay))
            {
                return delay;
            }

            return _globalDelay;
        }
    }

    internal bool TakeDigestCorruption()
    {
        while (true)
        {
            int current = Volatile.Read(ref _digestCorruptions);
            if (current == 0)
            {
                return false;
            }

            if (Interlocked.CompareExchange(ref _digestCorruptions, current - 1, current) == current)
            {
                return true;
            }
        }
    }

    private NvmSubsystem Subsystem(string nqn) =>
        _target.FindSubsystem(nqn) ?? throw new ArgumentException($"no subsystem {nqn}", nameof(nqn));

    private sealed class FailureRule(CommandQueueKind queue, byte opcode, NvmeStatus status, string? subsystemNqn)
    {
        public CommandQueueKind Queue { get; } = queue;

        public byte Opcode { get; } = opcode;

        public NvmeStatus Status { get; } = status;

        public string? SubsystemNqn { get; } = subsystemNqn;

        public int Remaining { get; set; }
    }
}
