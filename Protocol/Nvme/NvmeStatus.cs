namespace ActorNvme.Protocol.Nvme;

/// <summary>Status Code Type (SCT), bits 11:9 of the status field.</summary>
public enum StatusCodeType : byte
{
    Generic = 0,
    CommandSpecific = 1,
    MediaAndDataIntegrity = 2,
    PathRelated = 3,
    VendorSpecific = 7,
}

/// <summary>Which command set a status belongs to; command-specific codes mean different things in each.</summary>
public enum CommandSet : byte
{
    Admin,
    Nvm,
    Fabrics,
}

/// <summary>
/// The 16-bit status half of CQE dword 3: phase (bit 0, meaningless over fabrics), SC (8:1),
/// SCT (11:9), CRD (13:12), More (14), DNR (15).
/// </summary>
public readonly record struct NvmeStatus(ushort Raw)
{
    public static NvmeStatus Success => default;

    public static NvmeStatus Create(StatusCodeType type, byte code, bool doNotRetry = false, bool more = false, byte retryDelay = 0) =>
        new((ushort)((code << 1) | ((int)type << 9) | ((retryDelay & 0x3) << 12) | (more ? 1 << 14 : 0) | (doNotRetry ? 1 << 15 : 0)));

    public static NvmeStatus Generic(GenericStatus code, bool doNotRetry = false) => Create(StatusCodeType.Generic, (byte)code, doNotRetry);

    public static NvmeStatus Specific(byte code, bool doNotRetry = false) => Create(StatusCodeType.CommandSpecific, code, doNotRetry);

    public byte Code => (byte)(Raw >> 1);

    public StatusCodeType Type => (StatusCodeType)((Raw >> 9) & 0x7);

    /// <summary>Command Retry Delay index (CRD): which of the controller's CRDT values to wait before a retry.</summary>
    public byte RetryDelay => (byte)((Raw >> 12) & 0x3);

    /// <summary>More information is available in the error log page.</summary>
    public bool More => (Raw & (1 << 14)) != 0;

    /// <summary>Do Not Retry: the same command would fail again.</summary>
    public bool DoNotRetry => (Raw & (1 << 15)) != 0;

    public bool IsSuccess => Code == 0 && Type == StatusCodeType.Generic;

    /// <summary>Status with the phase tag cleared, so two completions compare equal regardless of phase.</summary>
    public NvmeStatus WithoutPhase => new((ushort)(Raw & ~1));

    /// <summary>The specification's name for this status in the given command set.</summary>
    public string Name(CommandSet commandSet = CommandSet.Admin) => StatusNames.Describe(Type, Code, commandSet);

    public override string ToString() =>
        $"{Name()} (SCT 0x{(byte)Type:x} SC 0x{Code:x2}{(DoNotRetry ? ", DNR" : string.Empty)}{(More ? ", More" : string.Empty)}{(RetryDelay != 0 ? $", CRD {RetryDelay}" : string.Empty)})";

    /// <summary>Like <see cref="ToString()"/> but names command-specific codes for the given command set.</summary>
    public string ToString(CommandSet commandSet) =>
        $"{Name(commandSet)} (SCT 0x{(byte)Type:x} SC 0x{Code:x2}{(DoNotRetry ? ", DNR" : string.Empty)}{(More ? ", More" : string.Empty)})";
}

/// <summary>Generic command status values (SCT 0).</summary>
public enum GenericStatus : byte
{
    Success = 0x00,
    InvalidOpcode = 0x01,
    InvalidField = 0x02,
    CommandIdConflict = 0x03,
    DataTransferError = 0x04,
    AbortedPowerLoss = 0x05,
    InternalError = 0x06,
    AbortRequested = 0x07,
    AbortedSqDeletion = 0x08,
    AbortedFailedFused = 0x09,
    AbortedMissingFused = 0x0A,
    InvalidNamespaceOrFormat = 0x0B,
    CommandSequenceError = 0x0C,
    InvalidSglSegmentDescriptor = 0x0D,
    InvalidNumberOfSglDescriptors = 0x0E,
    DataSglLengthInvalid = 0x0F,
    MetadataSglLengthInvalid = 0x10,
    SglDescriptorTypeInvalid = 0x11,
    InvalidUseOfControllerMemoryBuffer = 0x12,
    PrpOffsetInvalid = 0x13,
    AtomicWriteUnitExceeded = 0x14,
    OperationDenied = 0x15,
    SglOffsetInvalid = 0x16,
    HostIdentifierInconsistentFormat = 0x18,
    KeepAliveTimerExpired = 0x19,
    KeepAliveTimeoutInvalid = 0x1A,
    AbortedPreemptAndAbort = 0x1B,
    SanitizeFailed = 0x1C,
    SanitizeInProgress = 0x1D,
    SglDataBlockGranularityInvalid = 0x1E,
    CommandNotSupportedForQueueInCmb = 0x1F,
    NamespaceWriteProtected = 0x20,
    CommandInterrupted = 0x21,
    TransientTransportError = 0x22,
    LbaOutOfRange = 0x80,
    CapacityExceeded = 0x81,
    NamespaceNotReady = 0x82,
    ReservationConflict = 0x83,
    FormatInProgress = 0x84,
}

/// <summary>Command-specific status values of fabrics commands (SCT 1).</summary>
public enum FabricsStatus : byte
{
    IncompatibleFormat = 0x80,
    ControllerBusy = 0x81,
    ConnectInvalidParameters = 0x82,
    ConnectRestartDiscovery = 0x83,
    ConnectInvalidHost = 0x84,
    InvalidQueueType = 0x85,
    DiscoverRestart = 0x90,
    AuthenticationRequired = 0x91,
}

/// <summary>Command-specific status values of admin commands (SCT 1).</summary>
public enum AdminSpecificStatus : byte
{
    CompletionQueueInvalid = 0x00,
    InvalidQueueIdentifier = 0x01,
    InvalidQueueSize = 0x02,
    AbortCommandLimitExceeded = 0x03,
    AsyncEventRequestLimitExceeded = 0x05,
    InvalidFirmwareSlot = 0x06,
    InvalidFirmwareImage = 0x07,
    InvalidInterruptVector = 0x08,
    InvalidLogPage = 0x09,
    InvalidFormat = 0x0A,
    FeatureIdentifierNotSaveable = 0x0D,
    FeatureNotChangeable = 0x0E,
    FeatureNotNamespaceSpecific = 0x0F,
    NamespaceInsufficientCapacity = 0x15,
    NamespaceIdentifierUnavailable = 0x16,
    NamespaceAlreadyAttached = 0x18,
    NamespaceIsPrivate = 0x19,
    NamespaceNotAttached = 0x1A,
    ThinProvisioningNotSupported = 0x1B,
    ControllerListInvalid = 0x1C,
    AnaGroupIdentifierInvalid = 0x24,
}

/// <summary>Path-related status values (SCT 3).</summary>
public enum PathStatus : byte
{
    InternalPathError = 0x00,
    AsymmetricAccessPersistentLoss = 0x01,
    AsymmetricAccessInaccessible = 0x02,
    AsymmetricAccessTransition = 0x03,
    ControllerPathingError = 0x60,
    HostPathingError = 0x70,
    CommandAbortedByHost = 0x71,
}

internal static class StatusNames
{
    public static string Describe(StatusCodeType type, byte code, CommandSet commandSet) => type switch
    {
        StatusCodeType.Generic => Enum.IsDefined((GenericStatus)code) ? Words(((GenericStatus)code).ToString()) : $"reserved generic status 0x{code:x2}",
        StatusCodeType.CommandSpecific => CommandSpecific(code, commandSet),
        StatusCodeType.MediaAndDataIntegrity => Media(code),
        StatusCodeType.PathRelated => Enum.IsDefined((PathStatus)code) ? Words(((PathStatus)code).ToString()) : $"reserved path status 0x{code:x2}",
        StatusCodeType.VendorSpecific => $"vendor specific status 0x{code:x2}",
        _ => $"reserved status type {(byte)type} code 0x{code:x2}",
    };

    private static string CommandSpecific(byte code, CommandSet commandSet)
    {
        if (commandSet == CommandSet.Fabrics && Enum.IsDefined((FabricsStatus)code))
        {
            return Words(((FabricsStatus)code).ToString());
        }

        if (commandSet == CommandSet.Nvm)
        {
            switch (code)
            {
                case 0x80: return "conflicting attributes";
                case 0x81: return "invalid protection information";
                case 0x82: return "attempted write to read only range";
            }
        }

        return Enum.IsDefined((AdminSpecificStatus)code) ? Words(((AdminSpecificStatus)code).ToString()) : $"command specific status 0x{code:x2}";
    }

    private static string Media(byte code) => code switch
    {
        0x80 => "write fault",
        0x81 => "unrecovered read error",
        0x82 => "end-to-end guard check error",
        0x83 => "end-to-end application tag check error",
        0x84 => "end-to-end reference tag check error",
        0x85 => "compare failure",
        0x86 => "access denied",
        0x87 => "deallocated or unwritten logical block",
        _ => $"media status 0x{code:x2}",
    };

    // "InvalidQueueSize" → "invalid queue size": readable in logs without a second table.
    private static string Words(string pascal)
    {
        var builder = new System.Text.StringBuilder(pascal.Length + 8);
        for (int i = 0; i < pascal.Length; i++)
        {
            char c = pascal[i];
            if (char.IsUpper(c) && i > 0 && !char.IsUpper(pascal[i - 1]))
            {
                builder.Append(' ');
            }

            builder.Append(char.ToLowerInvariant(c));
        }

        return builder.ToString();
    }
}
