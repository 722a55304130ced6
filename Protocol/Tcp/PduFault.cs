namespace ActorNvme.Protocol.Tcp;

/// <summary>Why the framer refused a PDU. Every value here is fatal for the connection.</summary>
public enum PduError : byte
{
    None = 0,

    /// <summary>PDU-Type is not one the specification defines.</summary>
    UnknownPduType,

    /// <summary>A defined PDU type that this side must never receive (e.g. a CapsuleCmd sent to a host).</summary>
    UnexpectedPduType,

    /// <summary>HLEN is not the length the specification fixes for the PDU type.</summary>
    HeaderLengthMismatch,

    /// <summary>PLEN is smaller than the header (plus its digest) it must contain.</summary>
    PduLengthTooSmall,

    /// <summary>PLEN exceeds the negotiated or configured maximum.</summary>
    PduLengthTooLarge,

    /// <summary>PDO points inside the header or its digest.</summary>
    DataOffsetInsideHeader,

    /// <summary>PDO points past the end of the PDU (or leaves no room for the data digest).</summary>
    DataOffsetBeyondPdu,

    /// <summary>A PDU type that carries no data has PLEN larger than its header.</summary>
    UnexpectedData,

    /// <summary>HDGSTF/DDGSTF do not match the digests negotiated at connection initialization.</summary>
    DigestFlagMismatch,

    /// <summary>The header digest does not match the header.</summary>
    HeaderDigestMismatch,

    /// <summary>A flag is set that the PDU type does not allow.</summary>
    InvalidFlags,
}

/// <summary>
/// A refused PDU: the error, the offending value and the byte offset of the offending field in the
/// header (what a TermReq reports as FEI).
/// </summary>
public readonly record struct PduFault(PduError Error, long Value, int FieldOffset, PduType Type)
{
    /// <summary>The TermReq status that reports this fault to the peer.</summary>
    public TermReqError TermReqStatus => Error switch
    {
        PduError.HeaderDigestMismatch => TermReqError.HeaderDigestError,
        PduError.PduLengthTooLarge => TermReqError.DataTransferOutOfRange,
        PduError.UnexpectedPduType => TermReqError.PduSequenceError,
        _ => TermReqError.InvalidHeaderField,
    };

    public string Describe() => Error switch
    {
        PduError.UnknownPduType => $"unknown PDU type 0x{Value:x2}",
        PduError.UnexpectedPduType => $"PDU type {Type} is not valid in this direction",
        PduError.HeaderLengthMismatch => $"HLEN {Value} does not match {Type}, whose header is {PduSizes.HeaderLength(Type)} bytes",
        PduError.PduLengthTooSmall => $"PLEN {Value} is smaller than the {Type} header it must contain",
        PduError.PduLengthTooLarge => $"PLEN {Value} of {Type} exceeds the maximum PDU length",
        PduError.DataOffsetInsideHeader => $"PDO {Value} of {Type} points inside the PDU header",
        PduError.DataOffsetBeyondPdu => $"PDO {Value} of {Type} points past the end of the PDU",
        PduError.UnexpectedData => $"{Type} carries no data but PLEN is {Value}",
        PduError.DigestFlagMismatch => $"digest flags 0x{Value:x2} of {Type} do not match the negotiated digests",
        PduError.HeaderDigestMismatch => $"header digest mismatch on {Type} (received 0x{Value:x8})",
        PduError.InvalidFlags => $"flags 0x{Value:x2} are not valid for {Type}",
        _ => Error.ToString(),
    };

    public override string ToString() => Describe();
}
