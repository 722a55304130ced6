using System.Globalization;
using System.Reflection;
using Akka.Configuration;

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

        return new NvmeClusterSettings
        {
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
            lines.Add($"akka.cluster.failure-detector.heartbeat-interval = {Millis(TimeSpan.FromTicks(Math.Min(TimeSpan.FromSeconds(1).Ticks, pause.Ticks / 4)))}");
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
