namespace ActorNvme.Protocol.Data;

/// <summary>Asynchronous event type (bits 2:0 of the AER completion dword 0).</summary>
public enum AsyncEventType : byte
{
    /// <summary>Error status.</summary>
    Error = 0,

    /// <summary>SMART / health status.</summary>
    SmartHealth = 1,

    /// <summary>Notice.</summary>
    Notice = 2,

    /// <summary>Immediate (NVMe 2.0).</summary>
    Immediate = 3,

    /// <summary>One-shot (NVMe 2.0).</summary>
    OneShot = 4,

    /// <summary>I/O command set specific status.</summary>
    IoCommandSet = 6,

    /// <summary>Vendor specific.</summary>
    VendorSpecific = 7,
}

/// <summary>Asynchronous event information for <see cref="AsyncEventType.Notice"/> events.</summary>
public enum AsyncEventNotice : byte
{
    /// <summary>Namespace attribute changed (read the Changed Namespace List).</summary>
    NamespaceAttributeChanged = 0x00,

    /// <summary>Firmware activation starting.</summary>
    FirmwareActivationStarting = 0x01,

    /// <summary>Telemetry log changed.</summary>
    TelemetryLogChanged = 0x02,

    /// <summary>Asymmetric namespace access change (read the ANA log page).</summary>
    AnaChange = 0x03,

    /// <summary>Predictable latency event aggregate log change.</summary>
    PredictableLatencyEventAggregateLogChange = 0x04,

    /// <summary>LBA status information alert.</summary>
    LbaStatusInformationAlert = 0x05,

    /// <summary>Endurance group event aggregate log page change.</summary>
    EnduranceGroupEventAggregateLogChange = 0x06,

    /// <summary>Normal NVM subsystem shutdown.</summary>
    NormalSubsystemShutdown = 0x07,

    /// <summary>Discovery log page change (read the discovery log page again).</summary>
    DiscoveryLogPageChange = 0xF0,
}

/// <summary>
/// Dword 0 of an Asynchronous Event Request completion: type (bits 2:0), information (15:8), log page id (23:16).
/// </summary>
/// <param name="Type">Asynchronous event type.</param>
/// <param name="Info">Asynchronous event information; for notices see <see cref="Notice"/>.</param>
/// <param name="LogPageId">The log page to read to clear the event.</param>
public readonly record struct AsyncEventCompletion(AsyncEventType Type, byte Info, byte LogPageId)
{
    /// <summary>The notice, when <see cref="Type"/> is <see cref="AsyncEventType.Notice"/>.</summary>
    public AsyncEventNotice? Notice => Type == AsyncEventType.Notice ? (AsyncEventNotice)Info : null;

    /// <summary>A notice event with the log page conventionally associated with it.</summary>
    public static AsyncEventCompletion ForNotice(AsyncEventNotice notice, byte logPageId) =>
        new(AsyncEventType.Notice, (byte)notice, logPageId);

    /// <summary>Decodes completion dword 0 (reserved bits are ignored).</summary>
    public static AsyncEventCompletion FromDword0(uint dword0) =>
        new((AsyncEventType)(dword0 & 0x7), (byte)(dword0 >> 8), (byte)(dword0 >> 16));

    /// <summary>Encodes completion dword 0; throws <see cref="NvmeDataException"/> when the type exceeds 3 bits.</summary>
    public uint ToDword0()
    {
        if ((byte)Type > 7)
        {
            throw NvmeDataException.OutOfRange("AER type", (byte)Type, 7);
        }

        return (uint)Type | ((uint)Info << 8) | ((uint)LogPageId << 16);
    }
}

/// <summary>Asynchronous Event Configuration (feature 0Bh) bits; also the layout of Identify Controller OAES.</summary>
[Flags]
public enum AsyncEventConfiguration : uint
{
    /// <summary>No notices enabled.</summary>
    None = 0,

    /// <summary>Bits 7:0: SMART / health critical warnings (each bit one warning).</summary>
    SmartCriticalWarnings = 0xFF,

    /// <summary>Bit 8: namespace attribute notices.</summary>
    NamespaceAttributeNotices = 1u << 8,

    /// <summary>Bit 9: firmware activation notices.</summary>
    FirmwareActivationNotices = 1u << 9,

    /// <summary>Bit 10: telemetry log notices.</summary>
    TelemetryLogNotices = 1u << 10,

    /// <summary>Bit 11: ANA change notices.</summary>
    AnaChangeNotices = 1u << 11,

    /// <summary>Bit 12: predictable latency event aggregate log change notices.</summary>
    PredictableLatencyNotices = 1u << 12,

    /// <summary>Bit 13: LBA status information notices.</summary>
    LbaStatusInformationNotices = 1u << 13,

    /// <summary>Bit 14: endurance group event aggregate log change notices.</summary>
    EnduranceGroupNotices = 1u << 14,

    /// <summary>Bit 15: normal NVM subsystem shutdown notices.</summary>
    NormalSubsystemShutdownNotices = 1u << 15,

    /// <summary>Bit 31: discovery log page change notices.</summary>
    DiscoveryLogChangeNotices = 1u << 31,
}
