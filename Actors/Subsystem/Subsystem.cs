using Akka.Actor;
using ActorNvme.Actors.Connection;
using ActorNvme.Actors.Controller;
using ActorNvme.Io;
using ActorNvme.Actors.Settings;
using ActorNvme.Transport;

namespace ActorNvme.Actors.Subsystem;

/// <summary>A namespace exposed as a block device (named like nvme0n1).</summary>
public sealed record BlockDeviceInfo(string Name, string Controller, string SubsystemNqn, uint NamespaceId, int BlockSize, ulong BlockCount);

/// <summary>
/// Published on the event stream when a block device appears, with the device to do I/O on
/// (<paramref name="BlockDevice"/>; it stays the same object while the device exists, across path losses).
/// </summary>
public sealed record BlockDeviceAdded(BlockDeviceInfo Device, BlockDevice? BlockDevice = null);

/// <summary>Published on the event stream when a block device goes away, with why.</summary>
public sealed record BlockDeviceRemoved(BlockDeviceInfo Device, string Reason);

/// <summary>
/// Published on the event stream when a block device's namespace was resized at the target (its NSZE
/// changed): <paramref name="Device"/> carries the new block count. The device object stays the same.
/// </summary>
public sealed record BlockDeviceResized(BlockDeviceInfo Device, ulong PreviousBlockCount);

/// <summary>Published when I/O on a subsystem starts or stops failing fast (fast-io-fail-timeout).</summary>
public sealed record FastIoFailChanged(string Controller, bool FailingFast);

/// <summary>The public face of <see cref="SubsystemActor"/>.</summary>
public static class Subsystem
{
    /// <summary>
    /// Props of a subsystem actor. <paramref name="ioConnector"/> opens its controllers' I/O queues
    /// (default as in <see cref="Controller.Controller.Props"/>).
    /// </summary>
    public static Props Props(SubsystemOptions options, IAdminConnector connector, IIoQueueConnector? ioConnector = null) =>
        Akka.Actor.Props.Create(() => new SubsystemActor(options, connector, ioConnector));

    /// <summary>Asks for the block device named <paramref name="Name"/> (nvme0n1). Reply: <see cref="BlockDeviceResult"/>.</summary>
    public sealed record GetBlockDevice(string Name);

    /// <summary>The block device asked for, or null (with why) when this subsystem has none of that name.</summary>
    public sealed record BlockDeviceResult(string Name, BlockDevice? Device, string? Error = null);

    /// <summary>Add a path (another controller of the same subsystem) unless it is already there.</summary>
    public sealed record AddPath(TransportAddress Address);

    /// <summary>Delete a path gracefully (its discovery entry went away).</summary>
    public sealed record RemovePath(TransportAddress Address, string Reason);

    /// <summary>Delete every path gracefully, then stop.</summary>
    public sealed record Detach(string Reason, RemovalReason Kind = RemovalReason.Detached);

    /// <summary>
    /// Sets the multipath policy of one block device (<paramref name="BlockDevice"/>, as SPDK's
    /// bdev_nvme_set_multipath_policy does per bdev), or, when null, of every block device of this subsystem
    /// now and of those added later. Reply: <see cref="MultipathPolicySet"/>, or <see cref="BlockDeviceResult"/>
    /// with an error when the named device is not this subsystem's.
    /// </summary>
    public sealed record SetMultipathPolicy(MultipathPolicy Policy, string? BlockDevice = null);

    public sealed record MultipathPolicySet(string Name, MultipathPolicy Policy);

    /// <summary>
    /// New DH-HMAC-CHAP keys (null: none) for every path, now and later (SPDK's bdev_nvme_set_keys): each Live path re-authenticates
    /// its admin and I/O queues at once. Reply: <see cref="KeysSet"/>, or <see cref="Host.NvmeHost.Failed"/> (AuthenticationFailed)
    /// naming each path that was refused; a refused path is lost, as any refusal, and reconnects under the loss-timeout rules.
    /// </summary>
    public sealed record SetKeys(Protocol.Auth.DhChapHostCredentials? Credentials);

    /// <summary>
    /// How long <see cref="SetKeys"/> waits for each path's re-authentication: a transaction per queue, each message within
    /// <paramref name="connectTimeout"/>, bounded for the slowest DH group on a busy path. Callers waiting for the reply wait longer.
    /// </summary>
    public static TimeSpan SetKeysBound(TimeSpan connectTimeout) => (connectTimeout * 8) + TimeSpan.FromSeconds(5);

    /// <summary>The keys are set; <paramref name="Paths"/> Live paths re-authenticated, with <paramref name="IoQueues"/> I/O queues in all.</summary>
    public sealed record KeysSet(string Name, int Paths, int IoQueues);

    /// <summary>Asks for the I/O paths of this subsystem's block devices (all, or the one named). Reply: <see cref="IoPaths"/>.</summary>
    public sealed record GetIoPaths(string? BlockDevice = null);

    /// <summary>One I/O path as SPDK's bdev_nvme_get_io_paths prints it.</summary>
    /// <param name="Current">New I/O goes here now (under active_passive only the preferred path is).</param>
    /// <param name="Connected">The path's controller is Live with I/O queues.</param>
    /// <param name="Accessible">Not refused by an ANA status within the last ANATT.</param>
    /// <param name="AnaState">The namespace's ANA state through this path, from the path's last ANA log page (optimized when it reports none).</param>
    public sealed record IoPathInfo(string BlockDevice, ushort ControllerId, bool Current, bool Connected, bool Accessible, TransportAddress Address, string SubsystemNqn, Protocol.Data.AnaState AnaState = Protocol.Data.AnaState.Optimized);

    public sealed record IoPaths(string Name, IReadOnlyList<IoPathInfo> Paths);

    public sealed record ResetPaths
    {
        public static ResetPaths Instance { get; } = new();
    }

    public sealed record GetStatus
    {
        public static GetStatus Instance { get; } = new();
    }

    public sealed record PathStatus(string Name, TransportAddress Address, bool Live, DateTimeOffset? LostAt, IActorRef Controller);

    public sealed record Status(string Name, string SubsystemNqn, IReadOnlyList<PathStatus> Paths, IReadOnlyList<BlockDeviceInfo> Devices, bool FailingFast);

    /// <summary>Notification to the parent: a path of this subsystem became Live and these are its block devices.</summary>
    public sealed record Attached(IActorRef Subsystem, string Name, string SubsystemNqn, IReadOnlyList<BlockDeviceInfo> Devices);

    /// <summary>
    /// One path as its subsystem knows it: the controller's last state and why it is in it, and, when its last
    /// attempt ended in a refusal, which kind (<see cref="PathRefusal.None"/> while it is trying or was lost otherwise).
    /// </summary>
    public sealed record PathReport(string Name, TransportAddress Address, ControllerState State, string? Reason, PathRefusal Refusal = PathRefusal.None)
    {
        /// <summary>The peer refused the path's last attempt outright (as opposed to a path still trying, Live, or lost to a timeout).</summary>
        public bool IsRefused => State != ControllerState.Live && Refusal != PathRefusal.None;

        /// <summary>Refused in a way the same settings will meet again (keys, PSK, a Connect answered with DNR): waiting will not attach it.</summary>
        public bool IsRefusedForGood => IsRefused && Refusal.IsFinal();
    }

    /// <summary>
    /// The subsystem's whole state, sent to its parent after every change and passed up unchanged to the
    /// host root, whose registry is made of these. <paramref name="Removed"/> is set on the last report,
    /// sent when the subsystem stops.
    /// </summary>
    public sealed record Report(
        IActorRef Subsystem,
        string Name,
        string SubsystemNqn,
        string HostNqn,
        string? Origin,
        IReadOnlyList<PathReport> Paths,
        IReadOnlyList<BlockDeviceInfo> Devices,
        RemovalReason? Removed = null,
        string? RemovalDetail = null);
}

/// <summary>How the peer refused a path's connect attempt; the one place that decides what counts as a refusal.</summary>
public enum PathRefusal
{
    /// <summary>Not refused: connecting, Live, or lost otherwise (a timeout, a reset connection, a protocol error).</summary>
    None,

    /// <summary>TCP connect refused (nothing listens there, or a reset at once): may change when the port comes up.</summary>
    ConnectionRefused,

    /// <summary>A set-up command (Fabrics Connect) answered with an error status carrying DNR.</summary>
    ConnectRejected,

    /// <summary>DH-HMAC-CHAP failed (wrong host or controller key, no key where one is required).</summary>
    AuthenticationFailed,

    /// <summary>The TLS handshake was refused (wrong PSK, no PSK for this host there).</summary>
    TlsHandshakeFailed,
}

/// <summary>Classifies the loss of an association as a refusal (or not).</summary>
public static class PathRefusals
{
    /// <summary>What kind of refusal <paramref name="loss"/> is, if any.</summary>
    public static PathRefusal Of(ConnectionClosed loss)
    {
        ArgumentNullException.ThrowIfNull(loss);
        return loss.Reason switch
        {
            CloseReason.AuthenticationFailed => PathRefusal.AuthenticationFailed,
            CloseReason.TlsHandshakeFailed => PathRefusal.TlsHandshakeFailed,
            CloseReason.ConnectRejected when loss.RefusalStatus is { DoNotRetry: true } => PathRefusal.ConnectRejected,
            CloseReason.ConnectFailed when IsConnectionRefused(loss) => PathRefusal.ConnectionRefused,
            _ => PathRefusal.None,
        };
    }

    /// <summary>The same keys, PSK and Connect parameters get the same answer: only a change of configuration (either side) helps.</summary>
    public static bool IsFinal(this PathRefusal refusal) =>
        refusal is PathRefusal.ConnectRejected or PathRefusal.AuthenticationFailed or PathRefusal.TlsHandshakeFailed;

    private static bool IsConnectionRefused(ConnectionClosed loss)
    {
        for (var e = loss.Exception; e is not null; e = e.InnerException)
        {
            if (e is System.Net.Sockets.SocketException { SocketErrorCode: System.Net.Sockets.SocketError.ConnectionRefused })
            {
                return true;
            }
        }

        // Transports without a socket (in-memory) say so in words.
        return loss.Detail.Contains("refused", StringComparison.OrdinalIgnoreCase);
    }
}

/// <summary>Why a subsystem (and its block devices) went away.</summary>
public enum RemovalReason
{
    /// <summary>No path was Live again within ctrlr-loss-timeout of its loss.</summary>
    LossTimeout,

    /// <summary>Detached by request (detach_controller, stop_discovery, host shutdown).</summary>
    Detached,

    /// <summary>A successful discovery log read no longer lists it.</summary>
    RemovedFromDiscoveryLog,

    /// <summary>The attach did not complete within its timeout.</summary>
    AttachTimedOut,

    /// <summary>The subsystem actor failed (a bug or an unforeseen input) and was stopped by its supervisor.</summary>
    Failed,
}

/// <summary>One NVM subsystem under a name (nvme0): its paths and its block devices.</summary>
/// <param name="Origin">The discovery service that found it, or null when attached by hand.</param>
/// <param name="Fence">When set, each block device whose namespace supports reservations is handed out only after this host holds its reservation (see <see cref="WriterFence"/>).</param>
public sealed record SubsystemOptions(string Name, string SubsystemNqn, IReadOnlyList<TransportAddress> Paths, NvmeHostSettings Settings, string? Origin = null, WriterFence? Fence = null);

/// <summary>
/// Single writer, proven at the target: before a block device is handed out, register <paramref name="Key"/>
/// and hold a reservation of <paramref name="Type"/>, preempting (and aborting) whichever host held it before.
/// </summary>
/// <param name="UnfencedHoldback">A block device whose namespace has no reservations is handed out only after this long (a previous owner that may still run gets the time to stop, as no fence stops it); zero: at once.</param>
public sealed record WriterFence(ulong Key, Protocol.Nvme.ReservationType Type = Protocol.Nvme.ReservationType.WriteExclusive, TimeSpan UnfencedHoldback = default);

/// <summary>Published when this host starts to take the reservation of a block device's namespace (again after a failed attempt); the device is handed out only after <see cref="WriterFenced"/>.</summary>
public sealed record WriterFencing(string SubsystemNqn, string BlockDevice, uint NamespaceId, ulong Key, int Attempt);

/// <summary>Published when this host took (or already held) the reservation of a block device's namespace.</summary>
public sealed record WriterFenced(string SubsystemNqn, string BlockDevice, uint NamespaceId, ReservationFence Fence);
