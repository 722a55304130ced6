using System.Threading.Channels;
using Akka.Actor;
using Akka.Hosting;
using ActorNvme.Actors.Host;
using ActorNvme.Actors.Settings;
using ActorNvme.Actors.Subsystem;
using ActorNvme.Hosting;
using ActorNvme.Target;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Hosting;

namespace ActorNvme.Host.Tests;

/// <summary>A minimal Akka.Hosting application that adds WithNvmeHost, against an in-process target.</summary>
public sealed class HostingTests : IAsyncLifetime
{
    private const string Nqn = "nqn.2016-06.io.actornvme:hosting";
    private readonly NvmeTarget _target = new();
    private TargetListener _listener = null!;

    public Task InitializeAsync()
    {
        _listener = _target.ListenTcp("127.0.0.1", 0);
        _target.AddSubsystem(Nqn).AddNamespace(NamespaceOptions.Ram(4 * 1024 * 1024));
        return Task.CompletedTask;
    }

    public async Task DisposeAsync() => await _target.DisposeAsync();

    [Fact]
    public async Task An_application_with_WithNvmeHost_receives_the_block_device_events_and_shuts_controllers_down_cleanly()
    {
        var events = Channel.CreateUnbounded<object>();
        var builder = Microsoft.Extensions.Hosting.Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Services.AddHealthChecks();
        builder.Services.AddAkka("hosting-test", akka => akka
            .AddHocon("akka.loglevel = WARNING", HoconAddMode.Prepend)
            .WithActors((system, _) =>
            {
                var listener = system.ActorOf(Props.Create(() => new Collector(events)));
                system.EventStream.Subscribe(listener, typeof(BlockDeviceAdded));
                system.EventStream.Subscribe(listener, typeof(BlockDeviceRemoved));
            })
            .WithNvmeHost(options =>
            {
                options.KeepAliveTimeout = TimeSpan.FromSeconds(2);
                options.CtrlrLossTimeout = TimeSpan.FromSeconds(4);
                options.ReconnectDelay = TimeSpan.FromSeconds(1);
                options.Discoveries.Add(new NvmeDiscoveryTarget("nvme", _listener.Address));
            }));
        using var app = builder.Build();
        await app.StartAsync();

        var added = await TakeAsync<BlockDeviceAdded>(events, TimeSpan.FromSeconds(20));
        Assert.Equal("nvme0n1", added.Device.Name);
        Assert.Equal(Nqn, added.Device.SubsystemNqn);

        // The host is in the registry, with the options applied over the library defaults.
        var registry = app.Services.GetRequiredService<ActorRegistry>();
        var host = await registry.GetAsync<NvmeHostActor>();
        // The registry is made of the subsystem's reports, which travel beside the event: it may lag by a message.
        await WaitUntilAsync(async () => (await host.Ask<NvmeHost.BlockDeviceList>(NvmeHost.ListBlockDevices.Instance, TimeSpan.FromSeconds(5))).Devices.Count == 1, TimeSpan.FromSeconds(10));
        var devices = await host.Ask<NvmeHost.BlockDeviceList>(NvmeHost.ListBlockDevices.Instance, TimeSpan.FromSeconds(5));
        Assert.Equal("nvme0n1", Assert.Single(devices.Devices).Name);
        var settings = NvmeHostSettings.Create(app.Services.GetRequiredService<ActorSystem>());
        Assert.Equal(TimeSpan.FromSeconds(4), settings.Resiliency.CtrlrLossTimeout);
        Assert.Equal(TimeSpan.FromSeconds(2), settings.KeepAliveTimeout);
        Assert.Equal(TimeSpan.FromSeconds(5), settings.ConnectTimeout); // untouched: reference.conf

        // The health check sees a Live controller.
        var health = await app.Services.GetRequiredService<HealthCheckService>().CheckHealthAsync();
        Assert.Equal(HealthStatus.Healthy, health.Entries["actornvme"].Status);

        // Stopping the application detaches the controller (CC.SHN) before the system goes.
        var subsystem = Assert.Single(_target.Subsystems);
        await app.StopAsync();
        // The target saw CC.SHN before the association ended. (The BlockDeviceRemoved event is published
        // an instant before the system terminates, so an observer actor may be stopped before it reads it.)
        Assert.Equal(1, subsystem.ShutdownsRequested);
        await WaitUntilAsync(() => subsystem.ControllerCount == 0, TimeSpan.FromSeconds(10));
    }

    [Fact]
    public async Task The_health_check_reports_a_controller_without_a_usable_path_as_unhealthy()
    {
        var builder = Microsoft.Extensions.Hosting.Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Services.AddHealthChecks();
        builder.Services.AddAkka("health-test", akka => akka
            .AddHocon("akka.loglevel = WARNING", HoconAddMode.Prepend)
            .WithNvmeHost(ctrlrLossTimeout: TimeSpan.FromSeconds(30), reconnectDelay: TimeSpan.FromSeconds(1), keepAliveTimeout: TimeSpan.FromSeconds(1)));
        using var app = builder.Build();
        await app.StartAsync();
        var host = await app.Services.GetRequiredService<ActorRegistry>().GetAsync<NvmeHostActor>();
        var attached = await host.Ask<object>(new NvmeHost.AttachController("c", _listener.Address, Nqn), TimeSpan.FromSeconds(15));
        Assert.IsType<NvmeHost.ControllerAttached>(attached);
        var checks = app.Services.GetRequiredService<HealthCheckService>();
        Assert.Equal(HealthStatus.Healthy, (await checks.CheckHealthAsync()).Entries["actornvme"].Status);

        _target.Faults.Blackhole(_listener);
        try
        {
            HealthReportEntry entry = default;
            await WaitUntilAsync(
                async () =>
                {
                    entry = (await checks.CheckHealthAsync()).Entries["actornvme"];
                    return entry.Status == HealthStatus.Unhealthy;
                },
                TimeSpan.FromSeconds(15));
            Assert.Contains("c/path-", entry.Description, StringComparison.Ordinal);
        }
        finally
        {
            _target.Faults.Restore(_listener);
        }

        await app.StopAsync();
    }

    [Fact]
    public void Options_write_hocon_only_for_what_is_set()
    {
        Assert.Equal(string.Empty, new NvmeHostOptions().ToHocon());
        var options = new NvmeHostOptions
        {
            HostNqn = "nqn.2014-08.org.example:\"quoted\"",
            CtrlrLossTimeout = ResiliencySettings.Forever,
            ReconnectDelay = TimeSpan.FromMilliseconds(1500),
            ReferralDepth = 2,
            DiscoverySecureChannel = true,
            Psk = ActorNvme.Protocol.Tls.NvmeTlsPsk.Generate(),
            PskIdentityVersion = 1,
        };
        string hocon = options.ToHocon();
        Assert.Contains("ctrlr-loss-timeout = -1s\n", hocon, StringComparison.Ordinal);
        Assert.Contains("reconnect-delay = 1500ms", hocon, StringComparison.Ordinal);
        Assert.Contains("discovery.referral-depth = 2", hocon, StringComparison.Ordinal);
        Assert.DoesNotContain("keep-alive-timeout", hocon, StringComparison.Ordinal);

        var settings = NvmeHostSettings.Create(Akka.Configuration.ConfigurationFactory.ParseString(hocon));
        Assert.Equal("nqn.2014-08.org.example:\"quoted\"", settings.HostNqn);
        Assert.True(settings.Resiliency.ReconnectsForever);
        Assert.Equal(TimeSpan.FromMilliseconds(1500), settings.Resiliency.ReconnectDelay);
        Assert.Equal(2, settings.ReferralDepth);
        Assert.True(settings.DiscoverySecureChannel);
        Assert.NotNull(settings.TlsPsk);
        Assert.Equal(1, settings.TlsIdentityVersion);
        Assert.False(NvmeHostSettings.Create(Akka.Configuration.ConfigurationFactory.ParseString(new NvmeHostOptions { ReferralDepth = 2 }.ToHocon())).DiscoverySecureChannel);
    }

    // Awaited, not blocking: a test thread blocked in a wait would take a pool thread the actors need.
    private static async Task<T> TakeAsync<T>(Channel<object> events, TimeSpan timeout)
    {
        using var deadline = new CancellationTokenSource(timeout);
        var seen = new List<string>();
        try
        {
            while (true)
            {
                var next = await events.Reader.ReadAsync(deadline.Token);
                if (next is T match)
                {
                    return match;
                }

                seen.Add(next.ToString() ?? next.GetType().Name);
            }
        }
        catch (OperationCanceledException)
        {
            throw new TimeoutException($"no {typeof(T).Name} within {timeout}; saw: {string.Join("; ", seen)}");
        }
    }

    private static Task WaitUntilAsync(Func<bool> condition, TimeSpan timeout) => WaitUntilAsync(() => Task.FromResult(condition()), timeout);

    private static async Task WaitUntilAsync(Func<Task<bool>> condition, TimeSpan timeout)
    {
        var until = DateTime.UtcNow + timeout;
        while (!await condition())
        {
            if (DateTime.UtcNow > until)
            {
                throw new TimeoutException($"condition not met within {timeout}");
            }

            await Task.Delay(50);
        }
    }

    private sealed class Collector : ReceiveActor
    {
        public Collector(Channel<object> events) => ReceiveAny(m => events.Writer.TryWrite(m));
    }
}
