using ActorNvme.Transport.RawSocket;
using ActorNvme.Transport.Tcp;

namespace ActorNvme.Transport;

/// <summary>
/// The transports to use by default, as measured in bench/ (QueuePairBenchmarks and the e2e
/// harness): Pipelines.Sockets.Unofficial, tuned, for admin queues (not a hot path, no thread of
/// their own); a raw socket served by per-core I/O threads for I/O queues, which completed 4 KiB
/// reads at QD1 about 1.6× and at QD32/QD128 about 1.7–1.9× as fast as the tuned pipelines
/// connection on these machines, at 0 bytes per command for both.
/// </summary>
public static class NvmeTransports
{
    /// <summary>For admin (and discovery) queues: idle between commands, so they hold no receive buffer while they wait.</summary>
    public static INvmeTransport ForAdminQueues(TcpTransportOptions? options = null) => new TcpTransport(options ?? AdminDefaults);

    // Small segments: an admin PDU is at most a few KiB, and every thread that returns a segment to the
    // shared pool may keep one; 64 KiB ones cost tens of MiB across thousands of controllers.
    private static readonly TcpTransportOptions AdminDefaults = new() { ZeroLengthReads = true, SegmentSize = 16 * 1024 };

    /// <summary>
    /// For I/O queues: a bounded set of I/O threads (one per core by default) serves every queue pair. Set
    /// <see cref="RawSocketTransportOptions.SpinBeforeBlocking"/> to trade a busy core for throughput at deep queues.
    /// </summary>
    public static INvmeTransport ForIoQueues(RawSocketTransportOptions? options = null) => new RawSocketTransport(options);
}
