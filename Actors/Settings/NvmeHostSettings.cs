using ActorNvme.Protocol.Auth;
using ActorNvme.Protocol.Tls;
using ActorNvme.Transport.Authentication;
using ActorNvme.Transport.Tls;
using ActorNvme.Protocol.Data;
using Akka.Actor;
using Akka.Configuration;
using ActorNvme.Protocol.Tcp;

namespace ActorNvme.Actors.Settings;

/// <summary>Refusal of a settings combination; the message names the rule it breaks.</summary>
public sealed class InvalidNvmeSettingsException : Exception
{
    public InvalidNvmeSettingsException(string rule, string message)
        : base(message)
    {
        Rule = rule;
    }

    public InvalidNvmeSettingsException()
        : this("unknown", "invalid ActorNvme settings")
    {
    }

    public InvalidNvmeSettingsException(string message)
        : this("unknown", message)
    {
    }

    public InvalidNvmeSettingsException(string message, Exception innerException)
        : base(message, innerException)
    {
        Rule = "unknown";
    }

    /// <summary>Short identifier of the broken rule, e.g. "reconnect-delay-required".</summary>
    public string Rule { get; }
}

/// <summary>
/// The loss-timeout trio, with the same meaning and validity rules as SPDK's bdev_nvme
/// ctrlr_loss_timeout_sec / reconnect_delay_sec / fast_io_fail_timeout_sec. A negative
/// <see cref="CtrlrLossTimeout"/> (-1 s) means "reconnect forever".
/// </summary>
public sealed record ResiliencySettings(TimeSpan CtrlrLossTimeout, TimeSpan ReconnectDelay, TimeSpan FastIoFailTimeout)
{
    public static readonly TimeSpan Forever = TimeSpan.FromSeconds(-1);

    /// <summary>The longest timer this runtime arms (24 days: below the scheduler's 2^31 ms).</summary>
    public static readonly TimeSpan MaxTimer = TimeSpan.FromDays(24);

    public bool ReconnectsForever => CtrlrLossTimeout < TimeSpan.Zero;

    public bool NeverReconnects => CtrlrLossTimeout == TimeSpan.Zero;

    public bool FastIoFailEnabled => FastIoFailTimeout > TimeSpan.Zero;

    /// <summary>Builds and validates from SPDK's integer-second parameters.</summary>
    public static ResiliencySettings FromSeconds(long ctrlrLossTimeoutSec, long reconnectDelaySec, long fastIoFailTimeoutSec) =>
        new ResiliencySettings(TimeSpan.FromSeconds(ctrlrLossTimeoutSec), TimeSpan.FromSeconds(reconnectDelaySec), TimeSpan.FromSeconds(fastIoFailTimeoutSec)).Validated();

    /// <summary>Returns this when valid; otherwise throws naming the rule broken.</summary>
    public ResiliencySettings Validated()
    {
        if (CtrlrLossTimeout < TimeSpan.Zero && CtrlrLossTimeout != Forever)
        {
            throw new InvalidNvmeSettingsException("ctrlr-loss-timeout-range", $"ctrlr-loss-timeout {Seconds(CtrlrLossTimeout)} is invalid: it must be -1 (reconnect forever), 0 (never reconnect) or positive");
        }

        if (CtrlrLossTimeout > MaxTimer || ReconnectDelay > MaxTimer || FastIoFailTimeout > MaxTimer)
        {
            throw new InvalidNvmeSettingsException("timer-range", $"ctrlr-loss-timeout {Seconds(CtrlrLossTimeout)}, reconnect-delay {Seconds(ReconnectDelay)} and fast-io-fail-timeout {Seconds(FastIoFailTimeout)} must each be at most {Seconds(MaxTimer)} (24 days; -1 reconnects forever)");
        }

        if (ReconnectDelay < TimeSpan.Zero || FastIoFailTimeout < TimeSpan.Zero)
        {
            throw new InvalidNvmeSettingsException("non-negative", $"reconnect-delay {Seconds(ReconnectDelay)} and fast-io-fail-timeout {Seconds(FastIoFailTimeout)} must not be negative");
        }

        if (NeverReconnects)
        {
            if (ReconnectDelay != TimeSpan.Zero)
            {
                throw new InvalidNvmeSettingsException("reconnect-delay-without-reconnect", $"reconnect-delay {Seconds(ReconnectDelay)} must be 0 when ctrlr-loss-timeout is 0 (no automatic reconnect)");
            }

            if (FastIoFailTimeout != TimeSpan.Zero)
            {
                throw new InvalidNvmeSettingsException("fast-io-fail-without-reconnect", $"fast-io-fail-timeout {Seconds(FastIoFailTimeout)} must be 0 when ctrlr-loss-timeout is 0 (no automatic reconnect)");
            }

            return this;
        }

        if (ReconnectDelay == TimeSpan.Zero)
        {
            throw new InvalidNvmeSettingsException("reconnect-delay-required", $"reconnect-delay must be > 0 when ctrlr-loss-timeout is {Seconds(CtrlrLossTimeout)} (not 0)");
        }

        if (!ReconnectsForever && ReconnectDelay > CtrlrLossTimeout)
        {
            throw new InvalidNvmeSettingsException("reconnect-delay-within-loss-timeout", $"reconnect-delay {Seconds(ReconnectDelay)} must not exceed ctrlr-loss-timeout {Seconds(CtrlrLossTimeout)}");
        }

        if (FastIoFailEnabled)
        {
            if (FastIoFailTimeout < ReconnectDelay)
            {
                throw new InvalidNvmeSettingsException("fast-io-fail-at-least-reconnect-delay", $"fast-io-fail-timeout {Seconds(FastIoFailTimeout)} must be >= reconnect-delay {Seconds(ReconnectDelay)}");
            }

            if (!ReconnectsForever && FastIoFailTimeout > CtrlrLossTimeout)
            {
                throw new InvalidNvmeSettingsException("fast-io-fail-within-loss-timeout", $"fast-io-fail-timeout {Seconds(FastIoFailTimeout)} must not exceed ctrlr-loss-timeout {Seconds(CtrlrLossTimeout)}");
            }
        }

        return this;
    }

    private static string Seconds(TimeSpan value) => $"{value.TotalSeconds:0.###}s";
}

/// <summary>
/// Immutable host settings read from the <c>actornvme</c> section of the configuration. Every default
/// lives once, in the embedded reference.conf: <see cref="Default"/> is that file read, and the only way
/// to build settings is <see cref="Create(Config)"/> (then <c>with</c> for changes).
/// </summary>
public sealed record NvmeHostSettings
{
    public const string WellKnownDiscoveryNqn = "nqn.2014-08.org.nvmexpress.discovery";

    private static readonly Lazy<Config> Reference = new(LoadReference);
    private static readonly Lazy<NvmeHostSettings> Defaults = new(() => Create(ConfigurationFactory.Empty));

    /// <summary>The library defaults (with a random host id).</summary>
    public static NvmeHostSettings Default => Defaults.Value;

    public required string HostNqn { get; init; }

    public required Guid HostId { get; init; }

    public TimeSpan KeepAliveTimeout { get; init; }

    /// <summary>The longest keep-alive-timeout accepted.</summary>
    public static readonly TimeSpan MaxKeepAliveTimeout = TimeSpan.FromHours(1);

    public required ResiliencySettings Resiliency { get; init; }

    public TimeSpan ConnectTimeout { get; init; }

    public TimeSpan AdminCommandTimeout { get; init; }

    public int AdminQueueSize { get; init; }

    public DigestOptions Digests { get; init; }

    public TimeSpan ReadyPollInterval { get; init; }

    public int DiscoveryGenctrRetries { get; init; }

    public int ReferralDepth { get; init; }

    /// <summary>Discovery controllers one started discovery may open in all, referrals included.</summary>
    public int MaxDiscoveryControllers { get; init; } = 32;

    /// <summary>discovery.secure-channel: the discovery controllers this host starts are reached over TLS with <see cref="TlsPsk"/> too (required then).</summary>
    public bool DiscoverySecureChannel { get; init; }

    /// <summary>A Keep Alive unanswered this long is a loss (at most keep-alive-timeout / 2 is used).</summary>
    public TimeSpan KeepAliveAnswerTimeout { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>I/O queues to ask for per controller; 0 means one per processor core (<see cref="EffectiveIoQueues"/>).</summary>
    public int IoQueues { get; init; }

    /// <summary>Entries per I/O queue requested in Connect (capped at CAP.MQES + 1).</summary>
    public int IoQueueSize { get; init; }

    /// <summary>Retries of an I/O command failed with a status without DNR, over the I/O's life (across reconnects); -1: no limit.</summary>
    public int IoRetries { get; init; }

    /// <summary>I/Os held without a usable path, and I/Os waiting for a free queue entry, at most.</summary>
    public int IoHoldLimit { get; init; }

    /// <summary>Resubmissions of one I/O after its path was lost under it, across reconnects (io-path-loss-retries).</summary>
    public int IoPathLossRetries { get; init; }

    /// <summary>An I/O command unanswered for this long has timed out (SPDK's timeout_us); zero: off.</summary>
    public TimeSpan IoTimeout { get; init; }

    /// <summary>What a timed-out command gets (SPDK's action_on_timeout).</summary>
    public IoTimeoutAction IoTimeoutAction { get; init; } = IoTimeoutAction.Reset;

    /// <summary>Ask for SQ flow control to be disabled on I/O queues.</summary>
    public bool DisableSqFlowControl { get; init; }

    /// <summary>How long an I/O thread polls for a busy I/O queue before it blocks (0: block at once).</summary>
    public TimeSpan IoReceiveSpin { get; init; }

    /// <summary>I/O threads serving every I/O queue of the process (0: one per core); each serves many queue pairs.</summary>
    public int IoThreads { get; init; }

    /// <summary>
    /// TCP_USER_TIMEOUT of every queue's socket: sent bytes unacknowledged this long fail the connection
    /// (a loss). Null: the keep-alive timeout; <see cref="TimeSpan.Zero"/>: the kernel's default (off).
    /// </summary>
    public TimeSpan? TcpUserTimeout { get; init; }

    /// <summary>DH-HMAC-CHAP credentials (dhchap-key, dhchap-ctrlr-key, dhchap-digests, dhchap-dhgroups); null: no key.</summary>
    public DhChapHostCredentials? DhChap { get; init; }

    /// <summary>
    /// The configured TLS PSK (psk): set, every queue runs NVMe/TCP over TLS 1.3 with it (identity
    /// NVMe0R0h hostnqn subnqn, the cipher suite its length picks); null: plain TCP.
    /// </summary>
    public NvmeTlsPsk? TlsPsk { get; init; }

    /// <summary>psk-identity-version: 0 offers <c>NVMe0R0h hostnqn subnqn</c>; 1 the TP 8018 form with the PSK digest.</summary>
    public int TlsIdentityVersion { get; init; }

    /// <summary>The TCP user timeout sockets get: <see cref="TcpUserTimeout"/>, else the keep-alive timeout.</summary>
    public TimeSpan EffectiveTcpUserTimeout => TcpUserTimeout ?? KeepAliveTimeout;

    /// <summary>I/O queues to ask for: <see cref="IoQueues"/>, or the processor count when that is 0.</summary>
    public int EffectiveIoQueues => IoQueues > 0 ? IoQueues : Environment.ProcessorCount;

    /// <summary>The embedded library defaults (Actors/reference.conf).</summary>
    public static Config ReferenceConfig => Reference.Value;

    public static NvmeHostSettings Create(ActorSystem system) => Create(system.Settings.Config);

    /// <summary>Reads <c>actornvme.*</c> from <paramref name="config"/> with the library defaults as fallback.</summary>
    public static NvmeHostSettings Create(Config config)
    {
        ArgumentNullException.ThrowIfNull(config);
        RefuseUnknownKeys(config);
        var section = config.WithFallback(ReferenceConfig).GetConfig("actornvme");
        var hostIdText = section.GetString("host-id", string.Empty);
        Guid hostId;
        if (string.IsNullOrWhiteSpace(hostIdText))
        {
            hostId = Guid.NewGuid();
        }
        else if (!Guid.TryParse(hostIdText, out hostId))
        {
            throw new InvalidNvmeSettingsException("host-id-format", $"actornvme.host-id '{hostIdText}' is not a UUID");
        }

        var hostNqn = section.GetString("host-nqn", string.Empty);
        if (string.IsNullOrWhiteSpace(hostNqn))
        {
            hostNqn = $"nqn.2014-08.org.nvmexpress:uuid:{hostId}";
        }

        var settings = new NvmeHostSettings
        {
            HostNqn = hostNqn,
            HostId = hostId,
            KeepAliveTimeout = Duration(section, "keep-alive-timeout"),
            Resiliency = new ResiliencySettings(
                ReadLossTimeout(section),
                Duration(section, "reconnect-delay"),
                Duration(section, "fast-io-fail-timeout")),
            ConnectTimeout = Duration(section, "connect-timeout"),
            AdminCommandTimeout = Duration(section, "admin-command-timeout"),
            AdminQueueSize = Integer(section, "admin-queue-size"),
            Digests = ParseDigests(section.GetString("digests", "none")),
            ReadyPollInterval = Duration(section, "ready-poll-interval"),
            DiscoveryGenctrRetries = Integer(section, "discovery.genctr-retries"),
            ReferralDepth = Integer(section, "discovery.referral-depth"),
            MaxDiscoveryControllers = Integer(section, "discovery.max-discovery-controllers"),
            DiscoverySecureChannel = Boolean(section, "discovery.secure-channel"),
            KeepAliveAnswerTimeout = Duration(section, "keep-alive-answer-timeout"),
            IoQueues = Integer(section, "io-queues"),
            IoQueueSize = Integer(section, "io-queue-size"),
            IoRetries = Integer(section, "io-retries"),
            IoHoldLimit = Integer(section, "io-hold-limit"),
            IoPathLossRetries = Integer(section, "io-path-loss-retries"),
            IoTimeout = Duration(section, "io-timeout"),
            IoTimeoutAction = ParseIoTimeoutAction(section.GetString("io-timeout-action")),
            DisableSqFlowControl = Boolean(section, "disable-sq-flow-control"),
            IoReceiveSpin = Duration(section, "io-receive-spin"),
            IoThreads = Integer(section, "io-threads"),
            TcpUserTimeout = ReadTcpUserTimeout(section),
            DhChap = ReadDhChap(section),
            TlsPsk = ReadTlsPsk(section),
            TlsIdentityVersion = Integer(section, "psk-identity-version"),
        };
        return settings.Validated();
    }

    /// <summary>Every setting's path under <c>actornvme</c> (e.g. "discovery.referral-depth"), as reference.conf defines them.</summary>
    public static IReadOnlyCollection<string> KnownKeys => KnownKeySet.Value;

    private static readonly Lazy<HashSet<string>> KnownKeySet = new(() => [.. HoconKeys.LeafPaths(ReferenceConfig.GetConfig("actornvme"))]);

    /// <summary>A misspelt key would otherwise be ignored and its default used: every key under actornvme must be one reference.conf defines.</summary>
    private static void RefuseUnknownKeys(Config config)
    {
        var section = config.GetConfig("actornvme");
        if (section is null || section.IsEmpty)
        {
            return;
        }

        foreach (string key in HoconKeys.LeafPaths(section))
        {
            // actornvme.cluster belongs to ActorNvme.Cluster, which checks its own keys.
            if (!KnownKeySet.Value.Contains(key) && !key.StartsWith("cluster.", StringComparison.Ordinal))
            {
                string? near = KnownKeySet.Value.OrderBy(k => EditDistance(k, key)).ThenBy(k => k, StringComparer.Ordinal).First();
                string hint = EditDistance(near, key) <= Math.Max(2, key.Length / 3) ? $"; did you mean actornvme.{near}?" : string.Empty;
                throw new InvalidNvmeSettingsException("unknown-key", $"actornvme.{key} is not a setting{hint} (the settings and their defaults are in reference.conf)");
            }
        }
    }

    private static int EditDistance(string a, string b)
    {
        var previous = new int[b.Length + 1];
        var current = new int[b.Length + 1];
        for (int j = 0; j <= b.Length; j++)
        {
            previous[j] = j;
        }

        for (int i = 1; i <= a.Length; i++)
        {
            current[0] = i;
            for (int j = 1; j <= b.Length; j++)
            {
                current[j] = Math.Min(Math.Min(current[j - 1] + 1, previous[j] + 1), previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1));
            }

            (previous, current) = (current, previous);
        }

        return previous[b.Length];
    }

    private static TimeSpan Duration(Config section, string key) =>
        Read(section, key, "a duration (a number with a unit: 500ms, 10s, 2m)", () => section.GetTimeSpan(key, allowInfinite: false));

    private static int Integer(Config section, string key) =>
        Read(section, key, $"a whole number ({int.MinValue}..{int.MaxValue})", () => section.GetInt(key));

    private static bool Boolean(Config section, string key) =>
        Read(section, key, "on or off (true or false)", () =>
        {
            string raw = section.GetString(key, string.Empty).Trim().ToLowerInvariant();
            return raw is "on" or "true" or "yes" || (raw is "off" or "false" or "no" ? false : throw new FormatException(raw));
        });

    // Akka's readers throw FormatException, OverflowException or worse for a value of the wrong kind: name the key and the rule.
    private static T Read<T>(Config section, string key, string expected, Func<T> read)
    {
        try
        {
            return read();
        }
        catch (Exception e) when (e is FormatException or OverflowException or ConfigurationException or InvalidCastException or ArgumentException or NullReferenceException)
        {
            string raw;
            try
            {
                raw = section.GetString(key, string.Empty);
            }
            catch (Exception inner) when (inner is ConfigurationException or InvalidCastException or FormatException)
            {
                raw = "(not a single value)";
            }

            throw new InvalidNvmeSettingsException("value-format", $"actornvme.{key} = '{raw}' is not {expected}");
        }
    }

    /// <summary>Returns this when every value is usable; otherwise throws naming the setting.</summary>
    public NvmeHostSettings Validated()
    {
        Resiliency.Validated();
        if (!Nqn.TryValidate(HostNqn, out var nqnError, "host-nqn"))
        {
            throw new InvalidNvmeSettingsException("host-nqn-format", nqnError.Describe());
        }

        if (KeepAliveTimeout < TimeSpan.FromMilliseconds(100) || KeepAliveTimeout > MaxKeepAliveTimeout)
        {
            throw new InvalidNvmeSettingsException("keep-alive-timeout-range", $"keep-alive-timeout {KeepAliveTimeout.TotalMilliseconds:0}ms must be 100ms..{MaxKeepAliveTimeout.TotalMilliseconds:0}ms (1h): a controller must not be dead longer than that unnoticed");
        }

        foreach (var (name, value) in new[] { ("connect-timeout", ConnectTimeout), ("admin-command-timeout", AdminCommandTimeout), ("ready-poll-interval", ReadyPollInterval), ("keep-alive-answer-timeout", KeepAliveAnswerTimeout), ("io-timeout", IoTimeout) })
        {
            if (value > ResiliencySettings.MaxTimer)
            {
                throw new InvalidNvmeSettingsException("timer-range", $"{name} {value.TotalSeconds:0.###}s must be at most {ResiliencySettings.MaxTimer.TotalSeconds:0}s (24 days, the longest timer)");
            }
        }

        if (AdminQueueSize is < 2 or > 4096)
        {
            throw new InvalidNvmeSettingsException("admin-queue-size-range", $"admin-queue-size {AdminQueueSize} must be 2..4096");
        }

        if (ConnectTimeout <= TimeSpan.Zero || AdminCommandTimeout <= TimeSpan.Zero || ReadyPollInterval <= TimeSpan.Zero)
        {
            throw new InvalidNvmeSettingsException("positive-timeouts", "connect-timeout, admin-command-timeout and ready-poll-interval must be positive");
        }

        if (TlsIdentityVersion is not (0 or 1))
        {
            throw new InvalidNvmeSettingsException("psk-identity-version", $"psk-identity-version {TlsIdentityVersion} must be 0 or 1");
        }

        if (DiscoveryGenctrRetries < 0 || ReferralDepth < 0)
        {
            throw new InvalidNvmeSettingsException("discovery-bounds", $"discovery.genctr-retries {DiscoveryGenctrRetries} and discovery.referral-depth {ReferralDepth} must not be negative");
        }

        if (MaxDiscoveryControllers is < 1 or > 4096)
        {
            throw new InvalidNvmeSettingsException("discovery-controller-cap", $"discovery.max-discovery-controllers {MaxDiscoveryControllers} must be 1..4096");
        }

        if (KeepAliveAnswerTimeout < TimeSpan.FromMilliseconds(10))
        {
            throw new InvalidNvmeSettingsException("keep-alive-answer-timeout-range", $"keep-alive-answer-timeout {KeepAliveAnswerTimeout} must be at least 10ms");
        }

        if (IoQueues is < 0 or > 65534)
        {
            throw new InvalidNvmeSettingsException("io-queues-range", $"io-queues {IoQueues} must be 0 (one per core) .. 65534");
        }

        if (IoQueueSize is < 2 or > 4096)
        {
            throw new InvalidNvmeSettingsException("io-queue-size-range", $"io-queue-size {IoQueueSize} must be 2..4096");
        }

        if (TcpUserTimeout is { } userTimeout && userTimeout != TimeSpan.Zero && (userTimeout < TimeSpan.FromMilliseconds(100) || userTimeout > TimeSpan.FromHours(1)))
        {
            throw new InvalidNvmeSettingsException("tcp-user-timeout-range", $"tcp-user-timeout {userTimeout} must be keep-alive-timeout, off (0s), or 100ms..1h");
        }

        if (IoReceiveSpin < TimeSpan.Zero || IoReceiveSpin > TimeSpan.FromMilliseconds(10))
        {
            throw new InvalidNvmeSettingsException("io-receive-spin-range", $"io-receive-spin {IoReceiveSpin.TotalMicroseconds:0}us must be 0..10ms");
        }

        if (IoThreads is < 0 or > 1024)
        {
            throw new InvalidNvmeSettingsException("io-threads-range", $"io-threads {IoThreads} must be 0 (one per core)..1024");
        }

        if (IoTimeout < TimeSpan.Zero || (IoTimeout > TimeSpan.Zero && IoTimeout < TimeSpan.FromMilliseconds(100)))
        {
            throw new InvalidNvmeSettingsException("io-timeout-range", $"io-timeout {IoTimeout} must be 0 (off) or at least 100ms");
        }

        if (IoRetries < -1 || IoHoldLimit < 0 || IoPathLossRetries < 0)
        {
            throw new InvalidNvmeSettingsException("io-bounds", $"io-retries {IoRetries} must be -1 (no limit) or more; io-hold-limit {IoHoldLimit} and io-path-loss-retries {IoPathLossRetries} must not be negative");
        }

        return this;
    }

    // HOCON durations take no sign, so "reconnect forever" is spelled -1 or -1s and read here.
    private static TimeSpan ReadLossTimeout(Config section) =>
        section.GetString("ctrlr-loss-timeout", string.Empty).Trim() is "-1" or "-1s"
            ? ResiliencySettings.Forever
            : Duration(section, "ctrlr-loss-timeout");

    /// <summary><c>tcp-user-timeout</c>: "keep-alive-timeout" (null: follow it), "off" (zero), or a duration.</summary>
    private static TimeSpan? ReadTcpUserTimeout(Config section)
    {
        string text = section.GetString("tcp-user-timeout", "keep-alive-timeout").Trim();
        return text switch
        {
            "keep-alive-timeout" or "" => null,
            "off" => TimeSpan.Zero,
            _ => section.GetTimeSpan("tcp-user-timeout"),
        };
    }

    /// <summary>dhchap-key / dhchap-ctrlr-key (inline or key files) with the offered hashes and groups; the errors never contain a secret.</summary>
    private static DhChapHostCredentials? ReadDhChap(Config section)
    {
        var hashes = new List<DhChapHashId>();
        foreach (string name in section.GetStringList("dhchap-digests") ?? [])
        {
            if (!DhChapHashes.TryParse(name, out var hash))
            {
                throw new InvalidNvmeSettingsException("dhchap-digests", $"dhchap-digests: '{name}' is not one of sha256, sha384, sha512");
            }

            if (!hashes.Contains(hash))
            {
                hashes.Add(hash);
            }
        }

        var groups = new List<DhChapGroupId>();
        foreach (string? entry in section.GetStringList("dhchap-dhgroups") ?? [])
        {
            // An unquoted HOCON null reads as no string: it means the null group.
            string name = entry ?? "null";
            if (!DhChapGroups.TryParse(name, out var group))
            {
                throw new InvalidNvmeSettingsException("dhchap-dhgroups", $"dhchap-dhgroups: '{name}' is not one of null, ffdhe2048, ffdhe3072, ffdhe4096, ffdhe6144, ffdhe8192");
            }

            if (!groups.Contains(group))
            {
                groups.Add(group);
            }
        }

        if (hashes.Count == 0 || groups.Count == 0)
        {
            throw new InvalidNvmeSettingsException("dhchap-lists", "dhchap-digests and dhchap-dhgroups must each name at least one entry");
        }

        DhChapHostCredentials? credentials;
        try
        {
            credentials = DhChapKeys.Credentials(section.GetString("dhchap-key", string.Empty), section.GetString("dhchap-ctrlr-key", string.Empty));
        }
        catch (FormatException e)
        {
            throw new InvalidNvmeSettingsException("dhchap-key-format", e.Message);
        }

        return credentials is null ? null : credentials with { Hashes = hashes, Groups = groups };
    }

    /// <summary>psk: an interchange string or the absolute path of a 0600 file holding one; the errors never contain the key.</summary>
    private static NvmeTlsPsk? ReadTlsPsk(Config section)
    {
        try
        {
            return TlsPskKeys.Load(section.GetString("psk", string.Empty), "psk");
        }
        catch (FormatException e)
        {
            throw new InvalidNvmeSettingsException("psk-format", e.Message);
        }
    }

    public static DigestOptions ParseDigests(string value) => value.Trim().ToLowerInvariant() switch
    {
        "none" or "" => DigestOptions.None,
        "header" => DigestOptions.Header,
        "data" => DigestOptions.Data,
        "both" => DigestOptions.Both,
        _ => throw new InvalidNvmeSettingsException("digests-value", $"actornvme.digests '{value}' must be none, header, data or both"),
    };

    public static IoTimeoutAction ParseIoTimeoutAction(string value) => value.Trim().ToLowerInvariant() switch
    {
        "none" => IoTimeoutAction.None,
        "reset" => IoTimeoutAction.Reset,
        "abort" => IoTimeoutAction.Abort,
        _ => throw new InvalidNvmeSettingsException("io-timeout-action-value", $"actornvme.io-timeout-action '{value}' must be none, reset or abort"),
    };

    private static Config LoadReference()
    {
        using var stream = typeof(NvmeHostSettings).Assembly.GetManifestResourceStream("ActorNvme.Actors.reference.conf")
            ?? throw new InvalidOperationException("embedded reference.conf is missing from ActorNvme.Actors");
        using var reader = new StreamReader(stream);
        return ConfigurationFactory.ParseString(reader.ReadToEnd());
    }
}

/// <summary>What an I/O command unanswered for io-timeout gets (SPDK's action_on_timeout).</summary>
public enum IoTimeoutAction
{
    /// <summary>A warning in the log; the I/O keeps waiting (it still ends with the path's loss, if any).</summary>
    None,

    /// <summary>The association is dropped and reconnected: its reads move at once, its writes after the fence.</summary>
    Reset,

    /// <summary>
    /// The Abort admin command is sent for each timed-out command (its SQID and CID); the I/O ends with the
    /// controller's answer. A command still unanswered io-timeout after its Abort resets the association.
    /// </summary>
    Abort,
}
