using Akka.Actor;
using Akka.Event;
using ActorNvme.Actors.Connection;
using ActorNvme.Io;
using ActorNvme.Protocol.Data;
using ActorNvme.Protocol.Nvme;
using ActorNvme.Transport;

namespace ActorNvme.Actors.Controller;

/// <summary>Live: callers' admin commands, Keep Alive every KATO/2, asynchronous event requests kept posted.</summary>
public sealed partial class ControllerActor
{
    private const string KeepAliveTimerKey = "keep-alive";
    private const int MaxAsyncEventRequests = 4;
    private const string AsyncEventRepostTimerKey = "async-event-repost";

    // A controller may answer each Asynchronous Event Request as soon as it arrives (broken or
    // hostile): beyond this many re-posts a second the rest wait for the next second, so such a
    // controller costs bounded work instead of a busy loop through this actor and its parent.
    private const int AsyncEventRepostsPerSecond = 8;

    /// <summary>What a Live (and then Deleting) controller knows and counts; owned by those behaviours.</summary>
    private sealed class LiveData(ControllerInfo info, ControllerConfiguration configuration, TimeSpan keepAliveInterval)
    {
        /// <summary>What the bring-up identified; its namespaces are replaced by every namespace scan.</summary>
        public ControllerInfo Info { get; set; } = info;

        /// <summary>The namespace scan in progress (one at a time), if any.</summary>
        public NamespaceScan? NamespaceScan { get; set; }

        /// <summary>A namespace change was reported while a scan ran: scan again when it ends.</summary>
        public bool NamespaceRescanWanted { get; set; }

        /// <summary>KATO/2, as the bring-up worked it out from the KATO sent in Connect; zero: no Keep Alive.</summary>
        public TimeSpan KeepAliveInterval { get; } = keepAliveInterval;

        /// <summary>The CC the bring-up wrote; the shutdown writes it again with SHN.</summary>
        public ControllerConfiguration Configuration { get; } = configuration;

        public bool KeepAliveOutstanding { get; set; }

        /// <summary>KATO/2 split into this many ticks; a Keep Alive goes out every n-th tick and must be answered within one.</summary>
        public int KeepAliveTicksPerSend { get; set; } = 1;

        public int KeepAliveTicks { get; set; }

        public TimeSpan KeepAliveTickPeriod { get; set; }

        /// <summary>When this actor last handled a Keep Alive tick (scheduler time).</summary>
        public DateTimeOffset LastKeepAliveTick { get; set; }

        /// <summary>The same, on the machine's clock (<see cref="Environment.TickCount64"/>, ms).</summary>
        public long LastKeepAliveTickMachineMs { get; set; }

        /// <summary>
        /// No Keep Alive verdict before this: after a stall of this process the answer may be queued behind the
        /// ticks, so it gets one tick period of running time to arrive (see <see cref="OnKeepAliveTick"/>).
        /// </summary>
        public DateTimeOffset KeepAliveVerdictNotBefore { get; set; }

        /// <summary>Late ticks (this process stalled) that postponed a Keep Alive verdict.</summary>
        public long KeepAliveVerdictsPostponed { get; set; }

        /// <summary>CTRATT.TBKAS: the controller counts I/O commands as keep-alive traffic.</summary>
        public bool TrafficBasedKeepAlive { get; init; }

        /// <summary>Keep Alives not sent because I/O completed in their interval (traffic-based keep alive).</summary>
        public long KeepAlivesSkipped { get; set; }

        /// <summary>Abort commands sent for timed-out I/O and not yet answered.</summary>
        public int AbortsOutstanding { get; set; }

        public int OutstandingAsyncEvents { get; set; }

        public DateTimeOffset AsyncEventWindowStart { get; set; }

        public int AsyncEventRepostsInWindow { get; set; }

        public int DeferredAsyncEventRequests { get; set; }
    }

    private sealed record RepostAsyncEvents
    {
        public static RepostAsyncEvents Instance { get; } = new();
    }

    private const string IoTimeoutTimerKey = "io-timeout";

    private sealed record IoTimeoutTick
    {
        public static IoTimeoutTick Instance { get; } = new();
    }

    private sealed record KeepAliveTick
    {
        public static KeepAliveTick Instance { get; } = new();
    }

    private void GoLive(Association association, LiveData live)
    {
        int count = Math.Min(live.Info.Identify.AsyncEventRequestLimit + 1, MaxAsyncEventRequests);
        for (int i = 0; i < count; i++)
        {
            PostAsyncEventRequest(live);
        }

        Timers.Cancel(StepTimerKey);
        var info = live.Info;
        SetState(ControllerState.Live, $"controller id {info.ControllerId}, {info.Namespaces.Count} namespace(s)");
        _log.Info("{0}: Live on {1} ({2}), controller id {3}", _options.Name, _options.Address, _options.SubsystemNqn, info.ControllerId);
        if (live.KeepAliveInterval > TimeSpan.Zero)
        {
            // Keep Alive every KATO/2, checked on a finer tick: KATO/2 is split into n = ceil(KATO/2 /
            // keep-alive-answer-timeout) ticks, and a Keep Alive unanswered one tick after it went out is a
            // loss. A dead path is noticed at most KATO/2 + KATO/(2n) after the last answer (README).
            var half = live.KeepAliveInterval;
            var answer = _options.Settings.KeepAliveAnswerTimeout < half ? _options.Settings.KeepAliveAnswerTimeout : half;
            live.KeepAliveTicksPerSend = (int)Math.Ceiling(half.Ticks / (double)Math.Max(1, answer.Ticks));
            live.KeepAliveTickPeriod = TimeSpan.FromTicks(half.Ticks / live.KeepAliveTicksPerSend);
            live.LastKeepAliveTick = Context.System.Scheduler.Now;
            live.LastKeepAliveTickMachineMs = Environment.TickCount64;
            Timers.StartPeriodicTimer(KeepAliveTimerKey, KeepAliveTick.Instance, live.KeepAliveTickPeriod);
        }

        var ioTimeout = _options.Settings.IoTimeout;
        if (association.IoQueues is not null && live.Info.Identify.CommandRetryDelayTime1 + live.Info.Identify.CommandRetryDelayTime2 + live.Info.Identify.CommandRetryDelayTime3 > 0)
        {
            EnableAdvancedCommandRetry();
        }

        if (ioTimeout > TimeSpan.Zero && association.IoQueues is not null)
        {
            Timers.StartPeriodicTimer(IoTimeoutTimerKey, IoTimeoutTick.Instance, TimeSpan.FromTicks(Math.Max(ioTimeout.Ticks / 4, TimeSpan.FromMilliseconds(50).Ticks)));
        }

        Become(() => Live(association, live));
        Context.Parent.Tell(new Controller.BecameLive(Self, _options.Name, info, association.IoQueues));
    }

    private void Live(Association association, LiveData live)
    {
        Receive<Controller.SubmitAdmin>(OnSubmitAdmin);
        Receive<KeepAliveTick>(_ => OnKeepAliveTick(association, live));
        Receive<IoTimeoutTick>(_ => OnIoTimeoutTick(association, live));
        Receive<RepostAsyncEvents>(_ => OnRepostAsyncEvents(live));
        Receive<Controller.Delete>(_ => StartDeleting(association, live));
        Receive<Controller.GetStatus>(_ => ReplyStatus(live.Info));
        Receive<Controller.Reauthenticate>(_ => OnReauthenticate(association));
        Receive<Controller.SetKeys>(m =>
        {
            StoreKeys(m.Credentials);
            if (m.Credentials is null)
            {
                Sender.Tell(new Controller.KeysStored(_options.Name));
                return;
            }

            OnReauthenticate(association);
        });
        Common();
    }

    /// <summary>
    /// A Keep Alive unanswered within its own deadline (one tick) means the controller, or the path to it, is
    /// gone; TCP would take minutes to say so. Otherwise every n-th tick sends the next one, unless the
    /// controller does traffic-based keep alive (CTRATT.TBKAS) and I/O completed since the last one: the I/O
    /// itself kept the association alive at the controller and proved the path to us, as the Linux host does.
    /// </summary>
    /// <remarks>
    /// A tick handled late means this process did not run for a while (thread pool starved, GC, CPU throttled):
    /// the answer, and the target's handling of the Keep Alive, wait for the same threads as the tick, and are
    /// queued behind it. Time this actor could not observe is no evidence against the path, so a late tick
    /// gives the answer one more tick period of running time before the verdict (the ticks of the backlog
    /// that follow it at once included); on time, a missing answer is a loss at once as before. Late means late
    /// on both clocks, the scheduler's and the machine's: a spec on virtual time that advances the clock in
    /// one go, its actors idle for milliseconds of real time, has not stalled them.
    /// </remarks>
    private void OnKeepAliveTick(Association association, LiveData live)
    {
        var now = Context.System.Scheduler.Now;
        long machineNowMs = Environment.TickCount64;
        var sinceLastTick = now - live.LastKeepAliveTick;
        var lateAfter = live.KeepAliveTickPeriod + (live.KeepAliveTickPeriod / 2);
        bool late = sinceLastTick > lateAfter && machineNowMs - live.LastKeepAliveTickMachineMs > lateAfter.TotalMilliseconds;
        live.LastKeepAliveTick = now;
        live.LastKeepAliveTickMachineMs = machineNowMs;
        if (late)
        {
            live.KeepAliveVerdictNotBefore = now + live.KeepAliveTickPeriod;
        }

        if (live.KeepAliveOutstanding && now < live.KeepAliveVerdictNotBefore)
        {
            live.KeepAliveVerdictsPostponed++;
            _log.Info("{0}: a Keep Alive is unanswered but this process stalled ({1:0.###}s since the previous tick of {2:0.###}s): verdict postponed until {3:HH:mm:ss.fff}", _options.Name, sinceLastTick.TotalSeconds, live.KeepAliveTickPeriod.TotalSeconds, live.KeepAliveVerdictNotBefore);
            return;
        }

        if (live.KeepAliveOutstanding)
        {
            Lose(new ConnectionClosed(CloseReason.KeepAliveTimeout, $"no answer to Keep Alive within {live.KeepAliveTickPeriod.TotalSeconds:0.###}s"));
            return;
        }

        if (++live.KeepAliveTicks < live.KeepAliveTicksPerSend)
        {
            return;
        }

        live.KeepAliveTicks = 0;
        if (live.TrafficBasedKeepAlive && association.IoQueues is { } queues && queues.TakeCompletionSeen())
        {
            live.KeepAlivesSkipped++;
            return;
        }

        live.KeepAliveOutstanding = true;
        SubmitInternal(AdminCommands.KeepAlive(), c =>
        {
            live.KeepAliveOutstanding = false;
            if (!c.Entry.Status.IsSuccess)
            {
                Lose(new ConnectionClosed(CloseReason.KeepAliveTimeout, $"Keep Alive refused: {c.Entry.Status}"));
            }
        });
    }

    /// <summary>
    /// io-timeout (SPDK's timeout_us): an I/O command unanswered that long (a controller that answers Keep
    /// Alive but not that I/O). Reset drops the association, so its I/O ends: reads move at once, writes
    /// after the fence, each counting one path loss against io-path-loss-retries. Abort sends the Abort
    /// command for it (SQID, CID); the controller's answer ends the I/O, and one still unanswered a further
    /// io-timeout later resets the association. None only logs.
    /// </summary>
    private void OnIoTimeoutTick(Association association, LiveData live)
    {
        var timeout = _options.Settings.IoTimeout;
        if (association.IoQueues is not { } set)
        {
            return;
        }

        var timedOut = set.TakeTimedOut(timeout, out var stillOutstanding);
        var action = _options.Settings.IoTimeoutAction;
        if (timedOut.Count == 0 && (stillOutstanding.Count == 0 || action == Settings.IoTimeoutAction.None))
        {
            return;
        }

        if (action == Settings.IoTimeoutAction.Reset || (action == Settings.IoTimeoutAction.Abort && stillOutstanding.Count > 0))
        {
            var first = stillOutstanding.Count > 0 ? stillOutstanding[0] : timedOut[0];
            string why = stillOutstanding.Count > 0 ? "unanswered after its Abort" : "unanswered";
            Lose(new ConnectionClosed(CloseReason.CommandTimeout, $"{timedOut.Count + stillOutstanding.Count} I/O command(s) {why} within io-timeout {timeout.TotalSeconds:0.###}s (first: sqid {first.QueueId} cid {first.CommandId}, {first.Age.TotalSeconds:0.###}s)"));
            return;
        }

        foreach (var command in timedOut)
        {
            if (action == Settings.IoTimeoutAction.None)
            {
                _log.Warning("{0}: I/O command sqid {1} cid {2} unanswered for {3:0.###}s (io-timeout {4:0.###}s, action none)", _options.Name, command.QueueId, command.CommandId, command.Age.TotalSeconds, timeout.TotalSeconds);
                continue;
            }

            SendAbort(live, command);
        }
    }

    /// <summary>The Abort command for one timed-out I/O command; beyond the controller's limit (ACL + 1 at once) the association is reset instead.</summary>
    private void SendAbort(LiveData live, IoQueueSet.TimedOutCommand command)
    {
        if (live.AbortsOutstanding > live.Info.Identify.AbortCommandLimit)
        {
            Lose(new ConnectionClosed(CloseReason.CommandTimeout, $"I/O command sqid {command.QueueId} cid {command.CommandId} unanswered within io-timeout and {live.AbortsOutstanding} Abort commands already outstanding (ACL {live.Info.Identify.AbortCommandLimit + 1})"));
            return;
        }

        _log.Warning("{0}: I/O command sqid {1} cid {2} unanswered for {3:0.###}s: sending Abort", _options.Name, command.QueueId, command.CommandId, command.Age.TotalSeconds);
        live.AbortsOutstanding++;
        SubmitInternal(AdminCommands.Abort(command.QueueId, command.CommandId), c =>
        {
            live.AbortsOutstanding--;

            // Dword 0 bit 0 set: not aborted (answered meanwhile, or the controller would not). The command
            // then either completes, or is found still outstanding on a later tick and the association reset.
            bool aborted = c.Entry.Status.IsSuccess && (c.Entry.Dw0 & 1) == 0;
            _log.Info("{0}: Abort of sqid {1} cid {2}: {3}", _options.Name, command.QueueId, command.CommandId, aborted ? "aborted" : c.Entry.Status.IsSuccess ? "not aborted" : $"refused ({c.Entry.Status})");
        });
    }

    /// <summary>
    /// Host Behavior Support with ACRE: the controller may then ask for a delay before a retry (CRD in the
    /// status, CRDT1..3 in Identify), which the block devices honour. A refusal leaves retries undelayed.
    /// </summary>
    private void EnableAdvancedCommandRetry()
    {
        var data = new byte[512];
        data[0] = 1; // ACRE
        SubmitInternal(AdminCommands.SetFeatures(FeatureId.HostBehaviorSupport, 0), c =>
        {
            if (!c.Entry.Status.IsSuccess)
            {
                _log.Info("{0}: Host Behavior Support (ACRE) refused: {1}", _options.Name, c.Entry.Status);
            }
        }, data);
    }

    private void PostAsyncEventRequest(LiveData live)
    {
        live.OutstandingAsyncEvents++;
        SubmitInternal(AdminCommands.AsynchronousEventRequest(), c => OnAsyncEventCompleted(live, c));
    }

    private void OnAsyncEventCompleted(LiveData live, AdminResponse completion)
    {
        live.OutstandingAsyncEvents--;
        if (!completion.Entry.Status.IsSuccess)
        {
            // Aborted on shutdown, or the limit was lower than AERL said: do not re-post.
            _log.Debug("{0}: asynchronous event request ended with {1}", _options.Name, completion.Entry.Status);
            return;
        }

        var asyncEvent = AsyncEventCompletion.FromDword0(completion.Entry.Dw0);
        _log.Info("{0}: asynchronous event {1} (info 0x{2:x2}, log page 0x{3:x2})", _options.Name, asyncEvent.Type, asyncEvent.Info, asyncEvent.LogPageId);
        Context.Parent.Tell(new Controller.AsyncEvent(Self, _options.Name, asyncEvent));
        if (_state == ControllerState.Live)
        {
            RepostAsyncEventRequest(live);
            if (_options.Role == ControllerRole.Nvm && IsNamespaceChange(asyncEvent))
            {
                StartNamespaceScan(live);
            }
        }
    }

    private void RepostAsyncEventRequest(LiveData live)
    {
        var now = Context.System.Scheduler.Now;
        var window = TimeSpan.FromSeconds(1);
        if (now - live.AsyncEventWindowStart >= window)
        {
            live.AsyncEventWindowStart = now;
            live.AsyncEventRepostsInWindow = 0;
        }

        if (live.AsyncEventRepostsInWindow < AsyncEventRepostsPerSecond)
        {
            live.AsyncEventRepostsInWindow++;
            PostAsyncEventRequest(live);
            return;
        }

        live.DeferredAsyncEventRequests++;
        if (!Timers.IsTimerActive(AsyncEventRepostTimerKey))
        {
            Timers.StartSingleTimer(AsyncEventRepostTimerKey, RepostAsyncEvents.Instance, live.AsyncEventWindowStart + window - now);
        }
    }

    private void OnRepostAsyncEvents(LiveData live)
    {
        int deferred = live.DeferredAsyncEventRequests;
        live.DeferredAsyncEventRequests = 0;
        for (int i = 0; i < deferred && _state == ControllerState.Live; i++)
        {
            RepostAsyncEventRequest(live);
        }
    }
}
