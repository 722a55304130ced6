using Akka.Actor;
using ActorNvme.Actors.Subsystem;
using ActorNvme.Target;

namespace ActorNvme.Io.Tests;

/// <summary>
/// Namespaces added, removed and resized at our Target while the host is attached: the Namespace
/// Attribute Changed notice alone (nothing polls) makes the block devices follow. Deadlines are generous.
/// </summary>
public sealed class NamespaceChangeTests
{
    [Fact]
    public async Task A_namespace_added_at_run_time_appears_as_nvme0n2_and_serves_io()
    {
        await using var rig = await IoRig.StartAsync();
        Assert.False(rig.Saw<BlockDeviceAdded>(a => a.Device.Name == "nvme0n2"));

        rig.TargetSubsystem.AddNamespace(NamespaceOptions.Ram(8 * 1024 * 1024) with { NamespaceId = 2 });
        var added = await rig.WaitForDeviceAsync("nvme0n2");

        Assert.Equal(2u, added.NamespaceId);
        Assert.Equal(8UL * 1024 * 1024 / 512, added.BlockCount);
        await IoRig.WaitUntilAsync(() => added.PathCount == 1, "nvme0n2 attached to the path");
        var data = new byte[8192];
        new Random(21).NextBytes(data);
        await added.WriteAsync(100, data).AsTask().WaitAsync(IoRig.Deadline);
        var back = new byte[data.Length];
        await added.ReadAsync(100, back).AsTask().WaitAsync(IoRig.Deadline);
        IntegrityTests.AssertSame(data, back, "nvme0n2 after its write");

        // nvme0n1 is the same device as before, untouched by the change.
        Assert.False(rig.Device.IsDeleted);
        var status = await rig.Subsystem.Ask<Subsystem.Status>(Subsystem.GetStatus.Instance, IoRig.Deadline);
        Assert.Equal(["nvme0n1", "nvme0n2"], status.Devices.Select(d => d.Name).Order().ToArray());
    }

    [Fact]
    public async Task A_namespace_removed_disappears_and_its_io_in_flight_fails_naming_the_removal()
    {
        await using var rig = await IoRig.StartAsync();
        rig.TargetSubsystem.AddNamespace(NamespaceOptions.Ram(8 * 1024 * 1024) with { NamespaceId = 2 });
        var second = await rig.WaitForDeviceAsync("nvme0n2");
        await IoRig.WaitUntilAsync(() => second.PathCount == 1, "nvme0n2 attached to the path");

        // A slow backend holds the read at the target while the namespace goes away.
        rig.Faults.DelayIoExecution(rig.Listeners[0], TimeSpan.FromSeconds(3));
        var pending = second.ReadAsync(0, new byte[4096]).AsTask();
        await IoRig.WaitUntilAsync(() => rig.Faults.DelayedReadsPending == 1, "the read held at the target");
        Assert.True(rig.TargetSubsystem.RemoveNamespace(2));

        await IoRig.WaitUntilAsync(() => rig.Saw<BlockDeviceRemoved>(r => r.Device.Name == "nvme0n2"), "the removal event of nvme0n2");
        Assert.True(second.IsDeleted);
        var failure = await Assert.ThrowsAsync<BlockDeviceException>(() => pending.WaitAsync(IoRig.Deadline));
        Assert.Equal(BlockDeviceErrorKind.Deleted, failure.Kind);
        Assert.Contains("namespace 2 was removed", failure.Message, StringComparison.Ordinal);

        var after = await Assert.ThrowsAsync<BlockDeviceException>(() => second.WriteAsync(0, new byte[512]).AsTask().WaitAsync(IoRig.Deadline));
        Assert.Equal(BlockDeviceErrorKind.Deleted, after.Kind);

        rig.Faults.DelayIoExecution(rig.Listeners[0], TimeSpan.Zero);
        await rig.Device.WriteAsync(0, new byte[512]).AsTask().WaitAsync(IoRig.Deadline);
        Assert.False(rig.Device.IsDeleted);
        var status = await rig.Subsystem.Ask<Subsystem.Status>(Subsystem.GetStatus.Instance, IoRig.Deadline);
        Assert.Equal(["nvme0n1"], status.Devices.Select(d => d.Name).ToArray());
    }

    [Fact]
    public async Task A_namespace_resized_at_the_target_resizes_its_device_in_place()
    {
        await using var rig = await IoRig.StartAsync(namespaceBytes: 8L * 1024 * 1024);
        var device = rig.Device;
        ulong before = device.BlockCount;
        ulong beyondOldEnd = before + 16;
        Assert.Throws<ArgumentOutOfRangeException>(() => { _ = device.WriteAsync(beyondOldEnd, new byte[512]); });

        Assert.True(rig.TargetSubsystem.ResizeNamespace(1, 16L * 1024 * 1024));
        await IoRig.WaitUntilAsync(() => rig.Saw<BlockDeviceResized>(r => r.Device.Name == "nvme0n1"), "the resize event of nvme0n1");

        var resized = Assert.Single(rig.Events.OfType<BlockDeviceResized>());
        Assert.Equal(before, resized.PreviousBlockCount);
        Assert.Equal(16UL * 1024 * 1024 / 512, resized.Device.BlockCount);
        Assert.Equal(resized.Device.BlockCount, device.BlockCount);
        Assert.False(rig.Saw<BlockDeviceRemoved>(_ => true));

        var data = new byte[512];
        new Random(5).NextBytes(data);
        await device.WriteAsync(beyondOldEnd, data).AsTask().WaitAsync(IoRig.Deadline);
        var back = new byte[512];
        await device.ReadAsync(beyondOldEnd, back).AsTask().WaitAsync(IoRig.Deadline);
        IntegrityTests.AssertSame(data, back, "a block past the old end");
    }

    [Fact]
    public async Task A_subsystem_with_1024_namespaces_lists_them_all_and_follows_a_removal_and_an_addition()
    {
        await using var rig = await IoRig.StartAsync(extraNamespaces: 1023);
        await IoRig.WaitUntilAsync(() => rig.Events.OfType<BlockDeviceAdded>().Count() == 1024, "1024 block devices");
        var names = rig.Events.OfType<BlockDeviceAdded>().Select(a => a.Device.Name).ToHashSet();
        Assert.Equal(Enumerable.Range(1, 1024).Select(i => $"nvme0n{i}").ToHashSet(), names);

        // The active list is a full page of 1024: the scan reads on past it and finds exactly the one change.
        Assert.True(rig.TargetSubsystem.RemoveNamespace(700));
        await IoRig.WaitUntilAsync(() => rig.Saw<BlockDeviceRemoved>(r => r.Device.Name == "nvme0n700"), "the removal of nvme0n700");
        rig.TargetSubsystem.AddNamespace(NamespaceOptions.Null(2 * 1024 * 1024) with { NamespaceId = 700 });
        await IoRig.WaitUntilAsync(() => rig.Events.OfType<BlockDeviceAdded>().Count(a => a.Device.Name == "nvme0n700") == 2, "nvme0n700 added again");
        var back = rig.Events.OfType<BlockDeviceAdded>().Last(a => a.Device.Name == "nvme0n700");
        Assert.Equal(2UL * 1024 * 1024 / 512, back.Device.BlockCount);

        var status = await rig.Subsystem.Ask<Subsystem.Status>(Subsystem.GetStatus.Instance, IoRig.Deadline);
        Assert.Equal(1024, status.Devices.Count);
        Assert.Single(rig.Events.OfType<BlockDeviceRemoved>());
        Assert.Equal(1025, rig.Events.OfType<BlockDeviceAdded>().Count());
    }
}
