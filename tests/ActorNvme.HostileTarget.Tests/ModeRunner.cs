using System.Text;
using Akka.Actor;
using Akka.Event;
using ActorNvme.Actors.Controller;
using ActorNvme.Actors.Discovery;
using ActorNvme.Actors.Host;
using ActorNvme.Io;
using ActorNvme.Actors.Settings;
using Xunit.Abstractions;

namespace ActorNvme.HostileTarget.Tests;

/// <summary>What a fault mode must lead to.</summary>
public enum Expect
{
    /// <summary>A refusal, a loss, or a failed I/O that names what went wrong; never a success.</summary>
    ErrorOrLoss,

    /// <summary>The host rides it out: stays Live, and any I/O returns the right data.</summary>
    Survives,

    /// <summary>Either of the above, but never an escaped exception, a hang or corrupt data.</summary>
    ErrorOrSurvives,
}

/// <summary>
/// Runs one fault mode against the shared rig and checks the rules every mode shares: the fault was
/// reached; the outcome matches <see cref="Expect"/>; no exception escaped an actor (an Error event
/// with a cause) and no controller restarted; and the healthy controller's I/O made progress with no
/// failure meanwhile.
/// </summary>
public sealed class ModeRunner
{
    private static readonly ResiliencySettings NoReconnect = ResiliencySettings.FromSeconds(0, 0, 0);
    private static readonly ResiliencySettings DiscoveryResiliency = ResiliencySettings.FromSeconds(5, 1, 0);
    private static readonly TimeSpan IoDeadline = TimeSpan.FromSeconds(20);

    private readonly HostileRig _rig;
    private readonly ITestOutputHelper _output;
    private readonly FaultMode _mode;
    private readonly string _name;
    private readonly List<string> _outcomes = [];
    private readonly List<(string What, Task Io)> _held = [];

    private ModeRunner(HostileRig rig, ITestOutputHelper output, FaultMode mode)
    {
        _rig = rig;
        _output = output;
        _mode = mode;
        _name = NameOf(mode);
    }

    /// <summary>A host name from the mode: IcRespWrongPfv → ic-resp-wrong-pfv.</summary>
    public static string NameOf(FaultMode mode)
    {
        var name = new StringBuilder();
        foreach (char c in mode.ToString())
        {
            if (char.IsUpper(c) && name.Length > 0)
            {
                name.Append('-');
            }

            name.Append(char.ToLowerInvariant(c));
        }

        return name.ToString();
    }

    /// <summary>A mode reached through AttachController; <paramref name="io"/> exercises the block device once Live.</summary>
    /// <param name="names">Text the refusal, loss or I/O error must contain: the error names what was wrong.</param>
    public static async Task AttachAsync(FaultMode mode, Expect expect, ITestOutputHelper output, bool io = false, TimeSpan? observeLive = null, string? names = null)
    {
        var runner = new ModeRunner(await HostileRig.GetAsync(), output, mode);
        await runner.RunAttachAsync(expect, io, observeLive ?? TimeSpan.Zero, names);
    }

    /// <summary>A mode reached through StartDiscovery; <paramref name="settled"/> says when the service has dealt with the log.</summary>
    public static async Task DiscoverAsync(FaultMode mode, Func<DiscoveryView, bool> settled, string expected, ITestOutputHelper output)
    {
        var runner = new ModeRunner(await HostileRig.GetAsync(), output, mode);
        await runner.RunDiscoveryAsync(settled, expected);
    }

    private bool IsMine(string source) =>
        source.Contains($"/{_name}/", StringComparison.Ordinal) || source.EndsWith($"/{_name}", StringComparison.Ordinal)
        || source.Contains($"/discovery-{_name}", StringComparison.Ordinal) || source.StartsWith(_name + "/", StringComparison.Ordinal)
        || source.StartsWith(_name + ":", StringComparison.Ordinal);

    private bool IsMyPath(string controllerName) => controllerName.StartsWith(_name + "/", StringComparison.Ordinal);

    private async Task RunAttachAsync(Expect expect, bool io, TimeSpan observeLive, string? names)
    {
        long roundsBefore = _rig.HealthyIo.Rounds;
        int failuresBefore = _rig.HealthyIo.Failures.Count;
        await using (var target = new HostileTarget(_mode))
        {
            var reply = await _rig.Host.Ask<object>(
                new NvmeHost.AttachController(_name, target.Address, HostileTarget.SubsystemNqn, Resiliency: NoReconnect, AttachTimeout: TimeSpan.FromSeconds(8)),
                HostileRig.Deadline);
            bool live = reply is NvmeHost.ControllerAttached;
            bool ioFailed = false;
            bool ioSucceeded = false;
            if (reply is NvmeHost.Failed refused)
            {
                _outcomes.Add($"attach refused: {refused.Kind}: {refused.Message}");
            }
            else if (live)
            {
                _outcomes.Add("attached (Live)");
                if (io)
                {
                    (ioFailed, ioSucceeded) = _mode == FaultMode.StopsReadingWriteData ? await ExerciseStalledWritesAsync(target) : await ExerciseAsync();
                }

                if (observeLive > TimeSpan.Zero)
                {
                    await Task.Delay(observeLive);
                }
            }
            else
            {
                _outcomes.Add($"unexpected reply {reply}");
            }

            var losses = Losses();
            foreach (var loss in losses)
            {
                _outcomes.Add($"loss of {loss.Name} while it was {loss.State}: {loss.Reason}");
            }

            await DetachAsync();
            Report(target);
            await AssertHeldIoEndsAsync();

            Assert.True(target.FaultsInjected > 0, $"{_mode}: the fault was never reached ({string.Join("; ", _outcomes)})");
            Assert.Empty(target.Failures);
            bool error = reply is NvmeHost.Failed || losses.Count > 0 || ioFailed;
            switch (expect)
            {
                case Expect.ErrorOrLoss:
                    Assert.True(error, $"{_mode}: the host accepted a hostile target without an error or a loss ({string.Join("; ", _outcomes)})");
                    Assert.False(ioSucceeded && losses.Count == 0, $"{_mode}: I/O succeeded through a hostile transfer ({string.Join("; ", _outcomes)})");
                    if (!string.IsNullOrEmpty(names))
                    {
                        Assert.True(
                            _outcomes.Any(o => o.Contains(names, StringComparison.OrdinalIgnoreCase)),
                            $"{_mode}: no error named '{names}' ({string.Join("; ", _outcomes)})");
                    }

                    break;
                case Expect.Survives:
                    Assert.True(live && losses.Count == 0 && !ioFailed, $"{_mode}: the host should have ridden this out ({string.Join("; ", _outcomes)})");
                    break;
            }

            AssertNoEscapedException();
            AssertNoRestart();
        }

        await AssertHealthyAsync(roundsBefore, failuresBefore);
    }

    /// <summary>
    /// Writes then reads back one 4 KiB block. An I/O still pending once the path is reported lost is
    /// held for a Live path (ctrlr-loss-timeout 0, fast-io-fail off): that is the loss, and the held I/O
    /// must end when the controller is detached (<see cref="AssertHeldIoEndsAsync"/>). Pending with no
    /// loss reported is a hang.
    /// </summary>
    private async Task<(bool Failed, bool Succeeded)> ExerciseAsync()
    {
        var device = await _rig.Seen.WaitForDeviceAsync(_name, HostileRig.Deadline);
        var written = new byte[4096];
        Random.Shared.NextBytes(written);
        var read = new byte[4096];
        if (!await SettleAsync("write", device.WriteAsync(8, written).AsTask()))
        {
            return (true, false);
        }

        if (!await SettleAsync("read", device.ReadAsync(8, read).AsTask()))
        {
            return (true, false);
        }

        bool same = written.AsSpan().SequenceEqual(read);
        _outcomes.Add(same ? "read succeeded with the written data" : "read SUCCEEDED WITH OTHER DATA");
        Assert.True(same, $"{_mode}: silent corruption: a read succeeded with data that was never written ({string.Join("; ", _outcomes)})");
        return (false, true);
    }

    /// <summary>
    /// <see cref="HostileTarget.StalledWrites"/> whole-namespace writes whose data the target asks for and
    /// then does not read: the host's send of that data waits for the socket. Meanwhile the healthy
    /// controller's I/O, served by the same I/O thread, must go on, and none of the writes may complete
    /// or be lost. Once the target reads again, every write completes and the data reads back.
    /// </summary>
    private async Task<(bool Failed, bool Succeeded)> ExerciseStalledWritesAsync(HostileTarget target)
    {
        var device = await _rig.Seen.WaitForDeviceAsync(_name, HostileRig.Deadline);
        var written = new byte[HostileTarget.BlockSize * HostileTarget.BlockCount];
        Random.Shared.NextBytes(written);
        var writes = Enumerable.Range(0, HostileTarget.StalledWrites).Select(_ => device.WriteAsync(0, written).AsTask()).ToArray();

        var until = DateTime.UtcNow + HostileRig.Deadline;
        while (target.FaultsInjected == 0 && DateTime.UtcNow < until && !writes.Any(w => w.IsCompleted))
        {
            await Task.Delay(20);
        }

        Assert.True(target.FaultsInjected > 0, $"{_mode}: the target never got all {HostileTarget.StalledWrites} writes to ask for their data ({string.Join("; ", _outcomes)})");
        _outcomes.Add($"the target asked for {HostileTarget.StalledWrites} MiB of write data and stopped reading");

        // Well inside the rig's TCP user timeout: only a held I/O thread can keep the healthy loop from three rounds.
        long healthyFrom = _rig.HealthyIo.Rounds;
        bool healthyWentOn = await _rig.HealthyIo.ProgressesAsync(healthyFrom, 3, TimeSpan.FromSeconds(20));
        Assert.True(healthyWentOn, $"{_mode}: the healthy controller's I/O stalled at round {_rig.HealthyIo.Rounds} while a target on its I/O thread did not read");
        Assert.False(writes.Any(w => w.IsCompleted), $"{_mode}: a write ended while the target read none of its data: {writes.FirstOrDefault(w => w.IsCompleted)?.Exception?.GetBaseException().Message}");
        Assert.Empty(Losses());
        _outcomes.Add($"the healthy controller did {_rig.HealthyIo.Rounds - healthyFrom} rounds meanwhile");

        target.ResumeReading();
        foreach (var write in writes)
        {
            if (!await SettleAsync("write", write))
            {
                return (true, false);
            }
        }

        var read = new byte[written.Length];
        if (!await SettleAsync("read", device.ReadAsync(0, read).AsTask()))
        {
            return (true, false);
        }

        Assert.True(written.AsSpan().SequenceEqual(read), $"{_mode}: the namespace read back different data after the stalled writes completed");
        _outcomes.Add("every write completed and the data read back");
        return (false, true);
    }

    /// <summary>True when <paramref name="io"/> succeeded; false when it failed or is held after a loss.</summary>
    private async Task<bool> SettleAsync(string what, Task io)
    {
        var until = DateTime.UtcNow + IoDeadline;
        while (!io.IsCompleted && Losses().Count == 0 && DateTime.UtcNow < until)
        {
            await Task.Delay(20);
        }

        if (!io.IsCompleted && Losses().Count > 0)
        {
            await Task.WhenAny(io, Task.Delay(TimeSpan.FromMilliseconds(500)));
        }

        if (!io.IsCompleted)
        {
            Assert.True(Losses().Count > 0, $"{_mode}: a {what} hung for {IoDeadline.TotalSeconds:0}s with no loss reported ({string.Join("; ", _outcomes)})");
            _outcomes.Add($"{what} held after the loss");
            _held.Add((what, io));
            return false;
        }

        if (io.IsFaulted || io.IsCanceled)
        {
            var error = io.Exception?.GetBaseException();
            _outcomes.Add($"{what} failed: {error?.GetType().Name}: {error?.Message}");
            return false;
        }

        _outcomes.Add($"{what} succeeded");
        return true;
    }

    /// <summary>I/O held for a path that never comes back must fail once the controller is gone; never hang, never succeed.</summary>
    private async Task AssertHeldIoEndsAsync()
    {
        foreach (var (what, io) in _held)
        {
            try
            {
                await io.WaitAsync(HostileRig.Deadline);
                Assert.Fail($"{_mode}: a held {what} succeeded after its only path was detached");
            }
            catch (TimeoutException)
            {
                Assert.Fail($"{_mode}: a held {what} was still pending {HostileRig.Deadline.TotalSeconds:0}s after its controller was detached");
            }
            catch (Exception e) when (e is not Xunit.Sdk.XunitException)
            {
                _output.WriteLine($"  held {what} ended after detach: {e.GetType().Name}: {e.Message}");
            }
        }
    }

    private string DescribeLosses() => string.Join("; ", Losses().Select(l => $"{l.Name}: {l.Reason}"));

    private List<Controller.StateChanged> Losses() =>
        [.. _rig.Seen.States.Where(s => IsMyPath(s.Name) && s.State == ControllerState.Failed && s.Reason != ControllerActor.StoppedReason)];

    private async Task DetachAsync()
    {
        var reply = await _rig.Host.Ask<object>(new NvmeHost.DetachController(_name), HostileRig.Deadline);
        _output.WriteLine($"detach: {reply}");
        await WaitGoneAsync();
    }

    /// <summary>Waits until the host no longer lists the name, so the next checks see everything it did.</summary>
    private async Task WaitGoneAsync()
    {
        var until = DateTime.UtcNow + HostileRig.Deadline;
        while (DateTime.UtcNow < until)
        {
            var list = await _rig.Host.Ask<NvmeHost.ControllerList>(NvmeHost.ListControllers.Instance, HostileRig.Deadline);
            if (!list.Controllers.Any(c => c.Name == _name))
            {
                return;
            }

            await Task.Delay(50);
        }

        Assert.Fail($"{_mode}: {_name} was still listed {HostileRig.Deadline.TotalSeconds:0}s after it was detached or stopped");
    }

    private async Task RunDiscoveryAsync(Func<DiscoveryView, bool> settled, string expected)
    {
        long roundsBefore = _rig.HealthyIo.Rounds;
        int failuresBefore = _rig.HealthyIo.Failures.Count;
        await using (var target = new HostileTarget(_mode))
        {
            var reply = await _rig.Host.Ask<object>(new NvmeHost.StartDiscovery(_name, target.Address, Resiliency: DiscoveryResiliency), HostileRig.Deadline);
            Assert.IsType<NvmeHost.DiscoveryStarted>(reply);

            DiscoveryView view = await ViewAsync();
            var until = DateTime.UtcNow + HostileRig.Deadline;
            while (!settled(view) && DateTime.UtcNow < until)
            {
                await Task.Delay(100);
                view = await ViewAsync();
            }

            // Let whatever the log started (subsystems, referrals) run for a moment: their failures are the point.
            await Task.Delay(TimeSpan.FromSeconds(1));
            view = await ViewAsync();
            _outcomes.Add($"log reads {view.Info?.LogReads}, subsystems [{string.Join(", ", view.Info?.Subsystems ?? [])}], referrals [{string.Join(", ", view.Info?.Referrals.Select(r => r.ToString()) ?? [])}]");
            _outcomes.AddRange(view.Warnings.Select(w => $"warning: {w}"));

            var stopped = await _rig.Host.Ask<object>(new NvmeHost.StopDiscovery(_name), HostileRig.Deadline);
            _output.WriteLine($"stop: {stopped}");
            await WaitGoneAsync();
            Report(target);

            Assert.True(target.FaultsInjected > 0, $"{_mode}: the fault was never reached ({string.Join("; ", _outcomes)})");
            Assert.Empty(target.Failures);
            Assert.True(settled(view), $"{_mode}: expected {expected} ({string.Join("; ", _outcomes)})");
            AssertNoEscapedException();
        }

        await AssertHealthyAsync(roundsBefore, failuresBefore);
    }

    private async Task<DiscoveryView> ViewAsync()
    {
        var reply = await _rig.Host.Ask<object>(NvmeHost.GetDiscoveryInfo.Instance, HostileRig.Deadline);
        var info = reply is NvmeHost.DiscoveryInfoList list ? list.Services.FirstOrDefault(s => s.Name == _name) : null;
        string[] warnings = [.. _rig.Seen.Logs.Where(l => l.LogLevel() >= LogLevel.WarningLevel && IsMine(l.LogSource)).Select(l => l.Message?.ToString() ?? string.Empty)];
        return new DiscoveryView(info, warnings);
    }

    private void AssertNoEscapedException()
    {
        var escaped = _rig.Seen.Logs.Where(l => l is Error { Cause: not null } && IsMine(l.LogSource)).ToArray();
        Assert.True(
            escaped.Length == 0,
            $"{_mode}: {escaped.Length} exception(s) escaped an actor, first: {escaped.FirstOrDefault()?.LogSource}: {(escaped.FirstOrDefault() as Error)?.Cause}");
    }

    /// <summary>Without reconnects (ctrlr-loss-timeout 0), a path connects once; a second Connecting is a restart in place.</summary>
    private void AssertNoRestart()
    {
        var attempts = _rig.Seen.States.Where(s => IsMyPath(s.Name) && s.State == ControllerState.Connecting).GroupBy(s => s.Name).Where(g => g.Count() > 1).ToArray();
        Assert.True(attempts.Length == 0, $"{_mode}: a controller connected more than once without a reconnect: {string.Join(", ", attempts.Select(g => $"{g.Key} x{g.Count()}"))}");
    }

    private async Task AssertHealthyAsync(long roundsBefore, int failuresBefore)
    {
        bool progressed = await _rig.HealthyIo.ProgressesAsync(roundsBefore, 3);
        Assert.True(progressed, $"{_mode}: the healthy controller's I/O stalled at round {_rig.HealthyIo.Rounds}");
        Assert.True(
            _rig.HealthyIo.Failures.Count == 0,
            $"{_mode}: the healthy controller's I/O failed {_rig.HealthyIo.Failures.Count} time(s) (before this mode: {failuresBefore}): {string.Join(" | ", _rig.HealthyIo.Failures.Take(3))}");
        var healthyErrors = _rig.Seen.Logs.Where(l => l is Error && l.LogSource.Contains($"/{HostileRig.HealthyName}", StringComparison.Ordinal)).ToArray();
        Assert.True(healthyErrors.Length == 0, $"{_mode}: the healthy controller logged errors: {healthyErrors.FirstOrDefault()}");
        Assert.DoesNotContain(_rig.Seen.States, s => s.Name.StartsWith(HostileRig.HealthyName + "/", StringComparison.Ordinal) && s.State == ControllerState.Failed);
    }

    private void Report(HostileTarget target)
    {
        _output.WriteLine($"{_mode} ({_name}): fault applied {target.FaultsInjected} time(s) over {target.ConnectionCount} connection(s)");
        foreach (string outcome in _outcomes)
        {
            _output.WriteLine("  " + outcome);
        }

        foreach (var log in _rig.Seen.Logs.Where(l => IsMine(l.LogSource)).Take(20))
        {
            _output.WriteLine($"  [{log.LogLevel()}] {log.LogSource}: {log.Message}{(log is Error { Cause: { } cause } ? $" — {cause.GetType().Name}: {cause.Message}" : string.Empty)}");
        }
    }
}

/// <summary>A discovery service as the host reports it, with the warnings its actors logged.</summary>
public sealed record DiscoveryView(DiscoveryService.Info? Info, IReadOnlyList<string> Warnings)
{
    public int LogReads => Info?.LogReads ?? 0;

    public bool Warned(string text) => Warnings.Any(w => w.Contains(text, StringComparison.OrdinalIgnoreCase));
}
