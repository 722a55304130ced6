using Akka.Actor;
using ActorNvme.Actors.Connection;
using ActorNvme.Actors.Controller;
using ActorNvme.Actors.Settings;
using ActorNvme.Actors.Subsystem;
using ActorNvme.Transport;

namespace ActorNvme.Actors.Host;

/// <summary>Why an <see cref="NvmeHost"/> request was refused.</summary>
public enum HostErrorKind
{
    InvalidParameter,
    AlreadyExists,
    NotFound,
    Timeout,
    Failed,
}

/// <summary>
/// The root of the runtime (<c>/user/nvme</c>): starts and stops discovery services, attaches and
/// detaches controllers by hand, resets them, and answers list requests from its own registry at
/// once — it never waits on a child to answer, so a host with any number of controllers
/// reconnecting still answers in microseconds. Every request gets exactly one reply: the success
/// record named below or <see cref="Failed"/>.
/// </summary>
public static class NvmeHost
{
    public const string ActorName = "nvme";

    public static Props Props(NvmeHostSettings settings, IAdminConnector? connector = null) =>
        Akka.Actor.Props.Create(() => new NvmeHostActor(settings, connector ?? TransportAdminConnector.Tcp()));

    /// <summary>Refusal of a request, naming what was wrong.</summary>
    public sealed record Failed(HostErrorKind Kind, string Message);

    /// <summary>
    /// SPDK's bdev_nvme_start_discovery. <paramref name="Name"/> prefixes the controllers it creates
    /// (nvme → nvme0, nvme1, ...). Reply: <see cref="DiscoveryStarted"/> — when waiting for attach,
    /// only once every subsystem of the first log read is attached (or <see cref="Failed"/> Timeout).
    /// </summary>
    public sealed record StartDiscovery(
        string Name,
        TransportAddress Address,
        string? HostNqn = null,
        ResiliencySettings? Resiliency = null,
        bool WaitForAttach = false,
        TimeSpan? AttachTimeout = null);

    public sealed record DiscoveryStarted(string Name, IReadOnlyList<BlockDeviceInfo> Devices);

    public sealed record StopDiscovery(string Name);

    public sealed record DiscoveryStopped(string Name);

    public sealed record GetDiscoveryInfo
    {
        public static GetDiscoveryInfo Instance { get; } = new();
    }

    public sealed record DiscoveryInfoList(IReadOnlyList<Discovery.DiscoveryService.Info> Services);

    /// <summary>SPDK's bdev_nvme_attach_controller: a subsystem named <paramref name="Name"/> with one path. Reply: <see cref="ControllerAttached"/> once Live.</summary>
    public sealed record AttachController(
        string Name,
        TransportAddress Address,
        string SubsystemNqn,
        string? HostNqn = null,
        ResiliencySettings? Resiliency = null,
        TimeSpan? AttachTimeout = null);

    public sealed record ControllerAttached(string Name, IReadOnlyList<BlockDeviceInfo> Devices);

    public sealed record DetachController(string Name);

    public sealed record ControllerDetached(string Name);

    public sealed record ResetController(string Name);

    public sealed record ControllerResetStarted(string Name);

    public sealed record ListControllers
    {
        public static ListControllers Instance { get; } = new();
    }

    /// <summary>One path of a controller as last reported.</summary>
    public sealed record PathSummary(string Path, ControllerState State, string? Reason);

    public sealed record ControllerSummary(string Name, string SubsystemNqn, string Origin, IReadOnlyList<PathSummary> Paths);

    public sealed record ControllerList(IReadOnlyList<ControllerSummary> Controllers);

    public sealed record ListBlockDevices
    {
        public static ListBlockDevices Instance { get; } = new();
    }

    public sealed record BlockDeviceList(IReadOnlyList<BlockDeviceInfo> Devices);
}
