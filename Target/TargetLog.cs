using Microsoft.Extensions.Logging;

namespace ActorNvme.Target;

/// <summary>The target's log events, one id each.</summary>
internal static partial class TargetLog
{
    [LoggerMessage(EventId = 1, Level = LogLevel.Information, Message = "Listening on {Listener}")]
    public static partial void ListenerStarted(this ILogger logger, string listener);

    [LoggerMessage(EventId = 2, Level = LogLevel.Information, Message = "Stopped listening on {Listener}: {Reason}")]
    public static partial void ListenerStopped(this ILogger logger, string listener, string reason);

    [LoggerMessage(EventId = 3, Level = LogLevel.Warning, Message = "Accept on {Address} failed")]
    public static partial void AcceptFailed(this ILogger logger, Exception exception, string address);

    [LoggerMessage(EventId = 4, Level = LogLevel.Debug, Message = "Connection from {Remote} on {Listener}")]
    public static partial void ConnectionAccepted(this ILogger logger, string remote, string listener);

    [LoggerMessage(EventId = 5, Level = LogLevel.Warning, Message = "Connection from {Remote} on {Listener} refused ({Count} open)")]
    public static partial void ConnectionRefused(this ILogger logger, string remote, string listener, int count);

    [LoggerMessage(EventId = 6, Level = LogLevel.Debug, Message = "Connection from {Remote} (queue {QueueId}) closed: {Reason}")]
    public static partial void ConnectionClosed(this ILogger logger, string remote, ushort queueId, string reason);

    [LoggerMessage(EventId = 7, Level = LogLevel.Debug, Message = "Connection from {Remote} failed")]
    public static partial void ConnectionFailed(this ILogger logger, Exception exception, string remote);

    [LoggerMessage(EventId = 8, Level = LogLevel.Warning, Message = "Protocol error from {Remote}: {Fault}; sending C2HTermReq")]
    public static partial void ProtocolFault(this ILogger logger, string remote, string fault);

    [LoggerMessage(EventId = 9, Level = LogLevel.Information, Message = "Host {Remote} terminated the connection: {Status} (FEI {Information})")]
    public static partial void HostTerminated(this ILogger logger, string remote, string status, uint information);

    [LoggerMessage(EventId = 10, Level = LogLevel.Information, Message = "Created {Kind} controller {ControllerId} of {SubsystemNqn} for {HostNqn} ({Remote})")]
    public static partial void ControllerCreated(this ILogger logger, string kind, ushort controllerId, string subsystemNqn, string hostNqn, string remote);

    [LoggerMessage(EventId = 11, Level = LogLevel.Information, Message = "Refused Connect from {Remote} to {SubsystemNqn} for {HostNqn}: {Reason}")]
    public static partial void ConnectRefused(this ILogger logger, string remote, string subsystemNqn, string hostNqn, string reason);

    [LoggerMessage(EventId = 12, Level = LogLevel.Information, Message = "Controller {ControllerId} of {SubsystemNqn} torn down: {Reason}")]
    public static partial void ControllerTornDown(this ILogger logger, string subsystemNqn, ushort controllerId, string reason);

    [LoggerMessage(EventId = 13, Level = LogLevel.Warning, Message = "Keep-alive timeout ({KatoMs} ms) of controller {ControllerId} of {SubsystemNqn} expired")]
    public static partial void KeepAliveExpired(this ILogger logger, string subsystemNqn, ushort controllerId, uint katoMs);

    [LoggerMessage(EventId = 14, Level = LogLevel.Debug, Message = "AEN 0x{Dw0:x8} to controller {ControllerId} of {SubsystemNqn}")]
    public static partial void AsyncEventSent(this ILogger logger, string subsystemNqn, ushort controllerId, uint dw0);

    [LoggerMessage(EventId = 15, Level = LogLevel.Information, Message = "Subsystem {SubsystemNqn} added")]
    public static partial void SubsystemAdded(this ILogger logger, string subsystemNqn);

    [LoggerMessage(EventId = 16, Level = LogLevel.Information, Message = "Namespace {NamespaceId} ({Backend}, {SizeBytes} bytes) added to {SubsystemNqn}")]
    public static partial void NamespaceAdded(this ILogger logger, string subsystemNqn, uint namespaceId, string backend, long sizeBytes);

    [LoggerMessage(EventId = 17, Level = LogLevel.Information, Message = "Namespace {NamespaceId} removed from {SubsystemNqn}")]
    public static partial void NamespaceRemoved(this ILogger logger, string subsystemNqn, uint namespaceId);

    [LoggerMessage(EventId = 23, Level = LogLevel.Information, Message = "Namespace {NamespaceId} of {SubsystemNqn} resized to {SizeBytes} bytes")]
    public static partial void NamespaceResized(this ILogger logger, string subsystemNqn, uint namespaceId, long sizeBytes);

    [LoggerMessage(EventId = 18, Level = LogLevel.Information, Message = "ANA group {GroupId} of {SubsystemNqn} is now {State} through {Listener}")]
    public static partial void AnaStateChanged(this ILogger logger, string subsystemNqn, uint groupId, string state, string listener);

    [LoggerMessage(EventId = 19, Level = LogLevel.Debug, Message = "Discovery log generation {Generation}")]
    public static partial void DiscoveryChanged(this ILogger logger, ulong generation);

    [LoggerMessage(EventId = 20, Level = LogLevel.Information, Message = "Fault injected: {Fault} ({Detail})")]
    public static partial void FaultApplied(this ILogger logger, string fault, string detail);

    [LoggerMessage(EventId = 21, Level = LogLevel.Debug, Message = "Injected failure of {Command}: {Status}")]
    public static partial void InjectedFailure(this ILogger logger, string command, string status);

    [LoggerMessage(EventId = 22, Level = LogLevel.Debug, Message = "Corrupted the data digest of command {CommandId} to {Remote}")]
    public static partial void DigestCorrupted(this ILogger logger, string remote, ushort commandId);

    [LoggerMessage(EventId = 26, Level = LogLevel.Information, Message = "Host {HostNqn} ({Remote}) authenticated queue {QueueId} of {SubsystemNqn} with DH-HMAC-CHAP {Hash}/{Group}{Direction}")]
    public static partial void HostAuthenticated(this ILogger logger, string remote, string hostNqn, string subsystemNqn, ushort queueId, string hash, string group, string direction);

    [LoggerMessage(EventId = 24, Level = LogLevel.Warning, Message = "DH-HMAC-CHAP of host {HostNqn} ({Remote}) on queue {QueueId} of {SubsystemNqn} failed: {Reason}; closing the connection")]
    public static partial void AuthenticationFailed(this ILogger logger, string remote, string hostNqn, string subsystemNqn, ushort queueId, string reason);

    [LoggerMessage(EventId = 25, Level = LogLevel.Information, Message = "{Command} (action {Action}) on namespace {NamespaceId} from {HostNqn} (host id {HostId}): {Status}")]
    public static partial void Reservation(this ILogger logger, string hostNqn, Guid hostId, uint namespaceId, string command, byte action, string status);
}
