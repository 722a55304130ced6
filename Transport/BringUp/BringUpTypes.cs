using ActorNvme.Protocol.Auth;
using ActorNvme.Protocol.Data;
using ActorNvme.Protocol.Nvme;

namespace ActorNvme.Transport.BringUp;

/// <summary>The steps of a controller's bring-up after ICReq/ICResp, in the order they run.</summary>
public enum BringUpStep
{
    FabricsConnect,

    /// <summary>DH-HMAC-CHAP on the admin queue (Authentication Send/Receive), when Connect's AUTHREQ asks for it.</summary>
    Authentication,
    PropertyGetCapabilities,
    PropertyGetVersion,
    PropertySetEnable,
    WaitForReady,
    IdentifyController,
    ActiveNamespaceList,
    IdentifyNamespace,
    NamespaceDescriptors,
    AsyncEventConfiguration,
    NumberOfQueues,
    Done,

    /// <summary>Shutdown (see <see cref="ControllerShutdown"/>): Property Set CC.SHN.</summary>
    PropertySetShutdown,

    /// <summary>Shutdown: waiting for CSTS.SHST = complete.</summary>
    WaitForShutdown,
}

/// <summary>The phases a controller walks through while coming up; each covers one or more <see cref="BringUpStep"/>s.</summary>
public enum BringUpPhase
{
    FabricsConnect,
    Enabling,
    Identifying,
    Configuring,
    Done,
}

/// <summary>How far a bring-up goes: a test client or a one-shot discovery may stop once the controller is ready.</summary>
public enum BringUpGoal
{
    /// <summary>Connect, read CAP and VS, CC.EN=1 and CSTS.RDY.</summary>
    Ready,

    /// <summary>Also Identify Controller (and the namespaces when asked for).</summary>
    Identified,

    /// <summary>Also the asynchronous event configuration and the number of I/O queues.</summary>
    Configured,
}

/// <summary>What a bring-up asks of the controller.</summary>
/// <param name="Connect">The Fabrics Connect parameters (host, subsystem, KATO).</param>
/// <param name="AdminQueueSize">The admin queue's size in entries, sent in Connect.</param>
public sealed record BringUpOptions(FabricsConnectParameters Connect, int AdminQueueSize)
{
    public BringUpGoal Goal { get; init; } = BringUpGoal.Configured;

    /// <summary>List the active namespaces and identify each (an NVM controller; a discovery controller has none).</summary>
    public bool IdentifyNamespaces { get; init; }

    /// <summary>The notices wanted; only those Identify Controller's OAES says are supported are asked for.</summary>
    public AsyncEventConfiguration WantedAsyncEvents { get; init; }

    /// <summary>I/O queue pairs to ask for with Set Features (Number of Queues); 0 asks for none.</summary>
    public int IoQueues { get; init; }

    /// <summary>How long CSTS.RDY may take at least, whatever CAP.TO says.</summary>
    public TimeSpan MinimumReadyTimeout { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>Pause between two reads of CSTS while waiting for RDY.</summary>
    public TimeSpan ReadyPollInterval { get; init; } = TimeSpan.FromMilliseconds(10);

    /// <summary>DH-HMAC-CHAP credentials, used when the Connect answer sets AUTHREQ.ATR; null: none (a controller that requires authentication is then refused with a clear error).</summary>
    public DhChapHostCredentials? Authentication { get; init; }
}

/// <summary>An admin command the driver is to submit; the machine waits for its completion.</summary>
/// <param name="Step">The step the command belongs to.</param>
/// <param name="Description">The step in words, naming the namespace where there is one.</param>
/// <param name="Command">The submission queue entry (the driver fills in CID and data pointer).</param>
/// <param name="DataOut">Data the command sends (Connect's 1024 bytes), or empty.</param>
/// <param name="DataInLength">Bytes the controller returns for it, or 0.</param>
public sealed record BringUpCommand(BringUpStep Step, string Description, SubmissionQueueEntry Command, ReadOnlyMemory<byte> DataOut, int DataInLength);

/// <summary>A completion, as the driver hands it to the machine.</summary>
/// <param name="Entry">The controller's completion queue entry.</param>
/// <param name="Data">The bytes received for the command (possibly fewer than asked for).</param>
/// <param name="DataDigestError">The received data failed its digest and is not to be trusted.</param>
public readonly record struct BringUpCompletion(CompletionQueueEntry Entry, ReadOnlyMemory<byte> Data, bool DataDigestError = false);

/// <summary>Why a bring-up failed.</summary>
public enum BringUpFailureKind
{
    /// <summary>The controller answered the step's command with an error status.</summary>
    Refused,

    /// <summary>The data the controller returned is short or malformed.</summary>
    UnusableData,

    /// <summary>The data failed its digest.</summary>
    DataDigestError,

    /// <summary>CSTS.CFS: the controller reports a fatal status.</summary>
    ControllerFatal,

    /// <summary>CSTS.RDY (or, shutting down, CSTS.SHST) did not come in time; decided by the driver, which owns the clock.</summary>
    StatusTimeout,

    /// <summary>A step's command could not be submitted, or the connection ended during a step.</summary>
    NotCompleted,

    /// <summary>The host's own request cannot be encoded (an invalid NQN); nothing was sent.</summary>
    InvalidRequest,

    /// <summary>DH-HMAC-CHAP failed: the controller refused the host, the controller did not prove itself, or it requires authentication and no key is configured. Retrying with the same keys will not help.</summary>
    AuthenticationFailed,
}

/// <summary>A failed bring-up: the step, why, and the controller's status when it refused (then <paramref name="Detail"/> is that status in words).</summary>
public sealed record BringUpFailure(BringUpStep Step, string Description, BringUpFailureKind Kind, NvmeStatus? Status, string Detail)
{
    public override string ToString() => Kind == BringUpFailureKind.Refused ? $"{Description} refused: {Detail}" : $"{Description}: {Detail}";
}

/// <summary>A namespace found while identifying.</summary>
public sealed record IdentifiedNamespace(uint NamespaceId, int BlockSize, ulong BlockCount, UInt128 Nguid, ulong Eui64, Guid Uuid, Protocol.Nvme.ReservationCapabilities Reservations = Protocol.Nvme.ReservationCapabilities.None);

/// <summary>What a finished bring-up learned.</summary>
public sealed record ControllerBringUpResult(
    ushort ControllerId,
    ControllerCapabilities Capabilities,
    NvmeVersion Version,
    IdentifyController? Identify,
    IReadOnlyList<IdentifiedNamespace> Namespaces,
    IReadOnlyList<string> Warnings)
{
    /// <summary>Notices enabled with Set Features (none when not asked for or refused).</summary>
    public AsyncEventConfiguration EnabledAsyncEvents { get; init; }

    /// <summary>I/O queue pairs the controller granted (the smaller of SQs and CQs, at most those asked for); 0 when none.</summary>
    public int GrantedIoQueues { get; init; }

    /// <summary>Keep Alive every KATO/2 (zero: no Keep Alive, KATO 0).</summary>
    public TimeSpan KeepAliveInterval { get; init; }

    /// <summary>The CC value the host wrote (EN set); a shutdown writes it again with SHN.</summary>
    public ControllerConfiguration Configuration { get; init; }

    /// <summary>How the admin queue authenticated (null: the controller did not ask).</summary>
    public DhChapStep.Authenticated? Authentication { get; init; }
}

/// <summary>
/// A sans-I/O admin script (<see cref="ControllerBringUp"/>, <see cref="ControllerShutdown"/>): the driver
/// carries out each <see cref="BringUpAction"/> and feeds back what came of it.
/// </summary>
public interface IAdminScript
{
    /// <summary>The first action.</summary>
    BringUpAction Start();

    /// <summary>Feeds the completion of the command the last <see cref="BringUpAction.Submit"/> asked for.</summary>
    BringUpAction OnCompletion(BringUpCompletion completion);

    /// <summary>After a <see cref="BringUpAction.Wait"/>: read the status again.</summary>
    BringUpAction PollAgain();

    /// <summary>The driver gives up on the current step (a deadline, the connection, a refused submission); the failure names the step.</summary>
    BringUpAction.Failed Abandon(BringUpFailureKind kind, string detail);
}

/// <summary>What the driver does next.</summary>
public abstract record BringUpAction
{
    /// <summary>Submit <paramref name="Command"/> and feed its completion to the machine.</summary>
    /// <param name="StatusTimeout">Set on the first CSTS read of a wait: from now on the awaited status (RDY, SHST) must come within this; the driver owns the clock.</param>
    public sealed record Submit(BringUpCommand Command, TimeSpan? StatusTimeout = null) : BringUpAction;

    /// <summary>Wait <paramref name="Delay"/>, then call <see cref="IAdminScript.PollAgain"/> (unless the status deadline has passed: then <see cref="IAdminScript.Abandon"/>).</summary>
    public sealed record Wait(TimeSpan Delay) : BringUpAction;

    public sealed record Succeeded(ControllerBringUpResult Result) : BringUpAction;

    public sealed record Failed(BringUpFailure Failure) : BringUpAction;
}
