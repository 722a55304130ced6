using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using ActorNvme.Protocol.Nvme;

namespace ActorNvme.Protocol.Tcp;

/// <summary>
/// Lays out and writes complete PDUs: header, header digest, PDO padding, data, data digest.
/// Everything writes into caller-provided spans; nothing allocates.
/// </summary>
public static class PduWriter
{
    /// <summary>
    /// Where data starts in a PDU: after the header and its digest, rounded up to the peer's
    /// alignment (CPDA/HPDA as bytes: (value+1)*4; 4 means no padding beyond the 4-byte digest grid).
    /// </summary>
    public static int DataOffset(int headerLength, bool headerDigest, int dataAlignment)
    {
        int offset = headerLength + (headerDigest ? PduSizes.Digest : 0);
        if (dataAlignment > 4)
        {
            offset = (offset + dataAlignment - 1) / dataAlignment * dataAlignment;
        }

        return offset;
    }

    /// <summary>Total PDU length for a header of <paramref name="headerLength"/> bytes carrying <paramref name="dataLength"/> bytes of data.</summary>
    public static int PduLength(int headerLength, int dataLength, DigestOptions digests, int dataAlignment)
    {
        bool headerDigest = (digests & DigestOptions.Header) != 0;
        if (dataLength == 0)
        {
            return headerLength + (headerDigest ? PduSizes.Digest : 0);
        }

        return DataOffset(headerLength, headerDigest, dataAlignment) + dataLength + ((digests & DigestOptions.Data) != 0 ? PduSizes.Digest : 0);
    }

    /// <summary>Writes a CapsuleCmd with optional in-capsule data; returns its length.</summary>
    public static int WriteCapsuleCommand(Span<byte> destination, in SubmissionQueueEntry command, ReadOnlySpan<byte> inCapsuleData, DigestOptions digests, int dataAlignment = 4)
    {
        int length = WriteHeaderAndData(destination, PduType.CapsuleCmd, PduFlags.None, PduSizes.CapsuleCmdHeader, inCapsuleData, digests, dataAlignment, out var header);
        command.WriteTo(header[CommonHeader.Size..]);
        SealHeader(destination, PduSizes.CapsuleCmdHeader, digests);
        return length;
    }

    /// <summary>Writes a CapsuleResp; returns its length.</summary>
    public static int WriteCapsuleResponse(Span<byte> destination, in CompletionQueueEntry completion, DigestOptions digests)
    {
        int length = WriteHeaderAndData(destination, PduType.CapsuleResp, PduFlags.None, PduSizes.CapsuleResp, default, digests, 4, out var header);
        completion.WriteTo(header[CommonHeader.Size..]);
        SealHeader(destination, PduSizes.CapsuleResp, digests);
        return length;
    }

    /// <summary>Writes an R2T; returns its length.</summary>
    public static int WriteR2T(Span<byte> destination, in R2THeader r2t, DigestOptions digests)
    {
        int length = WriteHeaderAndData(destination, PduType.R2T, PduFlags.None, PduSizes.R2T, default, digests, 4, out var header);
        r2t.WriteSpecific(header);
        SealHeader(destination, PduSizes.R2T, digests);
        return length;
    }

    /// <summary>Writes a C2HData or H2CData PDU carrying <paramref name="data"/>; returns its length.</summary>
    public static int WriteDataPdu(Span<byte> destination, PduType type, in DataPduHeader dataHeader, ReadOnlySpan<byte> data, DigestOptions digests, bool last, bool success = false, int dataAlignment = 4)
    {
        if (type is not (PduType.C2HData or PduType.H2CData))
        {
            throw new ArgumentOutOfRangeException(nameof(type), type, "a data PDU is C2HData or H2CData");
        }

        if (success && (!last || type != PduType.C2HData))
        {
            throw new ArgumentException("SUCCESS is valid only on the last C2HData PDU of a transfer", nameof(success));
        }

        var flags = (last ? PduFlags.LastPdu : PduFlags.None) | (success ? PduFlags.Success : PduFlags.None);
        int length = WriteHeaderAndData(destination, type, flags, PduSizes.DataHeader, data, digests, dataAlignment, out var header);
        (dataHeader with { DataLength = (uint)data.Length }).WriteSpecific(header);
        SealHeader(destination, PduSizes.DataHeader, digests);
        return length;
    }

    /// <summary>
    /// Writes only the header part of a data PDU (header, header digest, padding) for a caller that
    /// writes the data itself (e.g. straight from its buffer with a gather send); returns the header
    /// part's length. The caller appends the data and, with data digests, <see cref="WriteDigest"/> of it.
    /// </summary>
    public static int WriteDataPduPrefix(Span<byte> destination, PduType type, in DataPduHeader dataHeader, DigestOptions digests, bool last, bool success = false, int dataAlignment = 4)
    {
        bool headerDigest = (digests & DigestOptions.Header) != 0;
        bool dataDigest = (digests & DigestOptions.Data) != 0;
        int dataLength = (int)dataHeader.DataLength;
        int offset = DataOffset(PduSizes.DataHeader, headerDigest, dataAlignment);
        int pduLength = offset + dataLength + (dataDigest ? PduSizes.Digest : 0);
        var flags = (last ? PduFlags.LastPdu : PduFlags.None) | (success ? PduFlags.Success : PduFlags.None)
            | (headerDigest ? PduFlags.HeaderDigest : PduFlags.None) | (dataDigest ? PduFlags.DataDigest : PduFlags.None);
        var prefix = destination[..offset];
        prefix.Clear();
        new CommonHeader(type, flags, PduSizes.DataHeader, (byte)offset, (uint)pduLength).WriteTo(prefix);
        dataHeader.WriteSpecific(prefix);
        SealHeader(destination, PduSizes.DataHeader, digests);
        return offset;
    }

    /// <summary>Writes the CRC32C of <paramref name="data"/> as a 4-byte little-endian digest.</summary>
    public static void WriteDigest(Span<byte> destination, ReadOnlySpan<byte> data) =>
        BinaryPrimitives.WriteUInt32LittleEndian(destination, Crc32C.Compute(data));

    private static int WriteHeaderAndData(Span<byte> destination, PduType type, PduFlags flags, int headerLength, ReadOnlySpan<byte> data, DigestOptions digests, int dataAlignment, out Span<byte> header)
    {
        bool headerDigest = (digests & DigestOptions.Header) != 0;
        bool dataDigest = (digests & DigestOptions.Data) != 0 && data.Length > 0;
        int pduLength = PduLength(headerLength, data.Length, digests, dataAlignment);
        if (destination.Length < pduLength)
        {
            throw new ArgumentException($"{type} needs {pduLength} bytes, the destination has {destination.Length}", nameof(destination));
        }

        int dataOffset = data.Length > 0 ? DataOffset(headerLength, headerDigest, dataAlignment) : 0;
        if (dataOffset > byte.MaxValue)
        {
            throw new ArgumentOutOfRangeException(nameof(dataAlignment), dataAlignment, "data offset does not fit PDO");
        }

        flags |= (headerDigest ? PduFlags.HeaderDigest : PduFlags.None) | (dataDigest ? PduFlags.DataDigest : PduFlags.None);
        var pdu = destination[..pduLength];
        int prefixEnd = data.Length > 0 ? dataOffset : pduLength;
        pdu[..prefixEnd].Clear();
        new CommonHeader(type, flags, (byte)headerLength, (byte)dataOffset, (uint)pduLength).WriteTo(pdu);
        if (data.Length > 0)
        {
            data.CopyTo(pdu[dataOffset..]);
            if (dataDigest)
            {
                WriteDigest(pdu[(dataOffset + data.Length)..], data);
            }
        }

        header = pdu[..headerLength];
        return pduLength;
    }

    private static void SealHeader(Span<byte> pdu, int headerLength, DigestOptions digests)
    {
        if ((digests & DigestOptions.Header) != 0)
        {
            WriteDigest(pdu[headerLength..], pdu[..headerLength]);
        }
    }
}
