using System.Globalization;
using System.Text;
using ActorNvme.Actors.Connection;
using ActorNvme.Actors.Settings;
using ActorNvme.Transport;

namespace ActorNvme.Hosting;

/// <summary>A discovery service <see cref="NvmeHostingExtensions.WithNvmeHost(Akka.Hosting.AkkaConfigurationBuilder, NvmeHostOptions)"/> starts with the host.</summary>
/// <param name="Name">Prefix of the controllers it creates (nvme → nvme0, nvme1, ...).</param>
/// <param name="Address">The discovery controller's address (usually port 8009).</param>
/// <param name="HostNqn">Host NQN for this service; null: the host's.</param>
/// <param name="SecureChannel">The discovery controller is reached over TLS with the configured psk (its port requires a secure channel).</param>
public sealed record NvmeDiscoveryTarget(string Name, TransportAddress Address, string? HostNqn = null, bool SecureChannel = false);

/// <summary>
/// Settings of the ActorNvme host for Akka.Hosting. Every property is optional: only what is set is
/// written to HOCON (prepended, so it wins over akka.hocon), and the library defaults
/// (Actors/reference.conf) are appended beneath everything. Keys map one to one to <c>actornvme.*</c>.
/// </summary>
public sealed class NvmeHostOptions
{
    /// <summary>actornvme.host-nqn.</summary>
    public string? HostNqn { get; set; }

    /// <summary>actornvme.host-id.</summary>
    public Guid? HostId { get; set; }

    /// <summary>actornvme.keep-alive-timeout (KATO).</summary>
    public TimeSpan? KeepAliveTimeout { get; set; }

    /// <summary>actornvme.ctrlr-loss-timeout; <see cref="Actors.Settings.ResiliencySettings.Forever"/> (-1 s) reconnects forever.</summary>
    public TimeSpan? CtrlrLossTimeout { get; set; }

    /// <summary>actornvme.reconnect-delay.</summary>
    public TimeSpan? ReconnectDelay { get; set; }

    /// <summary>actornvme.fast-io-fail-timeout.</summary>
    public TimeSpan? FastIoFailTimeout { get; set; }

    /// <summary>actornvme.connect-timeout.</summary>
    public TimeSpan? ConnectTimeout { get; set; }

    /// <summary>actornvme.admin-command-timeout.</summary>
    public TimeSpan? AdminCommandTimeout { get; set; }

    /// <summary>actornvme.admin-queue-size.</summary>
    public int? AdminQueueSize { get; set; }

    /// <summary>actornvme.digests: none, header, data or both.</summary>
    public string? Digests { get; set; }

    /// <summary>actornvme.psk: a NVMeTLSkey-1 interchange string or the absolute path of a file (0600) holding one.</summary>
    public string? Psk { get; set; }

    /// <summary>actornvme.psk-identity-version: 0 (NVMe0R0h) or 1 (NVMe1R0h with the PSK digest).</summary>
    public int? PskIdentityVersion { get; set; }

    /// <summary>actornvme.ready-poll-interval.</summary>
    public TimeSpan? ReadyPollInterval { get; set; }

    /// <summary>actornvme.discovery.genctr-retries.</summary>
    public int? DiscoveryGenctrRetries { get; set; }

    /// <summary>actornvme.discovery.referral-depth.</summary>
    public int? ReferralDepth { get; set; }

    /// <summary>actornvme.discovery.secure-channel: every discovery controller this host starts is reached over TLS with the psk.</summary>
    public bool? DiscoverySecureChannel { get; set; }

    /// <summary>Discovery services to start as soon as the host actor is up.</summary>
    public IList<NvmeDiscoveryTarget> Discoveries { get; } = [];

    /// <summary>How long CoordinatedShutdown waits for controllers to shut down (CC.SHN) before the system stops. Default 4 s (the phase's own default timeout is 5 s).</summary>
    public TimeSpan? ShutdownTimeout { get; set; }

    /// <summary>Publish the ActorNvme meter's instruments (default true).</summary>
    public bool? EnableMetrics { get; set; }

    /// <summary>The health check's name (default "actornvme"); null or empty with <see cref="EnableHealthCheck"/> false registers none.</summary>
    public string? HealthCheckName { get; set; }

    /// <summary>Register the health check that reports failed controllers (default true).</summary>
    public bool? EnableHealthCheck { get; set; }

    /// <summary>Replaces NVMe/TCP for the admin queues, and for the I/O queues through the connector it provides (tests: an in-memory network).</summary>
    public IAdminConnector? Connector { get; set; }

    /// <summary>The HOCON for the properties that are set, under <c>actornvme</c>; empty when none is.</summary>
    public string ToHocon()
    {
        var lines = new StringBuilder();
        void Add(string key, string? value)
        {
            if (value is not null)
            {
                lines.Append("  ").Append(key).Append(" = ").Append(value).Append('\n');
            }
        }

        Add("host-nqn", Quote(HostNqn));
        Add("host-id", HostId is { } id ? Quote(id.ToString()) : null);
        Add("keep-alive-timeout", Duration(KeepAliveTimeout));
        Add("ctrlr-loss-timeout", Duration(CtrlrLossTimeout));
        Add("reconnect-delay", Duration(ReconnectDelay));
        Add("fast-io-fail-timeout", Duration(FastIoFailTimeout));
        Add("connect-timeout", Duration(ConnectTimeout));
        Add("admin-command-timeout", Duration(AdminCommandTimeout));
        Add("admin-queue-size", AdminQueueSize?.ToString(CultureInfo.InvariantCulture));
        Add("digests", Quote(Digests));
        Add("psk", Quote(Psk));
        Add("psk-identity-version", PskIdentityVersion?.ToString(CultureInfo.InvariantCulture));
        Add("ready-poll-interval", Duration(ReadyPollInterval));
        Add("discovery.genctr-retries", DiscoveryGenctrRetries?.ToString(CultureInfo.InvariantCulture));
        Add("discovery.referral-depth", ReferralDepth?.ToString(CultureInfo.InvariantCulture));
        Add("discovery.secure-channel", DiscoverySecureChannel switch { null => null, true => "on", false => "off" });
        return lines.Length == 0 ? string.Empty : $"actornvme {{\n{lines}}}\n";
    }

    // HOCON durations take no sign; "reconnect forever" (-1 s) is spelled -1s, which the settings reader knows.
    private static string? Duration(TimeSpan? value) => value switch
    {
        null => null,
        { } v when v == ResiliencySettings.Forever => "-1s",
        { } v => $"{((long)v.TotalMilliseconds).ToString(CultureInfo.InvariantCulture)}ms",
    };

    private static string? Quote(string? value)
    {
        if (value is null)
        {
            return null;
        }

        var quoted = new StringBuilder("\"");
        foreach (char c in value)
        {
            quoted.Append(c switch
            {
                '"' => "\\\"",
                '\\' => "\\\\",
                '\n' => "\\n",
                '\r' => "\\r",
                '\t' => "\\t",
                _ => c.ToString(),
            });
        }

        return quoted.Append('"').ToString();
    }
}
