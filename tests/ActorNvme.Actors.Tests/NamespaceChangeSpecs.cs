using System.Collections.Concurrent;
using Akka.Actor;
using Akka.Configuration;
using Akka.TestKit.Xunit2;
using ActorNvme.Actors.Settings;
using ActorNvme.Actors.Subsystem;
using ActorNvme.Actors.Tests.Fakes;
using ActorNvme.Protocol.Data;
using ActorNvme.Transport;

namespace ActorNvme.Actors.Tests;

/// <summary>
/// Namespaces that come and go, on virtual time against the fake fabric: only the Namespace Attribute
/// Changed notice makes the subsystem look again (the clock never moves, so nothing could poll), and its
/// block devices follow what the controller lists.
/// </summary>
public class NamespaceChangeSpecs : TestKit
{
    private static readonly Config VirtualTime = ConfigurationFactory.ParseString("""
        akka.scheduler.implementation = "Akka.TestKit.TestScheduler, Akka.TestKit"
        akka.loglevel = INFO
        """);

    private static readonly TransportAddress Address = new("192.0.2.20", 4420);

    private static readonly AsyncEventCompletion NamespaceNotice = AsyncEventCompletion.ForNotice(AsyncEventNotice.NamespaceAttributeChanged, (byte)LogPageId.ChangedNamespaceList);

    private readonly FakeFabric _fabric = new() { Namespaces = new ConcurrentDictionary<uint, ulong>([new(1, 4096UL)]), MaxNamespaceId = 2048 };
    private readonly Akka.TestKit.TestProbe _events;

    public NamespaceChangeSpecs()
        : base(VirtualTime)
    {
        _events = CreateTestProbe();
        Sys.EventStream.Subscribe(_events.Ref, typeof(BlockDeviceAdded));
        Sys.EventStream.Subscribe(_events.Ref, typeof(BlockDeviceRemoved));
        Sys.EventStream.Subscribe(_events.Ref, typeof(BlockDeviceResized));
    }

    private IActorRef StartSubsystem() =>
        Sys.ActorOf(Subsystem.Subsystem.Props(new SubsystemOptions("nvme0", "nqn.2016-06.io.example:fake", [Address], NvmeHostSettings.Default), _fabric), "nvme0");

    private T ExpectEvent<T>()
        where T : class =>
        _events.FishForMessage<T>(m => m is T, TimeSpan.FromSeconds(60)); // generous: 1,500 Identify commands on a loaded machine

    private IReadOnlyList<BlockDeviceInfo> Devices(IActorRef subsystem) =>
        subsystem.Ask<Subsystem.Subsystem.Status>(Subsystem.Subsystem.GetStatus.Instance, TimeSpan.FromSeconds(10)).Result.Devices;

    [Fact]
    public void A_namespace_added_removed_and_resized_follows_the_notice_alone()
    {
        var subsystem = StartSubsystem();
        Assert.Equal("nvme0n1", ExpectEvent<BlockDeviceAdded>().Device.Name);
        int listReads = _fabric.ActiveListReads;

        _fabric.Namespaces![2] = 8192;
        _fabric.ChangedNamespaces = [2];
        _events.ExpectNoMsg(TimeSpan.FromMilliseconds(300)); // no notice, no look
        Assert.Equal(listReads, _fabric.ActiveListReads);

        _fabric.FireAsyncEvent(NamespaceNotice);
        var added = ExpectEvent<BlockDeviceAdded>();
        Assert.Equal(("nvme0n2", 2u, 8192UL), (added.Device.Name, added.Device.NamespaceId, added.Device.BlockCount));
        Assert.NotNull(added.BlockDevice);
        Assert.Equal(1, _fabric.ChangedListReads);

        _fabric.Namespaces[2] = 16384;
        _fabric.ChangedNamespaces = [2];
        _fabric.FireAsyncEvent(NamespaceNotice);
        var resized = ExpectEvent<BlockDeviceResized>();
        Assert.Equal(("nvme0n2", 8192UL, 16384UL), (resized.Device.Name, resized.PreviousBlockCount, resized.Device.BlockCount));
        Assert.Equal(16384UL, added.BlockDevice!.BlockCount);

        _fabric.Namespaces.TryRemove(1, out _);
        _fabric.ChangedNamespaces = [1];
        _fabric.FireAsyncEvent(NamespaceNotice);
        var removed = ExpectEvent<BlockDeviceRemoved>();
        Assert.Equal("nvme0n1", removed.Device.Name);
        Assert.Contains("namespace 1 was removed", removed.Reason, StringComparison.Ordinal);
        AwaitAssert(() => Assert.Equal(["nvme0n2"], Devices(subsystem).Select(d => d.Name).ToArray()), TimeSpan.FromSeconds(10));
        _events.ExpectNoMsg(TimeSpan.FromMilliseconds(300)); // nvme0n2 neither removed nor added again
    }

    [Fact]
    public void More_than_1024_namespaces_are_read_in_pages_at_bring_up_and_on_a_notice()
    {
        _fabric.Namespaces = new ConcurrentDictionary<uint, ulong>(Enumerable.Range(1, 1500).Select(i => new KeyValuePair<uint, ulong>((uint)i, 1024UL)));
        var subsystem = StartSubsystem();
        var names = Enumerable.Range(0, 1500).Select(_ => ExpectEvent<BlockDeviceAdded>().Device.Name).ToHashSet();
        Assert.Equal(Enumerable.Range(1, 1500).Select(i => $"nvme0n{i}").ToHashSet(), names);
        Assert.Equal(2, _fabric.ActiveListReads); // 1024, then the 476 after NSID 1024

        // More than the changed list can name: it overflows, and every namespace is looked at again.
        _fabric.Namespaces.TryRemove(1300, out _);
        _fabric.Namespaces[1501] = 2048;
        _fabric.ChangedNamespaces = [.. Enumerable.Range(1, 1100).Select(i => (uint)i)];
        _fabric.FireAsyncEvent(NamespaceNotice);
        var changes = _events.ReceiveN(2, TimeSpan.FromSeconds(60));
        Assert.Equal("nvme0n1300", Assert.Single(changes.OfType<BlockDeviceRemoved>()).Device.Name);
        var added = Assert.Single(changes.OfType<BlockDeviceAdded>());
        Assert.Equal(("nvme0n1501", 2048UL), (added.Device.Name, added.Device.BlockCount));
        Assert.Equal(4, _fabric.ActiveListReads);
        AwaitAssert(() => Assert.Equal(1500, Devices(subsystem).Count), TimeSpan.FromSeconds(10));
    }
}
