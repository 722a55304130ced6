using System.Collections.Concurrent;
using System.Diagnostics;
using System.Runtime.InteropServices;

namespace ActorNvme.Transport.RawSocket;

/// <summary>
/// One I/O thread serving many raw-socket connections (Linux): an epoll loop that wakes only for
/// sockets with data and runs their read loops inline, so an idle queue pair owns no thread and
/// costs one epoll registration. While a queue pair it serves awaits answers, the loop polls
/// (epoll_wait with no timeout) for up to the spin time before it sleeps, as the dedicated receive
/// thread did. Everything a connection's reader does runs on this thread; other threads only post work.
/// </summary>
internal sealed class IoThread
{
    private const int MaxEventsPerWait = 256;
    private const ulong WakeToken = ulong.MaxValue;
    // A short pause between two empty polls while spinning: with 20, a third of a polling QD32 run's samples sat in
    // the pause and answers waited for it; with 2, QD32 gained 3-13% in each of six paired rounds against SPDK's target.
    private const int SpinIterationsPerTry = 2;

    private readonly int _epoll;
    private readonly int _wakeFd;
    private readonly int _eventSize;
    private readonly byte[] _events;
    private readonly ConcurrentQueue<Action> _posted = new();
    private readonly Dictionary<ulong, SocketReader> _readers = [];
    private readonly Dictionary<ulong, (int Fd, TaskCompletionSource Writable)> _connecting = [];
    private readonly List<SocketReader> _spinners = [];
    private readonly byte[] _wakeBytes = new byte[8];
    private ulong _nextToken;
    private int _wakePending;

    // Statistics, written by this thread only (read elsewhere through a posted snapshot).
    private long _polls;
    private long _idlePolls;
    private long _socketCompletions;
    private long _retiredCompletions; // completions of queue pairs that have gone

    private IoThread(int epoll, int wakeFd, int? core, string name)
    {
        _epoll = epoll;
        _wakeFd = wakeFd;
        _eventSize = Epoll.EventSize;
        _events = new byte[MaxEventsPerWait * _eventSize];
        Name = name;
        Epoll.Add(_epoll, _wakeFd, Epoll.In, WakeToken);
        var thread = new Thread(() => Run(core)) { IsBackground = true, Name = name };
        thread.Start();
    }

    /// <summary>The thread's name, as statistics show it.</summary>
    public string Name { get; }

    /// <summary>Connections this thread serves now (for tests and scale reports).</summary>
    public int ConnectionCount => Volatile.Read(ref _connectionCount);

    private int _connectionCount;

    /// <summary>A new I/O thread, or null where epoll is not available (not Linux).</summary>
    public static IoThread? TryStart(int? core, string name)
    {
        if (!OperatingSystem.IsLinux())
        {
            return null;
        }

        try
        {
            int epoll = Epoll.Create();
            int wake = Epoll.CreateEventFd();
            return new IoThread(epoll, wake, core, name);
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException or IOException)
        {
            return null;
        }
    }

    /// <summary>Runs <paramref name="work"/> on this thread, soon.</summary>
    public void Post(Action work)
    {
        _posted.Enqueue(work);
        if (Interlocked.Exchange(ref _wakePending, 1) == 0)
        {
            Epoll.SignalEventFd(_wakeFd);
        }
    }

    /// <summary>Registers <paramref name="reader"/>'s socket (on this thread): readiness now reaches the reader.</summary>
    internal void Attach(SocketReader reader, int fd)
    {
        ulong token = ++_nextToken;
        _readers[token] = reader;
        reader.Token = token;
        Interlocked.Increment(ref _connectionCount);

        // Edge-triggered: an event says "new data arrived"; the reader remembers it until a receive drains the socket.
        // Writability too: its edge comes only after a send found the socket's buffer full, and lets the
        // connection's writer send the rest without blocking this thread.
        Epoll.Add(_epoll, fd, Epoll.In | Epoll.ReadHangUp | Epoll.Out | Epoll.EdgeTriggered, token);
    }

    /// <summary>Unregisters (on this thread) before the socket is closed, so no event names a reused descriptor.</summary>
    internal void Detach(SocketReader reader, int fd)
    {
        if (_readers.Remove(reader.Token))
        {
            _retiredCompletions += reader.Demand?.CompletionsReceived ?? 0;
            Interlocked.Decrement(ref _connectionCount);
            Epoll.Remove(_epoll, fd);
        }

        _spinners.Remove(reader);
    }

    /// <summary>
    /// Completes when the connecting socket <paramref name="fd"/> is writable (connected or failed: the
    /// caller reads SO_ERROR), so a connect in progress holds no thread. <paramref name="giveUp"/> ends the
    /// wait: the registration is dropped on this thread and the returned task is canceled.
    /// </summary>
    internal Task WaitWritableAsync(int fd, CancellationToken giveUp)
    {
        var writable = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        ulong token = 0;
        Post(() =>
        {
            if (giveUp.IsCancellationRequested)
            {
                writable.TrySetCanceled(giveUp);
                return;
            }

            token = ++_nextToken;
            _connecting[token] = (fd, writable);
            try
            {
                Epoll.Add(_epoll, fd, Epoll.Out | Epoll.OneShot, token);
            }
            catch (IOException e)
            {
                _connecting.Remove(token);
                writable.TrySetException(e);
            }
        });
        giveUp.Register(() => Post(() =>
        {
            if (token != 0 && _connecting.Remove(token))
            {
                Epoll.Remove(_epoll, fd);
            }

            writable.TrySetCanceled(giveUp);
        }));
        return writable.Task;
    }

    /// <summary>This thread's counters and the queue pairs it serves, read on this thread.</summary>
    internal Task<PollGroupStatistics> SnapshotAsync()
    {
        var snapshot = new TaskCompletionSource<PollGroupStatistics>(TaskCreationOptions.RunContinuationsAsynchronously);
        Post(() =>
        {
            long completions = _retiredCompletions;
            long outstanding = 0;
            foreach (var reader in _readers.Values)
            {
                if (reader.Demand is { } demand)
                {
                    completions += demand.CompletionsReceived;
                    outstanding += demand.Outstanding;
                }
            }

            snapshot.TrySetResult(new PollGroupStatistics(Name, _polls, _idlePolls, _socketCompletions, completions, completions + outstanding, outstanding, _readers.Count));
        });
        return snapshot.Task;
    }

    /// <summary>Called by a reader going to sleep while answers are due: the loop polls for it until its spin time ends.</summary>
    internal void Spin(SocketReader reader) => _spinners.Add(reader);

    private void Run(int? core)
    {
        if (core is { } pinned)
        {
            // Best effort: a core outside the process's allowed set leaves the thread unpinned.
            ThreadAffinity.TryPinCurrentThread(pinned);
        }

        while (true)
        {
            RunPosted();
            int timeout = KeepSpinning() ? 0 : -1;
            int count = Epoll.Wait(_epoll, _events, MaxEventsPerWait, timeout);
            _polls++;
            if (count == 0 && timeout == 0)
            {
                _idlePolls++;
                Thread.SpinWait(SpinIterationsPerTry);
                continue;
            }

            for (int i = 0; i < count; i++)
            {
                Epoll.ReadEvent(_events, i * _eventSize, out uint flags, out ulong token);
                if (token == WakeToken)
                {
                    Epoll.DrainEventFd(_wakeFd, _wakeBytes);
                    Volatile.Write(ref _wakePending, 0);
                    continue;
                }

                if (_connecting.Remove(token, out var connecting))
                {
                    Epoll.Remove(_epoll, connecting.Fd);
                    connecting.Writable.TrySetResult();
                    continue;
                }

                if (_readers.TryGetValue(token, out var reader))
                {
                    try
                    {
                        if ((flags & (Epoll.Out | Epoll.Error | Epoll.HangUp)) != 0)
                        {
                            reader.Writer?.OnWritable();
                        }

                        if ((flags & ~Epoll.Out) != 0)
                        {
                            _socketCompletions++;
                            reader.OnReadable();
                        }
                    }
                    catch (Exception e)
                    {
                        // The reader reports its own failures through its read loop; nothing may stop this thread.
                        Trace.TraceError($"nvme-tcp I/O thread: a reader failed: {e}");
                    }
                }
            }
        }
    }

    private void RunPosted()
    {
        while (_posted.TryDequeue(out var work))
        {
            try
            {
                work();
            }
            catch (Exception e)
            {
                Trace.TraceError($"nvme-tcp I/O thread: posted work failed: {e}");
            }
        }
    }

    /// <summary>True while some reader's spin time runs and it still awaits answers; drops the others.</summary>
    private bool KeepSpinning()
    {
        if (_spinners.Count == 0)
        {
            return false;
        }

        long now = Stopwatch.GetTimestamp();
        for (int i = _spinners.Count - 1; i >= 0; i--)
        {
            if (!_spinners[i].StillSpinning(now))
            {
                _spinners.RemoveAt(i);
            }
        }

        return _spinners.Count > 0 || !_posted.IsEmpty;
    }
}

/// <summary>
/// A bounded set of <see cref="IoThread"/>s: one per core by default, or one per listed core (pinned).
/// Connections are spread over them in turn. Groups are shared process-wide by their shape, so every
/// transport asking for the same shape uses the same threads.
/// </summary>
internal sealed class IoThreadGroup
{
    private static readonly ConcurrentDictionary<string, Lazy<IoThreadGroup?>> Shared = new();

    private readonly IoThread[] _threads;
    private int _next;

    private IoThreadGroup(IoThread[] threads) => _threads = threads;

    public IReadOnlyList<IoThread> Threads => _threads;

    /// <summary>The shared group for <paramref name="threadCount"/> threads (0: one per core) or <paramref name="cores"/>; null without epoll.</summary>
    public static IoThreadGroup? For(int threadCount, IReadOnlyList<int>? cores)
    {
        string key = cores is { Count: > 0 } ? "cores:" + string.Join(',', cores) : "threads:" + Count(threadCount);
        return Shared.GetOrAdd(key, k => new Lazy<IoThreadGroup?>(() => Start(threadCount, cores))).Value;
    }

    /// <summary>The number of threads a group of <paramref name="threadCount"/> gets (0: one per core).</summary>
    public static int Count(int threadCount) => threadCount > 0 ? threadCount : Environment.ProcessorCount;

    private static IoThreadGroup? Start(int threadCount, IReadOnlyList<int>? cores)
    {
        var threads = new List<IoThread>();
        if (cores is { Count: > 0 })
        {
            foreach (int core in cores.Distinct())
            {
                if (IoThread.TryStart(core, $"nvme-tcp io core {core}") is not { } thread)
                {
                    return null;
                }

                threads.Add(thread);
            }
        }
        else
        {
            for (int i = 0; i < Count(threadCount); i++)
            {
                if (IoThread.TryStart(null, $"nvme-tcp io {i}") is not { } thread)
                {
                    return null;
                }

                threads.Add(thread);
            }
        }

        return new IoThreadGroup([.. threads]);
    }

    /// <summary>Every group started so far in this process.</summary>
    public static IEnumerable<IoThreadGroup> Started() =>
        Shared.Values.Where(g => g.IsValueCreated && g.Value is not null).Select(g => g.Value!);

    /// <summary>The thread the next connection goes to (in turn).</summary>
    public IoThread Next() => _threads[(int)((uint)(Interlocked.Increment(ref _next) - 1) % (uint)_threads.Length)];
}

/// <summary>epoll and eventfd (Linux), through libc.</summary>
internal static class Epoll
{
    public const uint In = 0x001;
    public const uint Out = 0x004;
    public const uint OneShot = 1u << 30;
    public const uint Error = 0x008;
    public const uint HangUp = 0x010;
    public const uint ReadHangUp = 0x2000;
    public const uint EdgeTriggered = 1u << 31;

    private const int CtlAdd = 1;
    private const int CtlDel = 2;
    private const int CloseOnExec = 0x80000;
    private const int EventFdNonBlocking = 0x800;
    private const int Interrupted = 4;

    /// <summary>struct epoll_event is packed (12 bytes) on x86-64, naturally aligned (16) elsewhere.</summary>
    public static int EventSize { get; } = RuntimeInformation.ProcessArchitecture == Architecture.X64 ? 12 : 16;

    private static int DataOffset => EventSize == 12 ? 4 : 8;

    public static int Create()
    {
        int fd = EpollCreate1(CloseOnExec);
        return fd >= 0 ? fd : throw new IOException($"epoll_create1 failed: errno {Marshal.GetLastPInvokeError()}");
    }

    public static int CreateEventFd()
    {
        int fd = EventFd(0, EventFdNonBlocking | CloseOnExec);
        return fd >= 0 ? fd : throw new IOException($"eventfd failed: errno {Marshal.GetLastPInvokeError()}");
    }

    public static void Add(int epoll, int fd, uint events, ulong token)
    {
        var ev = new byte[EventSize];
        BitConverter.TryWriteBytes(ev.AsSpan(0, 4), events);
        BitConverter.TryWriteBytes(ev.AsSpan(DataOffset, 8), token);
        if (EpollCtl(epoll, CtlAdd, fd, ev) != 0)
        {
            throw new IOException($"epoll_ctl(ADD, {fd}) failed: errno {Marshal.GetLastPInvokeError()}");
        }
    }

    public static void Remove(int epoll, int fd) => EpollCtl(epoll, CtlDel, fd, new byte[EventSize]);

    public static int Wait(int epoll, byte[] events, int max, int timeoutMs)
    {
        int count = EpollWait(epoll, events, max, timeoutMs);
        if (count < 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            return errno == Interrupted ? 0 : throw new IOException($"epoll_wait failed: errno {errno}");
        }

        return count;
    }

    public static void ReadEvent(byte[] events, int offset, out uint flags, out ulong token)
    {
        flags = BitConverter.ToUInt32(events, offset);
        token = BitConverter.ToUInt64(events, offset + DataOffset);
    }

    public static void SignalEventFd(int fd)
    {
        Span<byte> one = stackalloc byte[8];
        BitConverter.TryWriteBytes(one, 1UL);
        _ = WriteFd(fd, ref MemoryMarshal.GetReference(one), 8);
    }

    public static void DrainEventFd(int fd, byte[] scratch) => _ = ReadFd(fd, scratch, 8);

    [DllImport("libc", EntryPoint = "epoll_create1", SetLastError = true)]
    private static extern int EpollCreate1(int flags);

    [DllImport("libc", EntryPoint = "epoll_ctl", SetLastError = true)]
    private static extern int EpollCtl(int epoll, int op, int fd, byte[] ev);

    [DllImport("libc", EntryPoint = "epoll_wait", SetLastError = true)]
    private static extern int EpollWait(int epoll, byte[] events, int max, int timeout);

    [DllImport("libc", EntryPoint = "eventfd", SetLastError = true)]
    private static extern int EventFd(uint initial, int flags);

    [DllImport("libc", EntryPoint = "write", SetLastError = true)]
    private static extern nint WriteFd(int fd, ref byte buffer, nint count);

    [DllImport("libc", EntryPoint = "read", SetLastError = true)]
    private static extern nint ReadFd(int fd, byte[] buffer, nint count);
}
