using Akka.Actor;
using ActorNvme.Actors.Connection;
using ActorNvme.Actors.Settings;
using ActorNvme.Actors.Subsystem;
using ActorNvme.Transport;

namespace ActorNvme.Actors.Discovery;

/// <summary>Where one discovery service starts and how its children behave.</summary>
/// <param name="Name">Prefix of the subsystem names it creates (SPDK's discovery -b): "nvme" gives nvme0, nvme1, ...</param>
/// <param name="Depth">How many referrals away from the first discovery controller this service is.</param>
/// <param name="Visited">Discovery addresses already served by this service or its ancestors.</param>
/// <param name="Origin">The name of the service started by request that this one descends from (null: this one).</param>
/// <param name="Registry">
/// Who grants NVM subsystem paths (the host root: one subsystem attached once per host, whichever services list it);
/// null: this service grants its own (a service running without a host, as in specs).
/// </param>
/// <param name="ControllerBudget">
/// Discovery controllers this service may open, its own included, for itself and every referral below it
/// (null: <see cref="NvmeHostSettings.MaxDiscoveryControllers"/>). Split among the referrals it follows, so a
/// whole referral tree never holds more than its root's budget.
/// </param>
public sealed record DiscoveryOptions(string Name, TransportAddress Address, NvmeHostSettings Settings, int Depth = 0, IReadOnlySet<TransportAddress>? Visited = null, string? Origin = null, IActorRef? Registry = null, int? ControllerBudget = null, bool SecureChannel = false)
{
    // SecureChannel: the discovery controller at Address requires TLS (its log is read over TLS with the settings' PSK).

    /// <summary>The service started by request that this one serves: its own name for a top-level service.</summary>
    public string RootName => Origin ?? Name;
}

/// <summary>The public face of <see cref="DiscoveryServiceActor"/>.</summary>
public static class DiscoveryService
{
    public static Props Props(DiscoveryOptions options, IAdminConnector connector) =>
        Akka.Actor.Props.Create(() => new DiscoveryServiceActor(options, connector));

    /// <summary>
    /// Reply as soon as a successful log read has nothing left to attach: every NVM subsystem it lists either
    /// has a Live path or was skipped (with why).
    /// </summary>
    public sealed record WaitForAttach(TimeSpan Timeout);

    /// <summary>Reply to <see cref="WaitForAttach"/>: the block devices attached, and the entries skipped with why.</summary>
    public sealed record AttachCompleted(string Name, IReadOnlyList<BlockDeviceInfo> Devices, IReadOnlyList<SkippedEntry>? Skipped = null);

    /// <summary>A discovery log entry not acted on, and why (wrong transport, unusable address, held by another service, ...).</summary>
    public sealed record SkippedEntry(string SubsystemNqn, string Address, string Reason);

    /// <summary>
    /// To the registry (the host root): may <paramref name="Service"/> attach these paths of a subsystem for this
    /// host? Reply: <see cref="PathsClaimed"/>. A path is granted to one service at a time; the registry watches
    /// <paramref name="Service"/> and frees its paths when it terminates.
    /// </summary>
    public sealed record ClaimPaths(IActorRef Service, string ServiceName, string SubsystemNqn, string HostNqn, IReadOnlyList<TransportAddress> Addresses);

    /// <summary>Reply to <see cref="ClaimPaths"/>: the paths granted, and those refused with who holds them.</summary>
    public sealed record PathsClaimed(string SubsystemNqn, IReadOnlyList<TransportAddress> Granted, IReadOnlyList<RefusedPath> Refused);

    public sealed record RefusedPath(TransportAddress Address, string Reason, bool HeldByDiscovery);

    /// <summary>To the registry: these paths are no longer attached by <paramref name="Service"/>.</summary>
    public sealed record ReleasePaths(IActorRef Service, string SubsystemNqn, string HostNqn, IReadOnlyList<TransportAddress> Addresses);

    /// <summary>From the registry to a service once refused a path: it is free now; read the log again.</summary>
    public sealed record PathsReleased(string SubsystemNqn);

    public sealed record AttachTimedOut(string Name, string Detail);

    /// <summary>Detach every subsystem found (CC.SHN), stop the referral services and the discovery controller, then stop.</summary>
    public sealed record Shutdown(string Reason);

    public sealed record GetInfo
    {
        public static GetInfo Instance { get; } = new();
    }

    /// <summary>What a discovery service knows: its controller's state, the last log read, and its children.</summary>
    public sealed record Info(
        string Name,
        TransportAddress Address,
        bool DiscoveryControllerLive,
        ulong? GenerationCounter,
        int LogReads,
        IReadOnlyList<DiscoveredEntry> Entries,
        IReadOnlyList<string> Subsystems,
        IReadOnlyList<TransportAddress> Referrals,
        string HostNqn = "",
        IReadOnlyList<TransportAddress>? AlternateAddresses = null,
        IReadOnlyList<SkippedEntry>? Skipped = null,
        int ControllerBudget = 0);

    /// <summary>One NVM subsystem path listed by the last successful read.</summary>
    public sealed record DiscoveredEntry(string SubsystemNqn, TransportAddress Address, string? Controller);
}
