using Akka.Event;
using ActorNvme.Actors.Connection;
using ActorNvme.Protocol.Data;
using ActorNvme.Transport;
using ActorNvme.Transport.BringUp;

namespace ActorNvme.Actors.Controller;

/// <summary>
/// The bring-up phases (FabricsConnect, Enabling, Identifying, Configuring) and Deleting: the actor
/// drives the Transport's <see cref="ControllerBringUp"/> and <see cref="ControllerShutdown"/>
/// machines, feeding them the completions its mailbox delivers, so the script exists once and every
/// admin completion is still handled one at a time. The actor owns the clock: step deadlines, the
/// CSTS.RDY deadline the machine hands it, and the pause between two CSTS reads are its timers.
/// </summary>
public sealed partial class ControllerActor
{
    private const string PollTimerKey = "status-poll";

    private sealed record PollStatus(long Generation);

    /// <summary>One bring-up run: its machine, and the step whose deadline is armed.</summary>
    private sealed class BringUpRun(ControllerBringUp machine)
    {
        public ControllerBringUp Machine { get; } = machine;

        public BringUpStep? TimedStep { get; set; }
    }

    /// <summary>CTRATT bit 6, TBKAS: the controller restarts its keep-alive timer on I/O commands too.</summary>
    private const uint TrafficBasedKeepAliveAttribute = 1u << 6;

    private void StartBringUp(Association association)
    {
        var run = new BringUpRun(new ControllerBringUp(BringUpOptionsFor()));
        Continue(association, run, run.Machine.Start());
    }

    private BringUpOptions BringUpOptionsFor()
    {
        var settings = _options.Settings;
        bool nvm = _options.Role == ControllerRole.Nvm;
        var connect = new FabricsConnectParameters(settings.HostId, _options.SubsystemNqn, settings.HostNqn)
        {
            KeepAliveMilliseconds = (uint)settings.KeepAliveTimeout.TotalMilliseconds,
        };
        return new BringUpOptions(connect, settings.AdminQueueSize)
        {
            Goal = BringUpGoal.Configured,
            IdentifyNamespaces = nvm,
            WantedAsyncEvents = nvm
                ? AsyncEventConfiguration.NamespaceAttributeNotices | AsyncEventConfiguration.AnaChangeNotices
                : AsyncEventConfiguration.DiscoveryLogChangeNotices,
            IoQueues = nvm ? Math.Clamp(settings.EffectiveIoQueues, 1, 65534) : 0,
            MinimumReadyTimeout = settings.ConnectTimeout,
            ReadyPollInterval = settings.ReadyPollInterval,
            Authentication = settings.DhChap,
        };
    }

    /// <summary>Carries out what the machine asks for next.</summary>
    private void Continue(Association association, BringUpRun run, BringUpAction action)
    {
        switch (action)
        {
            case BringUpAction.Submit submit:
                EnterPhase(association, run, ControllerBringUp.PhaseOf(submit.Command.Step));
                if (submit.StatusTimeout is { } readyTimeout)
                {
                    ArmStepTimer(association, submit.Command.Description, readyTimeout);
                    run.TimedStep = submit.Command.Step;
                }
                else if ((run.TimedStep != submit.Command.Step && !SharesDeadline(run.TimedStep, submit.Command.Step)) || submit.Command.Step == BringUpStep.Authentication)
                {
                    // Each authentication message gets its own deadline: with a large DH group one exchange is several slow steps.
                    ArmStepTimer(association, submit.Command.Description);
                    run.TimedStep = submit.Command.Step;
                }

                var command = submit.Command;
                SubmitInternal(command.Command, c => Continue(association, run, run.Machine.OnCompletion(new BringUpCompletion(c.Entry, c.Data, c.DataDigestError))), command.DataOut, command.DataInLength);
                break;
            case BringUpAction.Wait wait:
                Timers.StartSingleTimer(PollTimerKey, new PollStatus(association.Generation), wait.Delay);
                break;
            case BringUpAction.Succeeded succeeded:
                EnterPhase(association, run, BringUpPhase.Configuring);
                OnBroughtUp(association, succeeded.Result);
                break;
            case BringUpAction.Failed failed:
                Lose(LossOf(failed.Failure));
                break;
        }
    }

    // CAP, VS and CC.EN share one deadline; each namespace's descriptors share its Identify's.
    private static bool SharesDeadline(BringUpStep? armed, BringUpStep next) =>
        (armed, next) is (BringUpStep.PropertyGetCapabilities, BringUpStep.PropertyGetVersion or BringUpStep.PropertySetEnable)
            or (BringUpStep.IdentifyNamespace, BringUpStep.NamespaceDescriptors)
            or (BringUpStep.WaitForReady, BringUpStep.WaitForReady);

    /// <summary>Publishes the phase as the controller's state and becomes it, when it is a new one.</summary>
    private void EnterPhase(Association association, BringUpRun run, BringUpPhase phase)
    {
        var state = phase switch
        {
            BringUpPhase.FabricsConnect => ControllerState.FabricsConnect,
            BringUpPhase.Enabling => ControllerState.Enabling,
            BringUpPhase.Identifying => ControllerState.Identifying,
            _ => ControllerState.Configuring,
        };
        if (state == _state)
        {
            return;
        }

        string? reason = state switch
        {
            ControllerState.FabricsConnect => $"Connect to {_options.SubsystemNqn}",
            ControllerState.Enabling => $"controller id {run.Machine.ControllerId}",
            _ => null,
        };
        SetState(state, reason);
        Become(() => BringingUp(association, run));
    }

    /// <summary>FabricsConnect, Enabling, Identifying, Configuring: a command of the script is in flight, or a CSTS read is due.</summary>
    private void BringingUp(Association association, BringUpRun run)
    {
        Receive<PollStatus>(m => m.Generation == association.Generation, _ => Continue(association, run, run.Machine.PollAgain()));
        Receive<StepTimedOut>(m => m.Generation == association.Generation, m =>
        {
            var kind = run.Machine.Step == BringUpStep.WaitForReady ? BringUpFailureKind.StatusTimeout : BringUpFailureKind.NotCompleted;
            var failed = run.Machine.Abandon(kind, $"did not finish within {m.Timeout.TotalSeconds:0.###}s");
            Lose(LossOf(failed.Failure));
        });
        // A controller may refuse DH-HMAC-CHAP by closing the connection (Linux nvmet does): the loss is the refusal.
        Receive<ConnectionEnded>(m => m.Generation == association.Generation && run.Machine.Step == BringUpStep.Authentication, m =>
        {
            var failed = run.Machine.OnConnectionLost(m.Reason.ToString());
            Lose(failed is null ? m.Reason : LossOf(failed.Failure));
        });
        Common();
    }

    private ConnectionClosed LossOf(BringUpFailure failure) => failure.Kind switch
    {
        BringUpFailureKind.Refused => new ConnectionClosed(CloseReason.ConnectRejected, $"{failure.Description} refused by {_options.SubsystemNqn} at {_options.Address}: {failure.Detail}") { RefusalStatus = failure.Status },
        BringUpFailureKind.StatusTimeout or BringUpFailureKind.NotCompleted => new ConnectionClosed(CloseReason.ConnectTimeout, failure.ToString()),
        BringUpFailureKind.AuthenticationFailed => new ConnectionClosed(CloseReason.AuthenticationFailed, $"{failure.Description} at {_options.Address}: {failure.Detail}"),
        _ => new ConnectionClosed(CloseReason.ConnectRejected, failure.ToString()),
    };

    private void OnBroughtUp(Association association, ControllerBringUpResult result)
    {
        foreach (string warning in result.Warnings)
        {
            _log.Warning("{0}: {1}", _options.Name, warning);
        }

        var identify = result.Identify!.Value;
        var namespaces = result.Namespaces.Select(n => new NamespaceInfo(n.NamespaceId, n.BlockSize, n.BlockCount, n.Nguid, n.Eui64, n.Uuid, n.Reservations)).ToArray();
        var info = new ControllerInfo(result.ControllerId, result.Capabilities, result.Version, identify, namespaces);
        var live = new LiveData(info, result.Configuration, result.KeepAliveInterval)
        {
            TrafficBasedKeepAlive = (identify.ControllerAttributes & TrafficBasedKeepAliveAttribute) != 0,
        };
        if (_options.Role == ControllerRole.Nvm && result.GrantedIoQueues > 0)
        {
            ConnectIoQueues(association, live, result.GrantedIoQueues);
        }
        else
        {
            GoLive(association, live);
        }
    }

    private void StartDeleting(Association association, LiveData live)
    {
        SetState(ControllerState.Deleting, "CC.SHN normal shutdown");
        AbortIoQueues(association, new ConnectionClosed(CloseReason.ControllerDeleted, "the controller is being deleted"));
        var shutdown = new ControllerShutdown(live.Configuration, _options.Settings.ReadyPollInterval, _options.Settings.ConnectTimeout);
        ArmStepTimer(association, "Property Set CC.SHN");
        Become(() => Deleting(association, live, shutdown));
        ContinueShutdown(association, shutdown, shutdown.Start());
    }

    /// <summary>Deleting: CC.SHN written, waiting for CSTS.SHST; the actor stops however that ends.</summary>
    private void Deleting(Association association, LiveData live, ControllerShutdown shutdown)
    {
        Receive<PollStatus>(m => m.Generation == association.Generation, _ => ContinueShutdown(association, shutdown, shutdown.PollAgain()));
        Receive<Controller.SubmitAdmin>(OnSubmitAdmin);
        Receive<KeepAliveTick>(_ => OnKeepAliveTick(association, live));
        Receive<Controller.GetStatus>(_ => ReplyStatus(live.Info));
        Common();
    }

    private void ContinueShutdown(Association association, ControllerShutdown shutdown, BringUpAction action)
    {
        switch (action)
        {
            case BringUpAction.Submit submit:
                if (submit.StatusTimeout is { } timeout)
                {
                    ArmStepTimer(association, submit.Command.Description, timeout);
                }

                SubmitInternal(submit.Command.Command, c => ContinueShutdown(association, shutdown, shutdown.OnCompletion(new BringUpCompletion(c.Entry, c.Data, c.DataDigestError))));
                break;
            case BringUpAction.Wait wait:
                Timers.StartSingleTimer(PollTimerKey, new PollStatus(association.Generation), wait.Delay);
                break;
            case BringUpAction.Failed failed:
                _log.Warning("{0}: {1}; stopping anyway", _options.Name, failed.Failure);
                Context.Stop(Self);
                break;
            default:
                Context.Stop(Self);
                break;
        }
    }
}
