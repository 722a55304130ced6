using System.Buffers.Binary;

namespace ActorNvme.Protocol.Tcp;

/// <summary>Fatal error status carried by H2CTermReq and C2HTermReq.</summary>
public enum TermReqError : ushort
{
    Reserved = 0x00,
    InvalidHeaderField = 0x01,
    PduSequenceError = 0x02,
    HeaderDigestError = 0x03,
    DataTransferOutOfRange = 0x04,
    R2TLimitExceeded = 0x05,
    UnsupportedParameter = 0x06,
}

/// <summary>
/// H2CTermReq / C2HTermReq header (24 bytes): FES and FEI (for an invalid header field, the byte offset
/// of the field in the offending header). Data following it is the offending PDU header, at most 152 bytes.
/// </summary>
public readonly record struct TermReq(TermReqError Status, uint ErrorInformation)
{
    public const int HeaderSize = PduSizes.TermReqHeader;

    public static TermReq Read(ReadOnlySpan<byte> header) => new(
        (TermReqError)BinaryPrimitives.ReadUInt16LittleEndian(header[8..]),
        BinaryPrimitives.ReadUInt32LittleEndian(header[10..]));

    /// <summary>Writes the header and up to 152 bytes of <paramref name="offendingHeader"/>; returns the PDU length.</summary>
    public int WriteTo(Span<byte> destination, PduType type, ReadOnlySpan<byte> offendingHeader)
    {
        if (type is not (PduType.H2CTermReq or PduType.C2HTermReq))
        {
            throw new ArgumentOutOfRangeException(nameof(type), type, "a TermReq is H2CTermReq or C2HTermReq");
        }

        var data = offendingHeader.Length > PduSizes.MaxTermReqData ? offendingHeader[..PduSizes.MaxTermReqData] : offendingHeader;
        int length = HeaderSize + data.Length;
        var pdu = destination[..length];
        pdu[..HeaderSize].Clear();
        new CommonHeader(type, PduFlags.None, HeaderSize, 0, (uint)length).WriteTo(pdu);
        BinaryPrimitives.WriteUInt16LittleEndian(pdu[8..], (ushort)Status);
        BinaryPrimitives.WriteUInt32LittleEndian(pdu[10..], ErrorInformation);
        data.CopyTo(pdu[HeaderSize..]);
        return length;
    }
}
