using Akka.Actor;
using Akka.Configuration;
using Akka.TestKit.Xunit2;
using ActorNvme.Actors.Connection;
using ActorNvme.Actors.Host;
using ActorNvme.Actors.Settings;
using ActorNvme.Actors.Subsystem;
using ActorNvme.RealPeer.Tests.Harness;
using ActorNvme.Transport;
using Xunit;
using Xunit.Abstractions;

namespace ActorNvme.RealPeer.Tests;

/// <summary>
/// SPDK's nvmf_discovery_remove_ifc against the Linux kernel target: discovery attaches every NVM
/// subsystem of nvmet's log; the guest's interface is removed (<c>ip addr del</c>, <c>ip link set
/// down</c>); the loss timeout deletes the controllers; the interface comes back; discovery attaches
/// the subsystems again under new names. Three runs, the ledger empty after each deletion.
/// </summary>
public sealed class LinuxSeedScenarioTests : TestKit
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(60);
    private readonly ITestOutputHelper _output;

    public LinuxSeedScenarioTests(ITestOutputHelper output)
        : base(ConfigurationFactory.ParseString("akka.loglevel = WARNING"), output: output)
    {
        _output = output;
    }

    [RealPeerFact]
    public async Task Remove_interface_then_restore_reattaches_under_new_names_three_times()
    {
        var target = LinuxTarget.Current;
        var settings = NvmeHostSettings.Default with
        {
            KeepAliveTimeout = TimeSpan.FromSeconds(2),
            ConnectTimeout = TimeSpan.FromSeconds(3), // the guest is emulated (TCG): leave it room to answer
            AdminCommandTimeout = TimeSpan.FromSeconds(5),
            Resiliency = ResiliencySettings.FromSeconds(2, 1, 1),
        };
        var events = CreateTestProbe();
        Sys.EventStream.Subscribe(events.Ref, typeof(BlockDeviceAdded));
        Sys.EventStream.Subscribe(events.Ref, typeof(BlockDeviceRemoved));
        var host = Sys.ActorOf(NvmeHost.Props(settings, TransportAdminConnector.Tcp()), NvmeHost.ActorName);
        var discovery = new TransportAddress(target.Address.ToString(), LinuxTarget.DiscoveryPort);

        host.Tell(new NvmeHost.StartDiscovery("nvme", discovery, WaitForAttach: true, AttachTimeout: Deadline));
        var started = ExpectMsg<NvmeHost.DiscoveryStarted>(Deadline + TimeSpan.FromSeconds(10));
        int subsystems = started.Devices.Count;
        Assert.True(subsystems >= 2, $"nvmet's default configuration has two subsystems, attached: {string.Join(", ", started.Devices.Select(d => d.Name))}");
        var current = ExpectDevices<BlockDeviceAdded>(events, subsystems).Select(e => e.Device.Name).ToHashSet();
        int nextIndex = subsystems;

        for (int run = 0; run < 3; run++)
        {
            try
            {
                target.ExecChecked("ifc-down", TimeSpan.FromSeconds(30));
                var removed = ExpectDevices<BlockDeviceRemoved>(events, subsystems);
                Assert.Equal(current, removed.Select(e => e.Device.Name).ToHashSet());
                Assert.All(removed, e => Assert.Contains("ctrlr-loss-timeout", e.Reason, StringComparison.Ordinal));
                AwaitAssert(
                    () =>
                    {
                        var holders = OwnershipLedger.Get(Sys).Snapshot().Keys.Where(owner => !owner.EndsWith("/dc", StringComparison.Ordinal)).ToArray();
                        Assert.True(holders.Length == 0, $"run {run}: still held by {string.Join(", ", holders)}");
                    },
                    TimeSpan.FromSeconds(10));
            }
            finally
            {
                target.ExecChecked("ifc-up", TimeSpan.FromSeconds(30));
            }

            var added = ExpectDevices<BlockDeviceAdded>(events, subsystems).Select(e => e.Device.Name).ToHashSet();
            var expected = Enumerable.Range(nextIndex, subsystems).Select(i => $"nvme{i}n1").ToHashSet();
            Assert.Equal(expected, added);
            nextIndex += subsystems;
            _output.WriteLine($"run {run + 1}/3: {string.Join(", ", current.Order())} removed after ip addr del / link down; {string.Join(", ", added.Order())} attached after the interface came back");
            current = added;
        }

        // The registry is made of the subsystems' reports, which travel beside the events: it may lag by a message.
        await AwaitAssertAsync(
            async () =>
            {
                var list = await host.Ask<NvmeHost.BlockDeviceList>(NvmeHost.ListBlockDevices.Instance, TimeSpan.FromSeconds(5));
                Assert.Equal(current, list.Devices.Select(d => d.Name).ToHashSet());
            },
            TimeSpan.FromSeconds(10));
        host.Tell(new NvmeHost.StopDiscovery("nvme"));
        ExpectMsg<NvmeHost.DiscoveryStopped>();
        AwaitAssert(() => Assert.True(OwnershipLedger.Get(Sys).Total.IsEmpty, $"after stop: {OwnershipLedger.Get(Sys).Total}"), TimeSpan.FromSeconds(15));
    }

    private static List<T> ExpectDevices<T>(Akka.TestKit.TestProbe probe, int count)
        where T : class
    {
        var received = new List<T>();
        while (received.Count < count)
        {
            received.Add(probe.ExpectMsg<T>(Deadline));
        }

        return received;
    }
}
