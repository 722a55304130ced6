using System.Reflection;
using ActorNvme.Actors.Subsystem;

namespace ActorNvme.Io.Tests;

/// <summary>
/// The split between a block device's public I/O surface and the owner handle only its subsystem
/// actor holds: whoever is handed a device can do I/O and nothing else; the owner's decisions reach
/// that I/O. No network: a device without paths holds its I/O.
/// </summary>
public sealed class BlockDeviceOwnerTests
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(30);

    private static BlockDeviceOwner NewOwner(int holdLimit = 16) =>
        new("nvme9n1", "nqn.2014-08.org.example:owner-tests", 1, 512, 64, new BlockDeviceOptions(Retries: 1, HoldLimit: holdLimit), nguid: 7, eui64: 9, uuid: Guid.Parse("00000000-0000-0000-0000-00000000000a"));

    [Fact]
    public void A_device_offers_no_public_way_to_create_it_change_its_paths_fail_it_fast_or_delete_it()
    {
        var surface = typeof(BlockDevice);
        Assert.Empty(surface.GetConstructors(BindingFlags.Public | BindingFlags.Instance));
        string[] ownerOnly = [nameof(BlockDeviceOwner.AttachPath), nameof(BlockDeviceOwner.DetachPath), nameof(BlockDeviceOwner.SetFailFast), nameof(BlockDeviceOwner.Delete), nameof(BlockDeviceOwner.Paths)];
        var publicMembers = surface.GetMembers(BindingFlags.Public | BindingFlags.Instance | BindingFlags.Static).Select(m => m.Name).ToHashSet(StringComparer.Ordinal);
        Assert.All(ownerOnly, name => Assert.DoesNotContain(name, publicMembers));

        // No public member hands out a queue set (which could be aborted) or the owner.
        var handedOut = surface.GetProperties(BindingFlags.Public | BindingFlags.Instance).Select(p => p.PropertyType)
            .Concat(surface.GetMethods(BindingFlags.Public | BindingFlags.Instance).Select(m => m.ReturnType));
        Assert.DoesNotContain(handedOut, t => t == typeof(BlockDeviceOwner) || t.ToString().Contains(nameof(IoQueueSet), StringComparison.Ordinal));
    }

    [Fact]
    public void What_users_are_handed_is_the_device_not_its_owner()
    {
        Assert.Equal(typeof(BlockDevice), typeof(BlockDeviceAdded).GetProperty(nameof(BlockDeviceAdded.BlockDevice))!.PropertyType);
        Assert.Equal(typeof(BlockDevice), typeof(Subsystem.BlockDeviceResult).GetProperty(nameof(Subsystem.BlockDeviceResult.Device))!.PropertyType);
    }

    [Fact]
    public void The_owner_creates_the_device_with_its_identity_and_geometry()
    {
        var owner = NewOwner();
        var device = owner.Device;
        Assert.Same(device, owner.Device);
        Assert.Equal("nvme9n1", device.Name);
        Assert.Equal(1u, device.NamespaceId);
        Assert.Equal(64UL * 512, device.SizeBytes);
        Assert.Equal((UInt128)7, device.Nguid);
        Assert.Equal(9UL, device.Eui64);
        Assert.Equal(Guid.Parse("00000000-0000-0000-0000-00000000000a"), device.Uuid);
        Assert.Equal(0, device.PathCount);
        Assert.Empty(owner.Paths);
    }

    [Fact]
    public async Task The_owner_deleting_the_device_fails_the_users_held_and_new_io_naming_the_reason()
    {
        var owner = NewOwner();
        var device = owner.Device;
        var held = device.ReadAsync(0, new byte[1024]).AsTask();
        Assert.False(held.IsCompleted);
        Assert.Equal(1, device.HeldCount);

        owner.Delete("ctrlr-loss-timeout expired");

        var failure = await Assert.ThrowsAsync<BlockDeviceException>(() => held.WaitAsync(Deadline));
        Assert.Equal(BlockDeviceErrorKind.Deleted, failure.Kind);
        Assert.Contains("ctrlr-loss-timeout expired", failure.Message, StringComparison.Ordinal);
        Assert.True(device.IsDeleted);

        var late = await Assert.ThrowsAsync<BlockDeviceException>(() => device.WriteAsync(8, new byte[512]).AsTask().WaitAsync(Deadline));
        Assert.Equal(BlockDeviceErrorKind.Deleted, late.Kind);

        // The first reason stays.
        owner.Delete("another reason");
        var again = await Assert.ThrowsAsync<BlockDeviceException>(() => device.FlushAsync().AsTask().WaitAsync(Deadline));
        Assert.Contains("ctrlr-loss-timeout expired", again.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Fail_fast_set_by_the_owner_fails_held_and_new_io_until_the_owner_clears_it()
    {
        var owner = NewOwner();
        var device = owner.Device;
        var held = device.WriteZeroesAsync(0, 4).AsTask();
        Assert.False(held.IsCompleted);

        owner.SetFailFast(true);
        Assert.True(device.IsFailingFast);
        Assert.Equal(BlockDeviceErrorKind.FailFast, (await Assert.ThrowsAsync<BlockDeviceException>(() => held.WaitAsync(Deadline))).Kind);
        Assert.Equal(BlockDeviceErrorKind.FailFast, (await Assert.ThrowsAsync<BlockDeviceException>(() => device.DeallocateAsync(0, 1).AsTask().WaitAsync(Deadline))).Kind);

        owner.SetFailFast(false);
        var heldAgain = device.ReadAsync(0, new byte[512]).AsTask();
        Assert.False(heldAgain.IsCompleted);
        Assert.Equal(1, device.HeldCount);
        owner.Delete("test over");
        Assert.Equal(BlockDeviceErrorKind.Deleted, (await Assert.ThrowsAsync<BlockDeviceException>(() => heldAgain.WaitAsync(Deadline))).Kind);
    }

    [Fact]
    public void Detaching_a_path_the_device_never_had_changes_nothing()
    {
        var owner = NewOwner();
        owner.DetachPath("path-10.0.0.1-4420");
        Assert.Equal(0, owner.Device.PathCount);
        Assert.False(owner.Device.HasUsablePath);
        Assert.Throws<ArgumentException>(() => owner.DetachPath(string.Empty));
    }
}
