using Akka.Actor;
using Akka.Event;
using ActorNvme.Actors.Connection;
using ActorNvme.Protocol.Data;
using ActorNvme.Protocol.Nvme;
using ActorNvme.Transport;

namespace ActorNvme.Actors.Controller;

public sealed partial class ControllerActor
{
    // CC for an NVMe-oF controller: EN, NVM command set, 64-byte SQEs (IOSQES 6), 16-byte CQEs (IOCQES 4).
    private const uint EnableConfiguration = 0x0046_0001;
    private const uint ShutdownNormal = 1u << 14;
    private const int MaxAsyncEventRequests = 4;

    private ushort _controllerId;
    private ControllerCapabilities _capabilities;
    private NvmeVersion _version;
    private IdentifyController _identify;
    private readonly List<NamespaceInfo> _namespaces = [];
    private DateTimeOffset _statusDeadline;

    private sealed record PollStatus(int Generation, bool Shutdown);

    private void OnInitialized(Initialized message)
    {
        if (message.Generation != _generation)
        {
            return;
        }

        SetState(ControllerState.FabricsConnect, $"Connect to {_options.SubsystemNqn}");
        ArmStepTimer("Fabrics Connect");
        var data = new byte[ConnectData.Size];
        new ConnectData
        {
            HostId = _options.Settings.HostId,
            ControllerId = ConnectData.DynamicControllerId,
            SubsystemNqn = _options.SubsystemNqn,
            HostNqn = _options.Settings.HostNqn,
        }.WriteTo(data);
        var connect = FabricsCommands.Connect(0, _options.Settings.AdminQueueSize, (uint)_options.Settings.KeepAliveTimeout.TotalMilliseconds);
        SubmitInternal(connect, OnSuccess("Fabrics Connect", OnFabricsConnected, CommandSet.Fabrics), data);
    }

    private void OnFabricsConnected(AdminResponse completion)
    {
        _controllerId = FabricsCommands.DecodeConnectResponse(completion.Entry.Dw0).ControllerId;
        SetState(ControllerState.Enabling, $"controller id {_controllerId}");
        ArmStepTimer("Property Get CAP");
        SubmitInternal(FabricsCommands.PropertyGet(ControllerRegister.Capabilities, eightBytes: true), OnSuccess("Property Get CAP", c =>
        {
            _capabilities = new ControllerCapabilities(c.Entry.Result64);
            SubmitInternal(FabricsCommands.PropertyGet(ControllerRegister.Version, eightBytes: false), OnSuccess("Property Get VS", v =>
            {
                _version = new NvmeVersion(v.Entry.Dw0);
                SubmitInternal(FabricsCommands.PropertySet(ControllerRegister.Configuration, EnableConfiguration, eightBytes: false), OnSuccess("Property Set CC.EN", _ =>
                {
                    var readyTimeout = _capabilities.ReadyTimeout > _options.Settings.ConnectTimeout ? _capabilities.ReadyTimeout : _options.Settings.ConnectTimeout;
                    _statusDeadline = Context.System.Scheduler.Now + readyTimeout;
                    Timers.StartSingleTimer(StepTimerKey, new StepTimedOut(_generation, "waiting for CSTS.RDY"), readyTimeout);
                    Self.Tell(new PollStatus(_generation, Shutdown: false));
                }, CommandSet.Fabrics));
            }, CommandSet.Fabrics));
        }, CommandSet.Fabrics));
    }

    private void OnPollStatus(PollStatus message)
    {
        if (message.Generation != _generation || _connection is null)
        {
            return;
        }

        SubmitInternal(FabricsCommands.PropertyGet(ControllerRegister.Status, eightBytes: false), OnSuccess("Property Get CSTS", c =>
        {
            var status = new ControllerStatus(c.Entry.Dw0);
            if (status.FatalStatus)
            {
                Lose(new ConnectionClosed(CloseReason.ConnectRejected, $"controller reports a fatal status (CSTS 0x{status.Value:x8})"));
                return;
            }

            bool done = message.Shutdown ? status.ShutdownStatus == ShutdownStatus.Complete : status.Ready;
            if (done)
            {
                if (message.Shutdown)
                {
                    Context.Stop(Self);
                }
                else
                {
                    StartIdentifying();
                }

                return;
            }

            if (Context.System.Scheduler.Now > _statusDeadline)
            {
                string waitingFor = message.Shutdown ? "CSTS.SHST shutdown complete" : "CSTS.RDY";
                if (message.Shutdown)
                {
                    _log.Warning("{0}: {1} not reported in time; stopping anyway", _options.Name, waitingFor);
                    Context.Stop(Self);
                }
                else
                {
                    Lose(new ConnectionClosed(CloseReason.ConnectTimeout, $"{waitingFor} not set in time (CSTS 0x{status.Value:x8})"));
                }

                return;
            }

            Timers.StartSingleTimer(("poll", message.Shutdown), message, _options.Settings.ReadyPollInterval);
        }, CommandSet.Fabrics));
    }

    private void StartIdentifying()
    {
        SetState(ControllerState.Identifying, null);
        ArmStepTimer("Identify Controller");
        SubmitInternal(AdminCommands.Identify((byte)IdentifyCns.Controller), OnSuccess("Identify Controller", c =>
        {
            if (!IdentifyController.TryRead(c.Data.Span, out _identify, out var error))
            {
                Lose(new ConnectionClosed(CloseReason.ConnectRejected, $"Identify Controller data unusable: {error.Describe()}"));
                return;
            }

            _namespaces.Clear();
            if (_options.Role == ControllerRole.Discovery)
            {
                StartConfiguring();
                return;
            }

            ArmStepTimer("Identify active namespace list");
            SubmitInternal(AdminCommands.Identify((byte)IdentifyCns.ActiveNamespaceList), OnSuccess("Identify active namespace list", list =>
            {
                var nsids = ActiveNamespaceList.Read(list.Data.Span);
                IdentifyNamespaces(nsids, 0);
            }), dataInLength: ActiveNamespaceList.Size);
        }), dataInLength: IdentifyController.Size);
    }

    private void IdentifyNamespaces(uint[] nsids, int index)
    {
        if (index >= nsids.Length)
        {
            StartConfiguring();
            return;
        }

        uint nsid = nsids[index];
        ArmStepTimer($"Identify Namespace {nsid}");
        SubmitInternal(AdminCommands.Identify((byte)IdentifyCns.Namespace, nsid), OnSuccess($"Identify Namespace {nsid}", c =>
        {
            if (!IdentifyNamespace.TryRead(c.Data.Span, out var ns, out var error) || !ns.TryGetBlockSize(out int blockSize, out error))
            {
                _log.Warning("{0}: namespace {1} skipped: {2}", _options.Name, nsid, error.Describe());
            }
            else if (ns.IsActive)
            {
                var info = new NamespaceInfo(nsid, blockSize, ns.NamespaceSize, ns.Nguid, ns.Eui64, Guid.Empty);
                IdentifyNamespaceUuid(info, () => IdentifyNamespaces(nsids, index + 1));
                return;
            }

            IdentifyNamespaces(nsids, index + 1);
        }), dataInLength: IdentifyNamespace.Size);
    }

    private void StartConfiguring()
    {
        SetState(ControllerState.Configuring, null);
        ArmStepTimer("Set Features (asynchronous event configuration)");
        uint supported = _identify.OptionalAsyncEvents;
        uint wanted = _options.Role == ControllerRole.Discovery
            ? (uint)AsyncEventConfiguration.DiscoveryLogChangeNotices
            : (uint)(AsyncEventConfiguration.NamespaceAttributeNotices | AsyncEventConfiguration.AnaChangeNotices);
        uint configuration = supported & wanted;
        if (configuration == 0)
        {
            ConfigureIoQueuesThenGoLive();
            return;
        }

        SubmitInternal(AdminCommands.SetAsyncEventConfiguration(configuration), c =>
        {
            if (!c.Entry.Status.IsSuccess)
            {
                _log.Warning("{0}: asynchronous event configuration 0x{1:x8} refused: {2}; continuing without those events", _options.Name, configuration, c.Entry.Status);
            }

            ConfigureIoQueuesThenGoLive();
        });
    }

    private void PostAsyncEventRequestsAndGoLive()
    {
        int count = Math.Min(_identify.AsyncEventRequestLimit + 1, MaxAsyncEventRequests);
        for (int i = 0; i < count; i++)
        {
            PostAsyncEventRequest();
        }

        Timers.Cancel(StepTimerKey);
        _info = new ControllerInfo(_controllerId, _capabilities, _version, _identify, _namespaces.ToArray());
        SetState(ControllerState.Live, $"controller id {_controllerId}, {_namespaces.Count} namespace(s)");
        _log.Info("{0}: Live on {1} ({2}), controller id {3}", _options.Name, _options.Address, _options.SubsystemNqn, _controllerId);
        StartKeepAlive();
        Context.Parent.Tell(new Controller.BecameLive(Self, _options.Name, _info, _ioQueues));
    }

    private void OnDelete()
    {
        if (_state != ControllerState.Live || _connection is null)
        {
            Context.Stop(Self);
            return;
        }

        SetState(ControllerState.Deleting, "CC.SHN normal shutdown");
        AbortIoQueues(new ConnectionClosed(CloseReason.ControllerDeleted, "the controller is being deleted"));
        _statusDeadline = Context.System.Scheduler.Now + _options.Settings.ConnectTimeout;
        SubmitInternal(FabricsCommands.PropertySet(ControllerRegister.Configuration, EnableConfiguration | ShutdownNormal, eightBytes: false), c =>
        {
            if (!c.Entry.Status.IsSuccess)
            {
                _log.Warning("{0}: CC.SHN refused ({1}); stopping anyway", _options.Name, c.Entry.Status.ToString(CommandSet.Fabrics));
                Context.Stop(Self);
                return;
            }

            Self.Tell(new PollStatus(_generation, Shutdown: true));
        });
    }
}
