namespace ActorNvme.Protocol.Tcp;

/// <summary>NVMe/TCP PDU types (NVMe/TCP transport specification, PDU header "PDU-Type").</summary>
public enum PduType : byte
{
    ICReq = 0x00,
    ICResp = 0x01,
    H2CTermReq = 0x02,
    C2HTermReq = 0x03,
    CapsuleCmd = 0x04,
    CapsuleResp = 0x05,
    H2CData = 0x06,
    C2HData = 0x07,
    R2T = 0x09,
}

/// <summary>Flags in the common header. Which ones are legal depends on the PDU type.</summary>
[Flags]
public enum PduFlags : byte
{
    None = 0,

    /// <summary>A header digest follows the PDU header.</summary>
    HeaderDigest = 0x01,

    /// <summary>A data digest follows the PDU data.</summary>
    DataDigest = 0x02,

    /// <summary>Last data PDU of a transfer (C2HData, H2CData).</summary>
    LastPdu = 0x04,

    /// <summary>C2HData only: the command completed successfully and no CapsuleResp follows.</summary>
    Success = 0x08,
}

/// <summary>Sizes and limits fixed by the NVMe/TCP transport specification.</summary>
public static class PduSizes
{
    public const int CommonHeader = 8;
    public const int ICReq = 128;
    public const int ICResp = 128;
    public const int TermReqHeader = 24;
    public const int CapsuleCmdHeader = 72;
    public const int CapsuleResp = 24;
    public const int DataHeader = 24;
    public const int R2T = 24;
    public const int Digest = 4;

    /// <summary>Largest error data a TermReq carries (the offending PDU header, truncated).</summary>
    public const int MaxTermReqData = 152;

    /// <summary>The minimum MAXH2CDATA a controller may advertise.</summary>
    public const int MinMaxH2CData = 4096;

    /// <summary>Header length the specification fixes for each PDU type, or 0 for an unknown type.</summary>
    public static int HeaderLength(PduType type) => type switch
    {
        PduType.ICReq => ICReq,
        PduType.ICResp => ICResp,
        PduType.H2CTermReq or PduType.C2HTermReq => TermReqHeader,
        PduType.CapsuleCmd => CapsuleCmdHeader,
        PduType.CapsuleResp => CapsuleResp,
        PduType.H2CData or PduType.C2HData => DataHeader,
        PduType.R2T => R2T,
        _ => 0,
    };

    /// <summary>Whether digests (when negotiated) apply to this PDU type; they never apply to IC and TermReq PDUs.</summary>
    public static bool CarriesDigests(PduType type) =>
        type is PduType.CapsuleCmd or PduType.CapsuleResp or PduType.H2CData or PduType.C2HData or PduType.R2T;

    /// <summary>Whether this PDU type may carry data after its header.</summary>
    public static bool CarriesData(PduType type) =>
        type is PduType.CapsuleCmd or PduType.H2CData or PduType.C2HData or PduType.H2CTermReq or PduType.C2HTermReq;

    /// <summary>Whether the host sends this PDU type (as opposed to the controller).</summary>
    public static bool IsHostToController(PduType type) =>
        type is PduType.ICReq or PduType.H2CTermReq or PduType.CapsuleCmd or PduType.H2CData;
}
