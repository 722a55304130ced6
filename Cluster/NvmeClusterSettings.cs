using System.Globalization;
using System.Reflection;
using Akka.Configuration;
using ActorNvme.Actors.Settings;

namespace ActorNvme.Cluster;

/// <summary>The <c>actornvme.cluster</c> section.</summary>
public sealed record NvmeClusterSettings
{
    public int Shards { get; init; } = 30;

    public TimeSpan ReconcileInterval { get; init; } = TimeSpan.FromSeconds(1);

    public TimeSpan DiscoveryTimeout { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>How often the desired attachments of the last read are sent again between reads.</summary>
    public TimeSpan ReassertInterval { get; init; } = TimeSpan.FromMilliseconds(250);

    /// <summary>Discovery controllers as <c>traddr:trsvcid</c>.</summary>
    public IReadOnlyList<string> Discovery { get; init; } = [];

    /// <summary>Name of this node in events; empty: its cluster address.</summary>
    public string NodeName { get; init; } = string.Empty;

    /// <summary>Cluster role of the nodes that hold subsystems (sharding and the coordinator singleton run under it).</summary>
    public string Role { get; init; } = "actornvme";

    /// <summary>
    /// Whether a node that starts a subsystem takes each namespace's reservation (Write Exclusive, preempting
    /// and aborting the previous owner's key) before handing its block device to writers, where the namespace
    /// supports reservations.
    /// </summary>
    public bool FenceWithReservations { get; init; } = true;

    /// <summary>With the fence on: <c>akka.cluster.down-removal-margin</c> when the application leaves it off (see cluster.conf).</summary>
    public TimeSpan FencedRemovalMargin { get; init; } = TimeSpan.FromMilliseconds(100);

    /// <summary>Where the desired state and the remembered entities are kept (<c>actornvme.cluster.store</c>).</summary>
    public ClusterStoreSettings Store { get; init; } = ClusterStoreSettings.Sqlite(ClusterStoreSettings.DefaultSqliteFile());

    /// <summary>An entity restarted by remember-entities and given no desired state within this long is forgotten.</summary>
    public TimeSpan UnclaimedEntityTimeout { get; init; } = TimeSpan.FromSeconds(60);

    private static readonly Lazy<Config> Reference = new(() =>
    {
        using var stream = typeof(NvmeClusterSettings).Assembly.GetManifestResourceStream("ActorNvme.Cluster.cluster.conf")
            ?? throw new InvalidOperationException("cluster.conf is not embedded");
        using var reader = new StreamReader(stream);
        return ConfigurationFactory.ParseString(reader.ReadToEnd());
    });

    /// <summary>The library defaults: cluster provider, split-brain resolver (keep-majority), sharding handoff.</summary>
    public static Config ReferenceConfig => Reference.Value;

    /// <summary>Reads the section (with the library defaults under it); refuses values out of range, naming the key.</summary>
    public static NvmeClusterSettings Create(Config config)
    {
        ArgumentNullException.ThrowIfNull(config);
        RefuseUnknownKeys(config);
        var section = config.WithFallback(ReferenceConfig).GetConfig("actornvme.cluster");
        int shards = section.GetInt("shards");
        if (shards is < 1 or > 10_000)
        {
            throw new ArgumentException($"actornvme.cluster.shards is 1..10000, not {shards.ToString(CultureInfo.InvariantCulture)}");
        }

        var interval = section.GetTimeSpan("reconcile-interval");
        var timeout = section.GetTimeSpan("discovery-timeout");
        var reassert = section.GetTimeSpan("reassert-interval");
        if (interval <= TimeSpan.Zero || timeout <= TimeSpan.Zero || reassert <= TimeSpan.Zero)
        {
            throw new ArgumentException("actornvme.cluster.reconcile-interval, reassert-interval and discovery-timeout are positive");
        }

        var discovery = section.GetStringList("discovery") ?? [];
        foreach (string path in discovery)
        {
            ClusterSubsystem.ParsePath(path);
        }

        var unclaimed = section.GetTimeSpan("unclaimed-entity-timeout");
        if (unclaimed <= TimeSpan.Zero)
        {
            throw new ArgumentException("actornvme.cluster.unclaimed-entity-timeout is positive");
        }

        var margin = section.GetTimeSpan("fenced-removal-margin");
        if (margin <= TimeSpan.Zero)
        {
            throw new ArgumentException("actornvme.cluster.fenced-removal-margin is positive (Akka reads a zero margin as the resolver's stable-after)");
        }

        return new NvmeClusterSettings
        {
            FencedRemovalMargin = margin,
            Store = ClusterStoreSettings.Create(section.GetConfig("store")),
            UnclaimedEntityTimeout = unclaimed,
            Shards = shards,
            ReconcileInterval = interval,
            DiscoveryTimeout = timeout,
            ReassertInterval = reassert,
            Discovery = [.. discovery],
            NodeName = section.GetString("node-name") ?? string.Empty,
            FenceWithReservations = section.GetBoolean("fence-with-reservations", true),
            Role = section.GetString("role") is { Length: > 0 } role ? role : throw new ArgumentException("actornvme.cluster.role is empty"),
        };
    }

    /// <summary>
    /// <c>akka.cluster.down-removal-margin</c> for a node whose configuration is <paramref name="config"/> (its
    /// settings over the library defaults): <see cref="FencedRemovalMargin"/> when the fence is on and the
    /// configuration leaves the margin off; otherwise nothing (the configuration's, or the resolver's stable-after).
    /// To put behind the configuration, before Akka's own defaults.
    /// </summary>
    public static Config RemovalMarginConfig(Config config)
    {
        ArgumentNullException.ThrowIfNull(config);
        var settings = Create(config);
        string? configured = config.GetString("akka.cluster.down-removal-margin", null);
        bool unset = configured is null || configured.Equals("off", StringComparison.OrdinalIgnoreCase) || config.GetTimeSpan("akka.cluster.down-removal-margin", TimeSpan.Zero, allowInfinite: false) == TimeSpan.Zero;
        return settings.FenceWithReservations && unset
            ? ConfigurationFactory.ParseString($"akka.cluster.down-removal-margin = {((long)settings.FencedRemovalMargin.TotalMilliseconds).ToString(CultureInfo.InvariantCulture)}ms")
            : Config.Empty;
    }

    private static readonly Lazy<HashSet<string>> KnownKeys = new(() => [.. HoconKeys.LeafPaths(ReferenceConfig.GetConfig("actornvme.cluster"))]);

    /// <summary>A misspelt key would otherwise be ignored and its default used: every key under actornvme.cluster must be one cluster.conf defines.</summary>
    private static void RefuseUnknownKeys(Config config)
    {
        var section = config.GetConfig("actornvme.cluster");
        if (section is null || section.IsEmpty)
        {
            return;
        }

        foreach (string key in HoconKeys.LeafPaths(section))
        {
            if (!KnownKeys.Value.Contains(key))
            {
                throw new ArgumentException($"actornvme.cluster.{key} is not a setting (the settings and their defaults are in the cluster library's cluster.conf)");
            }
        }
    }

}

public enum ClusterStoreProvider
{
    /// <summary>One SQLite file (embedded).</summary>
    Sqlite,

    /// <summary>A PostgreSQL server.</summary>
    PostgreSql,
}

/// <summary>
/// The <c>actornvme.cluster.store</c> section: the Akka.Persistence.Sql journal and snapshot store that keep
/// the desired state and the remembered entities.
/// </summary>
public sealed record ClusterStoreSettings(ClusterStoreProvider Provider, string ConnectionString, int SnapshotEvery)
{
    /// <summary>Journal plugin id of the store.</summary>
    public const string JournalPluginId = "akka.persistence.journal.sql";

    /// <summary>Snapshot plugin id of the store.</summary>
    public const string SnapshotPluginId = "akka.persistence.snapshot-store.sql";

    /// <summary>The SQLite file, for <see cref="ClusterStoreProvider.Sqlite"/>; null otherwise.</summary>
    public string? SqliteFile { get; init; }

    public static ClusterStoreSettings Sqlite(string file) =>
        new(ClusterStoreProvider.Sqlite, SqliteConnectionString(file), 100) { SqliteFile = file };

    public static ClusterStoreSettings PostgreSql(string connectionString) =>
        new(ClusterStoreProvider.PostgreSql, CheckedPostgreSql(connectionString), 100);

    /// <summary>Reads the section; refuses an unknown provider, an unusable file name or connection string, naming the key.</summary>
    public static ClusterStoreSettings Create(Config store)
    {
        ArgumentNullException.ThrowIfNull(store);
        int snapshotEvery = store.GetInt("snapshot-every");
        if (snapshotEvery is < 1 or > 1_000_000)
        {
            throw new ArgumentException($"actornvme.cluster.store.snapshot-every is 1..1000000, not {snapshotEvery.ToString(CultureInfo.InvariantCulture)}");
        }

        string provider = store.GetString("provider") ?? string.Empty;
        switch (provider)
        {
            case "sqlite":
            {
                string file = store.GetString("sqlite-file") is { Length: > 0 } given ? given : DefaultSqliteFile();
                if (file.IndexOfAny(['\0', '\n', '\r', ';']) >= 0)
                {
                    throw new ArgumentException("actornvme.cluster.store.sqlite-file has a character a file name here may not have (NUL, newline or ';')");
                }

                return Sqlite(Path.GetFullPath(file)) with { SnapshotEvery = snapshotEvery };
            }

            case "postgresql":
            {
                string connection = store.GetString("connection-string") ?? string.Empty;
                if (connection.Length == 0)
                {
                    throw new ArgumentException("actornvme.cluster.store.connection-string is required with provider = postgresql");
                }

                try
                {
                    return PostgreSql(connection) with { SnapshotEvery = snapshotEvery };
                }
                catch (ArgumentException e)
                {
                    throw new ArgumentException($"actornvme.cluster.store.connection-string is not a PostgreSQL connection string: {e.Message}", e);
                }
            }

            default:
                throw new ArgumentException($"actornvme.cluster.store.provider is sqlite or postgresql, not '{provider}'");
        }
    }

    /// <summary>cluster-state.db in the state directory (the same directory the host identity is kept in).</summary>
    public static string DefaultSqliteFile() => Path.Combine(DefaultStateDirectory(), "cluster-state.db");

    private static string DefaultStateDirectory()
    {
        if (Environment.GetEnvironmentVariable("ACTORNVME_STATE_DIR") is { Length: > 0 } explicitDirectory)
        {
            return explicitDirectory;
        }

        if (OperatingSystem.IsLinux() && Environment.UserName == "root")
        {
            return "/var/lib/actornvme";
        }

        string stateHome = Environment.GetEnvironmentVariable("XDG_STATE_HOME") is { Length: > 0 } xdg
            ? xdg
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".local", "state");
        return Path.Combine(stateHome, "actornvme");
    }

    private static string SqliteConnectionString(string file) =>
        new Microsoft.Data.Sqlite.SqliteConnectionStringBuilder { DataSource = file }.ToString();

    private static string CheckedPostgreSql(string connectionString)
    {
        var builder = new Npgsql.NpgsqlConnectionStringBuilder(connectionString);
        if (string.IsNullOrEmpty(builder.Host))
        {
            throw new ArgumentException("it names no Host");
        }

        return builder.ConnectionString;
    }

    /// <summary>
    /// The Akka.Persistence configuration of this store: Akka.Persistence.Sql as the default journal and
    /// snapshot store (the desired state and the remembered entities use the defaults), tables created on
    /// first use; the plugin's own defaults under them (it registers them only when its extension is asked for).
    /// </summary>
    public Config ToAkkaConfig()
    {
        string providerName = Provider == ClusterStoreProvider.Sqlite ? "SQLite.MS" : "PostgreSQL.15";
        string connection = Quote(ConnectionString);
        return ConfigurationFactory.ParseString($$"""
            akka.persistence {
              journal {
                plugin = "{{JournalPluginId}}"
                sql {
                  connection-string = {{connection}}
                  provider-name = "{{providerName}}"
                  auto-initialize = on
                }
              }
              snapshot-store {
                plugin = "{{SnapshotPluginId}}"
                sql {
                  connection-string = {{connection}}
                  provider-name = "{{providerName}}"
                  auto-initialize = on
                }
              }
            }
            """).WithFallback(Akka.Persistence.Sql.SqlPersistence.DefaultConfiguration);
    }

    /// <summary>Creates the SQLite file's directory; nothing for PostgreSQL (its tables are created on first use).</summary>
    public void Prepare()
    {
        if (SqliteFile is { } file && Path.GetDirectoryName(file) is { Length: > 0 } directory)
        {
            Directory.CreateDirectory(directory);
        }
    }

    private static string Quote(string value) => "\"" + value.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal) + "\"";
}

/// <summary>What a node of an ActorNvme cluster is started with (the command line's options).</summary>
public sealed record NvmeClusterNodeOptions
{
    public const string SystemName = "actornvme";

    public string Hostname { get; init; } = "127.0.0.1";

    /// <summary>Akka.Remote port; 0 picks a free one.</summary>
    public int Port { get; init; }

    /// <summary>Seed nodes as <c>host:port</c> (or full <c>akka.tcp://actornvme@host:port</c> addresses).</summary>
    public IReadOnlyList<string> SeedNodes { get; init; } = [];

    public string NodeName { get; init; } = string.Empty;

    /// <summary>Split-brain resolver strategy: keep-majority, keep-oldest, static-quorum, down-all, lease-majority.</summary>
    public string DowningStrategy { get; init; } = "keep-majority";

    /// <summary>How long the membership must be stable before the resolver decides; null: the library default.</summary>
    public TimeSpan? StableAfter { get; init; }

    /// <summary>Failure detector's acceptable heartbeat pause; null: Akka's default.</summary>
    public TimeSpan? AcceptableHeartbeatPause { get; init; }

    public IReadOnlyList<string> Discovery { get; init; } = [];

    public TimeSpan? ReconcileInterval { get; init; }

    /// <summary>Members that must have joined before any is Up (and so before shards are allocated); null: 1.</summary>
    public int? MinMembers { get; init; }

    /// <summary>
    /// The desired-state store: <c>sqlite:FILE</c> or <c>postgresql:CONNECTION-STRING</c>; null: the
    /// configuration's (<c>actornvme.cluster.store</c>, SQLite in the state directory by default).
    /// </summary>
    public string? Store { get; init; }

    private static readonly string[] Strategies = ["keep-majority", "keep-oldest", "static-quorum", "down-all", "lease-majority", "keep-referee"];

    /// <summary>The node's HOCON, to put in front of the application's configuration and <see cref="NvmeClusterSettings.ReferenceConfig"/>.</summary>
    public Config ToConfig()
    {
        if (Port is < 0 or > 65535)
        {
            throw new ArgumentException($"port {Port} is not 0..65535");
        }

        if (!Strategies.Contains(DowningStrategy, StringComparer.Ordinal))
        {
            throw new ArgumentException($"split-brain strategy '{DowningStrategy}' is not one of {string.Join(", ", Strategies)}");
        }

        var seeds = SeedNodes.Select(SeedAddress).ToArray();
        var lines = new List<string>
        {
            $"akka.remote.dot-netty.tcp.hostname = {Quote(Hostname)}",
            $"akka.remote.dot-netty.tcp.port = {Port.ToString(CultureInfo.InvariantCulture)}",
            $"akka.cluster.seed-nodes = [{string.Join(", ", seeds.Select(Quote))}]",
            $"akka.cluster.split-brain-resolver.active-strategy = {DowningStrategy}",
            $"actornvme.cluster.node-name = {Quote(NodeName)}",
        };
        if (StableAfter is { } stable)
        {
            lines.Add($"akka.cluster.split-brain-resolver.stable-after = {Millis(stable)}");
        }

        if (AcceptableHeartbeatPause is { } pause)
        {
            lines.Add($"akka.cluster.failure-detector.acceptable-heartbeat-pause = {Millis(pause)}");
            // The detector waits for about the pause plus one heartbeat interval after the last heartbeat: a short
            // interval keeps detection (and so a takeover) close to the pause asked for.
            lines.Add($"akka.cluster.failure-detector.heartbeat-interval = {Millis(TimeSpan.FromTicks(Math.Clamp(pause.Ticks / 10, TimeSpan.FromMilliseconds(100).Ticks, TimeSpan.FromSeconds(1).Ticks)))}");
        }

        if (Discovery.Count > 0)
        {
            foreach (string path in Discovery)
            {
                ClusterSubsystem.ParsePath(path);
            }

            lines.Add($"actornvme.cluster.discovery = [{string.Join(", ", Discovery.Select(Quote))}]");
        }

        if (MinMembers is { } min)
        {
            if (min is < 1 or > 1000)
            {
                throw new ArgumentException($"min members {min} is not 1..1000");
            }

            lines.Add($"akka.cluster.min-nr-of-members = {min.ToString(CultureInfo.InvariantCulture)}");
        }

        if (Store is { } store)
        {
            int colon = store.IndexOf(':', StringComparison.Ordinal);
            string kind = colon > 0 ? store[..colon] : store;
            string value = colon > 0 ? store[(colon + 1)..] : string.Empty;
            if (value.Length == 0 || kind is not ("sqlite" or "postgresql"))
            {
                throw new ArgumentException($"store '{store}' is not sqlite:FILE or postgresql:CONNECTION-STRING");
            }

            lines.Add($"actornvme.cluster.store.provider = {kind}");
            lines.Add(kind == "sqlite"
                ? $"actornvme.cluster.store.sqlite-file = {Quote(value)}"
                : $"actornvme.cluster.store.connection-string = {Quote(value)}");
        }

        if (ReconcileInterval is { } interval)
        {
            lines.Add($"actornvme.cluster.reconcile-interval = {Millis(interval)}");
        }

        return ConfigurationFactory.ParseString(string.Join('\n', lines));
    }

    /// <summary>A seed given as host:port becomes the node address of this system on that port.</summary>
    public static string SeedAddress(string seed)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(seed);
        if (seed.Contains("://", StringComparison.Ordinal))
        {
            return seed.Trim();
        }

        var address = ClusterSubsystem.ParsePath(seed.Trim());
        return $"akka.tcp://{SystemName}@{address.Host}:{address.Port.ToString(CultureInfo.InvariantCulture)}";
    }

    private static string Millis(TimeSpan value) => $"{((long)value.TotalMilliseconds).ToString(CultureInfo.InvariantCulture)}ms";

    private static string Quote(string value) => "\"" + value.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal) + "\"";
}
