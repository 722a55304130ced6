using System.Collections.Concurrent;
using System.Diagnostics;
using System.Threading.Channels;
using Akka.Actor;
using ActorNvme.Actors.Controller;
using ActorNvme.Io;
using ActorNvme.Actors.Subsystem;

namespace ActorNvme.Host.Demo;

/// <summary>
/// The demo's readable timeline: step lines from the script and the host's own events (block devices
/// added and removed, paths lost and Live again, I/O failing fast), each stamped with the time since
/// the demo started, printed by one writer in the order they happened.
/// </summary>
internal sealed class DemoTimeline : IAsyncDisposable
{
    private readonly Channel<string> _lines = Channel.CreateUnbounded<string>(new UnboundedChannelOptions { SingleReader = true });
    private readonly Channel<object> _events = Channel.CreateUnbounded<object>(new UnboundedChannelOptions { SingleReader = true });
    private readonly List<object> _backlog = [];
    private readonly ConcurrentDictionary<string, BlockDevice> _devices = new(StringComparer.Ordinal);
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private readonly Task _printer;
    private readonly TextWriter _output;

    public DemoTimeline(TextWriter output)
    {
        _output = output;
        _printer = Task.Run(PrintAsync);
    }

    public TimeSpan Elapsed => _clock.Elapsed;

    /// <summary>The block device of that name, as its BlockDeviceAdded event handed it over.</summary>
    public BlockDevice? Device(string name) => _devices.TryGetValue(name, out var device) ? device : null;

    /// <summary>A line at the left margin: the script speaking.</summary>
    public void Step(string text) => Write($"{Stamp()} {text}");

    /// <summary>An indented line: something the host did.</summary>
    public void Event(string text) => Write($"{Stamp()}   {text}");

    /// <summary>A line without a time stamp (headers, tables).</summary>
    public void Plain(string text) => Write(text);

    /// <summary>Starts forwarding the host's events from <paramref name="system"/>'s event stream.</summary>
    public void Follow(ActorSystem system) => system.ActorOf(Props.Create(() => new Listener(this)), "demo-timeline");

    /// <summary>
    /// Waits until <paramref name="match"/> has accepted events (each seen once, in order) and returns true,
    /// or false after <paramref name="timeout"/>. Events seen while waiting that do not match are kept for
    /// later waits.
    /// </summary>
    public async Task<bool> WaitForAsync(Func<object, bool> match, TimeSpan timeout)
    {
        for (int i = 0; i < _backlog.Count; i++)
        {
            if (match(_backlog[i]))
            {
                _backlog.RemoveAt(i);
                return true;
            }
        }

        using var deadline = new CancellationTokenSource(timeout);
        try
        {
            while (true)
            {
                var next = await _events.Reader.ReadAsync(deadline.Token).ConfigureAwait(false);
                if (match(next))
                {
                    return true;
                }

                _backlog.Add(next);
            }
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }

    /// <summary>Forgets events seen so far that no wait has taken.</summary>
    public void ClearBacklog()
    {
        _backlog.Clear();
        while (_events.Reader.TryRead(out _))
        {
        }
    }

    public async ValueTask DisposeAsync()
    {
        _lines.Writer.TryComplete();
        await _printer.ConfigureAwait(false);
    }

    private string Stamp() => $"[{_clock.Elapsed.TotalSeconds,7:0.000}s]";

    private void Write(string line) => _lines.Writer.TryWrite(line);

    private async Task PrintAsync()
    {
        await foreach (string line in _lines.Reader.ReadAllAsync().ConfigureAwait(false))
        {
            await _output.WriteLineAsync(line).ConfigureAwait(false);
            await _output.FlushAsync().ConfigureAwait(false);
        }
    }

    private void OnEvent(object e)
    {
        if (e is BlockDeviceAdded { BlockDevice: { } device } added)
        {
            _devices[added.Device.Name] = device;
        }

        string? text = e switch
        {
            BlockDeviceAdded a => $"+ {a.Device.Name} attached ({a.Device.BlockCount} blocks of {a.Device.BlockSize} B, {a.Device.SubsystemNqn})",
            BlockDeviceRemoved r => $"- {r.Device.Name} removed: {r.Reason}",
            FastIoFailChanged f => f.FailingFast ? $"! {f.Controller}: I/O now fails fast (fast-io-fail-timeout passed with no Live path)" : $"  {f.Controller}: I/O no longer fails fast",
            Controller.StateChanged s => Describe(s),
            _ => null,
        };
        if (text is not null)
        {
            Event(text);
        }

        _events.Writer.TryWrite(e);
    }

    private readonly Dictionary<string, ControllerState> _states = new(StringComparer.Ordinal);

    private string? Describe(Controller.StateChanged s)
    {
        _states.TryGetValue(s.Name, out var previous);
        bool known = _states.ContainsKey(s.Name);
        _states[s.Name] = s.State;
        return s.State switch
        {
            ControllerState.Live => $"{s.Name}: Live",
            ControllerState.Failed when s.Reason == ControllerActor.StoppedReason => $"{s.Name}: deleted",
            ControllerState.Failed when previous != ControllerState.Failed || !known => $"{s.Name}: Failed ({s.Reason})",
            ControllerState.Connecting when known && previous == ControllerState.Failed => $"{s.Name}: reconnecting",
            ControllerState.Deleting => $"{s.Name}: shutting down ({s.Reason})",
            _ => null,
        };
    }

    /// <summary>Subscribes to the host's events and hands them to the timeline (never blocks: channel writes).</summary>
    private sealed class Listener : ReceiveActor
    {
        private readonly DemoTimeline _timeline;

        public Listener(DemoTimeline timeline)
        {
            _timeline = timeline;
            ReceiveAny(e => _timeline.OnEvent(e));
        }

        protected override void PreStart()
        {
            Context.System.EventStream.Subscribe(Self, typeof(BlockDeviceAdded));
            Context.System.EventStream.Subscribe(Self, typeof(BlockDeviceRemoved));
            Context.System.EventStream.Subscribe(Self, typeof(FastIoFailChanged));
            Context.System.EventStream.Subscribe(Self, typeof(Controller.StateChanged));
        }

        protected override void PostStop() => Context.System.EventStream.Unsubscribe(Self);
    }
}
