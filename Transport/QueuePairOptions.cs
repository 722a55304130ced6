using ActorNvme.Protocol.Tcp;

namespace ActorNvme.Transport;

/// <summary>
/// Everything that changes how one NVMe/TCP queue pair behaves. Immutable; start from
/// <see cref="Admin"/> or <see cref="Io"/> and change what differs with <c>with</c>.
/// </summary>
public sealed record QueuePairOptions
{
    /// <summary>Largest queue this implementation preallocates a command table for.</summary>
    public const int MaxQueueSize = 4096;

    /// <summary>In-capsule data limit of admin and fabrics commands, fixed by the NVMe over Fabrics specification.</summary>
    public const int AdminInCapsuleDataSize = 8192;

    /// <summary>An admin queue: 32 entries, 8 KiB of in-capsule data.</summary>
    public static QueuePairOptions Admin { get; } = new() { QueueSize = 32, InCapsuleDataSize = AdminInCapsuleDataSize };

    /// <summary>An I/O queue: 128 entries; in-capsule data limited to 8 KiB until the controller's IOCCSZ is known.</summary>
    public static QueuePairOptions Io { get; } = new() { QueueSize = 128, InCapsuleDataSize = AdminInCapsuleDataSize };

    /// <summary>Same as <see cref="Io"/>.</summary>
    public static QueuePairOptions Default => Io;

    /// <summary>Digests to ask for in ICReq. A controller that answers otherwise is refused.</summary>
    public DigestOptions Digests { get; init; } = DigestOptions.None;

    /// <summary>
    /// Queue size in entries as sent in Fabrics Connect (SQSIZE is this minus one). At most
    /// QueueSize - 1 commands are outstanding, so a full submission queue never overflows.
    /// </summary>
    public int QueueSize { get; init; } = 128;

    /// <summary>
    /// Largest write sent inside the command capsule; larger writes wait for R2T. Admin queues:
    /// 8 KiB. I/O queues: from the controller's IOCCSZ (<see cref="InCapsuleDataSizeFromIoccsz"/>).
    /// 0 sends every write through R2T.
    /// </summary>
    public int InCapsuleDataSize { get; init; } = AdminInCapsuleDataSize;

    /// <summary>
    /// Largest data transfer of one command. Also bounds the PLEN accepted from the controller
    /// (this plus room for header, padding and digests), so no PDU longer than a command's data is
    /// ever buffered.
    /// </summary>
    public int MaxTransferSize { get; init; } = 1024 * 1024;

    /// <summary>How long to wait for ICResp (and, in ConnectAsync, the Fabrics Connect response).</summary>
    public TimeSpan InitializationTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>How long a fatal close waits for the H2CTermReq to be sent before it drops the connection anyway.</summary>
    public TimeSpan TermReqTimeout { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary>
    /// While the read loop parses a long receive, it sends what the completions resubmitted after every this
    /// many completions, when fewer than four times as many commands are at the target, instead of only once
    /// after the pass: the target gets work while the rest is parsed, and a queue deep enough to keep it busy
    /// pays no extra send. 0: once per pass. (QD32 against SPDK's target: about +15 to +25% IOPS; bench/RESULTS.md.)
    /// </summary>
    public int SendEveryCompletions { get; init; } = 4;

    /// <summary>
    /// The in-capsule data limit an I/O controller allows: IOCCSZ (Identify Controller, units of
    /// 16 bytes) covers the 64-byte command too.
    /// </summary>
    public static int InCapsuleDataSizeFromIoccsz(uint ioccsz)
    {
        long bytes = ((long)ioccsz * 16) - 64;
        return bytes <= 0 ? 0 : (int)Math.Min(bytes, int.MaxValue);
    }

    /// <summary>Largest PDU accepted from the controller: a data PDU of <see cref="MaxTransferSize"/> plus header, digests and PDO padding.</summary>
    internal uint MaxReceivePduLength => (uint)MaxTransferSize + PduSizes.DataHeader + (2 * PduSizes.Digest) + byte.MaxValue + 1;

    internal void Validate()
    {
        if (QueueSize is < 2 or > MaxQueueSize)
        {
            throw new ArgumentOutOfRangeException(nameof(QueueSize), QueueSize, $"a queue holds 2..{MaxQueueSize} entries");
        }

        if (InCapsuleDataSize < 0 || InCapsuleDataSize > MaxTransferSize)
        {
            throw new ArgumentOutOfRangeException(nameof(InCapsuleDataSize), InCapsuleDataSize, "the in-capsule data size is 0..MaxTransferSize");
        }

        if (MaxTransferSize is < 4096 or > 64 * 1024 * 1024)
        {
            throw new ArgumentOutOfRangeException(nameof(MaxTransferSize), MaxTransferSize, "the largest transfer is 4 KiB..64 MiB");
        }

        if ((Digests & ~DigestOptions.Both) != 0)
        {
            throw new ArgumentOutOfRangeException(nameof(Digests), Digests, "digests are None, Header, Data or Both");
        }

        if (InitializationTimeout <= TimeSpan.Zero || TermReqTimeout <= TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(InitializationTimeout), "timeouts must be positive");
        }
    }
}
