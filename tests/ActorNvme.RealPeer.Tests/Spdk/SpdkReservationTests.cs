using System.Collections.Concurrent;
using Akka.Actor;
using Akka.Configuration;
using ActorNvme.Actors.Connection;
using ActorNvme.Actors.Settings;
using ActorNvme.Actors.Subsystem;
using ActorNvme.Io;
using ActorNvme.Protocol.Nvme;
using ActorNvme.Transport;
using Xunit;

namespace ActorNvme.RealPeer.Tests.Spdk;

/// <summary>
/// Single writer proven at a target nobody here wrote: two hosts (two host identifiers) on one namespace of
/// SPDK's nvmf_tgt; A holds Write Exclusive, B fences it with preempt-and-abort, A's next write is refused with
/// Reservation Conflict and B's writes land. Then the same takeover through <see cref="WriterFence"/>: B's block
/// device is handed out only once SPDK reports B as the holder.
/// </summary>
public sealed class SpdkReservationTests(SpdkReservationTests.Peer peer) : IClassFixture<SpdkReservationTests.Peer>
{
    private const ulong KeyA = 0x0A0A_0000_0000_00A1;
    private const ulong KeyB = 0x0B0B_0000_0000_00B2;
    private static readonly TimeSpan Deadline = TimeSpan.FromMinutes(1);
    private static readonly Config Quiet = ConfigurationFactory.ParseString("akka.loglevel = WARNING\nakka.stdout-loglevel = WARNING");

    private static NvmeHostSettings Host(string id) => NvmeHostSettings.Default with
    {
        HostId = Guid.Parse(id),
        HostNqn = $"nqn.2014-08.org.nvmexpress:uuid:{id}",
        IoQueues = 1,
        IoRetries = 3,
    };

    private static byte[] Block(byte fill)
    {
        var data = new byte[512];
        Array.Fill(data, fill);
        return data;
    }

    [SpdkPeerFact]
    public async Task Preempt_and_abort_fences_the_old_holder_at_SPDK()
    {
        const string nqn = "nqn.2016-06.io.spdk:resv1";
        await peer.EnsureSubsystemAsync(nqn, "Resv1");
        using var hosts = new Hosts();
        var a = await hosts.AttachAsync("hosta", nqn, peer.Target.Port, Host("1a1a1a1a-0000-4000-8000-0000000000a1"));
        var b = await hosts.AttachAsync("hostb", nqn, peer.Target.Port, Host("2b2b2b2b-0000-4000-8000-0000000000b2"));
        Assert.True(a.SupportsReservations, $"SPDK reports RESCAP 0x{(byte)a.ReservationCapabilities:x2}");

        var fenceA = await a.FenceAsync(KeyA).WaitAsync(Deadline);
        Assert.Null(fenceA.Preempted);
        await a.WriteAsync(0, Block(0xA1)).AsTask().WaitAsync(Deadline);

        var fenceB = await b.FenceAsync(KeyB).WaitAsync(Deadline);
        Assert.Equal(KeyA, fenceB.Preempted?.Key);
        var report = await b.ReservationReportAsync().WaitAsync(Deadline);
        Assert.Equal(ReservationType.WriteExclusive, report.Type);
        Assert.Equal(KeyB, report.Holder?.Key);
        Assert.DoesNotContain(report.Registrants, r => r.Key == KeyA);

        var refused = await Assert.ThrowsAsync<BlockDeviceException>(async () => await a.WriteAsync(0, Block(0xA2)).AsTask().WaitAsync(Deadline));
        Assert.Equal(BlockDeviceErrorKind.ReservationConflict, refused.Kind);
        Assert.Equal(1, a.ReservationConflicts);

        await b.WriteAsync(0, Block(0xB1)).AsTask().WaitAsync(Deadline);
        await b.WriteAsync(1, Block(0xB2)).AsTask().WaitAsync(Deadline);
        var read = new byte[1024];
        await a.ReadAsync(0, read).AsTask().WaitAsync(Deadline); // Write Exclusive: A still reads
        Assert.All(read.AsSpan(0, 512).ToArray(), x => Assert.Equal(0xB1, x));
        Assert.All(read.AsSpan(512).ToArray(), x => Assert.Equal(0xB2, x));

        await b.ReservationReleaseAsync(ReservationReleaseAction.Clear, ReservationType.WriteExclusive, KeyB).AsTask().WaitAsync(Deadline);
    }

    [SpdkPeerFact]
    public async Task A_writer_fence_hands_the_device_out_only_after_SPDK_made_this_host_the_holder()
    {
        const string nqn = "nqn.2016-06.io.spdk:resv2";
        await peer.EnsureSubsystemAsync(nqn, "Resv2");
        using var hosts = new Hosts();
        var a = await hosts.AttachAsync("hosta", nqn, peer.Target.Port, Host("3a3a3a3a-0000-4000-8000-0000000000a3"));
        await a.FenceAsync(KeyA).WaitAsync(Deadline);

        var b = await hosts.AttachAsync("hostb", nqn, peer.Target.Port, Host("4b4b4b4b-0000-4000-8000-0000000000b4"), new WriterFence(KeyB));
        var fenced = Assert.Single(hosts.Events.OfType<WriterFenced>());
        Assert.Equal(KeyA, fenced.Fence.Preempted?.Key);
        Assert.Equal(KeyB, (await a.ReservationReportAsync().WaitAsync(Deadline)).Holder?.Key);

        await b.WriteAsync(3, Block(0xB3)).AsTask().WaitAsync(Deadline);
        var refused = await Assert.ThrowsAsync<BlockDeviceException>(async () => await a.WriteAsync(3, Block(0xA3)).AsTask().WaitAsync(Deadline));
        Assert.Equal(BlockDeviceErrorKind.ReservationConflict, refused.Kind);

        await b.ReservationReleaseAsync(ReservationReleaseAction.Clear, ReservationType.WriteExclusive, KeyB).AsTask().WaitAsync(Deadline);
    }

    /// <summary>One nvmf_tgt for the class; each fact makes its own subsystem open to any host.</summary>
    public sealed class Peer : IAsyncLifetime
    {
        private readonly HashSet<string> _subsystems = [];

        public SpdkTarget Target { get; private set; } = null!;

        public async Task InitializeAsync()
        {
            if (SpdkTarget.Bundle is not null)
            {
                Target = await SpdkTarget.StartAsync();
            }
        }

        public async Task EnsureSubsystemAsync(string nqn, string bdev)
        {
            if (_subsystems.Add(nqn))
            {
                await Target.AddSubsystemAsync(nqn, bdev);
                await Target.RpcAsync("nvmf_subsystem_allow_any_host", "--allow-any-host", nqn);
            }
        }

        public async Task DisposeAsync()
        {
            if (Target is not null)
            {
                await Target.DisposeAsync();
            }
        }
    }

    /// <summary>An actor system holding the hosts' subsystem actors; block devices come from BlockDeviceAdded, as users get them.</summary>
    private sealed class Hosts : IDisposable
    {
        private readonly ConcurrentQueue<object> _events = new();
        private readonly ActorSystem _system = ActorSystem.Create($"spdk-resv-{Guid.NewGuid():N}", Quiet);

        public Hosts()
        {
            var collector = _system.ActorOf(Props.Create(() => new Collector(_events)));
            _system.EventStream.Subscribe(collector, typeof(BlockDeviceAdded));
            _system.EventStream.Subscribe(collector, typeof(WriterFenced));
        }

        public IReadOnlyCollection<object> Events => _events;

        public async Task<BlockDevice> AttachAsync(string name, string nqn, int port, NvmeHostSettings settings, WriterFence? fence = null)
        {
            var options = new SubsystemOptions(name, nqn, [new TransportAddress("127.0.0.1", port)], settings.Validated(), Fence: fence);
            _system.ActorOf(Subsystem.Props(options, TransportAdminConnector.Tcp(), TransportIoQueueConnector.Tcp()), name);
            string device = $"{name}n1";
            var until = DateTime.UtcNow + Deadline;
            while (!_events.OfType<BlockDeviceAdded>().Any(a => a.Device.Name == device))
            {
                if (DateTime.UtcNow > until)
                {
                    throw new TimeoutException($"no block device {device} within {Deadline}");
                }

                await Task.Delay(20);
            }

            return _events.OfType<BlockDeviceAdded>().Last(a => a.Device.Name == device).BlockDevice!;
        }

        public void Dispose() => _system.Terminate().Wait(Deadline);

        private sealed class Collector : ReceiveActor
        {
            public Collector(ConcurrentQueue<object> events) => ReceiveAny(events.Enqueue);
        }
    }
}
