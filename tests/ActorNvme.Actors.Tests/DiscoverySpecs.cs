using Akka.Actor;
using Akka.Configuration;
using Akka.TestKit;
using Akka.TestKit.Xunit2;
using ActorNvme.Actors.Discovery;
using ActorNvme.Actors.Settings;
using ActorNvme.Actors.Subsystem;
using ActorNvme.Actors.Tests.Fakes;
using ActorNvme.Protocol.Data;
using ActorNvme.Transport;

namespace ActorNvme.Actors.Tests;

/// <summary>The discovery service's rules on virtual time, against scripted discovery logs.</summary>
public class DiscoverySpecs : TestKit
{
    private static readonly TransportAddress DiscoveryAddress = new("192.0.2.1", 8009);
    private readonly FakeFabric _fabric = new();
    private readonly TestProbe _events;

    public DiscoverySpecs()
        : base(ConfigurationFactory.ParseString("""
            akka.scheduler.implementation = "Akka.TestKit.TestScheduler, Akka.TestKit"
            akka.loglevel = INFO
            """))
    {
        _events = CreateTestProbe();
        Sys.EventStream.Subscribe(_events.Ref, typeof(BlockDeviceAdded));
        Sys.EventStream.Subscribe(_events.Ref, typeof(BlockDeviceRemoved));
    }

    private static NvmeHostSettings Settings => NvmeHostSettings.Default with
    {
        KeepAliveTimeout = TimeSpan.FromSeconds(2),
        DiscoveryGenctrRetries = 3,
        Resiliency = ResiliencySettings.FromSeconds(10, 1, 0),
    };

    internal static byte[] DiscoveryPageOf(ulong generation, params string[] subsystemNqns)
    {
        var entries = subsystemNqns.Select(nqn => new DiscoveryLogEntry
        {
            TransportType = TransportType.Tcp,
            AddressFamily = NvmeAddressFamily.IPv4,
            SubsystemType = SubsystemType.Nvm,
            SubsystemNqn = nqn,
            TransportAddress = "192.0.2.1",
            TransportServiceId = "4420",
            ControllerId = 0xFFFF,
            AdminMaxSqSize = 32,
        }).ToArray();
        var page = new byte[DiscoveryLogPage.GetSize(entries.Length)];
        DiscoveryLogPage.WriteTo(generation, entries, page);
        return page;
    }

    private IActorRef StartService() =>
        Sys.ActorOf(DiscoveryService.Props(new DiscoveryOptions("nvme", DiscoveryAddress, Settings), _fabric), "discovery-nvme");

    private DiscoveryService.Info Info(IActorRef service) =>
        service.Ask<DiscoveryService.Info>(DiscoveryService.GetInfo.Instance, TimeSpan.FromSeconds(5)).GetAwaiter().GetResult();

    [Fact]
    public void A_log_whose_generation_keeps_moving_is_read_a_bounded_number_of_times_and_changes_nothing()
    {
        long generation = 0;
        _fabric.DiscoveryLog = () => DiscoveryPageOf((ulong)Interlocked.Increment(ref generation), "nqn.2016-06.io.example:a");

        var service = StartService();

        // Header and page per attempt: the first try and three retries, then it gives up.
        AwaitCondition(() => _fabric.LogReads == 8, TimeSpan.FromSeconds(10));
        _events.ExpectNoMsg(TimeSpan.FromMilliseconds(300));
        Assert.Equal(8, _fabric.LogReads);
        var info = Info(service);
        Assert.Equal(0, info.LogReads);
        Assert.Empty(info.Subsystems);

        // Once stable, the next change notice reads it and attaches.
        _fabric.DiscoveryLog = () => DiscoveryPageOf(100, "nqn.2016-06.io.example:a");
        _fabric.FireAsyncEvent(AsyncEventCompletion.ForNotice(AsyncEventNotice.DiscoveryLogPageChange, (byte)LogPageId.Discovery));
        Assert.Equal("nvme0n1", _events.ExpectMsg<BlockDeviceAdded>(TimeSpan.FromSeconds(10)).Device.Name);
    }

    [Fact]
    public void A_failed_read_removes_nothing_and_a_successful_one_removes_what_is_gone()
    {
        _fabric.DiscoveryLog = () => DiscoveryPageOf(1, "nqn.2016-06.io.example:a");
        var service = StartService();
        Assert.Equal("nvme0n1", _events.ExpectMsg<BlockDeviceAdded>(TimeSpan.FromSeconds(10)).Device.Name);

        _fabric.FailLogReads = true;
        _fabric.DiscoveryLog = () => DiscoveryPageOf(2);
        int reads = _fabric.LogReads;
        _fabric.FireAsyncEvent(AsyncEventCompletion.ForNotice(AsyncEventNotice.DiscoveryLogPageChange, (byte)LogPageId.Discovery));
        AwaitCondition(() => _fabric.LogReads > reads, TimeSpan.FromSeconds(10));
        _events.ExpectNoMsg(TimeSpan.FromMilliseconds(500));
        Assert.Equal(["nvme0"], Info(service).Subsystems);

        _fabric.FailLogReads = false;
        _fabric.FireAsyncEvent(AsyncEventCompletion.ForNotice(AsyncEventNotice.DiscoveryLogPageChange, (byte)LogPageId.Discovery));
        var removed = _events.ExpectMsg<BlockDeviceRemoved>(TimeSpan.FromSeconds(10));
        Assert.Equal("nvme0n1", removed.Device.Name);
        Assert.Equal("removed from the discovery log", removed.Reason);
    }

    [Fact]
    public void A_subsystem_gone_and_listed_again_comes_back_under_a_new_name_never_beside_its_predecessor()
    {
        _fabric.DiscoveryLog = () => DiscoveryPageOf(1, "nqn.2016-06.io.example:a");
        var service = StartService();
        Assert.Equal("nvme0n1", _events.ExpectMsg<BlockDeviceAdded>(TimeSpan.FromSeconds(10)).Device.Name);

        // Gone, then back, in two notices in a row: the second read may find nvme0 still stopping,
        // in which case nvme1 is spawned only after nvme0's Terminated.
        int reads = _fabric.LogReads;
        _fabric.DiscoveryLog = () => DiscoveryPageOf(2);
        _fabric.FireAsyncEvent(AsyncEventCompletion.ForNotice(AsyncEventNotice.DiscoveryLogPageChange, (byte)LogPageId.Discovery));
        AwaitCondition(() => _fabric.LogReads >= reads + 1, TimeSpan.FromSeconds(10)); // an empty log is its header alone
        _fabric.DiscoveryLog = () => DiscoveryPageOf(3, "nqn.2016-06.io.example:a");
        _fabric.FireAsyncEvent(AsyncEventCompletion.ForNotice(AsyncEventNotice.DiscoveryLogPageChange, (byte)LogPageId.Discovery));

        Assert.Equal("nvme0n1", _events.ExpectMsg<BlockDeviceRemoved>(TimeSpan.FromSeconds(10)).Device.Name);
        Assert.Equal("nvme1n1", _events.ExpectMsg<BlockDeviceAdded>(TimeSpan.FromSeconds(10)).Device.Name);
        AwaitAssert(() => Assert.Equal(["nvme1"], Info(service).Subsystems), TimeSpan.FromSeconds(10));
    }
}
