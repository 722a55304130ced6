using Akka.Actor;
using Akka.Hosting;
using ActorNvme.Actors.Host;
using ActorNvme.Actors.Settings;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace ActorNvme.Hosting;

/// <summary>
/// Akka.Hosting integration: <c>services.AddAkka("name", b => b.WithNvmeHost(...))</c> starts the
/// ActorNvme host (<c>/user/nvme</c>), registers it in the <see cref="ActorRegistry"/> under
/// <see cref="NvmeHostActor"/>, shuts its controllers down cleanly (CC.SHN) in CoordinatedShutdown
/// before the system stops, and adds a health check reporting failed controllers.
/// </summary>
/// <example>
/// <code>
/// builder.Services.AddAkka("storage", akka => akka
///     .WithNvmeHost(o =>
///     {
///         o.CtrlrLossTimeout = TimeSpan.FromSeconds(30);
///         o.Discoveries.Add(new NvmeDiscoveryTarget("nvme", new TransportAddress("10.0.0.5", 8009)));
///     }));
/// // later: var host = await registry.GetAsync&lt;NvmeHostActor&gt;();
/// </code>
/// </example>
public static class NvmeHostingExtensions
{
    /// <summary>Adds the host with every setting in <paramref name="options"/>.</summary>
    public static AkkaConfigurationBuilder WithNvmeHost(this AkkaConfigurationBuilder builder, NvmeHostOptions options)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(options);
        var discoveries = options.Discoveries.ToArray();
        string hocon = options.ToHocon();
        if (hocon.Length > 0)
        {
            builder.AddHocon(hocon, HoconAddMode.Prepend);
        }

        builder.AddHocon(NvmeHostSettings.ReferenceConfig, HoconAddMode.Append);
        builder.WithActors((system, registry) =>
        {
            SchedulerStart.Ensure(system);
            var settings = NvmeHostSettings.Create(system);
            if (options.EnableMetrics ?? true)
            {
                NvmeMetrics.Get(system);
            }

            var host = system.ActorOf(NvmeHost.Props(settings, options.Connector), NvmeHost.ActorName);
            registry.Register<NvmeHostActor>(host);
            NvmeHostShutdown.Register(system, host, options.ShutdownTimeout);
            foreach (var discovery in discoveries)
            {
                host.Tell(new NvmeHost.StartDiscovery(discovery.Name, discovery.Address, discovery.HostNqn, SecureChannel: discovery.SecureChannel));
            }
        });

        if (options.EnableHealthCheck ?? true)
        {
            string name = string.IsNullOrWhiteSpace(options.HealthCheckName) ? "actornvme" : options.HealthCheckName;
            builder.WithHealthCheck(new AkkaHealthCheckRegistration(name, new NvmeHostHealthCheck(), HealthStatus.Unhealthy, ["actornvme", "akka"]));
        }

        return builder;
    }

    /// <summary>Adds the host, configured by <paramref name="configure"/>.</summary>
    public static AkkaConfigurationBuilder WithNvmeHost(this AkkaConfigurationBuilder builder, Action<NvmeHostOptions> configure)
    {
        ArgumentNullException.ThrowIfNull(configure);
        var options = new NvmeHostOptions();
        configure(options);
        return builder.WithNvmeHost(options);
    }

    /// <summary>
    /// Adds the host with the settings people change most; the others keep their defaults (akka.hocon,
    /// then the library's reference.conf).
    /// </summary>
    public static AkkaConfigurationBuilder WithNvmeHost(
        this AkkaConfigurationBuilder builder,
        string? hostNqn = null,
        TimeSpan? ctrlrLossTimeout = null,
        TimeSpan? reconnectDelay = null,
        TimeSpan? fastIoFailTimeout = null,
        TimeSpan? keepAliveTimeout = null) =>
        builder.WithNvmeHost(new NvmeHostOptions
        {
            HostNqn = hostNqn,
            CtrlrLossTimeout = ctrlrLossTimeout,
            ReconnectDelay = reconnectDelay,
            FastIoFailTimeout = fastIoFailTimeout,
            KeepAliveTimeout = keepAliveTimeout,
        });
}
