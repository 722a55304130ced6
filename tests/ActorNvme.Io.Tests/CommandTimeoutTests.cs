using ActorNvme.Actors.Settings;
using ActorNvme.Protocol.Nvme;
using ActorNvme.Target;

namespace ActorNvme.Io.Tests;

/// <summary>
/// I/O that always ends: io-timeout per command with action abort (the real Abort command, by SQID and
/// CID) or none, the controller's Command Retry Delay honoured before a retry, and io-retries -1 (no
/// limit). Our Target's slow backend (DelayIoExecution) is the controller that never answers. Deadlines
/// are generous; nothing asserts how long anything took.
/// </summary>
public sealed class CommandTimeoutTests
{
    [Fact]
    public async Task With_action_abort_an_unanswered_read_is_aborted_by_sqid_and_cid_and_ends_with_the_abort_while_the_path_stays()
    {
        var settings = SettingsThatOnlyAnUnansweredCommandResets() with { IoTimeout = TimeSpan.FromSeconds(1), IoTimeoutAction = IoTimeoutAction.Abort };
        await using var rig = await IoRig.StartAsync(settings);
        var device = rig.Device;
        var data = RandomBlocks(31, 8);
        await device.WriteAsync(0, data).AsTask().WaitAsync(IoRig.Deadline);
        var controllersBefore = rig.TargetSubsystem.GetControllers().Select(c => c.ControllerId).Order().ToArray();

        // Taken in and never executed: only the Abort can end it without a reset.
        rig.Faults.DelayIoExecution(rig.Listeners[0], TimeSpan.FromHours(1));
        var read = device.ReadAsync(0, new byte[4096]).AsTask();
        var failure = await Assert.ThrowsAsync<BlockDeviceException>(() => read.WaitAsync(IoRig.Deadline));

        Assert.Equal(BlockDeviceErrorKind.DeviceError, failure.Kind);
        Assert.Contains("aborted after its command timeout", failure.Message, StringComparison.Ordinal);
        Assert.Equal((byte)GenericStatus.AbortRequested, failure.Status!.Value.Code);
        Assert.Equal(1, rig.Faults.AbortRequests);
        Assert.Equal(1, rig.Faults.AbortedCommands);
        Assert.Equal(0, rig.Faults.DelayedReadsPending);

        // No reset: the same controller association serves the next I/O.
        rig.Faults.DelayIoExecution(rig.Listeners[0], TimeSpan.Zero);
        var back = new byte[data.Length];
        await device.ReadAsync(0, back).AsTask().WaitAsync(IoRig.Deadline);
        IntegrityTests.AssertSame(data, back, "after the aborted read");
        Assert.Equal(controllersBefore, rig.TargetSubsystem.GetControllers().Select(c => c.ControllerId).Order().ToArray());
    }

    [Fact]
    public async Task With_action_none_a_slow_read_is_only_logged_and_completes_when_the_target_answers()
    {
        var settings = IoRig.FastSettings() with { IoTimeout = TimeSpan.FromMilliseconds(500), IoTimeoutAction = IoTimeoutAction.None };
        await using var rig = await IoRig.StartAsync(settings);
        var device = rig.Device;
        var data = RandomBlocks(32, 8);
        await device.WriteAsync(0, data).AsTask().WaitAsync(IoRig.Deadline);

        rig.Faults.DelayIoExecution(rig.Listeners[0], TimeSpan.FromSeconds(3));
        var back = new byte[data.Length];
        await device.ReadAsync(0, back).AsTask().WaitAsync(IoRig.Deadline);

        IntegrityTests.AssertSame(data, back, "the slow read");
        Assert.Equal(0, rig.Faults.AbortRequests);
    }

    [Fact]
    public async Task A_status_with_command_retry_delay_waits_the_controllers_crdt_before_the_retry()
    {
        var targetOptions = new TargetOptions { CommandRetryDelayTime1 = TimeSpan.FromSeconds(3) };
        await using var rig = await IoRig.StartAsync(SettingsThatOnlyAnUnansweredCommandResets(), targetOptions);
        var device = rig.Device;
        var data = RandomBlocks(33, 8);
        await device.WriteAsync(0, data).AsTask().WaitAsync(IoRig.Deadline);
        var controllerBefore = Assert.Single(rig.TargetSubsystem.GetControllers()).ControllerId;

        rig.Faults.FailNextIo(NvmOpcode.Read, 1, NvmeStatus.Create(StatusCodeType.Generic, (byte)GenericStatus.InternalError, retryDelay: 1));
        var back = new byte[data.Length];
        var read = device.ReadAsync(0, back).AsTask();

        // The retry sits out CRDT1 instead of going straight back to the controller.
        await IoRig.WaitUntilAsync(() => device.FencedCount == 1, "the retry waiting out CRDT1");
        Assert.False(read.IsCompleted);
        await read.WaitAsync(IoRig.Deadline);
        IntegrityTests.AssertSame(data, back, "after the delayed retry");
        Assert.Equal(0, device.FencedCount);

        // The Host Behavior Support (ACRE) the host sent on seeing CRDT1 was answered: no reset on the way.
        await Task.Delay(TimeSpan.FromSeconds(6)); // past admin-command-timeout (5 s): an unanswered command would have reset
        Assert.Equal(controllerBefore, Assert.Single(rig.TargetSubsystem.GetControllers()).ControllerId);
    }

    [Fact]
    public async Task With_io_retries_minus_one_a_read_is_retried_past_the_default_budget_until_it_succeeds()
    {
        var settings = IoRig.FastSettings() with { IoRetries = -1 };
        await using var rig = await IoRig.StartAsync(settings);
        var device = rig.Device;
        var data = RandomBlocks(34, 8);
        await device.WriteAsync(0, data).AsTask().WaitAsync(IoRig.Deadline);

        rig.Faults.FailNextIo(NvmOpcode.Read, 3 * BlockDeviceOptions.DefaultRetries, NvmeStatus.Generic(GenericStatus.InternalError));
        var back = new byte[data.Length];
        await device.ReadAsync(0, back).AsTask().WaitAsync(IoRig.Deadline);
        IntegrityTests.AssertSame(data, back, "after many retries");
    }

    [Fact]
    public async Task The_retry_budget_ends_the_io_with_its_last_status()
    {
        var settings = IoRig.FastSettings() with { IoRetries = 2 };
        await using var rig = await IoRig.StartAsync(settings);
        rig.Faults.FailNextIo(NvmOpcode.Read, 100, NvmeStatus.Generic(GenericStatus.DataTransferError));
        var failure = await Assert.ThrowsAsync<BlockDeviceException>(() => rig.Device.ReadAsync(0, new byte[512]).AsTask().WaitAsync(IoRig.Deadline));
        Assert.Equal(BlockDeviceErrorKind.DeviceError, failure.Kind);
        Assert.Equal((byte)GenericStatus.DataTransferError, failure.Status!.Value.Code);
        Assert.Contains("after 2 retries", failure.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_retry_budget_of_an_io_survives_a_reconnect_between_its_attempts()
    {
        // CRDT1 holds the first retry long enough to drop the connection under it.
        var targetOptions = new TargetOptions { CommandRetryDelayTime1 = TimeSpan.FromSeconds(2) };
        await using var rig = await IoRig.StartAsync(IoRig.FastSettings() with { IoRetries = 2 }, targetOptions);
        var device = rig.Device;
        var controllerBefore = Assert.Single(rig.TargetSubsystem.GetControllers()).ControllerId;

        // Three failures: within a budget of 2 that a reconnect refilled, the fourth attempt would succeed.
        rig.Faults.FailNextIo(NvmOpcode.Read, 3, NvmeStatus.Create(StatusCodeType.Generic, (byte)GenericStatus.InternalError, retryDelay: 1));
        var read = device.ReadAsync(0, new byte[512]).AsTask();
        await IoRig.WaitUntilAsync(() => device.FencedCount == 1, "the first retry waiting out CRDT1");
        rig.Faults.ResetConnections();
        await IoRig.WaitUntilAsync(() => rig.TargetSubsystem.GetControllers().Any(c => c.ControllerId != controllerBefore), "a new association");

        var failure = await Assert.ThrowsAsync<BlockDeviceException>(() => read.WaitAsync(IoRig.Deadline));
        Assert.Equal(BlockDeviceErrorKind.DeviceError, failure.Kind);
        Assert.Equal((byte)GenericStatus.InternalError, failure.Status!.Value.Code);
        Assert.Contains("after 2 retries", failure.Message, StringComparison.Ordinal);
    }

    /// <summary>
    /// The specs that assert "no reset" must not see one for another reason: the rig's 1 s keep-alive can
    /// expire on a loaded CI machine, so these use 15 s and only the command under test can reset.
    /// </summary>
    private static NvmeHostSettings SettingsThatOnlyAnUnansweredCommandResets() =>
        IoRig.FastSettings() with { KeepAliveTimeout = TimeSpan.FromSeconds(15) };

    private static byte[] RandomBlocks(int seed, int blocks)
    {
        var data = new byte[blocks * 512];
        new Random(seed).NextBytes(data);
        return data;
    }
}
