using System.Collections.Concurrent;
using Akka.Actor;
using Akka.Configuration;
using ActorNvme.Actors.Connection;
using ActorNvme.Actors.Settings;
using ActorNvme.Actors.Subsystem;
using ActorNvme.Protocol.Nvme;
using ActorNvme.Target;
using ActorNvme.Transport;

namespace ActorNvme.Io.Tests;

/// <summary>
/// Two hosts (two host identifiers, two subsystem actors) on one namespace of our Target: the second fences the
/// first with Reservation Acquire / preempt-and-abort, and the target refuses the first one's writes from then on.
/// </summary>
public sealed class ReservationFencingTests
{
    private const string Nqn = "nqn.2024-01.io.actornvme:fencing";
    private const ulong KeyA = 0xA11CE;
    private const ulong KeyB = 0xB0B;
    private static readonly Guid HostIdA = new("0a0a0a0a-1111-4000-8000-00000000000a");
    private static readonly Guid HostIdB = new("0b0b0b0b-2222-4000-8000-00000000000b");
    private static readonly Config Quiet = ConfigurationFactory.ParseString("akka.loglevel = WARNING\nakka.stdout-loglevel = WARNING");

    private static NvmeHostSettings HostSettings(Guid hostId) => IoRig.FastSettings() with
    {
        HostId = hostId,
        HostNqn = $"nqn.2014-08.org.nvmexpress:uuid:{hostId}",
        IoRetries = 3,
    };

    private static byte[] Block(byte fill)
    {
        var data = new byte[512];
        Array.Fill(data, fill);
        return data;
    }

    [Fact]
    public async Task Preempt_and_abort_fences_the_old_holder_whose_next_write_gets_Reservation_Conflict()
    {
        await using var rig = await TwoHostRig.StartAsync();
        var a = await rig.AttachAsync("hosta", HostSettings(HostIdA), rig.ListenerA);
        var b = await rig.AttachAsync("hostb", HostSettings(HostIdB), rig.ListenerB);
        Assert.True(a.SupportsReservations);

        var fenceA = await a.FenceAsync(KeyA);
        Assert.Null(fenceA.Preempted);
        Assert.False(fenceA.AlreadyHeld);
        await a.WriteAsync(0, Block(0xAA));
        Assert.Equal(ReservationType.WriteExclusive, rig.Reservations.Type);
        Assert.Equal(HostIdA, rig.Reservations.Holder);

        // B is not the holder: the target refuses its write, and the device does not retry it.
        await b.ReservationRegisterAsync(ReservationRegisterAction.Register, 0, KeyB);
        var refused = await Assert.ThrowsAsync<BlockDeviceException>(async () => await b.WriteAsync(1, Block(0xBB)));
        Assert.Equal(BlockDeviceErrorKind.ReservationConflict, refused.Kind);

        // B takes over: A's key is preempted and A's commands aborted.
        var fenceB = await b.FenceAsync(KeyB);
        var preempted = Assert.IsType<ReservationRegistrant>(fenceB.Preempted);
        Assert.Equal(KeyA, preempted.Key);
        Assert.Equal(NamespaceReservations.HostIdOf(HostIdA), preempted.HostId);
        Assert.Equal(HostIdB, rig.Reservations.Holder);
        Assert.Null(rig.Reservations.KeyOf(HostIdA));

        long conflictsBefore = rig.Reservations.Conflicts;
        var fenced = await Assert.ThrowsAsync<BlockDeviceException>(async () => await a.WriteAsync(0, Block(0xA2)));
        Assert.Equal(BlockDeviceErrorKind.ReservationConflict, fenced.Kind);
        Assert.Contains("reservation conflict", fenced.Message, StringComparison.OrdinalIgnoreCase);
        Assert.Equal(1, a.ReservationConflicts);
        Assert.Equal(conflictsBefore + 1, rig.Reservations.Conflicts); // one attempt reached the target: not retried

        await b.WriteAsync(0, Block(0xB1));
        await b.WriteAsync(1, Block(0xB2));
        var read = new byte[1024];
        await a.ReadAsync(0, read); // Write Exclusive: the fenced host still reads
        Assert.All(read.AsSpan(0, 512).ToArray(), x => Assert.Equal(0xB1, x));
        Assert.All(read.AsSpan(512).ToArray(), x => Assert.Equal(0xB2, x));

        var report = await a.ReservationReportAsync();
        Assert.Equal(ReservationType.WriteExclusive, report.Type);
        Assert.Equal(KeyB, Assert.Single(report.Registrants).Key);

        // Idempotent: B fencing again finds it held.
        Assert.True((await b.FenceAsync(KeyB)).AlreadyHeld);
    }

    [Fact]
    public async Task A_write_of_the_old_holder_waiting_at_the_target_is_aborted_by_the_preempt_and_never_lands()
    {
        await using var rig = await TwoHostRig.StartAsync();
        var a = await rig.AttachAsync("hosta", HostSettings(HostIdA), rig.ListenerA);
        var b = await rig.AttachAsync("hostb", HostSettings(HostIdB), rig.ListenerB);
        await a.FenceAsync(KeyA);
        await b.ReservationRegisterAsync(ReservationRegisterAction.Register, 0, KeyB);

        // A's path executes I/O late (a slow backend): its write waits at the target.
        rig.Target.Faults.DelayIoExecution(rig.ListenerA, TimeSpan.FromSeconds(30));
        var pending = a.WriteAsync(5, Block(0xA5)).AsTask();
        await IoRig.WaitUntilAsync(() => rig.Target.Faults.DelayedWritesPending == 1, "A's write to wait at the target");

        await b.ReservationAcquireAsync(ReservationAcquireAction.PreemptAndAbort, ReservationType.WriteExclusive, KeyB, KeyA);

        var error = await Assert.ThrowsAsync<BlockDeviceException>(() => pending.WaitAsync(IoRig.Deadline));
        Assert.Equal(BlockDeviceErrorKind.ReservationConflict, error.Kind); // aborted, then refused when retried
        Assert.True(rig.Target.Faults.AbortedCommands >= 1);
        rig.Target.Faults.DelayIoExecution(rig.ListenerA, TimeSpan.Zero);
        var read = new byte[512];
        await b.ReadAsync(5, read);
        Assert.All(read, x => Assert.Equal(0, x));
    }

    [Fact]
    public async Task With_a_writer_fence_the_block_device_is_handed_out_only_after_its_reservation_is_held()
    {
        await using var rig = await TwoHostRig.StartAsync();
        var a = await rig.AttachAsync("hosta", HostSettings(HostIdA), rig.ListenerA);
        await a.FenceAsync(KeyA);

        // B is a new owner taking over from A (which is cut off, not shut down).
        var b = await rig.AttachAsync("hostb", HostSettings(HostIdB), rig.ListenerB, new WriterFence(KeyB));
        Assert.Equal(HostIdB, rig.Reservations.Holder); // held before BlockDeviceAdded
        var fenced = Assert.Single(rig.Events.OfType<WriterFenced>());
        Assert.Equal(KeyA, fenced.Fence.Preempted?.Key);
        Assert.True(rig.Events.ToList().IndexOf(fenced) < rig.Events.ToList().FindIndex(e => e is BlockDeviceAdded added && added.Device.Name == "hostbn1"));

        await b.WriteAsync(0, Block(0xB0));
        var error = await Assert.ThrowsAsync<BlockDeviceException>(async () => await a.WriteAsync(0, Block(0xA0)));
        Assert.Equal(BlockDeviceErrorKind.ReservationConflict, error.Kind);
    }

    [Fact]
    public async Task A_graceful_detach_gives_the_reservation_up_so_the_next_owner_preempts_nobody()
    {
        await using var rig = await TwoHostRig.StartAsync();
        var a = await rig.AttachAsync("hosta", HostSettings(HostIdA), rig.ListenerA, new WriterFence(KeyA));
        Assert.Equal(HostIdA, rig.Reservations.Holder);
        await a.WriteAsync(0, Block(0xA0));

        rig.Actors["hosta"].Tell(new ActorNvme.Actors.Subsystem.Subsystem.Detach("handed over", RemovalReason.Detached));
        await IoRig.WaitUntilAsync(() => rig.Subsystem.ShutdownsRequested >= 1, "A's controller to shut down (CC.SHN)");
        Assert.Null(rig.Reservations.KeyOf(HostIdA)); // unregistered before CC.SHN
        Assert.Equal(ReservationType.None, rig.Reservations.Type);

        await rig.AttachAsync("hostb", HostSettings(HostIdB), rig.ListenerB, new WriterFence(KeyB));
        var fenced = rig.Events.OfType<WriterFenced>().Single(f => f.BlockDevice == "hostbn1");
        Assert.Null(fenced.Fence.Preempted);
        Assert.Equal(HostIdB, rig.Reservations.Holder);
    }

    [Fact]
    public async Task A_namespace_that_cannot_be_fenced_is_handed_to_writers_only_after_the_holdback()
    {
        // RESCAP 0: no fence is possible, so the device waits the holdback (the time a previous owner that may still
        // run is given to stop) before anyone may write; the same device with a fence is handed out at once.
        await using var rig = await TwoHostRig.StartAsync(reportsReservations: false);
        var holdback = TimeSpan.FromSeconds(2);
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var device = await rig.AttachAsync("hosta", HostSettings(HostIdA), rig.ListenerA, new WriterFence(KeyA, UnfencedHoldback: holdback));
        Assert.False(device.SupportsReservations);
        Assert.True(clock.Elapsed >= holdback, $"handed out {clock.Elapsed.TotalSeconds:0.00} s after the attach, before the {holdback.TotalSeconds:0} s holdback");
        Assert.Empty(rig.Events.OfType<WriterFenced>());
        Assert.Equal(ReservationType.None, rig.Reservations.Type);
        await device.WriteAsync(0, Block(0x5A));
    }

    /// <summary>Our Target with one RAM namespace and two listeners (one per host), and one actor system for both hosts.</summary>
    private sealed class TwoHostRig : IAsyncDisposable
    {
        private readonly ConcurrentQueue<object> _events = new();

        private TwoHostRig(NvmeTarget target, NvmSubsystem subsystem, TargetListener listenerA, TargetListener listenerB, ActorSystem system)
        {
            Target = target;
            Subsystem = subsystem;
            ListenerA = listenerA;
            ListenerB = listenerB;
            System = system;
            var collector = system.ActorOf(Props.Create(() => new Collector(_events)));
            system.EventStream.Subscribe(collector, typeof(BlockDeviceAdded));
            system.EventStream.Subscribe(collector, typeof(WriterFenced));
        }

        public NvmeTarget Target { get; }

        public NvmSubsystem Subsystem { get; }

        public TargetListener ListenerA { get; }

        public TargetListener ListenerB { get; }

        public ActorSystem System { get; }

        public NamespaceReservations Reservations => Subsystem.FindNamespace(1)!.Reservations;

        public IReadOnlyCollection<object> Events => _events;

        public ConcurrentDictionary<string, IActorRef> Actors { get; } = new();

        public static Task<TwoHostRig> StartAsync(bool reportsReservations = true)
        {
            var target = new NvmeTarget();
            var subsystem = target.AddSubsystem(Nqn);
            subsystem.AddNamespace(NamespaceOptions.Ram(8L * 1024 * 1024) with { ReportsReservations = reportsReservations });
            var listenerA = target.ListenTcp("127.0.0.1", 0);
            var listenerB = target.ListenTcp("127.0.0.1", 0);
            var system = ActorSystem.Create($"fencing-{Guid.NewGuid():N}", Quiet);
            return Task.FromResult(new TwoHostRig(target, subsystem, listenerA, listenerB, system));
        }

        public async Task<BlockDevice> AttachAsync(string name, NvmeHostSettings settings, TargetListener listener, WriterFence? fence = null)
        {
            var options = new SubsystemOptions(name, Nqn, [listener.Address], settings.Validated(), Fence: fence);
            Actors[name] = System.ActorOf(ActorNvme.Actors.Subsystem.Subsystem.Props(options, TransportAdminConnector.Tcp(), TransportIoQueueConnector.Tcp()), name);
            string device = $"{name}n1";
            await IoRig.WaitUntilAsync(() => _events.OfType<BlockDeviceAdded>().Any(a => a.Device.Name == device), $"block device {device}");
            return _events.OfType<BlockDeviceAdded>().Last(a => a.Device.Name == device).BlockDevice!;
        }

        public async ValueTask DisposeAsync()
        {
            await System.Terminate().WaitAsync(IoRig.Deadline);
            await Target.DisposeAsync();
        }

        private sealed class Collector : ReceiveActor
        {
            public Collector(ConcurrentQueue<object> events) => ReceiveAny(events.Enqueue);
        }
    }
}
