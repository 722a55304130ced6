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

    public uint NamespaceCount { get; set; } = 1;

    public uint AsyncEventsSupported { get; set; } = (uint)(AsyncEventConfiguration.NamespaceAttributeNotices | AsyncEventConfiguration.DiscoveryLogChangeNotices);

    /// <summary>Discovery log returned to each Get Log Page 0x70 (built by the test); called once per read.</summary>
    public Func<byte[]> DiscoveryLog { get; set; } = () => [];

    /// <summary>Get Log Page answers with an internal error while set.</summary>
    public volatile bool FailLogReads;

    private int _logReads;

    public int LogReads => Volatile.Read(ref _logReads);

    /// <summary>The fabric connects I/O queues too.</summary>
    public IIoQueueConnector IoQueueConnector(NvmeHostSettings settings) => this;

    public int ConnectAttempts => Volatile.Read(ref _connectAttempts);

    public int OpenConnections => _connections.Count(c => !c.Closed.IsCompleted);

    public Task<IAdminConnection> ConnectAsync(AdminConnectRequest request, IAdminEvents events, CancellationToken lifetime)
    {
        Interlocked.Increment(ref _connectAttempts);
        if (Refusing)
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

        var connection = new FakeConnection(this, events);
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
        if (Refusing)
        {
            return Task.FromException<IoQueueSet>(new ConnectionClosedException(new ConnectionClosed(CloseReason.ConnectFailed, $"connection to {request.Address} refused")));
        }

        Interlocked.Increment(ref _ioQueueSets);
        var set = new IoQueueSet(request.Address, [], request.MaxTransferSize, sqFlowControlDisabled: false);
        lifetime.Register(() => set.Abort(new ConnectionClosed(CloseReason.LocalShutdown, "lifetime ended")));
        return Task.FromResult(set);
    }

    /// <summary>Completes one outstanding Asynchronous Event Request on every open connection.</summary>
    public void FireAsyncEvent(AsyncEventCompletion asyncEvent)
    {
        foreach (var connection in _connections)
        {
            connection.CompleteOneAsyncEvent(asyncEvent.ToDword0());
        }
    }

    internal sealed class FakeConnection(FakeFabric fabric, IAdminEvents events) : IAdminConnection
    {
        private readonly TaskCompletionSource<ConnectionClosed> _closed = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly ConcurrentQueue<ushort> _asyncEvents = new();
        private int _nextCommandId;
        private uint _configuration;

        public Task<ConnectionClosed> Closed => _closed.Task;

        public Task InitializeAsync(CancellationToken cancellationToken) => Task.CompletedTask;

        public void Abort(ConnectionClosed reason) => _closed.TrySetResult(reason);

        public void CompleteOneAsyncEvent(uint dw0)
        {
            if (!fabric.Blackholed && !_closed.Task.IsCompleted && _asyncEvents.TryDequeue(out ushort cid))
            {
                events.Completed(new AdminResponse(cid, new CompletionQueueEntry(dw0, 0, 0, 0, cid, NvmeStatus.Success), default, false));
            }
        }

        public bool TrySubmit(in SubmissionQueueEntry command, ReadOnlyMemory<byte> dataOut, int dataInLength, out ushort commandId)
        {
            commandId = (ushort)Interlocked.Increment(ref _nextCommandId);
            if (_closed.Task.IsCompleted)
            {
                return false;
            }

            if (fabric.Blackholed)
            {
                return true; // accepted into the void
            }

            if (command.Opcode == (byte)AdminOpcode.AsynchronousEventRequest)
            {
                _asyncEvents.Enqueue(commandId);
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
                        return (0, 0, []);
                    case FabricsCommandType.PropertyGet:
                        return FabricsCommands.PropertyOffset(command) switch
                        {
                            ControllerRegister.Capabilities => (0x0F00_03FF, 0x0000_0820, []),
                            ControllerRegister.Version => (0x0001_0300, 0, []),
                            ControllerRegister.Configuration => (_configuration, 0, []),
                            _ => (Status(_configuration), 0, []),
                        };
                }
            }

            switch ((AdminOpcode)command.Opcode)
            {
                case AdminOpcode.Identify:
                    return (0, 0, Identify(command));
                case AdminOpcode.GetLogPage:
                    var log = fabric.DiscoveryLog();
                    int requested = (int)((((command.Cdw11 & 0xFFFF) << 16) | (command.Cdw10 >> 16)) + 1) * 4;
                    return (0, 0, log.Length > requested ? log[..requested] : log);
                default:
                    return (0, 0, []);
            }
        }

        private static uint Status(uint configuration)
        {
            uint ready = (configuration & 1) != 0 ? 1u : 0u;
            uint shutdown = ((configuration >> 14) & 3) != 0 ? 2u << 2 : 0u;
            return ready | shutdown;
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
                        NumberOfNamespaces = fabric.NamespaceCount,
                        SubsystemNqn = "nqn.2016-06.io.example:fake",
                    }.WriteTo(data);
                    break;
                case IdentifyCns.ActiveNamespaceList:
                    ActiveNamespaceList.WriteTo(Enumerable.Range(1, (int)fabric.NamespaceCount).Select(i => (uint)i).ToArray(), data);
                    break;
                case IdentifyCns.Namespace:
                    var formats = new LbaFormatTable();
                    formats[0] = new LbaFormat(0, 9, 0);
                    new IdentifyNamespace { NamespaceSize = 131072, NamespaceCapacity = 131072, NamespaceUtilization = 131072, LbaFormats = formats }.WriteTo(data);
                    break;
            }

            return data;
        }
    }
}
