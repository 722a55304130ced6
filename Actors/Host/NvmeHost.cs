using ActorNvme.Protocol.Tls;
using ActorNvme.Protocol.Auth;
using ActorNvme.Protocol.Tcp;
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

    /// <summary>The request contradicts what exists (a further path to another subsystem under a name).</summary>
    Conflict,

    /// <summary>That path is there already.</summary>
    PathExists,
    NotFound,
    Timeout,
    Failed,

    /// <summary>The target refused the TCP connection (nothing listens there): final, known at the first attempt.</summary>
    ConnectionRefused,

    /// <summary>The target refused the host's DH-HMAC-CHAP transaction (wrong or missing key).</summary>
    AuthenticationFailed,
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
    /// <paramref name="SecureChannel"/>: the discovery controller's port requires TLS; its log is read over TLS with
    /// <paramref name="TlsPsk"/> (otherwise the discovery controller is on plain TCP and the PSK is for the subsystems).
    /// </summary>
    public sealed record StartDiscovery(
        string Name,
        TransportAddress Address,
        string? HostNqn = null,
        ResiliencySettings? Resiliency = null,
        bool WaitForAttach = false,
        TimeSpan? AttachTimeout = null,
        DhChapHostCredentials? DhChap = null,
        NvmeTlsPsk? TlsPsk = null,
        bool SecureChannel = false);

    /// <summary>Discovery started; when it waited for attach, the block devices attached and the log entries skipped, with why.</summary>
    public sealed record DiscoveryStarted(string Name, IReadOnlyList<BlockDeviceInfo> Devices, IReadOnlyList<Discovery.DiscoveryService.SkippedEntry>? Skipped = null);

    public sealed record StopDiscovery(string Name);

    public sealed record DiscoveryStopped(string Name);

    public sealed record GetDiscoveryInfo
    {
        public static GetDiscoveryInfo Instance { get; } = new();
    }

    public sealed record DiscoveryInfoList(IReadOnlyList<Discovery.DiscoveryService.Info> Services);

    /// <summary>
    /// SPDK's bdev_nvme_attach_controller: a subsystem named <paramref name="Name"/> with one path.
    /// Reply: <see cref="ControllerAttached"/> once Live. With <paramref name="Multipath"/> other than
    /// <see cref="MultipathMode.Disable"/>, an existing name attached by hand with the same subsystem NQN
    /// and host NQN gets this address as a further path. Refused: a name in use otherwise (AlreadyExists),
    /// a name created by discovery (AlreadyExists), another subsystem NQN under that name
    /// (InvalidParameter), the same transport ID attached under another name (AlreadyExists).
    /// <paramref name="Overrides"/> replace host settings for this controller only.
    /// </summary>
    public sealed record AttachController(
        string Name,
        TransportAddress Address,
        string SubsystemNqn,
        string? HostNqn = null,
        ResiliencySettings? Resiliency = null,
        TimeSpan? AttachTimeout = null,
        MultipathMode Multipath = MultipathMode.Disable,
        DhChapHostCredentials? DhChap = null,
        ControllerOverrides? Overrides = null,
        NvmeTlsPsk? TlsPsk = null);


    /// <summary>Settings of one controller attached by hand that differ from the host's (SPDK's per-controller attach options); null: the host's.</summary>
    public sealed record ControllerOverrides(bool? DisableSqFlowControl = null, int? IoQueues = null, DigestOptions? Digests = null)
    {
        public NvmeHostSettings ApplyTo(NvmeHostSettings settings) => settings with
        {
            DisableSqFlowControl = DisableSqFlowControl ?? settings.DisableSqFlowControl,
            IoQueues = IoQueues ?? settings.IoQueues,
            Digests = Digests ?? settings.Digests,
        };
    }

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
    public sealed record PathSummary(string Path, ControllerState State, string? Reason, TransportAddress Address);

    /// <summary>A controller (subsystem) as its last report gave it. <paramref name="Origin"/>: "attach" or "discovery"; <paramref name="DiscoveryService"/> names the service that found it.</summary>
    public sealed record ControllerSummary(string Name, string SubsystemNqn, string Origin, IReadOnlyList<PathSummary> Paths, string HostNqn = "", string? DiscoveryService = null);

    public sealed record ControllerList(IReadOnlyList<ControllerSummary> Controllers);

    /// <summary>
    /// Forwards <paramref name="Message"/> (a <see cref="Subsystem.Subsystem"/> request) to the subsystem
    /// named <paramref name="Name"/>, which answers the original sender; <see cref="Failed"/> NotFound when
    /// there is none of that name.
    /// </summary>
    public sealed record ToSubsystem(string Name, object Message);

    public sealed record ListBlockDevices
    {
        public static ListBlockDevices Instance { get; } = new();
    }

    public sealed record BlockDeviceList(IReadOnlyList<BlockDeviceInfo> Devices);

    /// <summary>
    /// Detach every controller gracefully (CC.SHN) and stop every discovery service. Answered with
    /// <see cref="ShutdownCompleted"/> once they are all gone; what is still there after
    /// <paramref name="Timeout"/> is stopped at once and named in the answer. Requests that would
    /// create something are refused meanwhile; afterwards the host is empty and usable again.
    /// </summary>
    public sealed record Shutdown(TimeSpan Timeout);

    /// <summary>Every child is gone; <paramref name="Forced"/> lists those stopped without a clean shutdown.</summary>
    public sealed record ShutdownCompleted(IReadOnlyList<string> Forced);

    /// <summary>As <see cref="Shutdown"/>, then the host runs on with <paramref name="Settings"/>. Reply: <see cref="ResetCompleted"/>.</summary>
    public sealed record Reset(NvmeHostSettings Settings, TimeSpan Timeout);

    public sealed record ResetCompleted(IReadOnlyList<string> Forced);
}

/// <summary>SPDK's attach_controller multipath parameter.</summary>
public enum MultipathMode
{
    /// <summary>A second attach under a name in use is refused.</summary>
    Disable,

    /// <summary>A second attach with the same subsystem NQN adds a path used when the first is lost.</summary>
    Failover,

    /// <summary>As failover; paths may be used together (path choice is the block device's).</summary>
    Multipath,
}
