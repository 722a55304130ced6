using Akka.Actor;
using Akka.Event;
using ActorNvme.Actors.Connection;
using ActorNvme.Protocol.Data;
using ActorNvme.Protocol.Nvme;
using ActorNvme.Transport;

namespace ActorNvme.Actors.Controller;

public sealed partial class ControllerActor
{
    private const string KeepAliveTimerKey = "keep-alive";

    private const string AsyncEventRepostTimerKey = "async-event-repost";

    // A controller may answer each Asynchronous Event Request as soon as it arrives (broken or
    // hostile): beyond this many re-posts a second the rest wait for the next second, so such a
    // controller costs bounded work instead of a busy loop through this actor and its parent.
    private const int AsyncEventRepostsPerSecond = 8;

    private bool _keepAliveOutstanding;
    private int _outstandingAsyncEvents;
    private DateTimeOffset _asyncEventWindowStart;
    private int _asyncEventRepostsInWindow;
    private int _deferredAsyncEventRequests;

    private sealed record KeepAliveTick
    {
        public static KeepAliveTick Instance { get; } = new();
    }

    private sealed record RepostAsyncEvents
    {
        public static RepostAsyncEvents Instance { get; } = new();
    }

    /// <summary>
    /// Keep Alive every KATO/2, checked on a finer tick: KATO/2 is split into n equal ticks, n = ceil(KATO/2 /
    /// keep-alive-answer-timeout), and a Keep Alive still unanswered one tick after it was sent is a loss. So
    /// a dead path is noticed at most KATO/2 + KATO/(2n) after the last answered Keep Alive (README: loss detection).
    /// </summary>
    private void StartKeepAlive()
    {
        var half = _options.Settings.KeepAliveTimeout / 2;
        if (half <= TimeSpan.Zero)
        {
            return;
        }

        var answer = _options.Settings.KeepAliveAnswerTimeout < half ? _options.Settings.KeepAliveAnswerTimeout : half;
        _keepAliveTicksPerSend = (int)Math.Ceiling(half.Ticks / (double)Math.Max(1, answer.Ticks));
        _keepAliveTickPeriod = TimeSpan.FromTicks(half.Ticks / _keepAliveTicksPerSend);
        _keepAliveTicks = 0;
        Timers.StartPeriodicTimer(KeepAliveTimerKey, KeepAliveTick.Instance, _keepAliveTickPeriod);
    }

    private int _keepAliveTicksPerSend = 1;
    private int _keepAliveTicks;
    private TimeSpan _keepAliveTickPeriod;

    /// <summary>
    /// A Keep Alive unanswered within its own deadline (one tick) means the controller, or the path to it, is
    /// gone; TCP would take minutes to say so. Otherwise, every n-th tick sends the next one.
    /// </summary>
    private void OnKeepAliveTick()
    {
        if (_state is not (ControllerState.Live or ControllerState.Deleting))
        {
            return;
        }

        if (_keepAliveOutstanding)
        {
            Lose(new ConnectionClosed(CloseReason.KeepAliveTimeout, $"no answer to Keep Alive within {_keepAliveTickPeriod.TotalSeconds:0.###}s"));
            return;
        }

        if (++_keepAliveTicks < _keepAliveTicksPerSend)
        {
            return;
        }

        _keepAliveTicks = 0;
        _keepAliveOutstanding = true;
        SubmitInternal(AdminCommands.KeepAlive(), c =>
        {
            _keepAliveOutstanding = false;
            if (!c.Entry.Status.IsSuccess)
            {
                Lose(new ConnectionClosed(CloseReason.KeepAliveTimeout, $"Keep Alive refused: {c.Entry.Status}"));
            }
        });
    }

    private void PostAsyncEventRequest()
    {
        _outstandingAsyncEvents++;
        SubmitInternal(AdminCommands.AsynchronousEventRequest(), OnAsyncEventCompleted);
    }

    private void OnAsyncEventCompleted(AdminResponse completion)
    {
        _outstandingAsyncEvents--;
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
            RepostAsyncEventRequest();
        }
    }

    private void RepostAsyncEventRequest()
    {
        var now = Context.System.Scheduler.Now;
        var window = TimeSpan.FromSeconds(1);
        if (now - _asyncEventWindowStart >= window)
        {
            _asyncEventWindowStart = now;
            _asyncEventRepostsInWindow = 0;
        }

        if (_asyncEventRepostsInWindow < AsyncEventRepostsPerSecond)
        {
            _asyncEventRepostsInWindow++;
            PostAsyncEventRequest();
            return;
        }

        _deferredAsyncEventRequests++;
        if (!Timers.IsTimerActive(AsyncEventRepostTimerKey))
        {
            Timers.StartSingleTimer(AsyncEventRepostTimerKey, RepostAsyncEvents.Instance, _asyncEventWindowStart + window - now);
        }
    }

    private void OnRepostAsyncEvents()
    {
        int deferred = _deferredAsyncEventRequests;
        _deferredAsyncEventRequests = 0;
        for (int i = 0; i < deferred && _state == ControllerState.Live; i++)
        {
            RepostAsyncEventRequest();
        }
    }
}
