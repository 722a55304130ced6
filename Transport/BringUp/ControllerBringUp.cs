using ActorNvme.Protocol.Auth;
using ActorNvme.Protocol.Data;
using ActorNvme.Transport.Authentication;
using ActorNvme.Protocol.Nvme;

namespace ActorNvme.Transport.BringUp;

/// <summary>
/// The bring-up script of one controller association, without I/O: Fabrics Connect, Property Get CAP
/// and VS, Property Set CC.EN, CSTS.RDY, Identify Controller, the active namespaces (Identify Namespace
/// and its UUID descriptor), Set Features (asynchronous event configuration, number of queues). Each
/// call returns what the driver does next (<see cref="BringUpAction"/>): submit a command and feed its
/// completion back, wait and poll again, or stop with a result or a failure naming the step. The
/// driver owns the socket and the clock (it enforces the CSTS.RDY deadline the machine hands it), so
/// the same script serves an actor's mailbox, an async one-shot client and a raw test client.
/// One command is outstanding at a time; the machine is not thread-safe (its driver is its one owner).
/// </summary>
public sealed class ControllerBringUp : IAdminScript
{
    private readonly BringUpOptions _options;
    private readonly List<IdentifiedNamespace> _namespaces = [];
    private readonly List<string> _warnings = [];
    private readonly ControllerConfiguration _configuration = ControllerConfiguration.ForFabrics.Enabled;

    private BringUpCommand? _outstanding;
    private string? _outstandingDescription;
    private bool _waiting;
    private bool _finished;
    private ushort _controllerId;
    private ControllerCapabilities _capabilities;
    private NvmeVersion _version;
    private IdentifyController? _identify;
    private uint[] _namespaceIds = [];
    private readonly List<uint> _activeNamespaceIds = [];
    private int _activeNamespacePages;

    // 65536 NSIDs: past any real subsystem, short of a hostile list that never ends.
    private const int MaxActiveNamespacePages = 64;
    private int _namespaceIndex;
    private IdentifiedNamespace? _namespaceWithoutUuid;
    private AsyncEventConfiguration _enabledAsyncEvents;
    private int _grantedIoQueues;
    private DhChapHostExchange? _authentication;
    private DhChapStep.Authenticated? _authenticated;

    public ControllerBringUp(BringUpOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        _options = options;
    }

    /// <summary>The step under way (or the one that failed).</summary>
    public BringUpStep Step { get; private set; } = BringUpStep.FabricsConnect;

    /// <summary>The phase of <see cref="Step"/>.</summary>
    public BringUpPhase Phase => PhaseOf(Step);

    /// <summary>The controller id the Connect answer assigned (0 before).</summary>
    public ushort ControllerId => _controllerId;

    /// <summary>The command whose completion the machine waits for, if any.</summary>
    public BringUpCommand? Outstanding => _outstanding;

    public static BringUpPhase PhaseOf(BringUpStep step) => step switch
    {
        BringUpStep.FabricsConnect or BringUpStep.Authentication => BringUpPhase.FabricsConnect,
        BringUpStep.PropertyGetCapabilities or BringUpStep.PropertyGetVersion or BringUpStep.PropertySetEnable or BringUpStep.WaitForReady => BringUpPhase.Enabling,
        BringUpStep.IdentifyController or BringUpStep.ActiveNamespaceList or BringUpStep.IdentifyNamespace or BringUpStep.NamespaceDescriptors => BringUpPhase.Identifying,
        BringUpStep.AsyncEventConfiguration or BringUpStep.NumberOfQueues => BringUpPhase.Configuring,
        _ => BringUpPhase.Done,
    };

    /// <summary>The first action: Fabrics Connect on the admin queue.</summary>
    public BringUpAction Start()
    {
        if (Step != BringUpStep.FabricsConnect || _outstanding is not null || _finished)
        {
            throw new InvalidOperationException("the bring-up has started already");
        }

        _outstandingDescription = $"Fabrics Connect to {_options.Connect.SubsystemNqn}";
        var data = new byte[FabricsConnectData.Size];
        try
        {
            FabricsConnectData.Write(data, _options.Connect);
        }
        catch (NvmeDataException e)
        {
            // The NQNs may come from a peer (a discovery log entry): refused here, before anything is sent.
            return Fail(BringUpFailureKind.InvalidRequest, e.Message, null);
        }

        var command = FabricsConnectData.Command(0, _options.AdminQueueSize, _options.Connect);
        return Submit(BringUpStep.FabricsConnect, _outstandingDescription, command, data);
    }

    /// <summary>Feeds the completion of <see cref="Outstanding"/>.</summary>
    public BringUpAction OnCompletion(BringUpCompletion completion)
    {
        var command = _outstanding ?? throw new InvalidOperationException($"no bring-up command is outstanding (step {Step})");
        _outstanding = null;
        if (command.Step == BringUpStep.Authentication)
        {
            return OnAuthenticationCompletion(command, completion);
        }

        if (command.Step == BringUpStep.NamespaceDescriptors)
        {
            // Optional: a controller that does not answer it leaves the UUID empty.
            return OnNamespaceDescriptors(completion);
        }

        if (completion.DataDigestError)
        {
            return Fail(BringUpFailureKind.DataDigestError, "data digest error in the controller's answer", null);
        }

        var status = completion.Entry.Status;
        if (!status.IsSuccess && !IsOptional(command.Step))
        {
            var set = command.Command.Opcode == FabricsCommands.Opcode ? CommandSet.Fabrics : CommandSet.Admin;
            return Fail(BringUpFailureKind.Refused, status.ToString(set), status);
        }

        return command.Step switch
        {
            BringUpStep.FabricsConnect => OnConnected(completion.Entry),
            BringUpStep.PropertyGetCapabilities => OnCapabilities(completion.Entry),
            BringUpStep.PropertyGetVersion => OnVersion(completion.Entry),
            BringUpStep.PropertySetEnable => PollStatus(statusTimeout: ReadyTimeout),
            BringUpStep.WaitForReady => OnStatus(completion.Entry),
            BringUpStep.IdentifyController => OnIdentifyController(completion.Data.Span),
            BringUpStep.ActiveNamespaceList => OnActiveNamespaces(completion.Data.Span),
            BringUpStep.IdentifyNamespace => OnIdentifyNamespace(completion.Data.Span),
            BringUpStep.AsyncEventConfiguration => OnAsyncEventConfiguration(completion.Entry),
            BringUpStep.NumberOfQueues => OnNumberOfQueues(completion.Entry),
            _ => throw new InvalidOperationException($"no completion expected in step {command.Step}"),
        };
    }

    /// <summary>After a <see cref="BringUpAction.Wait"/>: read CSTS again.</summary>
    public BringUpAction PollAgain()
    {
        if (!_waiting)
        {
            throw new InvalidOperationException($"the bring-up is not waiting (step {Step})");
        }

        _waiting = false;
        return PollStatus(statusTimeout: null);
    }

    /// <summary>
    /// The driver gives up on the current step (its deadline passed, the connection ended, a submission
    /// was refused): the failure names the step, as every other failure does.
    /// </summary>
    public BringUpAction.Failed Abandon(BringUpFailureKind kind, string detail)
    {
        _outstanding = null;
        _waiting = false;
        return Fail(kind, detail, null);
    }

    /// <summary>
    /// The connection ended: while DH-HMAC-CHAP is under way that ends the transaction with its own failure
    /// (<see cref="DhChapHostExchange.OnConnectionLost"/>), naming the subsystem, queue and step; null otherwise.
    /// </summary>
    public BringUpAction.Failed? OnConnectionLost(string why)
    {
        if (_authentication is not { } exchange || _finished)
        {
            return null;
        }

        _authentication = null;
        _outstanding = null;
        _waiting = false;
        return Fail(BringUpFailureKind.AuthenticationFailed, exchange.OnConnectionLost(why).Detail, null);
    }

    /// <summary>How long CSTS.RDY may take: CAP.TO, but never less than <see cref="BringUpOptions.MinimumReadyTimeout"/>.</summary>
    public TimeSpan ReadyTimeout => _capabilities.ReadyTimeout > _options.MinimumReadyTimeout ? _capabilities.ReadyTimeout : _options.MinimumReadyTimeout;

    private const ushort MaxControllerId = 0xFFEF;

    private static bool IsOptional(BringUpStep step) => step is BringUpStep.AsyncEventConfiguration or BringUpStep.NumberOfQueues;

    private BringUpAction OnConnected(CompletionQueueEntry entry)
    {
        (_controllerId, ushort authenticationRequirements) = FabricsCommands.DecodeConnectResponse(entry.Dw0);
        if (_controllerId > MaxControllerId)
        {
            // 0xFFF0..0xFFFF are reserved (0xFFFF asks for a dynamic controller): no controller has them.
            return Fail(BringUpFailureKind.UnusableData, $"Connect answered controller id 0x{_controllerId:x4}, a reserved value (valid: 0x0000-0x{MaxControllerId:x4})", null);
        }

        var connect = _options.Connect;
        if (!ConnectAuthentication.TryStart(authenticationRequirements, _options.Authentication, connect.HostNqn, connect.SubsystemNqn, 0, out var exchange, out string? error))
        {
            return Fail(BringUpFailureKind.AuthenticationFailed, error!, null);
        }

        if (exchange is not null)
        {
            _authentication = exchange;
            return ContinueAuthentication(exchange.Start());
        }

        return ReadCapabilities();
    }

    /// <summary>Turns the DH-HMAC-CHAP transaction's next step into an Authentication Send/Receive, or moves on when it has ended.</summary>
    private BringUpAction ContinueAuthentication(DhChapStep step)
    {
        string to = $" ({_options.Connect.SubsystemNqn}, admin queue)";
        switch (step)
        {
            case DhChapStep.Send send:
                return Submit(BringUpStep.Authentication, send.Description + to, AuthenticationCommands.Send(send.Message.Length), send.Message);
            case DhChapStep.Receive receive:
                return Submit(BringUpStep.Authentication, receive.Description + to, AuthenticationCommands.Receive(receive.Length), dataInLength: receive.Length);
            case DhChapStep.Authenticated done:
                _authenticated = done;
                _authentication = null;
                return ReadCapabilities();
            case DhChapStep.Failed failed:
                _authentication = null;
                return Fail(BringUpFailureKind.AuthenticationFailed, failed.Detail, null);
            default:
                throw new InvalidOperationException($"unknown authentication step {step}");
        }
    }

    private BringUpAction OnAuthenticationCompletion(BringUpCommand command, BringUpCompletion completion)
    {
        var exchange = _authentication ?? throw new InvalidOperationException("no authentication transaction is under way");
        if (completion.DataDigestError)
        {
            return Fail(BringUpFailureKind.DataDigestError, "data digest error in the controller's authentication message", null);
        }

        return command.Command.FabricsType == FabricsCommandType.AuthenticationSend
            ? ContinueAuthentication(exchange.OnSent(completion.Entry.Status))
            : ContinueAuthentication(exchange.OnReceived(completion.Entry.Status, completion.Data.Span));
    }

    private BringUpAction ReadCapabilities() =>
        Submit(BringUpStep.PropertyGetCapabilities, "Property Get CAP", FabricsCommands.PropertyGet(ControllerCapabilities.Offset, eightBytes: true));

    private BringUpAction OnCapabilities(CompletionQueueEntry entry)
    {
        _capabilities = new ControllerCapabilities(entry.Result64);
        return Submit(BringUpStep.PropertyGetVersion, "Property Get VS", FabricsCommands.PropertyGet(NvmeVersion.Offset, eightBytes: false));
    }

    private BringUpAction OnVersion(CompletionQueueEntry entry)
    {
        _version = new NvmeVersion(entry.Dw0);
        return Submit(BringUpStep.PropertySetEnable, "Property Set CC.EN", FabricsCommands.PropertySet(ControllerConfiguration.Offset, _configuration.Value, eightBytes: false));
    }

    private BringUpAction PollStatus(TimeSpan? statusTimeout)
    {
        var command = Command(BringUpStep.WaitForReady, "waiting for CSTS.RDY", FabricsCommands.PropertyGet(ControllerStatus.Offset, eightBytes: false));
        return new BringUpAction.Submit(command, statusTimeout);
    }

    private BringUpAction OnStatus(CompletionQueueEntry entry)
    {
        var status = new ControllerStatus(entry.Dw0);
        if (status.FatalStatus)
        {
            return Fail(BringUpFailureKind.ControllerFatal, $"the controller reports a fatal status (CSTS.CFS, CSTS 0x{status.Value:x8})", null);
        }

        if (!status.Ready)
        {
            _waiting = true;
            return new BringUpAction.Wait(_options.ReadyPollInterval);
        }

        if (_options.Goal == BringUpGoal.Ready)
        {
            return Succeed();
        }

        return Submit(BringUpStep.IdentifyController, "Identify Controller", AdminCommands.Identify((byte)IdentifyCns.Controller), dataInLength: IdentifyController.Size);
    }

    private BringUpAction OnIdentifyController(ReadOnlySpan<byte> data)
    {
        if (!IdentifyController.TryRead(data, out var identify, out var error))
        {
            return Fail(BringUpFailureKind.UnusableData, $"data unusable: {error.Describe()}", null);
        }

        if (_options.IdentifyNamespaces && identify.SubsystemNqn.Length > 0 && identify.SubsystemNqn != _options.Connect.SubsystemNqn)
        {
            // An NVM controller of another subsystem (or garbage): its namespaces are not the ones asked for.
            return Fail(BringUpFailureKind.UnusableData, $"Identify Controller names subsystem '{identify.SubsystemNqn}', not '{_options.Connect.SubsystemNqn}' that was connected to", null);
        }

        _identify = identify;
        if (_options.IdentifyNamespaces)
        {
            return Submit(BringUpStep.ActiveNamespaceList, "Identify active namespace list", AdminCommands.Identify((byte)IdentifyCns.ActiveNamespaceList), dataInLength: ActiveNamespaceList.Size);
        }

        return StartConfiguring();
    }

    private BringUpAction OnActiveNamespaces(ReadOnlySpan<byte> data)
    {
        var ids = new uint[ActiveNamespaceList.MaxEntries];
        if (!ActiveNamespaceList.TryRead(data, ids, out int count, out var error))
        {
            return Fail(BringUpFailureKind.UnusableData, $"data unusable: {error.Describe()}", null);
        }

        uint previous = _activeNamespaceIds.Count == 0 ? 0 : _activeNamespaceIds[^1];
        for (int i = 0; i < count; i++)
        {
            // The list is in increasing order, across pages too; anything else (or the broadcast NSID) is garbage, not namespaces.
            if (ids[i] == uint.MaxValue || ids[i] <= previous)
            {
                return Fail(BringUpFailureKind.UnusableData, $"data unusable: entry {i} (NSID 0x{ids[i]:x8}) breaks the increasing order of valid NSIDs", null);
            }

            _activeNamespaceIds.Add(ids[i]);
            previous = ids[i];
        }

        // A full page of 1024 may have more after it: the next page starts after its last NSID.
        if (count == ActiveNamespaceList.MaxEntries && ++_activeNamespacePages < MaxActiveNamespacePages)
        {
            return Submit(BringUpStep.ActiveNamespaceList, $"Identify active namespace list after NSID {previous}", AdminCommands.Identify((byte)IdentifyCns.ActiveNamespaceList, previous), dataInLength: ActiveNamespaceList.Size);
        }

        _namespaceIds = [.. _activeNamespaceIds];
        _namespaceIndex = 0;
        return NextNamespace();
    }

    private BringUpAction NextNamespace()
    {
        if (_namespaceIndex >= _namespaceIds.Length)
        {
            return StartConfiguring();
        }

        uint nsid = _namespaceIds[_namespaceIndex];
        return Submit(BringUpStep.IdentifyNamespace, $"Identify Namespace {nsid}", AdminCommands.Identify((byte)IdentifyCns.Namespace, nsid), dataInLength: IdentifyNamespace.Size);
    }

    private BringUpAction OnIdentifyNamespace(ReadOnlySpan<byte> data)
    {
        uint nsid = _namespaceIds[_namespaceIndex];
        if (!IdentifyNamespace.TryRead(data, out var ns, out var error) || !ns.TryGetBlockSize(out int blockSize, out error))
        {
            // One unusable namespace does not cost the controller its others.
            _warnings.Add($"namespace {nsid} skipped: {error.Describe()}");
        }
        else if (ns.IsActive)
        {
            _namespaceWithoutUuid = new IdentifiedNamespace(nsid, blockSize, ns.NamespaceSize, ns.Nguid, ns.Eui64, Guid.Empty, (Protocol.Nvme.ReservationCapabilities)ns.ReservationCapabilities);
            return Submit(BringUpStep.NamespaceDescriptors, $"Identify Namespace {nsid} identification descriptors", AdminCommands.Identify((byte)IdentifyCns.NamespaceIdentificationDescriptors, nsid), dataInLength: NamespaceIdentifiers.Size);
        }

        _namespaceIndex++;
        return NextNamespace();
    }

    private BringUpAction OnNamespaceDescriptors(BringUpCompletion completion)
    {
        var ns = _namespaceWithoutUuid!;
        _namespaceWithoutUuid = null;
        var uuid = Guid.Empty;
        if (completion.Entry.Status.IsSuccess && !completion.DataDigestError && NamespaceIdentifiers.TryRead(completion.Data.Span, out var ids, out _))
        {
            uuid = ids.Uuid ?? Guid.Empty;
        }

        _namespaces.Add(ns with { Uuid = uuid });
        _namespaceIndex++;
        return NextNamespace();
    }

    private BringUpAction StartConfiguring()
    {
        if (_options.Goal != BringUpGoal.Configured)
        {
            return Succeed();
        }

        var configuration = (AsyncEventConfiguration)(_identify!.Value.OptionalAsyncEvents & (uint)_options.WantedAsyncEvents);
        if (configuration != AsyncEventConfiguration.None)
        {
            _enabledAsyncEvents = configuration;
            return Submit(BringUpStep.AsyncEventConfiguration, "Set Features (asynchronous event configuration)", AdminCommands.SetAsyncEventConfiguration((uint)configuration));
        }

        return AskForQueues();
    }

    private BringUpAction OnAsyncEventConfiguration(CompletionQueueEntry entry)
    {
        if (!entry.Status.IsSuccess)
        {
            _warnings.Add($"asynchronous event configuration 0x{(uint)_enabledAsyncEvents:x8} refused: {entry.Status}; continuing without those events");
            _enabledAsyncEvents = AsyncEventConfiguration.None;
        }

        return AskForQueues();
    }

    private BringUpAction AskForQueues()
    {
        if (_options.IoQueues <= 0)
        {
            return Succeed();
        }

        ushort wanted = (ushort)Math.Clamp(_options.IoQueues, 1, 65534);
        return Submit(BringUpStep.NumberOfQueues, "Set Features (number of queues)", AdminCommands.SetNumberOfQueues(wanted, wanted));
    }

    private BringUpAction OnNumberOfQueues(CompletionQueueEntry entry)
    {
        if (!entry.Status.IsSuccess)
        {
            // As Linux does: a controller that refuses still serves its admin queue.
            _warnings.Add($"Set Features (number of queues) refused: {entry.Status}; no I/O queues");
            return Succeed();
        }

        var (submissionQueues, completionQueues) = AdminCommands.DecodeNumberOfQueues(entry.Dw0);
        _grantedIoQueues = Math.Min(Math.Clamp(_options.IoQueues, 1, 65534), Math.Min(submissionQueues, completionQueues));
        return Succeed();
    }

    private BringUpAction Succeed()
    {
        Step = BringUpStep.Done;
        _finished = true;
        var keepAlive = TimeSpan.FromMilliseconds(_options.Connect.KeepAliveMilliseconds) / 2;
        return new BringUpAction.Succeeded(new ControllerBringUpResult(_controllerId, _capabilities, _version, _identify, _namespaces.ToArray(), _warnings.ToArray())
        {
            EnabledAsyncEvents = _enabledAsyncEvents,
            GrantedIoQueues = _grantedIoQueues,
            KeepAliveInterval = keepAlive,
            Configuration = _configuration,
            Authentication = _authenticated,
        });
    }

    private BringUpAction.Failed Fail(BringUpFailureKind kind, string detail, NvmeStatus? status)
    {
        _finished = true;
        string description = _outstandingDescription ?? Step.ToString();
        return new BringUpAction.Failed(new BringUpFailure(Step, description, kind, status, detail));
    }

    private BringUpAction Submit(BringUpStep step, string description, SubmissionQueueEntry command, ReadOnlyMemory<byte> dataOut = default, int dataInLength = 0) =>
        new BringUpAction.Submit(Command(step, description, command, dataOut, dataInLength));

    private BringUpCommand Command(BringUpStep step, string description, SubmissionQueueEntry command, ReadOnlyMemory<byte> dataOut = default, int dataInLength = 0)
    {
        if (_finished)
        {
            throw new InvalidOperationException("the bring-up has finished");
        }

        Step = step;
        _outstandingDescription = description;
        var next = new BringUpCommand(step, description, command, dataOut, dataInLength);
        _outstanding = next;
        return next;
    }
}
