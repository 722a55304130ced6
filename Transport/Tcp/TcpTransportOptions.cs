namespace ActorNvme.Transport.Tcp;

/// <summary>How <see cref="TcpTransport"/> opens and tunes its sockets.</summary>
public sealed record TcpTransportOptions
{
    public static TcpTransportOptions Default { get; } = new();

    /// <summary>Give up a TCP connect after this long (ConnectTimeout).</summary>
    public TimeSpan ConnectTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// Size of each buffer segment. Large segments let one socket read take a whole data PDU; the
    /// 4 KiB default of pipelines cost two reads per 4 KiB read PDU in the measurements here.
    /// </summary>
    public int SegmentSize { get; init; } = 64 * 1024;

    /// <summary>
    /// Received bytes buffered before the socket stops reading. Must exceed the largest PDU a
    /// queue pair accepts (QueuePairOptions.MaxTransferSize plus headers), or a PDU could never complete.
    /// </summary>
    public int ReceiveBufferLimit { get; init; } = 16 * 1024 * 1024;

    /// <summary>Bytes queued for sending before a flush waits for the socket.</summary>
    public int SendBufferLimit { get; init; } = 4 * 1024 * 1024;

    /// <summary>
    /// Wait for data with a zero-length receive before renting a segment: an idle connection then holds
    /// no receive buffer (an extra system call per wake-up; right for admin queues, of which a process may hold thousands).
    /// </summary>
    public bool ZeroLengthReads { get; init; }

    internal void Validate()
    {
        if (ConnectTimeout <= TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(ConnectTimeout), ConnectTimeout, "the connect timeout must be positive");
        }

        if (SegmentSize is < 4096 or > 4 * 1024 * 1024)
        {
            throw new ArgumentOutOfRangeException(nameof(SegmentSize), SegmentSize, "segments are 4 KiB..4 MiB");
        }

        if (ReceiveBufferLimit < 2 * SegmentSize || SendBufferLimit < 2 * SegmentSize)
        {
            throw new ArgumentOutOfRangeException(nameof(ReceiveBufferLimit), "buffer limits must hold at least two segments");
        }
    }
}
