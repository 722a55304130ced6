using System.Buffers.Binary;

namespace ActorNvme.Protocol.Tcp;

/// <summary>
/// Header of C2HData and H2CData (24 bytes): CCCID, TTAG (H2CData only), DATAO, DATAL.
/// </summary>
public readonly record struct DataPduHeader(ushort CommandId, ushort TransferTag, uint DataOffset, uint DataLength)
{
    public const int Size = PduSizes.DataHeader;

    public static DataPduHeader Read(ReadOnlySpan<byte> header) => new(
        BinaryPrimitives.ReadUInt16LittleEndian(header[8..]),
        BinaryPrimitives.ReadUInt16LittleEndian(header[10..]),
        BinaryPrimitives.ReadUInt32LittleEndian(header[12..]),
        BinaryPrimitives.ReadUInt32LittleEndian(header[16..]));

    /// <summary>Writes the PDU-specific part (bytes 8..23); the caller writes the common header.</summary>
    public void WriteSpecific(Span<byte> header)
    {
        BinaryPrimitives.WriteUInt16LittleEndian(header[8..], CommandId);
        BinaryPrimitives.WriteUInt16LittleEndian(header[10..], TransferTag);
        BinaryPrimitives.WriteUInt32LittleEndian(header[12..], DataOffset);
        BinaryPrimitives.WriteUInt32LittleEndian(header[16..], DataLength);
        header[20..24].Clear();
    }
}

/// <summary>Ready to Transfer (24 bytes): the controller asks for R2TL bytes at offset R2TO of command CCCID.</summary>
public readonly record struct R2THeader(ushort CommandId, ushort TransferTag, uint Offset, uint Length)
{
    public const int Size = PduSizes.R2T;

    public static R2THeader Read(ReadOnlySpan<byte> header) => new(
        BinaryPrimitives.ReadUInt16LittleEndian(header[8..]),
        BinaryPrimitives.ReadUInt16LittleEndian(header[10..]),
        BinaryPrimitives.ReadUInt32LittleEndian(header[12..]),
        BinaryPrimitives.ReadUInt32LittleEndian(header[16..]));

    public void WriteSpecific(Span<byte> header)
    {
        BinaryPrimitives.WriteUInt16LittleEndian(header[8..], CommandId);
        BinaryPrimitives.WriteUInt16LittleEndian(header[10..], TransferTag);
        BinaryPrimitives.WriteUInt32LittleEndian(header[12..], Offset);
        BinaryPrimitives.WriteUInt32LittleEndian(header[16..], Length);
        header[20..24].Clear();
    }
}
