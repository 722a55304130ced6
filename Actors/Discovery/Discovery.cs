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
public sealed record DiscoveryOptions(string Name, TransportAddress Address, NvmeHostSettings Settings, int Depth = 0, IReadOnlySet<TransportAddress>? Visited = null, string? Origin = null)
{
    /// <summary>The service started by request that this one serves: its own name for a top-level service.</summary>
    public string RootName => Origin ?? Name;
}

/// <summary>The public face of <see cref="DiscoveryServiceActor"/>.</summary>
public static class DiscoveryService
{
    public static Props Props(DiscoveryOptions options, IAdminConnector connector) =>
        Akka.Actor.Props.Create(() => new DiscoveryServiceActor(options, connector));

    /// <summary>Reply once every NVM subsystem of the first successful log read has a Live path.</summary>
    public sealed record WaitForAttach(TimeSpan Timeout);

    /// <summary>Reply to <see cref="WaitForAttach"/>.</summary>
    public sealed record AttachCompleted(string Name, IReadOnlyList<BlockDeviceInfo> Devices);

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
        string HostNqn = "");

    /// <summary>One NVM subsystem path listed by the last successful read.</summary>
    public sealed record DiscoveredEntry(string SubsystemNqn, TransportAddress Address, string? Controller);
}
