using System.Globalization;
using Akka.Actor;
using Akka.Event;
using ActorNvme.Actors.Connection;
using ActorNvme.Io;
using ActorNvme.Protocol.Data;
using ActorNvme.Protocol.Nvme;
using ActorNvme.Actors.Subsystem;
using ActorNvme.Actors.Supervision;
using ActorNvme.Transport;
using ActorNvme.Transport.Tls;

namespace ActorNvme.Actors.Controller;

/// <summary>
/// One controller association (admin queue), as a set of behaviours (<c>Become</c>): Connecting,
/// Handshake, the bring-up phases (FabricsConnect, Enabling, Identifying, Configuring), Live, Deleting,
/// Resetting and Failed. Each behaviour closes over the data of its state; the one piece shared by
/// all is the current <see cref="Association"/> (its generation, lifetime, connection and commands in
/// flight), which PostStop must reach. Everything that changes state — connection results, admin
/// completions, timers, requests — arrives as a message, tagged with the association's generation so a
/// late result of an old connection is dropped. Stopping cancels the association's lifetime token,
/// which aborts the connection wherever it is, and fails every pending command.
/// </summary>
public sealed partial class ControllerActor : ReceiveActor, IWithTimers
{
    // Replaced only by SetKeys (new DH-HMAC-CHAP keys for this and every later association); otherwise as created.
    private ControllerOptions _options;
    private readonly IAdminConnector _connector;
    private readonly IIoQueueConnector _ioConnector;
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly OwnershipLedger _ledger;

    // The state last published: what GetStatus reports and what Lose starts from.
    private ControllerState _state = ControllerState.Failed;
    private long _generation;
    private Association? _association;
    private ConnectionClosed? _lastLoss;

    public ControllerActor(ControllerOptions options, IAdminConnector connector, IIoQueueConnector ioConnector)
    {
        _options = options;
        _connector = connector;
        _ioConnector = ioConnector;
        _ledger = OwnershipLedger.Get(Context.System);
        Owner = Self.Path.ToStringWithoutAddress();
        Failed();
    }

    /// <summary>The reason carried by the last state change of a controller that has stopped.</summary>
    public const string StoppedReason = "stopped";

    public ITimerScheduler Timers { get; set; } = null!;

    /// <summary>The key under which this actor's holdings appear in the <see cref="OwnershipLedger"/>.</summary>
    private string Owner { get; }

    protected override void PreStart() => StartConnecting();

    protected override void PostStop()
    {
        EndAssociation("the controller stopped");
        _ledger.Report(Owner, 0, 0);
        Publish(ControllerState.Failed, StoppedReason);

        base.PostStop();
    }

    protected override bool AroundReceive(Receive receive, object message)
    {
        bool handled = base.AroundReceive(receive, message);
        _ledger.Report(Owner, _association?.Pending.Count ?? 0, Timers.ActiveTimers.Count);
        return handled;
    }

    /// <summary>
    /// The generation tag of the next association. Only unique within this incarnation so far; the
    /// one place to change should tags have to be unique across incarnations.
    /// </summary>
    // Unique in the process, not per actor: a replacement controller never takes an earlier one's tags.
    private long NextGeneration() => _generation = ConnectGenerations.Next();

    private bool IsCurrent(long generation) => _association is { } association && association.Generation == generation;

    private void StartConnecting()
    {
        EndAssociation("a new association replaced this one");
        var association = new Association(NextGeneration());
        _association = association;
        long generation = association.Generation;
        var events = new ActorAdminEvents(Self, generation);
        var request = new AdminConnectRequest(_options.Address, _options.Settings.Digests, _options.Settings.AdminQueueSize, Owner)
        {
            TcpUserTimeout = _options.Settings.EffectiveTcpUserTimeout,
            Tls = TlsSession(_options.Settings),
        };

        SetState(ControllerState.Connecting, $"connecting to {_options.Address}");
        ArmStepTimer(association, "TCP connect");
        ConnectAndCount(_connector, request, events, association.Lifetime.Token, _ledger, Owner)
            .PipeTo(Self, success: c => new Connected(generation, c), failure: e => new ConnectAttemptFailed(generation, e));
        Become(() => Connecting(association));
    }

    /// <summary>
    /// The TLS of this controller's queues (psk set), bounded by connect-timeout like every bring-up step. Discovery
    /// controllers stay on plain TCP, as SPDK's discovery service does (the psk is for the NVM subsystems it finds),
    /// unless their port requires a secure channel (<see cref="ControllerOptions.SecureChannel"/>).
    /// </summary>
    private TlsPskSession? TlsSession(Settings.NvmeHostSettings settings) =>
        settings.TlsPsk is { } psk && (_options.Role == ControllerRole.Nvm || _options.SecureChannel)
            ? new TlsPskSession(psk, settings.HostNqn, _options.SubsystemNqn) { HandshakeTimeout = settings.ConnectTimeout, IdentityVersion = settings.TlsIdentityVersion }
            : null;

    // Counted by the connection itself, so the ledger shows a socket even when no actor holds it.
    private static async Task<IAdminConnection> ConnectAndCount(IAdminConnector connector, AdminConnectRequest request, IAdminEvents events, CancellationToken lifetime, OwnershipLedger ledger, string owner)
    {
        var connection = await connector.ConnectAsync(request, events, lifetime).ConfigureAwait(false);
        ledger.ConnectionOpened(owner);
        _ = connection.Closed.ContinueWith(_ => ledger.ConnectionClosed(owner), CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        return connection;
    }

    /// <summary>Connecting: the byte stream is being opened.</summary>
    private void Connecting(Association association)
    {
        Receive<Connected>(m => m.Generation == association.Generation, m => OnConnected(association, m.Connection));
        Common();
    }

    private void OnConnected(Association association, IAdminConnection connection)
    {
        association.Connection = connection;
        long generation = association.Generation;
        SetState(ControllerState.Handshake, "ICReq sent");
        ArmStepTimer(association, "ICReq/ICResp");
        connection.Closed.PipeTo(Self, success: r => new ConnectionEnded(generation, r), failure: e => new ConnectionEnded(generation, new ConnectionClosed(CloseReason.SocketError, e.Message, e)));
        connection.InitializeAsync(association.Lifetime.Token)
            .PipeTo(Self, success: () => new Initialized(generation), failure: e => new ConnectAttemptFailed(generation, e));
        Become(() => Handshake(association));
    }

    /// <summary>Handshake: ICReq sent, waiting for an acceptable ICResp.</summary>
    private void Handshake(Association association)
    {
        Receive<Initialized>(m => m.Generation == association.Generation, _ => StartBringUp(association));
        Common();
    }

    /// <summary>Failed: no association; the parent decides when to try again.</summary>
    private void Failed()
    {
        Receive<Controller.Reconnect>(_ => StartConnecting());
        Common();
    }

    /// <summary>
    /// Resetting: the old association has been ended (and Failed published, as for a loss the parent
    /// is not told of); the new one starts once the messages already queued for the old one are past.
    /// </summary>
    private void Resetting()
    {
        Receive<ResetNow>(_ => StartConnecting());
        Receive<Controller.Reset>(_ => { });
        Common();
    }

    /// <summary>What every state does with the messages it has no behaviour of its own for.</summary>
    private void Common()
    {
        Receive<AdminCompleted>(OnAdminCompleted);
        Receive<ConnectionEnded>(m => IsCurrent(m.Generation), m => Lose(m.Reason));
        Receive<ConnectAttemptFailed>(m => IsCurrent(m.Generation), OnConnectAttemptFailed);
        Receive<StepTimedOut>(m => IsCurrent(m.Generation), m => Lose(new ConnectionClosed(CloseReason.ConnectTimeout, $"{m.Step} did not finish within {m.Timeout.TotalSeconds:0.###}s")));
        Receive<IoQueuesEnded>(m => IsCurrent(m.Generation) && ReferenceEquals(m.Set, _association!.IoQueues), m => Lose(m.Reason));
        Receive<IoQueuesConnected>(m => m.Set.Abort(new ConnectionClosed(CloseReason.LocalShutdown, "the association it belonged to has ended")));
        Receive<SweepCommands>(_ => OnSweepCommands());
        Receive<Controller.SubmitAdmin>(r => Sender.Tell(new Controller.AdminFailed($"controller {_options.Name} is {_state}, not Live", r.Tag)));
        Receive<Controller.Reauthenticate>(_ => Sender.Tell(new Controller.ReauthenticationFailed(_options.Name, $"controller {_options.Name} is {_state}, not Live")));
        Receive<Controller.SetKeys>(m =>
        {
            StoreKeys(m.Credentials);
            Sender.Tell(new Controller.KeysStored(_options.Name));
        });
        Receive<IoQueuesReauthenticated>(m => IsCurrent(m.Generation), OnIoQueuesReauthenticated);
        Receive<IoQueuesReauthenticationFailed>(m => IsCurrent(m.Generation), OnIoQueuesReauthenticationFailed);
        Receive<IoQueuesReauthenticated>(m => m.ReplyTo.Tell(new Controller.ReauthenticationFailed(_options.Name, $"the association with {_options.SubsystemNqn} ended during re-authentication")));
        Receive<IoQueuesReauthenticationFailed>(m => m.ReplyTo.Tell(new Controller.ReauthenticationFailed(_options.Name, $"re-authentication of an I/O queue: {IoQueueReauthenticationLoss(m.Error)}")));
        Receive<Controller.Reset>(_ => OnReset());
        Receive<Controller.Delete>(_ => Context.Stop(Self));
        Receive<Controller.GetStatus>(_ => ReplyStatus(info: null));

        // Late results of an association that has ended (its lifetime token aborted what they carry),
        // ticks of a state that has been left, a Reconnect while not Failed: nothing to do.
        Receive<Connected>(_ => { });
        Receive<Initialized>(_ => { });
        Receive<StepTimedOut>(_ => { });
        Receive<ConnectionEnded>(_ => { });
        Receive<ConnectAttemptFailed>(_ => { });
        Receive<IoQueuesEnded>(_ => { });
        Receive<PollStatus>(_ => { });
        Receive<KeepAliveTick>(_ => { });
        Receive<ResetNow>(_ => { });
        Receive<Controller.Reconnect>(_ => { });
    }

    private void ReplyStatus(ControllerInfo? info) =>
        Sender.Tell(new Controller.Status(_options.Name, _state, _options.Address, _options.SubsystemNqn, info, _lastLoss));

    private void OnConnectAttemptFailed(ConnectAttemptFailed message)
    {
        var reason = message.Error switch
        {
            ConnectionClosedException closed => closed.Closed,
            OperationCanceledException => new ConnectionClosed(CloseReason.ConnectTimeout, "connect attempt cancelled"),
            _ => new ConnectionClosed(CloseReason.ConnectFailed, message.Error.Message, message.Error),
        };
        Lose(reason);
    }

    private void OnReset()
    {
        _log.Info("{0}: reset requested", _options.Name);
        if (_state == ControllerState.Deleting)
        {
            Lose(new ConnectionClosed(CloseReason.ResetRequested, "reset requested")); // stops: a controller being deleted is not brought back
            return;
        }

        Lose(new ConnectionClosed(CloseReason.ResetRequested, "reset requested"), notifyParent: false);
        Become(Resetting);
        Self.Tell(ResetNow.Instance);
    }

    /// <summary>
    /// The association is gone: abort the connection, fail what was pending, stop the timers, tell
    /// the parent. The parent decides whether and when to reconnect.
    /// </summary>
    private void Lose(ConnectionClosed reason, bool notifyParent = true)
    {
        if (_state == ControllerState.Failed)
        {
            return;
        }

        var previous = _state;
        if (previous == ControllerState.Deleting)
        {
            // Being deleted anyway: the shutdown ends here, there is nothing to reconnect.
            _log.Info("{0}: connection ended during shutdown ({1}); stopping", _options.Name, reason);
            Context.Stop(Self);
            return;
        }

        _lastLoss = reason;
        var writeResubmitDelay = _association?.IoQueues?.WriteResubmitDelay ?? TimeSpan.Zero;
        EndAssociation($"the association was lost: {reason}");
        Timers.CancelAll();
        // Says why writes pause after a loss although the target may be back at once (README, "Writes after a path loss").
        string writesNote = writeResubmitDelay > TimeSpan.Zero
            ? string.Create(CultureInfo.InvariantCulture, $"; writes that were in flight on it are sent again {writeResubmitDelay.TotalSeconds:0.###} s after the loss at the earliest (KATO rounded + KATO/4 + CQT), reads at once")
            : string.Empty;
        _log.Warning("{0}: association to {1} lost while {2}: {3}{4}", _options.Name, _options.Address, previous, reason, writesNote);

        _state = ControllerState.Failed;
        Publish(new Controller.StateChanged(Self, _options.Name, ControllerState.Failed, reason.ToString(), reason, PathRefusals.Of(reason)));
        if (notifyParent)
        {
            Context.Parent.Tell(new Controller.Lost(Self, _options.Name, reason));
        }

        Become(Failed);
    }

    /// <summary>Ends the current association, if any: fails its commands, aborts its queues and connection, cancels its lifetime.</summary>
    private void EndAssociation(string pendingReason)
    {
        var association = _association;
        _association = null;
        if (association is null)
        {
            return;
        }

        foreach (var pending in association.Pending.Values)
        {
            pending.ReplyTo?.Tell(new Controller.AdminFailed(pendingReason, pending.Tag));
        }

        association.Pending.Clear();
        var ended = new ConnectionClosed(CloseReason.LocalShutdown, "the controller ended this association");
        AbortIoQueues(association, ended);
        association.Connection?.Abort(ended);
        association.Lifetime.Cancel();
        association.Lifetime.Dispose();
    }

    private void SetState(ControllerState state, string? reason)
    {
        _state = state;
        Publish(state, reason);
    }

    private void Publish(ControllerState state, string? reason) => Publish(new Controller.StateChanged(Self, _options.Name, state, reason));

    private void Publish(Controller.StateChanged changed)
    {
        Context.System.EventStream.Publish(changed);
        Context.Parent.Tell(changed);
    }

    private void ArmStepTimer(Association association, string step, TimeSpan? timeout = null)
    {
        var limit = timeout ?? _options.Settings.ConnectTimeout;
        Timers.StartSingleTimer(StepTimerKey, new StepTimedOut(association.Generation, step, limit), limit);
    }

    private const string StepTimerKey = "step-timeout";

    /// <summary>One association: what belongs to one connect attempt and dies with it.</summary>
    private sealed class Association(long generation)
    {
        public long Generation { get; } = generation;

        /// <summary>Cancelled when the association ends: aborts the connection and the I/O queues wherever they are.</summary>
        public CancellationTokenSource Lifetime { get; } = new();

        public IAdminConnection? Connection { get; set; }

        /// <summary>Admin commands in flight, by command id.</summary>
        public Dictionary<ushort, PendingCommand> Pending { get; } = [];

        /// <summary>The I/O queues of a Live NVM controller (owned here, aborted with the association).</summary>
        public IoQueueSet? IoQueues { get; set; }

        /// <summary>A host-initiated DH-HMAC-CHAP transaction is under way on the admin queue.</summary>
        public bool Reauthenticating { get; set; }
    }

    private sealed record Connected(long Generation, IAdminConnection Connection) : IDeadLetterSuppression; // late results of a stopped controller are expected

    private sealed record ConnectAttemptFailed(long Generation, Exception Error) : IDeadLetterSuppression; // late results of a stopped controller are expected

    private sealed record Initialized(long Generation) : IDeadLetterSuppression; // late results of a stopped controller are expected

    private sealed record AdminCompleted(long Generation, AdminResponse Completion) : IDeadLetterSuppression; // late results of a stopped controller are expected

    private sealed record ConnectionEnded(long Generation, ConnectionClosed Reason) : IDeadLetterSuppression; // late results of a stopped controller are expected

    private sealed record StepTimedOut(long Generation, string Step, TimeSpan Timeout);

    private sealed record ResetNow
    {
        public static ResetNow Instance { get; } = new();
    }

    /// <summary>Turns read-loop callbacks into messages; the actor's state is touched only in its handlers.</summary>
    private sealed class ActorAdminEvents(IActorRef self, long generation) : IAdminEvents
    {
        public void Completed(AdminResponse completion) => self.Tell(new AdminCompleted(generation, completion));

        public void Closed(ConnectionClosed reason) => self.Tell(new ConnectionEnded(generation, reason));
    }
}
