using System.Buffers.Binary;

namespace ActorNvme.Protocol.Tcp;

/// <summary>Digest bits of the ICReq/ICResp DGST field.</summary>
[Flags]
public enum DigestOptions : byte
{
    None = 0,
    Header = 0x01,
    Data = 0x02,
    Both = Header | Data,
}

/// <summary>Initialize Connection Request (host → controller), 128 bytes.</summary>
public readonly record struct ICReq(ushort PduFormatVersion, byte HostPduDataAlignment, DigestOptions Digests, uint MaxR2TOutstanding)
{
    public const int Size = PduSizes.ICReq;

    /// <summary>Reads the PDU from its full 128 bytes (common header included).</summary>
    public static ICReq Read(ReadOnlySpan<byte> pdu) => new(
        BinaryPrimitives.ReadUInt16LittleEndian(pdu[8..]),
        pdu[10],
        (DigestOptions)pdu[11],
        BinaryPrimitives.ReadUInt32LittleEndian(pdu[12..]));

    /// <summary>Writes the whole PDU, common header included, into the first 128 bytes of <paramref name="destination"/>.</summary>
    public void WriteTo(Span<byte> destination)
    {
        var pdu = destination[..Size];
        pdu.Clear();
        new CommonHeader(PduType.ICReq, PduFlags.None, Size, 0, Size).WriteTo(pdu);
        BinaryPrimitives.WriteUInt16LittleEndian(pdu[8..], PduFormatVersion);
        pdu[10] = HostPduDataAlignment;
        pdu[11] = (byte)Digests;
        BinaryPrimitives.WriteUInt32LittleEndian(pdu[12..], MaxR2TOutstanding);
    }
}

/// <summary>Initialize Connection Response (controller → host), 128 bytes.</summary>
public readonly record struct ICResp(ushort PduFormatVersion, byte ControllerPduDataAlignment, DigestOptions Digests, uint MaxH2CData)
{
    public const int Size = PduSizes.ICResp;

    public static ICResp Read(ReadOnlySpan<byte> pdu) => new(
        BinaryPrimitives.ReadUInt16LittleEndian(pdu[8..]),
        pdu[10],
        (DigestOptions)pdu[11],
        BinaryPrimitives.ReadUInt32LittleEndian(pdu[12..]));

    public void WriteTo(Span<byte> destination)
    {
        var pdu = destination[..Size];
        pdu.Clear();
        new CommonHeader(PduType.ICResp, PduFlags.None, Size, 0, Size).WriteTo(pdu);
        BinaryPrimitives.WriteUInt16LittleEndian(pdu[8..], PduFormatVersion);
        pdu[10] = ControllerPduDataAlignment;
        pdu[11] = (byte)Digests;
        BinaryPrimitives.WriteUInt32LittleEndian(pdu[12..], MaxH2CData);
    }

    /// <summary>CPDA is in units of 4 bytes, 0's based: data starts at a multiple of (CPDA+1)*4.</summary>
    public int DataAlignment => (ControllerPduDataAlignment + 1) * 4;
}
