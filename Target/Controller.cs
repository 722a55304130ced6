using ActorNvme.Protocol.Nvme;
using ActorNvme.Protocol.Data;

namespace ActorNvme.Target;

/// <summary>
/// One controller: the state an admin queue and its I/O queues share — registers, features, the
/// keep-alive deadline, outstanding AERs and the events waiting for one. Created by an admin Connect,
/// torn down when its admin queue closes, its keep-alive expires, or the target drops it.
/// </summary>
internal sealed class Controller
{
    // CAP: CQR, TO = 15 (7.5 s), CSS = NVM command set; MQES is filled per target.
    private const ulong CapBase = (1UL << 16) | (15UL << 24) | (1UL << 37);

    private readonly object _sync = new();
    private readonly Queue<ushort> _aers = new();
    private readonly Queue<uint> _events = new();
    private readonly List<uint> _changedNamespaces = [];
    private readonly Association?[] _ioQueues;
    private readonly Timer _keepAliveTimer;
    private long _lastActivity = Environment.TickCount64;
    private long _lastKeepAliveCheck = Environment.TickCount64;
    private long _keepAliveVerdictNotBefore;
    private uint _keepAliveMs;
    private uint _cc;
    private uint _csts;
    private uint _asyncEventConfig;
    private uint _maskedEvents;
    private bool _changedOverflow;
    private bool _tornDown;
    private long _tornDownAt;

    public Controller(ushort id, SubsystemBase subsystem, string hostNqn, Guid hostId, Association adminQueue, uint keepAliveMs)
    {
        Id = id;
        Subsystem = subsystem;
        HostNqn = hostNqn;
        HostId = hostId;
        AdminQueue = adminQueue;
        Listener = adminQueue.Listener;
        Options = subsystem.Target.Options;
        _ioQueues = new Association?[Options.MaxIoQueues + 1];
        _keepAliveTimer = new Timer(static s => ((Controller)s!).CheckKeepAlive(Environment.TickCount64), this, Timeout.Infinite, Timeout.Infinite);
        SetKeepAlive(keepAliveMs);
    }

    public ushort Id { get; }

    // This controller's write tally at the namespace it last did I/O to (the tally names its namespace): spares the
    // per-namespace writer count a lookup per command.
    private TargetNamespace.IoTally? _lastIoTally;

    /// <summary>Counts this controller among the hosts doing I/O to <paramref name="ns"/> (once), and its writes there.</summary>
    internal void NoteIo(TargetNamespace ns, bool write)
    {
        var tally = Volatile.Read(ref _lastIoTally);
        if (tally is null || !ReferenceEquals(tally.Namespace, ns))
        {
            tally = ns.NoteIoFrom(this);
            Volatile.Write(ref _lastIoTally, tally);
        }

        if (write)
        {
            Interlocked.Increment(ref tally.Writes);
        }
    }

    private void ForgetIo()
    {
        Volatile.Write(ref _lastIoTally, null);
        if (Nvm is { } nvm)
        {
            foreach (var ns in nvm.NamespaceMap.Values)
            {
                ns.ForgetIoFrom(this);
            }
        }
    }

    public SubsystemBase Subsystem { get; }

    public NvmSubsystem? Nvm => Subsystem as NvmSubsystem;

    public bool IsDiscovery => Subsystem.IsDiscovery;

    public string HostNqn { get; }

    public Guid HostId { get; }

    public Association AdminQueue { get; }

    public TargetListener Listener { get; }

    public TargetOptions Options { get; }

    public ulong Capabilities => CapBase | (uint)(Options.MaxIoQueueSize - 1);

    public NvmeVersion Version => NvmeVersion.V1_3_0;

    public bool IsReady
    {
        get
        {
            lock (_sync)
            {
                return (_csts & 1) != 0;
            }
        }
    }

    public uint ConfigurationRegister
    {
        get
        {
            lock (_sync)
            {
                return _cc;
            }
        }
    }

    public uint StatusRegister
    {
        get
        {
            lock (_sync)
            {
                return _csts;
            }
        }
    }

    public uint KeepAliveMs
    {
        get
        {
            lock (_sync)
            {
                return _keepAliveMs;
            }
        }
    }

    public uint AsyncEventConfiguration
    {
        get
        {
            lock (_sync)
            {
                return _asyncEventConfig;
            }
        }
    }

    public TargetControllerInfo Describe()
    {
        lock (_sync)
        {
            return new TargetControllerInfo(Id, HostNqn, Listener, (_csts & 1) != 0, _keepAliveMs, _asyncEventConfig, _aers.Count, _ioQueues.Count(q => q is not null));
        }
    }

    /// <summary>Any command on any queue of the controller counts as activity (nvmet's traffic-based keep-alive).</summary>
    public void Touch() => Volatile.Write(ref _lastActivity, Environment.TickCount64);

    /// <summary>KATO in milliseconds; 0 means none, except on a discovery controller (see <see cref="TargetOptions.DiscoveryDefaultKeepAlive"/>).</summary>
    public void SetKeepAlive(uint milliseconds)
    {
        if (milliseconds == 0 && IsDiscovery)
        {
            milliseconds = (uint)Options.DiscoveryDefaultKeepAlive.TotalMilliseconds;
        }

        lock (_sync)
        {
            if (_tornDown)
            {
                return;
            }

            _keepAliveMs = milliseconds;
            Touch();
            if (milliseconds == 0)
            {
                _keepAliveTimer.Change(Timeout.Infinite, Timeout.Infinite);
            }
            else
            {
                // Check four times per period: the association drops between KATO and 1.25 × KATO after the last command.
                long period = KeepAliveCheckPeriod(milliseconds);
                _lastKeepAliveCheck = Environment.TickCount64;
                _keepAliveTimer.Change(period, period);
            }
        }
    }

    /// <summary>Writes CC: EN 0→1 sets CSTS.RDY (or CFS for unsupported settings), EN 1→0 resets, SHN completes a shutdown at once.</summary>
    public void WriteConfiguration(uint value)
    {
        bool resetQueues = false;
        lock (_sync)
        {
            uint old = _cc;
            _cc = value;
            bool enable = (value & 1) != 0;
            bool wasEnabled = (old & 1) != 0;
            if (enable && !wasEnabled)
            {
                uint mps = (value >> 7) & 0xF;
                uint ams = (value >> 11) & 0x7;
                uint css = (value >> 4) & 0x7;
                uint iosqes = (value >> 16) & 0xF;
                uint iocqes = (value >> 20) & 0xF;
                bool valid = mps == 0 && ams == 0 && css == 0 && (IsDiscovery || (iosqes == 6 && iocqes == 4));
                _csts = valid ? 1u : 2u;
            }
            else if (!enable && wasEnabled)
            {
                _csts = 0;
                resetQueues = true;
            }

            uint shn = (value >> 14) & 0x3;
            uint oldShn = (old >> 14) & 0x3;
            if (shn != 0 && oldShn == 0)
            {
                _csts = 2u << 2; // SHST: shutdown processing complete; not ready
                resetQueues = true;
                Subsystem.CountShutdownRequest(HostNqn);
                ForgetIo(); // a controller shut down does no more I/O: it no longer counts as a writer
            }
            else if (shn == 0 && oldShn != 0)
            {
                _csts &= ~(3u << 2);
            }
        }

        if (resetQueues)
        {
            foreach (var queue in IoQueues())
            {
                queue.Close("controller disabled", reset: false);
            }
        }
    }

    public void SetAsyncEventConfiguration(uint value)
    {
        lock (_sync)
        {
            _asyncEventConfig = value;
        }
    }

    public bool TryAddIoQueue(ushort queueId, Association queue)
    {
        lock (_sync)
        {
            if (_tornDown || queueId == 0 || queueId >= _ioQueues.Length || _ioQueues[queueId] is not null)
            {
                return false;
            }

            _ioQueues[queueId] = queue;
            return true;
        }
    }

    public bool HasIoQueue(ushort queueId)
    {
        lock (_sync)
        {
            return queueId < _ioQueues.Length && _ioQueues[queueId] is not null;
        }
    }

    public void RemoveIoQueue(ushort queueId, Association queue)
    {
        lock (_sync)
        {
            if (queueId < _ioQueues.Length && ReferenceEquals(_ioQueues[queueId], queue))
            {
                _ioQueues[queueId] = null;
            }
        }
    }

    public List<Association> IoQueues()
    {
        lock (_sync)
        {
            return [.. _ioQueues.OfType<Association>()];
        }
    }

    /// <summary>Queues an AER; completes it at once when an event is waiting. False when AERL is exceeded.</summary>
    public bool SubmitAsyncEventRequest(ushort commandId)
    {
        uint dw0;
        lock (_sync)
        {
            if (_events.Count == 0)
            {
                if (_aers.Count >= Options.AsyncEventRequestLimit)
                {
                    return false;
                }

                _aers.Enqueue(commandId);
                return true;
            }

            dw0 = _events.Dequeue();
        }

        AdminQueue.CompleteAsyncEvent(commandId, dw0);
        return true;
    }

    /// <summary>
    /// Reports an event if the host enabled it and has not yet been told (an event of one kind is masked from
    /// the moment it is reported until the host reads its log page), through an outstanding AER or, if none,
    /// the next one.
    /// </summary>
    public void RaiseEvent(uint dw0)
    {
        ushort commandId;
        lock (_sync)
        {
            uint bit = AsyncEvents.ConfigBitOf(dw0);
            if (_tornDown || (_asyncEventConfig & bit) == 0 || (_maskedEvents & bit) != 0)
            {
                return;
            }

            _maskedEvents |= bit;
            if (_aers.Count == 0)
            {
                if (_events.Count >= Options.MaxQueuedEvents)
                {
                    _events.Dequeue();
                }

                _events.Enqueue(dw0);
                return;
            }

            commandId = _aers.Dequeue();
        }

        Subsystem.Target.Log.AsyncEventSent(Subsystem.Nqn, Id, dw0);
        AdminQueue.CompleteAsyncEvent(commandId, dw0);
    }

    /// <summary>A log page was read without RAE: events reported through it may be reported again.</summary>
    public void LogPageRead(LogPageId logPageId)
    {
        lock (_sync)
        {
            _maskedEvents &= ~AsyncEvents.ConfigBitOfLog(logPageId);
        }
    }

    public void NamespaceChanged(uint namespaceId)
    {
        lock (_sync)
        {
            if (!_changedOverflow && !_changedNamespaces.Contains(namespaceId))
            {
                if (_changedNamespaces.Count == ChangedNamespaceList.MaxEntries)
                {
                    _changedOverflow = true;
                    _changedNamespaces.Clear();
                }
                else
                {
                    _changedNamespaces.Add(namespaceId);
                    _changedNamespaces.Sort();
                }
            }
        }

        RaiseEvent(AsyncEvents.NamespaceAttributeChanged);
    }

    /// <summary>Returns the changed-namespace list and, unless <paramref name="retain"/>, clears it.</summary>
    public (uint[] Changed, bool Overflow) TakeChangedNamespaces(bool retain)
    {
        lock (_sync)
        {
            var result = (_changedNamespaces.ToArray(), _changedOverflow);
            if (!retain)
            {
                _changedNamespaces.Clear();
                _changedOverflow = false;
            }

            return result;
        }
    }

    /// <summary>Drops the controller: all its queues close (deferred while their listener is blackholed).</summary>
    public void Teardown(string reason, bool reset = false)
    {
        lock (_sync)
        {
            if (_tornDown)
            {
                return;
            }

            _tornDown = true;
            TornDownAt = Environment.TickCount64;
            _aers.Clear();
            _events.Clear();
        }

        _keepAliveTimer.Dispose();
        Subsystem.RemoveController(this);
        ForgetIo();
        Subsystem.Target.Log.ControllerTornDown(Subsystem.Nqn, Id, reason);
        foreach (var queue in IoQueues())
        {
            queue.Close(reason, reset);
        }

        AdminQueue.Close(reason, reset);
    }

    /// <summary>When the controller was torn down (<see cref="Environment.TickCount64"/>), 0 while it lives.</summary>
    public long TornDownAt
    {
        get => Volatile.Read(ref _tornDownAt);
        private set => Volatile.Write(ref _tornDownAt, value);
    }

    public bool IsTornDown
    {
        get
        {
            lock (_sync)
            {
                return _tornDown;
            }
        }
    }

    private static long KeepAliveCheckPeriod(uint keepAliveMs) => Math.Max(10, keepAliveMs / 4);

    /// <summary>
    /// Drops the controller when no command arrived for KATO. The check runs on the thread pool, as does the
    /// reading of the host's commands: a check that runs late means this process stalled (pool starved, GC,
    /// CPU throttled), and the Keep Alive that proves the host alive may be waiting, unread, behind it. Time
    /// the target could not observe is no evidence against the host: after a late check the verdict waits one
    /// check period of running time; on time, an idle controller is dropped at once as before.
    /// </summary>
    /// <param name="now">The time of the check (<see cref="Environment.TickCount64"/>); tests pass their own.</param>
    internal void CheckKeepAlive(long now)
    {
        uint kato;
        lock (_sync)
        {
            kato = _keepAliveMs;
            if (_tornDown || kato == 0)
            {
                return;
            }

            long period = KeepAliveCheckPeriod(kato);
            if (now - _lastKeepAliveCheck > period + (period / 2))
            {
                _keepAliveVerdictNotBefore = now + period;
            }

            _lastKeepAliveCheck = Math.Max(_lastKeepAliveCheck, now);
            if (now < _keepAliveVerdictNotBefore)
            {
                return;
            }
        }

        long idle = now - Volatile.Read(ref _lastActivity);
        if (idle >= kato)
        {
            Subsystem.Target.Log.KeepAliveExpired(Subsystem.Nqn, Id, kato);
            Teardown($"keep-alive timeout ({kato} ms) expired");
        }
    }
}

/// <summary>
/// What a test can see of a live controller: its ID, the host, the listener it came through, CSTS.RDY,
/// KATO (ms), the Asynchronous Event Configuration it set, the AERs it has outstanding, its I/O queues.
/// </summary>
public sealed record TargetControllerInfo(
    ushort ControllerId,
    string HostNqn,
    TargetListener Listener,
    bool Ready,
    uint KeepAliveMs,
    uint AsyncEventConfiguration,
    int OutstandingAsyncEventRequests,
    int IoQueues);
