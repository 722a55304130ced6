using System.Collections.Concurrent;
using ActorNvme.Actors.Connection;
using ActorNvme.Actors.Settings;
using ActorNvme.Io;
using ActorNvme.Protocol.Data;
using ActorNvme.Protocol.Nvme;
using ActorNvme.Transport;

namespace ActorNvme.Actors.Tests.Fakes;

/// <summary>
/// A scripted stand-in for the network and the controllers behind it, so actor specs run on virtual
/// time without sockets. Each connection answers the handshake like a real NVM or discovery
/// controller; the fabric can refuse connects, blackhole (connects hang, live connections go silent),
/// or fire asynchronous events.
/// </summary>
public sealed class FakeFabric : IAdminConnector, IIoQueueConnector
{
    private readonly ConcurrentBag<FakeConnection> _connections = [];
    private int _connectAttempts;

    /// <summary>Connects hang and open connections answer nothing, like a pulled cable.</summary>
    public volatile bool Blackholed;

    /// <summary>Connects fail at once with "connection refused".</summary>
    public volatile bool Refusing;

    /// <summary>Connects to the addresses it names fail at once with "connection refused" (a dead port).</summary>
    public Func<TransportAddress, bool> RefusesAddress { get; set; } = _ => false;

    public uint NamespaceCount { get; set; } = 1;

    /// <summary>
    /// When set, the active namespaces by NSID with their block counts (instead of 1..<see cref="NamespaceCount"/>
    /// of 131072 blocks); the test changes it at run time and fires the notice.
    /// </summary>
    public ConcurrentDictionary<uint, ulong>? Namespaces { get; set; }

    /// <summary>NN in Identify Controller (0: <see cref="NamespaceCount"/>).</summary>
    public uint MaxNamespaceId { get; set; }

    /// <summary>What the next Changed Namespace List (log 04h) read returns (cleared by the read).</summary>
    public uint[] ChangedNamespaces { get; set; } = [];

    private int _activeListReads;
    private int _changedListReads;

    /// <summary>Identify CNS 02h commands answered, over all connections.</summary>
    public int ActiveListReads => Volatile.Read(ref _activeListReads);

    /// <summary>Get Log Page 04h commands answered.</summary>
    public int ChangedListReads => Volatile.Read(ref _changedListReads);

    internal SortedDictionary<uint, ulong> ActiveNamespaces() =>
        Namespaces is { } map
            ? new SortedDictionary<uint, ulong>(map)
            : new SortedDictionary<uint, ulong>(Enumerable.Range(1, (int)NamespaceCount).ToDictionary(i => (uint)i, _ => 131072UL));

    public uint AsyncEventsSupported { get; set; } = (uint)(AsyncEventConfiguration.NamespaceAttributeNotices | AsyncEventConfiguration.DiscoveryLogChangeNotices);

    /// <summary>Discovery log returned to each Get Log Page 0x70 (built by the test); called once per read.</summary>
    public Func<byte[]> DiscoveryLog { get; set; } = () => [];

    /// <summary>When set, the discovery log of the discovery controller at each address (instead of <see cref="DiscoveryLog"/>).</summary>
    public Func<TransportAddress, byte[]>? DiscoveryLogAt { get; set; }

    /// <summary>MDTS in Identify Controller (0: no limit; n: 4 KiB &lt;&lt; n per command).</summary>
    public byte MaxDataTransferSize { get; set; }

    private readonly ConcurrentDictionary<TransportAddress, int> _connectsByAddress = new();

    /// <summary>Every address a connection was asked for, with how many times.</summary>
    public IReadOnlyDictionary<TransportAddress, int> ConnectsByAddress => _connectsByAddress;

    private int _largestLogRead;

    /// <summary>The most bytes one Get Log Page asked for.</summary>
    public int LargestLogRead => Volatile.Read(ref _largestLogRead);

    /// <summary>Get Log Page answers with an internal error while set.</summary>
    public volatile bool FailLogReads;

    /// <summary>
    /// While set, every Asynchronous Event Request is completed as soon as it arrives with this
    /// event, like a broken or hostile controller that always has something to report.
    /// </summary>
    public AsyncEventCompletion? AnswerAsyncEventsAtOnceWith { get; set; }

    private int _asyncEventRequests;
    private int _maxUnreleasedAsyncEvents;
    private int _strayReleases;

    /// <summary>Asynchronous Event Requests received over all connections.</summary>
    public int AsyncEventRequests => Volatile.Read(ref _asyncEventRequests);

    /// <summary>Most Asynchronous Event Requests one connection held at once (ids not yet released by the host).</summary>
    public int MaxUnreleasedAsyncEvents => Volatile.Read(ref _maxUnreleasedAsyncEvents);

    /// <summary>Releases of an id that was not in use: the host's table and the queue's disagree.</summary>
    public int StrayReleases => Volatile.Read(ref _strayReleases);

    private int _logReads;

    /// <summary>CSTS.RDY never comes.</summary>
    public volatile bool NeverReady;

    /// <summary>CSTS reports a fatal status (CFS).</summary>
    public volatile bool FatalStatus;

    /// <summary>When it returns a status for a command, the command is answered with it instead.</summary>
    public Func<SubmissionQueueEntry, NvmeStatus?> Refuse { get; set; } = _ => null;

    /// <summary>The last CC value a host wrote, on any connection.</summary>
    public uint LastConfiguration => Volatile.Read(ref _lastConfiguration);

    private uint _lastConfiguration;

    public int LogReads => Volatile.Read(ref _logReads);

    /// <summary>The fabric connects I/O queues too.</summary>
    public IIoQueueConnector IoQueueConnector(NvmeHostSettings settings) => this;

    public int ConnectAttempts => Volatile.Read(ref _connectAttempts);

    /// <summary>
    /// Where the fabric throws on the caller's thread (the controller actor's, inside its handler), as a
    /// buggy connector or an unforeseen input would: null for nowhere.
    /// </summary>
    public FaultPoint? ThrowAt { get; set; }

    /// <summary>How many times <see cref="ThrowAt"/> may throw in all (then it stops throwing).</summary>
    public int ThrowsLeft { get; set; } = int.MaxValue;

    private int _throws;

    public int Throws => Math.Min(Volatile.Read(ref _throws), ThrowsLeft);

    internal void MaybeThrow(FaultPoint point)
    {
        if (ThrowAt == point && Interlocked.Increment(ref _throws) <= ThrowsLeft)
        {
            throw new InvalidOperationException($"fake fabric: injected failure at {point}");
        }
    }

    public int OpenConnections => _connections.Count(c => !c.Closed.IsCompleted);

    /// <summary>Every admin connect request, in order (what the controllers asked for: address, TLS, ...).</summary>
    public ConcurrentQueue<AdminConnectRequest> AdminRequests { get; } = new();

    public Task<IAdminConnection> ConnectAsync(AdminConnectRequest request, IAdminEvents events, CancellationToken lifetime)
    {
        AdminRequests.Enqueue(request);
        Interlocked.Increment(ref _connectAttempts);
        _connectsByAddress.AddOrUpdate(request.Address, 1, (_, n) => n + 1);
        MaybeThrow(FaultPoint.Connect);
        if (Refusing || RefusesAddress(request.Address))
        {
            return Task.FromException<IAdminConnection>(new ConnectionClosedException(new ConnectionClosed(CloseReason.ConnectFailed, $"connection to {request.Address} refused")));
        }

        if (Blackholed)
        {
            // A SYN into the void: nothing happens until the owner gives up.
            var hanging = new TaskCompletionSource<IAdminConnection>(TaskCreationOptions.RunContinuationsAsynchronously);
            lifetime.Register(() => hanging.TrySetCanceled(lifetime));
            return hanging.Task;
        }

        var connection = new FakeConnection(this, events, request.QueueSize - 1, request.Address);
        _connections.Add(connection);
        lifetime.Register(() => connection.Abort(new ConnectionClosed(CloseReason.LocalShutdown, "lifetime ended")));
        return Task.FromResult<IAdminConnection>(connection);
    }

    /// <summary>I/O queue sets handed out (they hold no queues: the fake fabric carries no I/O).</summary>
    public int IoQueueSets => Volatile.Read(ref _ioQueueSets);

    private int _ioQueueSets;

    /// <summary>"Connects" I/O queues: a set without queues, so block devices exist but hold their I/O.</summary>
    public Task<IoQueueSet> ConnectAsync(IoQueueConnectRequest request, CancellationToken lifetime)
    {
        if (Refusing || RefusesAddress(request.Address))
        {
            return Task.FromException<IoQueueSet>(new ConnectionClosedException(new ConnectionClosed(CloseReason.ConnectFailed, $"connection to {request.Address} refused")));
        }

        Interlocked.Increment(ref _ioQueueSets);
        var set = new IoQueueSet(request.Address, [], request.MaxTransferSize, sqFlowControlDisabled: false);
        lifetime.Register(() => set.Abort(new ConnectionClosed(CloseReason.LocalShutdown, "lifetime ended")));
        return Task.FromResult(set);
    }

    /// <summary>Completes one outstanding Asynchronous Event Request on every open connection.</summary>
    /// <summary>
    /// Keep Alives are taken but their answers held back until <see cref="ReleaseHeldKeepAlives"/>: an answer
    /// on its way while the host's process does not run.
    /// </summary>
    public volatile bool HoldKeepAlives;

    /// <summary>Delivers the answers of the Keep Alives held so far (<see cref="HoldKeepAlives"/>); returns how many.</summary>
    public int ReleaseHeldKeepAlives() => _connections.Sum(c => c.ReleaseHeldKeepAlives());

    public void FireAsyncEvent(AsyncEventCompletion asyncEvent)
    {
        foreach (var connection in _connections)
        {
            connection.CompleteOneAsyncEvent(asyncEvent.ToDword0());
        }
    }

    /// <summary>
    /// One admin queue. Command ids come from a pool of queue-size - 1 ids, lowest free first, and
    /// return only when the host releases them, as the real queue pair's do: a host that forgot to
    /// release runs out of ids, one that released too early would see its ids reused.
    /// </summary>
    internal sealed class FakeConnection(FakeFabric fabric, IAdminEvents events, int capacity, TransportAddress address) : IAdminConnection
    {
        private readonly TaskCompletionSource<ConnectionClosed> _closed = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly ConcurrentQueue<ushort> _asyncEvents = new();
        private readonly ConcurrentQueue<ushort> _heldKeepAlives = new();
        private readonly bool[] _inUse = new bool[capacity];
        private readonly bool[] _isAsyncEvent = new bool[capacity];
        private readonly object _ids = new();
        private int _unreleasedAsyncEvents;
        private uint _configuration;
        private string _subsystemNqn = "nqn.2016-06.io.example:fake";

        public Task<ConnectionClosed> Closed => _closed.Task;

        public Task InitializeAsync(CancellationToken cancellationToken)
        {
            fabric.MaybeThrow(FaultPoint.Initialize);
            return Task.CompletedTask;
        }

        public void Abort(ConnectionClosed reason) => _closed.TrySetResult(reason);

        public int ReleaseHeldKeepAlives()
        {
            int released = 0;
            while (!_closed.Task.IsCompleted && _heldKeepAlives.TryDequeue(out ushort cid))
            {
                events.Completed(new AdminResponse(cid, new CompletionQueueEntry(0, 0, 0, 0, cid, NvmeStatus.Success), default, false));
                released++;
            }

            return released;
        }

        public void CompleteOneAsyncEvent(uint dw0)
        {
            if (!fabric.Blackholed && !_closed.Task.IsCompleted && _asyncEvents.TryDequeue(out ushort cid))
            {
                events.Completed(new AdminResponse(cid, new CompletionQueueEntry(dw0, 0, 0, 0, cid, NvmeStatus.Success), default, false));
            }
        }

        public void Release(ushort commandId)
        {
            lock (_ids)
            {
                if (commandId >= _inUse.Length || !_inUse[commandId])
                {
                    Interlocked.Increment(ref fabric._strayReleases);
                    return;
                }

                _inUse[commandId] = false;
                if (_isAsyncEvent[commandId])
                {
                    _isAsyncEvent[commandId] = false;
                    _unreleasedAsyncEvents--;
                }
            }
        }

        private bool TryRent(bool isAsyncEvent, out ushort commandId)
        {
            lock (_ids)
            {
                int free = Array.IndexOf(_inUse, false);
                if (free < 0)
                {
                    commandId = 0;
                    return false;
                }

                _inUse[free] = true;
                _isAsyncEvent[free] = isAsyncEvent;
                if (isAsyncEvent && ++_unreleasedAsyncEvents > fabric._maxUnreleasedAsyncEvents)
                {
                    fabric._maxUnreleasedAsyncEvents = _unreleasedAsyncEvents;
                }

                commandId = (ushort)free;
                return true;
            }
        }

        public bool TrySubmit(in SubmissionQueueEntry command, ReadOnlyMemory<byte> dataOut, int dataInLength, out ushort commandId)
        {
            fabric.MaybeThrow(command switch
            {
                { IsFabrics: true, FabricsType: FabricsCommandType.Connect } => FaultPoint.FabricsConnect,
                { IsFabrics: true } => FaultPoint.Property,
                { Opcode: (byte)AdminOpcode.Identify } => FaultPoint.Identify,
                { Opcode: (byte)AdminOpcode.SetFeatures } => FaultPoint.SetFeatures,
                { Opcode: (byte)AdminOpcode.KeepAlive } => FaultPoint.KeepAlive,
                { Opcode: (byte)AdminOpcode.GetLogPage } => FaultPoint.GetLogPage,
                _ => FaultPoint.OtherCommand,
            });
            bool isAsyncEvent = command.Opcode == (byte)AdminOpcode.AsynchronousEventRequest;
            if (_closed.Task.IsCompleted || !TryRent(isAsyncEvent, out commandId))
            {
                commandId = 0;
                return false;
            }

            if (fabric.Blackholed)
            {
                return true; // accepted into the void
            }

            if (isAsyncEvent)
            {
                Interlocked.Increment(ref fabric._asyncEventRequests);
                if (fabric.AnswerAsyncEventsAtOnceWith is { } asyncEvent)
                {
                    events.Completed(new AdminResponse(commandId, new CompletionQueueEntry(asyncEvent.ToDword0(), 0, 0, 0, commandId, NvmeStatus.Success), default, false));
                }
                else
                {
                    _asyncEvents.Enqueue(commandId);
                }

                return true;
            }

            if (command.Opcode == (byte)AdminOpcode.KeepAlive && fabric.HoldKeepAlives)
            {
                _heldKeepAlives.Enqueue(commandId);
                return true;
            }

            if (command.Opcode == (byte)AdminOpcode.GetLogPage)
            {
                Interlocked.Increment(ref fabric._logReads);
                if (fabric.FailLogReads)
                {
                    events.Completed(new AdminResponse(commandId, new CompletionQueueEntry(0, 0, 0, 0, commandId, NvmeStatus.Generic(GenericStatus.InternalError)), default, false));
                    return true;
                }
            }

            if (fabric.Refuse(command) is { } refusal)
            {
                events.Completed(new AdminResponse(commandId, new CompletionQueueEntry(0, 0, 0, 0, commandId, refusal), default, false));
                return true;
            }

            if (command.IsFabrics && command.FabricsType == FabricsCommandType.Connect && ConnectData.TryRead(dataOut.Span, out var connect, out _))
            {
                _subsystemNqn = connect.SubsystemNqn;
            }

            var (dw0, dw1, data) = Answer(command);
            events.Completed(new AdminResponse(commandId, new CompletionQueueEntry(dw0, dw1, 0, 0, commandId, NvmeStatus.Success), data, false));
            return true;
        }

        private (uint Dw0, uint Dw1, byte[] Data) Answer(in SubmissionQueueEntry command)
        {
            if (command.IsFabrics)
            {
                switch (command.FabricsType)
                {
                    case FabricsCommandType.Connect:
                        return (1, 0, []);
                    case FabricsCommandType.PropertySet:
                        _configuration = (uint)FabricsCommands.PropertyValue(command);
                        Volatile.Write(ref fabric._lastConfiguration, _configuration);
                        return (0, 0, []);
                    case FabricsCommandType.PropertyGet:
                        return FabricsCommands.PropertyOffset(command) switch
                        {
                            ControllerRegister.Capabilities => (0x0F00_03FF, 0x0000_0820, []),
                            ControllerRegister.Version => (0x0001_0300, 0, []),
                            ControllerRegister.Configuration => (_configuration, 0, []),
                            _ => (Status(_configuration, fabric.NeverReady, fabric.FatalStatus), 0, []),
                        };
                }
            }

            switch ((AdminOpcode)command.Opcode)
            {
                case AdminOpcode.Identify:
                    return (0, 0, Identify(command));
                case AdminOpcode.GetLogPage when (command.Cdw10 & 0xFF) == (uint)LogPageId.ChangedNamespaceList:
                    Interlocked.Increment(ref fabric._changedListReads);
                    var changed = new byte[ChangedNamespaceList.Size];
                    ChangedNamespaceList.WriteTo(fabric.ChangedNamespaces, changed);
                    fabric.ChangedNamespaces = [];
                    return (0, 0, changed);
                case AdminOpcode.GetLogPage:
                    var log = fabric.DiscoveryLogAt is { } logAt ? logAt(address) : fabric.DiscoveryLog();
                    int requested = (int)((((command.Cdw11 & 0xFFFF) << 16) | (command.Cdw10 >> 16)) + 1) * 4;
                    long offset = (long)(((ulong)command.Cdw13 << 32) | command.Cdw12);
                    InterlockedMax(ref fabric._largestLogRead, requested);
                    if (offset >= log.Length)
                    {
                        return (0, 0, []);
                    }

                    return (0, 0, log.AsSpan((int)offset, (int)Math.Min(requested, log.Length - offset)).ToArray());
                default:
                    return (0, 0, []);
            }
        }

        private static void InterlockedMax(ref int target, int value)
        {
            int seen;
            while ((seen = Volatile.Read(ref target)) < value && Interlocked.CompareExchange(ref target, value, seen) != seen)
            {
            }
        }

        private static uint Status(uint configuration, bool neverReady, bool fatal)
        {
            uint ready = (configuration & 1) != 0 && !neverReady ? 1u : 0u;
            uint shutdown = ((configuration >> 14) & 3) != 0 ? 2u << 2 : 0u;
            uint fatalStatus = fatal ? 2u : 0u;
            return ready | shutdown | fatalStatus;
        }

        private byte[] Identify(in SubmissionQueueEntry command)
        {
            var data = new byte[4096];
            switch ((IdentifyCns)(command.Cdw10 & 0xFF))
            {
                case IdentifyCns.Controller:
                    new IdentifyController
                    {
                        SerialNumber = "fake0001",
                        ModelNumber = "ActorNvme fake",
                        ControllerId = 1,
                        OptionalAsyncEvents = fabric.AsyncEventsSupported,
                        AsyncEventRequestLimit = 3,
                        MaxOutstandingCommands = 128,
                        NumberOfNamespaces = fabric.MaxNamespaceId != 0 ? fabric.MaxNamespaceId : fabric.NamespaceCount,
                        MaxDataTransferSize = fabric.MaxDataTransferSize,
                        SubsystemNqn = _subsystemNqn,
                    }.WriteTo(data);
                    break;
                case IdentifyCns.ActiveNamespaceList:
                    Interlocked.Increment(ref fabric._activeListReads);
                    uint after = command.NamespaceId;
                    ActiveNamespaceList.WriteTo(fabric.ActiveNamespaces().Keys.Where(id => id > after).Take(ActiveNamespaceList.MaxEntries).ToArray(), data);
                    break;
                case IdentifyCns.Namespace when fabric.ActiveNamespaces().TryGetValue(command.NamespaceId, out ulong blocks):
                    var formats = new LbaFormatTable();
                    formats[0] = new LbaFormat(0, 9, 0);
                    new IdentifyNamespace { NamespaceSize = blocks, NamespaceCapacity = blocks, NamespaceUtilization = blocks, LbaFormats = formats }.WriteTo(data);
                    break;
            }

            return data;
        }
    }
}

/// <summary>Where <see cref="FakeFabric.ThrowAt"/> throws, in the order a bring-up reaches them.</summary>
public enum FaultPoint
{
    /// <summary>Opening the connection (Connecting).</summary>
    Connect,

    /// <summary>ICReq/ICResp (Handshake).</summary>
    Initialize,

    /// <summary>Fabrics Connect (FabricsConnect).</summary>
    FabricsConnect,

    /// <summary>Property Get/Set (Enabling, and CC.SHN when deleting).</summary>
    Property,

    /// <summary>Identify (Identifying).</summary>
    Identify,

    /// <summary>Set Features (Configuring).</summary>
    SetFeatures,

    /// <summary>Keep Alive (Live).</summary>
    KeepAlive,

    /// <summary>Get Log Page (a discovery controller's log read).</summary>
    GetLogPage,

    /// <summary>Any other admin command.</summary>
    OtherCommand,
}
