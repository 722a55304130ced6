using ActorNvme.Protocol.Tls;
using Akka.Actor;
using Akka.Configuration;
using Akka.Event;
using Akka.TestKit;
using Akka.TestKit.Xunit2;
using ActorNvme.Actors.Discovery;
using ActorNvme.Actors.Host;
using ActorNvme.Actors.Settings;
using ActorNvme.Actors.Subsystem;
using ActorNvme.Actors.Tests.Fakes;
using ActorNvme.Protocol.Data;
using ActorNvme.Transport;

namespace ActorNvme.Actors.Tests;

/// <summary>
/// Discovery log entries by the spec, on virtual time: SUBTYPE 3 is never a referral, logs of any size are read
/// in pieces within MDTS, referral trees stay under the discovery-controller cap, wait_for_attach answers as
/// soon as nothing is left to attach, and one subsystem is attached once per host whichever services list it.
/// </summary>
public class DiscoveryEntrySpecs : TestKit
{
    private const string NvmNqn = "nqn.2016-06.io.example:a";
    private static readonly TransportAddress DiscoveryAddress = new("192.0.2.1", 8009);
    private readonly FakeFabric _fabric = new();
    private readonly TestProbe _events;

    public DiscoveryEntrySpecs()
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
        Resiliency = ResiliencySettings.FromSeconds(10, 1, 0),
    };

    private static DiscoveryLogEntry Entry(SubsystemType type, string nqn, string address, int port, TransportType transport = TransportType.Tcp) => new()
    {
        TransportType = transport,
        AddressFamily = NvmeAddressFamily.IPv4,
        SubsystemType = type,
        SubsystemNqn = nqn,
        TransportAddress = address,
        TransportServiceId = port.ToString(System.Globalization.CultureInfo.InvariantCulture),
        ControllerId = 0xFFFF,
        AdminMaxSqSize = 32,
    };

    private static byte[] Page(ulong generation, params DiscoveryLogEntry[] entries)
    {
        var page = new byte[DiscoveryLogPage.GetSize(entries.Length)];
        DiscoveryLogPage.WriteTo(generation, entries, page);
        return page;
    }

    private IActorRef StartService(NvmeHostSettings? settings = null) =>
        Sys.ActorOf(DiscoveryService.Props(new DiscoveryOptions("nvme", DiscoveryAddress, settings ?? Settings), _fabric), "discovery-nvme");

    private DiscoveryService.Info Info(IActorRef service) =>
        service.Ask<DiscoveryService.Info>(DiscoveryService.GetInfo.Instance, TimeSpan.FromSeconds(5)).GetAwaiter().GetResult();

    [Fact]
    public void Entries_of_subtype_3_are_other_addresses_of_this_discovery_subsystem_and_never_followed()
    {
        // As SPDK lists them: the discovery subsystem on its own port and on every NVM port, then the NVM subsystem.
        var log = Page(
            1,
            Entry(SubsystemType.CurrentDiscovery, Nqn.Discovery, "192.0.2.1", 8009),
            Entry(SubsystemType.CurrentDiscovery, Nqn.Discovery, "192.0.2.1", 4420),
            Entry(SubsystemType.CurrentDiscovery, Nqn.Discovery, "192.0.2.7", 8009),
            Entry(SubsystemType.Nvm, NvmNqn, "192.0.2.1", 4420));
        _fabric.DiscoveryLog = () => log;

        var service = StartService();

        Assert.Equal("nvme0n1", _events.ExpectMsg<BlockDeviceAdded>(TimeSpan.FromSeconds(10)).Device.Name);
        _events.ExpectNoMsg(TimeSpan.FromMilliseconds(500));
        var info = Info(service);
        Assert.Empty(info.Referrals);
        Assert.Equal(["nvme0"], info.Subsystems);
        Assert.Equal(3, info.AlternateAddresses!.Count);

        // One discovery controller (8009) and one NVM controller (4420) were connected; 192.0.2.7 never.
        Assert.Equal(
            new[] { DiscoveryAddress, new TransportAddress("192.0.2.1", 4420) }.OrderBy(a => a.Port),
            _fabric.ConnectsByAddress.Keys.OrderBy(a => a.Port));
    }

    [Fact]
    public void A_log_of_4096_records_is_read_whole_in_pieces_within_MDTS()
    {
        // 4095 alternate addresses, then the only NVM subsystem as the very last record.
        var entries = Enumerable.Range(0, DiscoveryLogPage.MaxRecords - 1)
            .Select(i => Entry(SubsystemType.CurrentDiscovery, Nqn.Discovery, "192.0.2.1", 10000 + i))
            .Append(Entry(SubsystemType.Nvm, NvmNqn, "192.0.2.9", 4420))
            .ToArray();
        var log = Page(7, entries);
        _fabric.DiscoveryLog = () => log;
        _fabric.MaxDataTransferSize = 5; // 4 KiB << 5 = 128 KiB per command

        var service = StartService();

        var added = _events.ExpectMsg<BlockDeviceAdded>(TimeSpan.FromSeconds(30));
        Assert.Equal("nvme0n1", added.Device.Name);
        Assert.Equal(NvmNqn, added.Device.SubsystemNqn);
        var info = Info(service);
        Assert.Equal(1, info.LogReads);
        Assert.Equal(7UL, info.GenerationCounter);
        Assert.Equal(DiscoveryLogPage.MaxRecords - 1, info.AlternateAddresses!.Count);
        Assert.InRange(_fabric.LargestLogRead, DiscoveryLogEntry.Size, 128 * 1024);

        // Header, 33 pieces of at most 128 KiB for 4 MiB + 1 KiB, and the header again to check GENCTR.
        Assert.Equal(1 + 33 + 1, _fabric.LogReads);
    }

    [Fact]
    public void A_log_that_changes_between_its_pieces_is_read_again()
    {
        var entries = Enumerable.Range(0, 300).Select(i => Entry(SubsystemType.CurrentDiscovery, Nqn.Discovery, "192.0.2.1", 10000 + i)).Append(Entry(SubsystemType.Nvm, NvmNqn, "192.0.2.9", 4420)).ToArray();
        var first = Page(1, entries);
        var second = Page(2, entries);
        int calls = 0;

        // The third answer (second piece) comes from a newer log: the closing header read shows GENCTR 2.
        _fabric.DiscoveryLog = () => Interlocked.Increment(ref calls) <= 2 ? first : second;
        _fabric.MaxDataTransferSize = 5;

        var service = StartService();

        Assert.Equal("nvme0n1", _events.ExpectMsg<BlockDeviceAdded>(TimeSpan.FromSeconds(30)).Device.Name);
        var info = Info(service);
        Assert.Equal(2UL, info.GenerationCounter);
        Assert.Equal(1, info.LogReads);
    }

    [Fact]
    public void A_referral_tree_3_wide_and_8_deep_stays_under_the_discovery_controller_cap()
    {
        // Node n serves at port 20000 + n; its referrals are nodes 3n+1..3n+3, down to depth 8 (9841 nodes).
        static int DepthOf(int node)
        {
            int depth = 0;
            while (node > 0)
            {
                node = (node - 1) / 3;
                depth++;
            }

            return depth;
        }

        static TransportAddress NodeAddress(int node) => node == 0 ? DiscoveryAddress : new TransportAddress("198.51.100.1", 20000 + node);
        _fabric.DiscoveryLogAt = address =>
        {
            int node = address == DiscoveryAddress ? 0 : address.Port - 20000;
            var entries = new List<DiscoveryLogEntry> { Entry(SubsystemType.CurrentDiscovery, Nqn.Discovery, address.Host, address.Port) };
            if (DepthOf(node) < 8)
            {
                entries.AddRange(Enumerable.Range(1, 3).Select(k => NodeAddress((3 * node) + k)).Select(a => Entry(SubsystemType.DiscoveryReferral, Nqn.Discovery, a.Host, a.Port)));
            }

            return Page(1, [.. entries]);
        };
        var warnings = CreateTestProbe();
        Sys.EventStream.Subscribe(warnings.Ref, typeof(Warning));
        int cap = Settings.MaxDiscoveryControllers;

        StartService();

        warnings.FishForMessage<Warning>(w => w.Message.ToString()!.Contains("discovery-controller cap", StringComparison.Ordinal), TimeSpan.FromSeconds(30));
        AwaitCondition(() => _fabric.ConnectsByAddress.Count == cap, TimeSpan.FromSeconds(30));
        _events.ExpectNoMsg(TimeSpan.FromSeconds(1));

        // Exactly the cap, each once: the whole budget used, never exceeded, nothing churning.
        Assert.Equal(cap, _fabric.ConnectsByAddress.Count);
        Assert.All(_fabric.ConnectsByAddress.Values, n => Assert.Equal(1, n));
        Assert.True(_fabric.ConnectsByAddress.Keys.All(a => a == DiscoveryAddress || DepthOf(a.Port - 20000) <= 8));
    }

    [Fact]
    public void Wait_for_attach_on_an_empty_log_answers_at_once()
    {
        _fabric.DiscoveryLog = () => Page(1);
        var service = StartService();

        // Virtual time never moves: the answer cannot come from the 30 s deadline.
        service.Tell(new DiscoveryService.WaitForAttach(TimeSpan.FromSeconds(30)), TestActor);
        var done = ExpectMsg<DiscoveryService.AttachCompleted>(TimeSpan.FromSeconds(10));
        Assert.Empty(done.Devices);
        Assert.Empty(done.Skipped!);
        Assert.Equal(0, _fabric.IoQueueSets);
    }

    [Fact]
    public void Wait_for_attach_on_a_log_with_nothing_attachable_answers_at_once_with_what_was_skipped_and_why()
    {
        _fabric.DiscoveryLog = () => Page(
            1,
            Entry(SubsystemType.Nvm, NvmNqn, "192.0.2.1", 4420, TransportType.Rdma),
            Entry(SubsystemType.Nvm, NvmNqn, "192.0.2.1", 70000),
            Entry(SubsystemType.Nvm, NvmNqn, "192.0.2.1", 4421) with { TransportRequirements = TransportRequirements.SecureChannelRequired },
            Entry(SubsystemType.DiscoveryReferral, Nqn.Discovery, "192.0.2.5", 8009) with { Flags = DiscoveryEntryFlags.DuplicateReturnedInformation },
            Entry(SubsystemType.CurrentDiscovery, Nqn.Discovery, "192.0.2.1", 4420));
        var service = StartService();

        service.Tell(new DiscoveryService.WaitForAttach(TimeSpan.FromSeconds(30)), TestActor);
        var done = ExpectMsg<DiscoveryService.AttachCompleted>(TimeSpan.FromSeconds(10));
        Assert.Empty(done.Devices);
        var reasons = done.Skipped!.Select(s => s.Reason).ToArray();
        Assert.Equal(4, reasons.Length);
        Assert.Contains(reasons, r => r.Contains("not TCP", StringComparison.Ordinal));
        Assert.Contains(reasons, r => r.Contains("not a usable TCP address", StringComparison.Ordinal));
        Assert.Contains(reasons, r => r.Contains("secure channel", StringComparison.Ordinal));
        Assert.Contains(reasons, r => r.Contains("DUPRETINFO", StringComparison.Ordinal));
        Assert.Empty(Info(service).Referrals);
    }

    [Fact]
    public void Wait_for_attach_answers_at_once_when_a_listed_port_refuses_and_keeps_retrying_it()
    {
        const string DeadNqn = "nqn.2016-06.io.example:dead";
        var deadPort = new TransportAddress("192.0.2.1", 4425);
        _fabric.RefusesAddress = a => a == deadPort;
        _fabric.DiscoveryLog = () => Page(
            1,
            Entry(SubsystemType.Nvm, NvmNqn, "192.0.2.1", 4420),
            Entry(SubsystemType.Nvm, DeadNqn, "192.0.2.1", 4425));
        var service = StartService();

        // Virtual time never moves: the answer cannot come from the 30 s deadline.
        service.Tell(new DiscoveryService.WaitForAttach(TimeSpan.FromSeconds(30)), TestActor);
        var done = ExpectMsg<DiscoveryService.AttachCompleted>(TimeSpan.FromSeconds(10));
        Assert.Equal(NvmNqn, Assert.Single(done.Devices).SubsystemNqn);
        var skipped = Assert.Single(done.Skipped!);
        Assert.Equal(DeadNqn, skipped.SubsystemNqn);
        Assert.Contains("refused", skipped.Reason, StringComparison.Ordinal);
        Assert.Contains("192.0.2.1:4425", skipped.Reason, StringComparison.Ordinal);

        // Not given up: the port comes back and the subsystem attaches at a later retry.
        _events.FishForMessage<BlockDeviceAdded>(m => m.Device.SubsystemNqn == NvmNqn, TimeSpan.FromSeconds(5));
        _fabric.RefusesAddress = _ => false;
        var scheduler = (TestScheduler)Sys.Scheduler;
        for (int i = 0; i < 40 && !_events.HasMessages; i++)
        {
            scheduler.Advance(TimeSpan.FromMilliseconds(500));
            Thread.Sleep(50);
        }

        var added = _events.FishForMessage<BlockDeviceAdded>(m => m.Device.SubsystemNqn == DeadNqn, TimeSpan.FromSeconds(10));
        Assert.Equal(DeadNqn, added.Device.SubsystemNqn);
    }

    [Fact]
    public void With_a_psk_an_entry_asking_for_tls_13_is_attached_over_tls_and_a_tls_12_one_is_skipped()
    {
        const string Tls12Nqn = "nqn.2016-06.io.example:tls12";
        _fabric.DiscoveryLog = () => Page(
            1,
            Entry(SubsystemType.Nvm, NvmNqn, "192.0.2.1", 4421) with { TransportRequirements = TransportRequirements.SecureChannelRequired, SecurityType = TcpSecurityType.Tls13 },
            Entry(SubsystemType.Nvm, Tls12Nqn, "192.0.2.1", 4422) with { SecurityType = TcpSecurityType.Tls12 });
        var service = StartService(Settings with { TlsPsk = NvmeTlsPsk.Parse(NvmeTlsPsk.Generate()) });

        service.Tell(new DiscoveryService.WaitForAttach(TimeSpan.FromSeconds(30)), TestActor);
        var done = ExpectMsg<DiscoveryService.AttachCompleted>(TimeSpan.FromSeconds(10));
        Assert.Equal(NvmNqn, Assert.Single(done.Devices).SubsystemNqn);
        var skipped = Assert.Single(done.Skipped!);
        Assert.Equal(Tls12Nqn, skipped.SubsystemNqn);
        Assert.Contains("TLS 1.3 only", skipped.Reason, StringComparison.Ordinal);
        Assert.Contains(_fabric.AdminRequests, r => r.Address.Port == 4421 && r.Tls?.Identity == $"NVMe0R01 {Settings.HostNqn} {NvmNqn}");
    }

    [Fact]
    public void Without_a_psk_an_entry_asking_for_tls_13_is_skipped_saying_so()
    {
        _fabric.DiscoveryLog = () => Page(1, Entry(SubsystemType.Nvm, NvmNqn, "192.0.2.1", 4421) with { SecurityType = TcpSecurityType.Tls13 });
        var service = StartService();

        service.Tell(new DiscoveryService.WaitForAttach(TimeSpan.FromSeconds(30)), TestActor);
        var done = ExpectMsg<DiscoveryService.AttachCompleted>(TimeSpan.FromSeconds(10));
        Assert.Empty(done.Devices);
        Assert.Contains("no psk is configured", Assert.Single(done.Skipped!).Reason, StringComparison.Ordinal);
        Assert.DoesNotContain(_fabric.AdminRequests, r => r.Address.Port == 4421);
    }

    [Fact]
    public void One_subsystem_listed_by_two_services_is_attached_once_and_moves_when_its_holder_stops()
    {
        var log = Page(1, Entry(SubsystemType.Nvm, NvmNqn, "192.0.2.1", 4420));
        _fabric.DiscoveryLog = () => log;
        var host = Sys.ActorOf(NvmeHost.Props(Settings, _fabric), NvmeHost.ActorName);

        host.Tell(new NvmeHost.StartDiscovery("nvme", DiscoveryAddress, WaitForAttach: true, AttachTimeout: TimeSpan.FromSeconds(30)), TestActor);
        var first = ExpectMsg<NvmeHost.DiscoveryStarted>(TimeSpan.FromSeconds(10));
        Assert.Equal(["nvme0n1"], first.Devices.Select(d => d.Name));
        Assert.Equal("nvme0n1", _events.ExpectMsg<BlockDeviceAdded>(TimeSpan.FromSeconds(10)).Device.Name);

        // A second service at another address lists the same subsystem: it answers at once, attaching nothing.
        host.Tell(new NvmeHost.StartDiscovery("other", new TransportAddress("192.0.2.2", 8009), WaitForAttach: true, AttachTimeout: TimeSpan.FromSeconds(30)), TestActor);
        var second = ExpectMsg<NvmeHost.DiscoveryStarted>(TimeSpan.FromSeconds(10));
        Assert.Empty(second.Devices);
        var skipped = Assert.Single(second.Skipped!);
        Assert.Equal(NvmNqn, skipped.SubsystemNqn);
        Assert.Contains("'nvme'", skipped.Reason, StringComparison.Ordinal);
        _events.ExpectNoMsg(TimeSpan.FromMilliseconds(500));
        host.Tell(NvmeHost.ListBlockDevices.Instance, TestActor);
        Assert.Equal(["nvme0n1"], ExpectMsg<NvmeHost.BlockDeviceList>(TimeSpan.FromSeconds(5)).Devices.Select(d => d.Name));

        // The holder stops: the path is free, and the other service attaches it under its own name.
        host.Tell(new NvmeHost.StopDiscovery("nvme"), TestActor);
        ExpectMsg<NvmeHost.DiscoveryStopped>(TimeSpan.FromSeconds(10));
        Assert.Equal("nvme0n1", _events.ExpectMsg<BlockDeviceRemoved>(TimeSpan.FromSeconds(10)).Device.Name);
        Assert.Equal("other0n1", _events.ExpectMsg<BlockDeviceAdded>(TimeSpan.FromSeconds(10)).Device.Name);
    }
}
