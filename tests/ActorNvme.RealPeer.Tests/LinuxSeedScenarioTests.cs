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
/// the subsystems again under new names. Twenty runs (<c>ACTORNVME_LINUX_CYCLES</c> to change it), the
/// ledger empty after each deletion; the host's registry is asked every 20 ms throughout and its slowest
/// answer reported (bounded generously: timings are for the log, not for the assertion).
/// </summary>
public sealed class LinuxSeedScenarioTests : TestKit
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(60);
    private static readonly TimeSpan AnswerBound = TimeSpan.FromSeconds(1);

    private static int Cycles =>
        int.TryParse(Environment.GetEnvironmentVariable("ACTORNVME_LINUX_CYCLES"), System.Globalization.CultureInfo.InvariantCulture, out int cycles) && cycles > 0 ? cycles : 20;
    private readonly ITestOutputHelper _output;

    public LinuxSeedScenarioTests(ITestOutputHelper output)
        : base(ConfigurationFactory.ParseString("akka.loglevel = WARNING"), output: output)
    {
        _output = output;
    }

    [RealPeerFact]
    public async Task Remove_interface_then_restore_reattaches_under_new_names_every_time()
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
        int cycles = Cycles;
        using var probing = new CancellationTokenSource();
        var probe = Task.Run(() => ProbeRegistryAsync(host, probing.Token));
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var removedAfter = new List<TimeSpan>();
        var addedAfter = new List<TimeSpan>();

        for (int run = 0; run < cycles; run++)
        {
            try
            {
                target.ExecChecked("ifc-down", TimeSpan.FromSeconds(30));
                clock.Restart();
                var removed = ExpectDevices<BlockDeviceRemoved>(events, subsystems);
                removedAfter.Add(clock.Elapsed);
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
                clock.Restart();
            }

            var added = ExpectDevices<BlockDeviceAdded>(events, subsystems).Select(e => e.Device.Name).ToHashSet();
            addedAfter.Add(clock.Elapsed);
            var expected = Enumerable.Range(nextIndex, subsystems).Select(i => $"nvme{i}n1").ToHashSet();
            Assert.Equal(expected, added);
            nextIndex += subsystems;
            _output.WriteLine($"run {run + 1}/{cycles}: {string.Join(", ", current.Order())} removed {removedAfter[^1].TotalSeconds:F2} s after ip addr del / link down; {string.Join(", ", added.Order())} attached {addedAfter[^1].TotalSeconds:F2} s after the interface came back");
            current = added;
        }

        await probing.CancelAsync();
        var (answers, slowest) = await probe;
        _output.WriteLine($"over {cycles} runs: removed after {removedAfter.Average(t => t.TotalSeconds):F2} s mean / {removedAfter.Max().TotalSeconds:F2} s max; re-attached after {addedAfter.Average(t => t.TotalSeconds):F2} s mean / {addedAfter.Max().TotalSeconds:F2} s max; the registry answered {answers} asks, slowest {slowest.TotalMilliseconds:F1} ms");
        Assert.True(answers > 0, "the registry probe got no answer");
        Assert.True(slowest < AnswerBound, $"the host's registry took {slowest.TotalMilliseconds:F0} ms to answer (bound {AnswerBound.TotalMilliseconds} ms)");

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

    /// <summary>Asks the host for its block devices every 20 ms until cancelled: how many answers, and the slowest.</summary>
    private static async Task<(int Answers, TimeSpan Slowest)> ProbeRegistryAsync(IActorRef host, CancellationToken stop)
    {
        int answers = 0;
        var slowest = TimeSpan.Zero;
        while (!stop.IsCancellationRequested)
        {
            long started = System.Diagnostics.Stopwatch.GetTimestamp();
            await host.Ask<NvmeHost.BlockDeviceList>(NvmeHost.ListBlockDevices.Instance, TimeSpan.FromSeconds(10));
            var took = System.Diagnostics.Stopwatch.GetElapsedTime(started);
            answers++;
            slowest = took > slowest ? took : slowest;
            try
            {
                await Task.Delay(20, stop);
            }
            catch (OperationCanceledException)
            {
                break;
            }
        }

        return (answers, slowest);
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
