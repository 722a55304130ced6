using ActorNvme.Io;
using ActorNvme.Actors.Subsystem;
using ActorNvme.Protocol.Nvme;
using ActorNvme.Target;

namespace ActorNvme.Io.Tests;

/// <summary>
/// I/O under faults: held while no path is usable and resubmitted when one returns, failed at once
/// after fast-io-fail-timeout, failed with a clear error when the device is deleted, DNR respected,
/// retries bounded, and moved to the other path of a multipath device. Deadlines are generous and
/// nothing asserts how long anything took.
/// </summary>
public sealed class ResilienceTests
{
    [Fact]
    public async Task Io_submitted_while_the_path_is_blackholed_is_held_and_completes_after_it_returns()
    {
        await using var rig = await IoRig.StartAsync();
        var device = rig.Device;
        var data = new byte[64 * 1024];
        new Random(3).NextBytes(data);
        await device.WriteAsync(0, data);

        rig.Faults.Blackhole(rig.Listeners[0]);
        var reads = Enumerable.Range(0, 16).Select(i => ReadBlockAsync(device, (ulong)i * 8, 4096)).ToArray();

        // Keep-alive finds the path dead; the reads in flight come back as path errors and wait.
        await IoRig.WaitUntilAsync(() => !device.HasUsablePath && device.HeldCount == reads.Length, "all reads held with no usable path");
        Assert.All(reads, r => Assert.False(r.IsCompleted));

        rig.Faults.Restore(rig.Listeners[0]);
        var results = await Task.WhenAll(reads).WaitAsync(IoRig.Deadline);
        for (int i = 0; i < results.Length; i++)
        {
            IntegrityTests.AssertSame(data.AsSpan(i * 4096, 4096).ToArray(), results[i], $"held read {i}");
        }

        Assert.Equal(0, device.HeldCount);
    }

    [Fact]
    public async Task Io_in_flight_when_the_connections_are_reset_completes_after_the_reconnect()
    {
        await using var rig = await IoRig.StartAsync();
        var device = rig.Device;
        var data = new byte[1024 * 1024];
        new Random(4).NextBytes(data);

        // Writes of 32 KiB keep going while every connection is reset under them.
        var writes = Enumerable.Range(0, 32).Select(i => device.WriteAsync((ulong)i * 64, data.AsMemory(i * 32768, 32768)).AsTask()).ToArray();
        rig.Faults.ResetConnections();
        await Task.WhenAll(writes).WaitAsync(IoRig.Deadline);

        var back = new byte[data.Length];
        await device.ReadAsync(0, back).AsTask().WaitAsync(IoRig.Deadline);
        IntegrityTests.AssertSame(data, back, "after the reset");
    }

    [Fact]
    public async Task After_fast_io_fail_timeout_held_and_new_io_fails_at_once_and_works_again_when_the_path_returns()
    {
        await using var rig = await IoRig.StartAsync(IoRig.FastSettings(lossSeconds: 60, fastIoFailSeconds: 2));
        var device = rig.Device;
        rig.Faults.Blackhole(rig.Listeners[0]);
        var held = ReadBlockAsync(device, 0, 512);

        var failure = await Assert.ThrowsAsync<BlockDeviceException>(() => held.WaitAsync(IoRig.Deadline));
        Assert.Equal(BlockDeviceErrorKind.FailFast, failure.Kind);
        Assert.Contains("fast-io-fail-timeout", failure.Message, StringComparison.Ordinal);
        // The device fails fast before the event that announces it reaches this test's subscriber.
        await IoRig.WaitUntilAsync(() => rig.Saw<FastIoFailChanged>(e => e.FailingFast), "the fast-io-fail event");

        var fresh = await Assert.ThrowsAsync<BlockDeviceException>(() => ReadBlockAsync(device, 8, 512).WaitAsync(IoRig.Deadline));
        Assert.Equal(BlockDeviceErrorKind.FailFast, fresh.Kind);
        Assert.Equal("nvme0n1", fresh.Device);

        rig.Faults.Restore(rig.Listeners[0]);
        await IoRig.WaitUntilAsync(() => device.HasUsablePath && !device.IsFailingFast, "the path back and fail-fast off");
        await ReadBlockAsync(device, 0, 512).WaitAsync(IoRig.Deadline);
    }

    [Fact]
    public async Task When_ctrlr_loss_timeout_deletes_the_device_held_and_new_io_fail_naming_the_deletion()
    {
        await using var rig = await IoRig.StartAsync(IoRig.FastSettings(lossSeconds: 3));
        var device = rig.Device;
        rig.Faults.Blackhole(rig.Listeners[0]);
        var held = ReadBlockAsync(device, 0, 4096);

        var failure = await Assert.ThrowsAsync<BlockDeviceException>(() => held.WaitAsync(IoRig.Deadline));
        Assert.Equal(BlockDeviceErrorKind.Deleted, failure.Kind);
        Assert.Contains("ctrlr-loss-timeout", failure.Message, StringComparison.Ordinal);
        Assert.True(device.IsDeleted);
        await IoRig.WaitUntilAsync(() => rig.Saw<BlockDeviceRemoved>(r => r.Device.Name == "nvme0n1"), "the removal event of nvme0n1");

        var after = await Assert.ThrowsAsync<BlockDeviceException>(() => device.WriteAsync(0, new byte[512]).AsTask().WaitAsync(IoRig.Deadline));
        Assert.Equal(BlockDeviceErrorKind.Deleted, after.Kind);
    }

    [Fact]
    public async Task An_error_status_with_DNR_fails_at_once_naming_the_status()
    {
        await using var rig = await IoRig.StartAsync();
        rig.Faults.FailNextIo(NvmOpcode.Read, 1, NvmeStatus.Generic(GenericStatus.InternalError, doNotRetry: true));

        var failure = await Assert.ThrowsAsync<BlockDeviceException>(() => ReadBlockAsync(rig.Device, 0, 4096).WaitAsync(IoRig.Deadline));
        Assert.Equal(BlockDeviceErrorKind.DeviceError, failure.Kind);
        Assert.True(failure.Status!.Value.DoNotRetry);
        Assert.Equal((byte)GenericStatus.InternalError, failure.Status.Value.Code);
        Assert.Contains("internal error", failure.Message, StringComparison.Ordinal);
        Assert.Contains("not retried (DNR)", failure.Message, StringComparison.Ordinal);

        // Exactly one command failed: the next read is fine.
        await ReadBlockAsync(rig.Device, 0, 4096).WaitAsync(IoRig.Deadline);
    }

    [Fact]
    public async Task An_error_status_without_DNR_is_retried_up_to_io_retries()
    {
        await using var rig = await IoRig.StartAsync(IoRig.FastSettings() with { IoRetries = 2 });
        var data = new byte[4096];
        new Random(5).NextBytes(data);
        await rig.Device.WriteAsync(16, data);

        // Two failures: two retries are enough.
        rig.Faults.FailNextIo(NvmOpcode.Read, 2, NvmeStatus.Generic(GenericStatus.InternalError));
        var back = await ReadBlockAsync(rig.Device, 16, 4096).WaitAsync(IoRig.Deadline);
        IntegrityTests.AssertSame(data, back, "after two retried failures");

        // Three failures: the budget is spent.
        rig.Faults.FailNextIo(NvmOpcode.Read, 3, NvmeStatus.Generic(GenericStatus.InternalError));
        var failure = await Assert.ThrowsAsync<BlockDeviceException>(() => ReadBlockAsync(rig.Device, 16, 4096).WaitAsync(IoRig.Deadline));
        Assert.Equal(BlockDeviceErrorKind.DeviceError, failure.Kind);
        Assert.Contains("after 2 retries", failure.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Beyond_io_hold_limit_io_without_a_path_fails_with_path_unavailable()
    {
        await using var rig = await IoRig.StartAsync(IoRig.FastSettings() with { IoHoldLimit = 4 });
        var device = rig.Device;
        rig.Faults.Blackhole(rig.Listeners[0]);
        await IoRig.WaitUntilAsync(() => !device.HasUsablePath, "the path lost");

        var held = Enumerable.Range(0, 4).Select(i => ReadBlockAsync(device, (ulong)i, 512)).ToArray();
        var refused = await Assert.ThrowsAsync<BlockDeviceException>(() => ReadBlockAsync(device, 100, 512).WaitAsync(IoRig.Deadline));
        Assert.Equal(BlockDeviceErrorKind.PathUnavailable, refused.Kind);
        Assert.Contains("io-hold-limit", refused.Message, StringComparison.Ordinal);

        rig.Faults.Restore(rig.Listeners[0]);
        await Task.WhenAll(held).WaitAsync(IoRig.Deadline);
    }

    [Fact]
    public async Task With_two_paths_io_moves_to_the_other_path_when_one_is_reset()
    {
        await using var rig = await IoRig.StartAsync(paths: 2);
        var device = rig.Device;
        Assert.Equal(2, device.PathCount);
        var data = new byte[512 * 1024];
        new Random(6).NextBytes(data);

        // Writes in flight on path 1 when it is reset finish on path 2.
        var writes = Enumerable.Range(0, 64).Select(i => device.WriteAsync((ulong)i * 16, data.AsMemory(i * 8192, 8192)).AsTask()).ToArray();
        rig.Faults.ResetConnections(rig.Listeners[0]);
        await Task.WhenAll(writes).WaitAsync(IoRig.Deadline);

        // Then path 2 goes silent: what it swallows comes back when keep-alive gives up on it, and finishes on path 1.
        rig.Faults.Blackhole(rig.Listeners[1]);
        var back = new byte[data.Length];
        await device.ReadAsync(0, back).AsTask().WaitAsync(IoRig.Deadline);
        IntegrityTests.AssertSame(data, back, "read over the remaining path");
        rig.Faults.Restore(rig.Listeners[1]);
    }

    [Fact]
    public async Task A_read_answered_with_success_but_no_data_is_retried_and_never_returned_as_read()
    {
        await using var rig = await IoRig.StartAsync(IoRig.FastSettings() with { IoRetries = 2 });
        var data = new byte[4096];
        new Random(7).NextBytes(data);
        await rig.Device.WriteAsync(32, data);

        // A SUCCESS CapsuleResp without any C2HData: a data transfer error, retried like one.
        rig.Faults.FailNextIo(NvmOpcode.Read, 1, NvmeStatus.Success);
        var back = await ReadBlockAsync(rig.Device, 32, 4096).WaitAsync(IoRig.Deadline);
        IntegrityTests.AssertSame(data, back, "after a retried read that carried no data");

        // Every attempt empty: the read fails naming Data Transfer Error, the buffer is not passed off as data.
        rig.Faults.FailNextIo(NvmOpcode.Read, 3, NvmeStatus.Success);
        var failure = await Assert.ThrowsAsync<BlockDeviceException>(() => ReadBlockAsync(rig.Device, 32, 4096).WaitAsync(IoRig.Deadline));
        Assert.Equal(BlockDeviceErrorKind.DeviceError, failure.Kind);
        Assert.Equal(NvmeStatus.Generic(GenericStatus.DataTransferError), failure.Status);
        Assert.Contains("after 2 retries", failure.Message, StringComparison.Ordinal);

        // Only that read failed: the path stayed up.
        IntegrityTests.AssertSame(data, await ReadBlockAsync(rig.Device, 32, 4096).WaitAsync(IoRig.Deadline), "after the failed read");
    }

    private static async Task<byte[]> ReadBlockAsync(BlockDevice device, ulong lba, int length)
    {
        var buffer = new byte[length];
        await device.ReadAsync(lba, buffer);
        return buffer;
    }
}
