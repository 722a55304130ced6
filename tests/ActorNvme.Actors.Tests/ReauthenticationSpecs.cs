using Akka.Actor;
using Akka.Configuration;
using Akka.TestKit.Xunit2;
using ActorNvme.Actors.Connection;
using ActorNvme.Actors.Settings;
using ActorNvme.Actors.Subsystem;
using ActorNvme.Protocol.Auth;
using ActorNvme.Target;
using ActorNvme.Transport;
using ActorNvme.Transport.InMemory;
using Microsoft.Extensions.Logging;
using ControllerMessages = ActorNvme.Actors.Controller.Controller;

namespace ActorNvme.Actors.Tests;

/// <summary>
/// Host-initiated re-authentication against our Target (which requires DH-HMAC-CHAP): a Live controller runs a new
/// transaction on its admin queue, then on its I/O queue; the Target counts a further successful authentication of each, and the block device
/// keeps reading back what was written before and after.
/// </summary>
public sealed class ReauthenticationSpecs : TestKit, IAsyncLifetime
{
    private const string SubsystemNqn = "nqn.2016-06.io.actornvme:reauth";
    private static readonly TransportAddress Address = new("192.0.2.40", 4420);

    private readonly InMemoryNetwork _network = new();
    private readonly AuthenticationCounter _log = new();
    private readonly NvmeTarget _target;

    public ReauthenticationSpecs()
        : base(ConfigurationFactory.ParseString("akka.loglevel = WARNING"))
    {
        _target = new NvmeTarget(logger: _log);
        _target.ListenInMemory(_network, Address);
        _target.AddSubsystem(SubsystemNqn).AddNamespace(NamespaceOptions.Ram(1024 * 1024));
    }

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync() => await _target.DisposeAsync();

    private static NvmeHostSettings Settings(DhChapHostCredentials? credentials) => NvmeHostSettings.Default with
    {
        IoQueues = 1,
        DhChap = credentials,
        Resiliency = ResiliencySettings.FromSeconds(10, 1, 0),
    };

    /// <summary>Attaches through the actors; returns the Live path's controller and the block device.</summary>
    private (IActorRef Controller, Io.BlockDevice Device) Attach(NvmeHostSettings settings)
    {
        var events = CreateTestProbe();
        Sys.EventStream.Subscribe(events.Ref, typeof(BlockDeviceAdded));
        var subsystem = Sys.ActorOf(Subsystem.Subsystem.Props(new SubsystemOptions("nvme0", SubsystemNqn, [Address], settings), new TransportAdminConnector(new InMemoryTransport(_network))), "nvme0");
        var device = events.ExpectMsg<BlockDeviceAdded>(TimeSpan.FromSeconds(30)).BlockDevice!;
        subsystem.Tell(Subsystem.Subsystem.GetStatus.Instance);
        var path = Assert.Single(ExpectMsg<Subsystem.Subsystem.Status>(TimeSpan.FromSeconds(10)).Paths);
        Assert.True(path.Live);
        return (path.Controller, device);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_live_controller_re_authenticates_its_admin_queue_then_its_io_queue_and_keeps_working(bool bidirectional)
    {
        string hostKey = DhChapSecret.Generate(32, 1);
        string controllerKey = DhChapSecret.Generate(32, 2);
        var settings = Settings(new DhChapHostCredentials(DhChapSecret.Parse(hostKey), bidirectional ? DhChapSecret.Parse(controllerKey) : null) { Groups = [DhChapGroupId.Ffdhe2048] });
        _target.SetDhChapKeys(SubsystemNqn, settings.HostNqn, hostKey, bidirectional ? controllerKey : null);
        var (controller, device) = Attach(settings);
        AwaitAssert(() => Assert.Equal(1, _log.AdminQueueAuthentications), TimeSpan.FromSeconds(10)); // each queue at its Connect
        AwaitAssert(() => Assert.Equal(1, _log.IoQueueAuthentications), TimeSpan.FromSeconds(10));

        var data = new byte[4096];
        new Random(7).NextBytes(data);
        await device.WriteAsync(16, data).AsTask().WaitAsync(TimeSpan.FromSeconds(30));

        for (int round = 1; round <= 2; round++)
        {
            controller.Tell(ControllerMessages.Reauthenticate.Instance);
            var done = ExpectMsg<ControllerMessages.Reauthenticated>(TimeSpan.FromSeconds(30));
            Assert.Equal(bidirectional, done.ControllerAuthenticated);
            Assert.Equal(DhChapGroupId.Ffdhe2048, done.Group);
            Assert.Equal(1, done.IoQueues);
            int expected = 1 + round;
            AwaitAssert(() => Assert.Equal(expected, _log.AdminQueueAuthentications), TimeSpan.FromSeconds(10));
            AwaitAssert(() => Assert.Equal(expected, _log.IoQueueAuthentications), TimeSpan.FromSeconds(10));
        }

        var back = new byte[data.Length];
        await device.ReadAsync(16, back).AsTask().WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(data, back);
        controller.Tell(ControllerMessages.GetStatus.Instance);
        Assert.Equal(Controller.ControllerState.Live, ExpectMsg<ControllerMessages.Status>(TimeSpan.FromSeconds(10)).State);
    }

    [Fact]
    public async Task New_keys_re_authenticate_every_queue_against_the_targets_rotated_keys_and_a_wrong_key_costs_only_the_path()
    {
        static DhChapHostCredentials Credentials(string hostKey, string controllerKey) =>
            new(DhChapSecret.Parse(hostKey), DhChapSecret.Parse(controllerKey)) { Groups = [DhChapGroupId.Ffdhe2048] };
        string oldHost = DhChapSecret.Generate(32, 1), oldController = DhChapSecret.Generate(32, 2);
        string newHost = DhChapSecret.Generate(32, 1), newController = DhChapSecret.Generate(32, 2);
        var settings = Settings(Credentials(oldHost, oldController));
        _target.SetDhChapKeys(SubsystemNqn, settings.HostNqn, oldHost, oldController);
        var (_, device) = Attach(settings);
        var subsystem = await Sys.ActorSelection("/user/nvme0").ResolveOne(TimeSpan.FromSeconds(10));
        AwaitAssert(() => Assert.Equal(1, _log.IoQueueAuthentications), TimeSpan.FromSeconds(10));
        var data = new byte[4096];
        new Random(9).NextBytes(data);
        await device.WriteAsync(32, data).AsTask().WaitAsync(TimeSpan.FromSeconds(30));

        // The target's keys change first (its connections stay); only the new keys can pass the re-authentication.
        _target.SetDhChapKeys(SubsystemNqn, settings.HostNqn, newHost, newController);
        subsystem.Tell(new Subsystem.Subsystem.SetKeys(Credentials(newHost, newController)));
        var set = ExpectMsg<Subsystem.Subsystem.KeysSet>(TimeSpan.FromSeconds(30));
        Assert.Equal((1, 1), (set.Paths, set.IoQueues));
        Assert.Equal((2, 2), (_log.AdminQueueAuthentications, _log.IoQueueAuthentications));

        // A wrong key: refused, naming the subsystem; the path is lost and comes back with the keys stored after it.
        subsystem.Tell(new Subsystem.Subsystem.SetKeys(Credentials(DhChapSecret.Generate(32, 1), newController)));
        var refused = ExpectMsg<Host.NvmeHost.Failed>(TimeSpan.FromSeconds(30));
        Assert.Equal(Host.HostErrorKind.AuthenticationFailed, refused.Kind);
        Assert.Contains(SubsystemNqn, refused.Message, StringComparison.Ordinal);
        subsystem.Tell(new Subsystem.Subsystem.SetKeys(Credentials(newHost, newController)));
        ExpectMsg<Subsystem.Subsystem.KeysSet>(TimeSpan.FromSeconds(30));
        var back = new byte[data.Length];
        await device.ReadAsync(32, back).AsTask().WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(data, back);
        AwaitAssert(() => Assert.True(_log.AdminQueueAuthentications >= 3, $"{_log.AdminQueueAuthentications} admin queue authentications"), TimeSpan.FromSeconds(10));
    }

    [Fact]
    public void Without_a_key_re_authentication_is_refused_naming_the_subsystem_and_the_controller_stays_live()
    {
        var (controller, _) = Attach(Settings(null));

        controller.Tell(ControllerMessages.Reauthenticate.Instance);
        var refused = ExpectMsg<ControllerMessages.ReauthenticationFailed>(TimeSpan.FromSeconds(10));
        Assert.Contains(SubsystemNqn, refused.Reason, StringComparison.Ordinal);
        Assert.Contains("dhchap-key", refused.Reason, StringComparison.Ordinal);
        Assert.Equal(0, _log.AdminQueueAuthentications);
        controller.Tell(ControllerMessages.GetStatus.Instance);
        Assert.Equal(Controller.ControllerState.Live, ExpectMsg<ControllerMessages.Status>(TimeSpan.FromSeconds(10)).State);
    }

    [Fact]
    public void A_refused_re_authentication_ends_the_association_as_an_authentication_failure_naming_the_subsystem()
    {
        // The fake controller takes the host without authentication, then answers its Negotiate with an empty message.
        const string FakeNqn = "nqn.2016-06.io.example:fake";
        var fabric = new Fakes.FakeFabric();
        var events = CreateTestProbe();
        Sys.EventStream.Subscribe(events.Ref, typeof(ControllerMessages.StateChanged));
        var settings = Settings(new DhChapHostCredentials(DhChapSecret.Parse(DhChapSecret.Generate(32, 1))));
        Sys.ActorOf(Subsystem.Subsystem.Props(new SubsystemOptions("nvme1", FakeNqn, [Address], settings), fabric), "nvme1");
        var live = events.FishForMessage<ControllerMessages.StateChanged>(m => m.State == Controller.ControllerState.Live, TimeSpan.FromSeconds(30));

        live.Controller.Tell(ControllerMessages.Reauthenticate.Instance);
        var refused = ExpectMsg<ControllerMessages.ReauthenticationFailed>(TimeSpan.FromSeconds(10));
        Assert.Contains($"DH-HMAC-CHAP with {FakeNqn}", refused.Reason, StringComparison.Ordinal);
        var failed = events.FishForMessage<ControllerMessages.StateChanged>(m => m.State == Controller.ControllerState.Failed, TimeSpan.FromSeconds(10));
        Assert.StartsWith(nameof(CloseReason.AuthenticationFailed), failed.Reason, StringComparison.Ordinal);
        Assert.Contains("re-authentication", failed.Reason, StringComparison.Ordinal);
    }

    /// <summary>Counts the Target's successful DH-HMAC-CHAP transactions (its HostAuthenticated event) on admin queues (queue 0) and on I/O queues.</summary>
    private sealed class AuthenticationCounter : ILogger
    {
        private int _adminQueue;
        private int _ioQueues;

        public int AdminQueueAuthentications => Volatile.Read(ref _adminQueue);

        public int IoQueueAuthentications => Volatile.Read(ref _ioQueues);

        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (eventId.Id == 26 && state is IReadOnlyList<KeyValuePair<string, object?>> values
                && values.FirstOrDefault(v => v.Key == "QueueId").Value is { } queue)
            {
                Interlocked.Increment(ref Convert.ToInt32(queue, System.Globalization.CultureInfo.InvariantCulture) == 0 ? ref _adminQueue : ref _ioQueues);
            }
        }
    }
}
