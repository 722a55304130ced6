namespace ActorNvme.HostileTarget.Tests;

/// <summary>The one step a <see cref="HostileTarget"/> replaces or corrupts; everything else it answers as a well-behaved target.</summary>
public enum FaultMode
{
    None,

    // ICResp
    IcRespWrongPfv,
    IcRespWrongType,
    IcRespHugeHeaderLength,
    IcRespHugePduLength,
    IcRespDigestMismatch,
    IcRespNeverAnswers,
    IcRespCloses,

    // Fabrics Connect
    ConnectErrorStatus,
    ConnectDoNotRetry,
    ConnectWrongControllerId,
    ConnectNeverAnswers,
    ConnectAnswersWrongCid,

    // Property Get CSTS
    CstsFatalStatus,
    CstsNeverReady,

    // Identify
    IdentifyControllerShortData,
    IdentifyControllerGarbage,
    NamespaceZeroSize,
    ActiveListHuge,
    NamespaceBadLbaFormat,

    // Discovery log page
    LogGenctrChangesDuringRead,
    LogNumrecHuge,
    LogInvalidSubnqn,
    LogNonUtf8Subnqn,
    LogNulInSubnqn,
    LogBadPort,
    LogCurrentDiscoverySubtype,
    LogUnknownSubtype,
    Log2000Records,

    // Asynchronous events
    AerCompletesAtOnce,
    AerUnknownLogPage,

    // Data transfer
    C2HDataShort,
    C2HDataGap,
    C2HDataBeyondLength,
    C2HDataSuccessWithoutLast,
    C2HDataUnknownCid,
    R2TForRead,
    R2TBeyondLength,

    /// <summary>Asks for the data of many large writes at once, then reads nothing until the test resumes it.</summary>
    StopsReadingWriteData,

    // Completions
    CqeUnknownCid,
    CqeDuplicate,
    CqeDoNotRetryStatus,
    CqeSqHeadGarbage,

    // Fatal transport error from the controller
    C2HTermReq,
}
