using Akka.Actor;
using ActorNvme.Actors.Subsystem;

namespace ActorNvme.Host.Demo;

/// <summary>How the demo reads and writes a block device: through the host's I/O path.</summary>
internal interface IDemoBlockIo
{
    /// <summary>False when this build has no I/O path; the demo then reports its I/O steps as not done.</summary>
    bool Available { get; }

    Task WriteAsync(ActorSystem system, IActorRef host, BlockDeviceInfo device, long lba, ReadOnlyMemory<byte> data, CancellationToken cancellationToken);

    Task ReadAsync(ActorSystem system, IActorRef host, BlockDeviceInfo device, long lba, Memory<byte> destination, CancellationToken cancellationToken);
}

/// <summary>The I/O path is not part of this build.</summary>
internal sealed class MissingDemoBlockIo : IDemoBlockIo
{
    public bool Available => false;

    public Task WriteAsync(ActorSystem system, IActorRef host, BlockDeviceInfo device, long lba, ReadOnlyMemory<byte> data, CancellationToken cancellationToken) =>
        throw new NotSupportedException("the I/O path is not in this build");

    public Task ReadAsync(ActorSystem system, IActorRef host, BlockDeviceInfo device, long lba, Memory<byte> destination, CancellationToken cancellationToken) =>
        throw new NotSupportedException("the I/O path is not in this build");
}
