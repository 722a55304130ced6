using Akka.Actor;
using Akka.Event;
using ActorNvme.Actors.Connection;
using ActorNvme.Io;
using ActorNvme.Protocol.Data;
using ActorNvme.Protocol.Nvme;
using ActorNvme.Transport;

namespace ActorNvme.Actors.Controller;

/// <summary>
/// One controller association (admin queue). Everything that changes its state — connection results,
/// admin completions, timers, requests — arrives as a message, tagged with the connect attempt's
/// generation so a late result of an old connection is dropped. Stopping it cancels the generation's
/// lifetime token, which aborts the connection wherever it is, and fails every pending command.
/// </summary>
public sealed partial class ControllerActor : ReceiveActor, IWithTimers
{
    private readonly ControllerOptions _options;
    private readonly IAdminConnector _connector;
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly OwnershipLedger _ledger;
    private readonly Dictionary<ushort, PendingCommand> _pending = [];

    private ControllerState _state = ControllerState.Failed;
    private int _generation;
    private CancellationTokenSource? _lifetime;
    private IAdminConnection? _connection;
    private ConnectionClosed? _lastLoss;
    private ControllerInfo? _info;

    public ControllerActor(ControllerOptions options, IAdminConnector connector, IIoQueueConnector ioConnector)
    {
        _options = options;
        _connector = connector;
        _ioConnector = ioConnector;
        _ledger = OwnershipLedger.Get(Context.System);
        Owner = Self.Path.ToStringWithoutAddress();

        Receive<Connected>(OnConnected);
        Receive<ConnectAttemptFailed>(OnConnectAttemptFailed);
        Receive<Initialized>(OnInitialized);
        Receive<IoQueuesConnected>(OnIoQueuesConnected);
        Receive<IoQueuesEnded>(OnIoQueuesEnded);
        Receive<AdminCompleted>(OnAdminCompleted);
        Receive<ConnectionEnded>(m => { if (m.Generation == _generation) { Lose(m.Reason); } });
        Receive<StepTimedOut>(OnStepTimedOut);
        Receive<KeepAliveTick>(_ => OnKeepAliveTick());
        Receive<SweepCommands>(_ => OnSweepCommands());
        Receive<PollStatus>(OnPollStatus);
        Receive<Controller.SubmitAdmin>(OnSubmitAdmin);
        Receive<Controller.Reconnect>(_ => { if (_state == ControllerState.Failed) { StartConnecting(); } });
        Receive<Controller.Reset>(_ => OnReset());
        Receive<Controller.Delete>(_ => OnDelete());
        Receive<Controller.GetStatus>(_ => Sender.Tell(new Controller.Status(_options.Name, _state, _options.Address, _options.SubsystemNqn, _info, _lastLoss)));
    }

    /// <summary>The reason carried by the last state change of a controller that has stopped.</summary>
    public const string StoppedReason = "stopped";

    public ITimerScheduler Timers { get; set; } = null!;

    /// <summary>The key under which this actor's holdings appear in the <see cref="OwnershipLedger"/>.</summary>
    private string Owner { get; }

    protected override void PreStart() => StartConnecting();

    protected override void PostStop()
    {
        EndGeneration();
        FailPending("the controller stopped");
        _ledger.Report(Owner, 0, 0);
        Publish(ControllerState.Failed, StoppedReason);

        base.PostStop();
    }

    protected override bool AroundReceive(Receive receive, object message)
    {
        bool handled = base.AroundReceive(receive, message);
        _ledger.Report(Owner, _pending.Count, Timers.ActiveTimers.Count);
        return handled;
    }

    private void StartConnecting()
    {
        EndGeneration();
        _generation++;
        _lifetime = new CancellationTokenSource();
        int generation = _generation;
        var events = new ActorAdminEvents(Self, generation);
        var request = new AdminConnectRequest(_options.Address, _options.Settings.Digests, _options.Settings.AdminQueueSize, Owner);
        var lifetime = _lifetime.Token;
        var ledger = _ledger;
        var owner = Owner;

        SetState(ControllerState.Connecting, $"connecting to {_options.Address}");
        ArmStepTimer("TCP connect");
        ConnectAndCount(_connector, request, events, lifetime, ledger, owner)
            .PipeTo(Self, success: c => new Connected(generation, c), failure: e => new ConnectAttemptFailed(generation, e));
    }

    // Counted by the connection itself, so the ledger shows a socket even when no actor holds it.
    private static async Task<IAdminConnection> ConnectAndCount(IAdminConnector connector, AdminConnectRequest request, IAdminEvents events, CancellationToken lifetime, OwnershipLedger ledger, string owner)
    {
        var connection = await connector.ConnectAsync(request, events, lifetime).ConfigureAwait(false);
        ledger.ConnectionOpened(owner);
        _ = connection.Closed.ContinueWith(_ => ledger.ConnectionClosed(owner), CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        return connection;
    }

    private void OnConnected(Connected message)
    {
        if (message.Generation != _generation)
        {
            // Its lifetime token was cancelled with its generation, which aborted it.
            return;
        }

        _connection = message.Connection;
        int generation = _generation;
        SetState(ControllerState.Handshake, "ICReq sent");
        ArmStepTimer("ICReq/ICResp");
        message.Connection.Closed.PipeTo(Self, success: r => new ConnectionEnded(generation, r), failure: e => new ConnectionEnded(generation, new ConnectionClosed(CloseReason.SocketError, e.Message, e)));
        message.Connection.InitializeAsync(_lifetime!.Token)
            .PipeTo(Self, success: () => new Initialized(generation), failure: e => new ConnectAttemptFailed(generation, e));
    }

    private void OnConnectAttemptFailed(ConnectAttemptFailed message)
    {
        if (message.Generation != _generation)
        {
            return;
        }

        var reason = message.Error switch
        {
            ConnectionClosedException closed => closed.Closed,
            OperationCanceledException => new ConnectionClosed(CloseReason.ConnectTimeout, "connect attempt cancelled"),
            _ => new ConnectionClosed(CloseReason.ConnectFailed, message.Error.Message, message.Error),
        };
        Lose(reason);
    }

    private void OnStepTimedOut(StepTimedOut message)
    {
        if (message.Generation == _generation && _state is not (ControllerState.Live or ControllerState.Failed))
        {
            Lose(new ConnectionClosed(CloseReason.ConnectTimeout, $"{message.Step} did not finish within {_options.Settings.ConnectTimeout.TotalSeconds:0.###}s"));
        }
    }

    private void OnReset()
    {
        _log.Info("{0}: reset requested", _options.Name);
        Lose(new ConnectionClosed(CloseReason.ResetRequested, "reset requested"), notifyParent: false);
        StartConnecting();
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
        EndGeneration();
        FailPending($"the association was lost: {reason}");
        Timers.CancelAll();
        _log.Warning("{0}: association to {1} lost while {2}: {3}", _options.Name, _options.Address, previous, reason);
        SetState(ControllerState.Failed, reason.ToString());
        if (notifyParent)
        {
            Context.Parent.Tell(new Controller.Lost(Self, _options.Name, reason));
        }
    }

    private void EndGeneration()
    {
        AbortIoQueues(new ConnectionClosed(CloseReason.LocalShutdown, "the controller ended this association"));
        _connection?.Abort(new ConnectionClosed(CloseReason.LocalShutdown, "the controller ended this association"));
        _connection = null;
        _lifetime?.Cancel();
        _lifetime?.Dispose();
        _lifetime = null;
        _info = null;
        _keepAliveOutstanding = false;
        _outstandingAsyncEvents = 0;
    }

    private void FailPending(string reason)
    {
        foreach (var pending in _pending.Values)
        {
            pending.ReplyTo?.Tell(new Controller.AdminFailed(reason, pending.Tag));
        }

        _pending.Clear();
    }

    private void SetState(ControllerState state, string? reason)
    {
        _state = state;
        Publish(state, reason);
    }

    private void Publish(ControllerState state, string? reason)
    {
        var changed = new Controller.StateChanged(Self, _options.Name, state, reason);
        Context.System.EventStream.Publish(changed);
        Context.Parent.Tell(changed);
    }

    private void ArmStepTimer(string step) =>
        Timers.StartSingleTimer(StepTimerKey, new StepTimedOut(_generation, step), _options.Settings.ConnectTimeout);

    private const string StepTimerKey = "step-timeout";

    private sealed record Connected(int Generation, IAdminConnection Connection) : IDeadLetterSuppression; // late results of a stopped controller are expected

    private sealed record ConnectAttemptFailed(int Generation, Exception Error) : IDeadLetterSuppression; // late results of a stopped controller are expected

    private sealed record Initialized(int Generation) : IDeadLetterSuppression; // late results of a stopped controller are expected

    private sealed record AdminCompleted(int Generation, AdminResponse Completion) : IDeadLetterSuppression; // late results of a stopped controller are expected

    private sealed record ConnectionEnded(int Generation, ConnectionClosed Reason) : IDeadLetterSuppression; // late results of a stopped controller are expected

    private sealed record StepTimedOut(int Generation, string Step);

    /// <summary>Turns read-loop callbacks into messages; the actor's state is touched only in its handlers.</summary>
    private sealed class ActorAdminEvents(IActorRef self, int generation) : IAdminEvents
    {
        public void Completed(AdminResponse completion) => self.Tell(new AdminCompleted(generation, completion));

        public void Closed(ConnectionClosed reason) => self.Tell(new ConnectionEnded(generation, reason));
    }
}
