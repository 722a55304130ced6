using ActorNvme.Protocol.Auth;
using Akka.Actor;
using ActorNvme.Actors.Connection;
using ActorNvme.Io;
using ActorNvme.Actors.Settings;
using ActorNvme.Actors.Subsystem;
using ActorNvme.Protocol.Data;
using ActorNvme.Protocol.Nvme;
using ActorNvme.Transport;

namespace ActorNvme.Actors.Controller;

/// <summary>The states of one controller association, in the order a connect attempt walks them.</summary>
public enum ControllerState
{
    Connecting,
    Handshake,
    FabricsConnect,
    Enabling,
    Identifying,
    Configuring,
    Live,
    Failed,
    Deleting,
}

/// <summary>A discovery controller reads the discovery log; an NVM controller serves namespaces.</summary>
public enum ControllerRole
{
    Discovery,
    Nvm,
}

/// <summary>
/// Everything a controller actor needs to know to connect one path. <paramref name="SecureChannel"/>: a discovery
/// controller whose port requires TLS goes over TLS with the settings' PSK too (NVM controllers do whenever one is set).
/// </summary>
public sealed record ControllerOptions(string Name, TransportAddress Address, string SubsystemNqn, ControllerRole Role, NvmeHostSettings Settings, bool SecureChannel = false);

/// <summary>A namespace as identified on a live controller.</summary>
public sealed record NamespaceInfo(uint NamespaceId, int BlockSize, ulong BlockCount, UInt128 Nguid, ulong Eui64, Guid Uuid, Protocol.Nvme.ReservationCapabilities Reservations = Protocol.Nvme.ReservationCapabilities.None);

/// <summary>What a controller learned while coming up.</summary>
public sealed record ControllerInfo(
    ushort ControllerId,
    ControllerCapabilities Capabilities,
    NvmeVersion Version,
    IdentifyController Identify,
    IReadOnlyList<NamespaceInfo> Namespaces);

/// <summary>
/// The public face of <see cref="ControllerActor"/>: its props and its messages. Replies go to the
/// sender; notifications go to the parent (a subsystem or discovery service).
/// </summary>
public static class Controller
{
    /// <summary>
    /// Props of a controller actor. <paramref name="ioConnector"/> opens the I/O queues of an NVM
    /// controller; by default the one the admin connector provides for its associations
    /// (<see cref="IAdminConnector.IoQueueConnector"/>).
    /// </summary>
    public static Props Props(ControllerOptions options, IAdminConnector connector, IIoQueueConnector? ioConnector = null)
    {
        var io = ioConnector ?? connector.IoQueueConnector(options.Settings);
        return Akka.Actor.Props.Create(() => new ControllerActor(options, connector, io));
    }

    /// <summary>Submit an admin command. Reply: <see cref="AdminResult"/> or <see cref="AdminFailed"/>, echoing <paramref name="Tag"/>.</summary>
    public sealed record SubmitAdmin(SubmissionQueueEntry Command, ReadOnlyMemory<byte> DataOut = default, int DataInLength = 0, object? Tag = null);

    public sealed record AdminResult(CompletionQueueEntry Completion, ReadOnlyMemory<byte> Data, object? Tag)
    {
        public bool IsSuccess => Completion.Status.IsSuccess;
    }

    public sealed record AdminFailed(string Reason, object? Tag);

    /// <summary>From the parent: try to connect again (only acted on while Failed).</summary>
    public sealed record Reconnect
    {
        public static Reconnect Instance { get; } = new();
    }

    /// <summary>Drop the association and connect again at once.</summary>
    public sealed record Reset
    {
        public static Reset Instance { get; } = new();
    }

    /// <summary>Shut the controller down (CC.SHN) when Live, then stop.</summary>
    public sealed record Delete
    {
        public static Delete Instance { get; } = new();
    }

    public sealed record GetStatus
    {
        public static GetStatus Instance { get; } = new();
    }

    /// <summary>
    /// Run a new DH-HMAC-CHAP transaction on the admin queue of a Live controller, then on each of its I/O queues while
    /// their I/O goes on (host-initiated re-authentication).
    /// Reply: <see cref="Reauthenticated"/>, or <see cref="ReauthenticationFailed"/> (a refusal also ends the association).
    /// </summary>
    public sealed record Reauthenticate
    {
        public static Reauthenticate Instance { get; } = new();
    }

    public sealed record Reauthenticated(string Name, DhChapHashId Hash, DhChapGroupId Group, bool ControllerAuthenticated)
    {
        /// <summary>The I/O queues re-authenticated after the admin queue (each its own transaction).</summary>
        public int IoQueues { get; init; }
    }

    public sealed record ReauthenticationFailed(string Name, string Reason);

    /// <summary>
    /// New DH-HMAC-CHAP keys (null: none) for this controller's queues, kept for every later association. A Live controller
    /// with keys re-authenticates at once, admin queue then I/O queues (reply: <see cref="Reauthenticated"/> or
    /// <see cref="ReauthenticationFailed"/>); otherwise the reply is <see cref="KeysStored"/>.
    /// </summary>
    public sealed record SetKeys(DhChapHostCredentials? Credentials);

    /// <summary>The keys were stored without a re-authentication (not Live, or keys cleared).</summary>
    public sealed record KeysStored(string Name);

    public sealed record Status(string Name, ControllerState State, TransportAddress Address, string SubsystemNqn, ControllerInfo? Info, ConnectionClosed? LastLoss);

    /// <summary>
    /// Notification: the controller's state changed (also published on the event stream). On Failed,
    /// <paramref name="Loss"/> is the loss and <paramref name="Refusal"/> its kind as <see cref="PathRefusals.Of"/>
    /// decides it, so that watchers never read <paramref name="Reason"/>, a sentence for people, to decide anything.
    /// </summary>
    public sealed record StateChanged(IActorRef Controller, string Name, ControllerState State, string? Reason, ConnectionClosed? Loss = null, PathRefusal Refusal = PathRefusal.None);

    /// <summary>
    /// Notification to the parent: the controller is Live with this information, and (an NVM
    /// controller that was granted I/O queues) its I/O queues, which it owns and aborts when the
    /// association ends.
    /// </summary>
    public sealed record BecameLive(IActorRef Controller, string Name, ControllerInfo Info, IoQueueSet? IoQueues = null);

    /// <summary>Notification to the parent: the association was lost (or a connect attempt failed).</summary>
    public sealed record Lost(IActorRef Controller, string Name, ConnectionClosed Reason);

    /// <summary>
    /// Notification to the parent: after a Namespace Attribute Changed notice the controller re-read its
    /// namespaces; <paramref name="Info"/> lists them as they are now (added, removed and resized ones included).
    /// </summary>
    public sealed record NamespacesChanged(IActorRef Controller, string Name, ControllerInfo Info);

    /// <summary>Notification to the parent: an asynchronous event arrived.</summary>
    public sealed record AsyncEvent(IActorRef Controller, string Name, AsyncEventCompletion Event);
}
