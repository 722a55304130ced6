using ActorNvme.Protocol.Tcp;

namespace ActorNvme.Target;

/// <summary>
/// Every knob of an <see cref="NvmeTarget"/>. Defaults follow what the Linux target (nvmet) reports
/// where that is sensible for an in-process test target.
/// </summary>
public sealed record TargetOptions
{
    public static TargetOptions Default { get; } = new();

    /// <summary>MAXH2CDATA announced in ICResp: the largest H2CData PDU (and R2T) the target accepts. At least 4096.</summary>
    public int MaxH2CData { get; init; } = 128 * 1024;

    /// <summary>Largest data carried by one C2HData PDU; longer reads are split.</summary>
    public int MaxC2HData { get; init; } = 128 * 1024;

    /// <summary>In-capsule data an I/O queue accepts (IOCCSZ = 64 + this, in 16-byte units). 0 disables in-capsule writes.</summary>
    public int InCapsuleDataSize { get; init; } = 16 * 1024;

    /// <summary>In-capsule data the admin queue accepts (Connect needs 1024).</summary>
    public int AdminInCapsuleDataSize { get; init; } = 8 * 1024;

    /// <summary>Largest transfer of one command (MDTS, in 4 KiB pages as a power of two). Must be a power of two ≥ 4096.</summary>
    public int MaxDataTransferSize { get; init; } = 1024 * 1024;

    /// <summary>I/O queue entries (CAP.MQES + 1): Connect with a larger SQSIZE is refused.</summary>
    public int MaxIoQueueSize { get; init; } = 128;

    /// <summary>Admin queue entries (the discovery log's ASQSZ): Connect with a larger SQSIZE is refused.</summary>
    public int MaxAdminQueueSize { get; init; } = 32;

    /// <summary>I/O queues one controller may create (Number of Queues grants at most this).</summary>
    public int MaxIoQueues { get; init; } = 8;

    /// <summary>Connections the whole target holds at once; more are closed as soon as they are accepted.</summary>
    public int MaxConnections { get; init; } = 1024;

    /// <summary>Write data one connection may have solicited (R2T) but not yet completed; further writes wait for their R2T.</summary>
    public int MaxDataInFlightPerConnection { get; init; } = 4 * 1024 * 1024;

    /// <summary>Asynchronous Event Requests a controller holds at once (AERL + 1).</summary>
    public int AsyncEventRequestLimit { get; init; } = 4;

    /// <summary>Controller events queued while no AER is outstanding; older ones are dropped beyond this.</summary>
    public int MaxQueuedEvents { get; init; } = 64;

    /// <summary>
    /// Keep-alive timeout applied to a discovery controller connected with KATO 0. nvmet applies 120 s
    /// (NVMET_DISC_KATO_MS); we do the same. An NVM controller connected with KATO 0 has no keep-alive.
    /// </summary>
    public TimeSpan DiscoveryDefaultKeepAlive { get; init; } = TimeSpan.FromSeconds(120);

    /// <summary>Bound on a TLS handshake on a secure-channel listener; a host that does not finish it is dropped.</summary>
    public TimeSpan TlsHandshakeTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// CQT reported in Identify Controller (TP 4129), whole milliseconds up to 65535; zero reports none.
    /// It is also what the target honours: an I/O command whose execution is delayed (see
    /// <see cref="TargetFaults.DelayIoExecution"/>) still executes up to this long after its controller was
    /// torn down, and is dropped after that.
    /// </summary>
    public TimeSpan CommandQuiesceTime { get; init; }

    /// <summary>
    /// Whether NVM controllers report TBKAS (CTRATT bit 6, traffic-based keep alive). The target restarts a
    /// controller's keep-alive timer on every command it receives, I/O included, either way; this says so to
    /// hosts, which may then skip Keep Alives while I/O flows.
    /// </summary>
    public bool TrafficBasedKeepAlive { get; init; } = true;

    /// <summary>
    /// CRDT1 reported in Identify Controller (units of 100 ms, up to 6553.5 s): the delay a host waits before
    /// retrying a command whose status carries Command Retry Delay 1 (see <see cref="TargetFaults.FailNextIo"/>).
    /// </summary>
    public TimeSpan CommandRetryDelayTime1 { get; init; }

    /// <summary>ANATT reported in Identify Controller: how long an ANA transition may take, whole seconds 1..255.</summary>
    public TimeSpan AnaTransitionTime { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>Which digests the target agrees to when a host asks; a host asking for more gets only these.</summary>
    public DigestOptions SupportedDigests { get; init; } = DigestOptions.Both;

    /// <summary>
    /// Whether the discovery log starts with an entry for the current discovery subsystem (subtype 3), as
    /// nvmet does.
    /// </summary>
    public bool ReportCurrentDiscoverySubsystem { get; init; } = true;

    /// <summary>Time a new connection has to send its ICReq and a Fabrics Connect before it is closed (half-open connections are reaped).</summary>
    public TimeSpan InitializationTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// How long a queue whose DH-HMAC-CHAP failed stays open after the host has been told (AUTH_Failure1) or has given up
    /// (AUTH_Failure2) before the target closes it; meanwhile everything else is refused. Closing at once makes hosts such
    /// as SPDK's see a dropped connection instead of the refusal.
    /// </summary>
    public TimeSpan AuthenticationFailureLinger { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>Time a queue that must authenticate (DH-HMAC-CHAP) has, from its Connect, before it is closed.</summary>
    public TimeSpan AuthenticationTimeout { get; init; } = TimeSpan.FromSeconds(10);

    internal void Validate()
    {
        if (AuthenticationFailureLinger < TimeSpan.Zero || AuthenticationFailureLinger > TimeSpan.FromMinutes(1) || AuthenticationTimeout <= TimeSpan.Zero || AuthenticationTimeout > TimeSpan.FromHours(1))
        {
            throw new ArgumentOutOfRangeException(nameof(AuthenticationTimeout), "AuthenticationFailureLinger is 0..60 s; AuthenticationTimeout is more than 0 and at most an hour");
        }

        if (MaxH2CData < PduSizes.MinMaxH2CData)
        {
            throw new ArgumentOutOfRangeException(nameof(MaxH2CData), MaxH2CData, $"MAXH2CDATA must be at least {PduSizes.MinMaxH2CData}");
        }

        if (MaxC2HData < 512)
        {
            throw new ArgumentOutOfRangeException(nameof(MaxC2HData), MaxC2HData, "C2HData PDUs must carry at least 512 bytes");
        }

        if (MaxDataTransferSize < 4096 || (MaxDataTransferSize & (MaxDataTransferSize - 1)) != 0)
        {
            throw new ArgumentOutOfRangeException(nameof(MaxDataTransferSize), MaxDataTransferSize, "MDTS is a power of two of at least 4096 bytes");
        }

        if (MaxDataInFlightPerConnection < MaxDataTransferSize)
        {
            throw new ArgumentOutOfRangeException(nameof(MaxDataInFlightPerConnection), MaxDataInFlightPerConnection, "data in flight must hold at least one maximal transfer");
        }

        if (MaxIoQueueSize is < 2 or > 65536 || MaxAdminQueueSize is < 2 or > 4096)
        {
            throw new ArgumentOutOfRangeException(nameof(MaxIoQueueSize), "queue sizes are 2..65536 (admin 2..4096)");
        }

        if (AnaTransitionTime < TimeSpan.FromSeconds(1) || AnaTransitionTime > TimeSpan.FromSeconds(255))
        {
            throw new ArgumentOutOfRangeException(nameof(AnaTransitionTime), AnaTransitionTime, "ANATT is 1..255 s");
        }

        if (CommandRetryDelayTime1 < TimeSpan.Zero || CommandRetryDelayTime1.TotalMilliseconds / 100 > ushort.MaxValue)
        {
            throw new ArgumentOutOfRangeException(nameof(CommandRetryDelayTime1), CommandRetryDelayTime1, "CRDT1 is 0..6553.5 s");
        }

        if (CommandQuiesceTime < TimeSpan.Zero || CommandQuiesceTime.TotalMilliseconds > ushort.MaxValue)
        {
            throw new ArgumentOutOfRangeException(nameof(CommandQuiesceTime), CommandQuiesceTime, "CQT is 0..65535 ms");
        }

        if (AdminInCapsuleDataSize < 1024)
        {
            throw new ArgumentOutOfRangeException(nameof(AdminInCapsuleDataSize), AdminInCapsuleDataSize, "the admin queue needs 1024 bytes of in-capsule data for Connect");
        }

        if (InCapsuleDataSize < 0 || InCapsuleDataSize % 16 != 0 || MaxIoQueues < 1 || MaxConnections < 1 || AsyncEventRequestLimit is < 1 or > 256)
        {
            throw new ArgumentException("InCapsuleDataSize is a multiple of 16; MaxIoQueues, MaxConnections ≥ 1; AsyncEventRequestLimit 1..256");
        }
    }
}
