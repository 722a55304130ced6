using Akka.Actor;
using ActorNvme.Actors.Connection;
using ActorNvme.Actors.Controller;
using ActorNvme.Actors.Settings;
using ActorNvme.Transport;

namespace ActorNvme.Actors.Subsystem;

/// <summary>A namespace exposed as a block device (named like nvme0n1).</summary>
public sealed record BlockDeviceInfo(string Name, string Controller, string SubsystemNqn, uint NamespaceId, int BlockSize, ulong BlockCount);

/// <summary>Published on the event stream when a block device appears.</summary>
public sealed record BlockDeviceAdded(BlockDeviceInfo Device);

/// <summary>Published on the event stream when a block device goes away, with why.</summary>
public sealed record BlockDeviceRemoved(BlockDeviceInfo Device, string Reason);

/// <summary>Published when I/O on a subsystem starts or stops failing fast (fast-io-fail-timeout).</summary>
public sealed record FastIoFailChanged(string Controller, bool FailingFast);

/// <summary>The public face of <see cref="SubsystemActor"/>.</summary>
public static class Subsystem
{
    public static Props Props(SubsystemOptions options, IAdminConnector connector) =>
        Akka.Actor.Props.Create(() => new SubsystemActor(options, connector));

    /// <summary>Add a path (another controller of the same subsystem) unless it is already there.</summary>
    public sealed record AddPath(TransportAddress Address);

    /// <summary>Delete a path gracefully (its discovery entry went away).</summary>
    public sealed record RemovePath(TransportAddress Address, string Reason);

    /// <summary>Delete every path gracefully, then stop.</summary>
    public sealed record Detach(string Reason);

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
}

/// <summary>One NVM subsystem under a name (nvme0): its paths and its block devices.</summary>
public sealed record SubsystemOptions(string Name, string SubsystemNqn, IReadOnlyList<TransportAddress> Paths, NvmeHostSettings Settings);
