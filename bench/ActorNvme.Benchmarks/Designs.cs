using ActorNvme.Transport;
using ActorNvme.Transport.RawSocket;
using ActorNvme.Transport.Tcp;

namespace ActorNvme.Benchmarks;

/// <summary>The I/O queue designs under comparison, each behind the same transport seam.</summary>
public static class Designs
{
    public const string Pipelines = "pipelines-tuned";
    public const string RawBlocking = "raw-socket-blocking";
    public const string RawSpin = "raw-socket-spin50us";

    // The design before per-core I/O threads: a receive thread per queue pair.
    public const string DedicatedBlocking = "dedicated-blocking";
    public const string DedicatedSpin = "dedicated-spin50us";

    public static readonly string[] All = [Pipelines, RawBlocking, RawSpin, DedicatedBlocking, DedicatedSpin];

    public static INvmeTransport Create(string design) => design switch
    {
        Pipelines => new TcpTransport(),
        RawBlocking => new RawSocketTransport(),
        RawSpin => new RawSocketTransport(new RawSocketTransportOptions { SpinBeforeBlocking = TimeSpan.FromMicroseconds(50) }),
        DedicatedBlocking => new RawSocketTransport(new RawSocketTransportOptions { DedicatedReceiveThreads = true }),
        DedicatedSpin => new RawSocketTransport(new RawSocketTransportOptions { DedicatedReceiveThreads = true, SpinBeforeBlocking = TimeSpan.FromMicroseconds(50) }),
        _ => throw new ArgumentOutOfRangeException(nameof(design), design, string.Join(", ", All)),
    };

    public static async Task<IoQueuePair> ConnectAsync(string design, LoopbackResponder responder, int queueDepth)
    {
        var connect = new FabricsConnectParameters(Guid.NewGuid(), "nqn.2016-06.io.spdk:bench", "nqn.2014-08.org.nvmexpress:uuid:bench") { DisableSqFlowControl = true };
        var options = QueuePairOptions.Io with { QueueSize = Math.Max(queueDepth + 1, 2) };
        return await IoQueuePair.ConnectAsync(Create(design), responder.Address, 1, options, connect).ConfigureAwait(false);
    }
}
