using System.Buffers.Binary;

namespace ActorNvme.Protocol.Tests.Vectors;

/// <summary>One NVMe/TCP PDU as the test walker sees it: the common header fields and the whole PDU bytes.</summary>
internal sealed record TestPdu(byte Type, byte Flags, byte HeaderLength, byte DataOffset, int Length, ReadOnlyMemory<byte> Bytes)
{
    public const byte ICResp = 0x01;
    public const byte CapsuleCmd = 0x04;
    public const byte CapsuleResp = 0x05;
    public const byte C2HData = 0x07;

    /// <summary>The PDU data section (from PDO to the end, less a data digest when flagged).</summary>
    public ReadOnlySpan<byte> Data
    {
        get
        {
            if (DataOffset == 0)
            {
                return [];
            }

            int end = Length - ((Flags & 0x02) != 0 ? 4 : 0);
            return Bytes.Span[DataOffset..end];
        }
    }

    /// <summary>C2HData: DATAL, bytes 16..19 of the header.</summary>
    public int C2HDataLength => (int)BinaryPrimitives.ReadUInt32LittleEndian(Bytes.Span[16..]);

    /// <summary>CapsuleResp: completion dword 0 (header offset 8).</summary>
    public uint CompletionDword0 => BinaryPrimitives.ReadUInt32LittleEndian(Bytes.Span[8..]);

    /// <summary>CapsuleResp: completion dword 1 (header offset 12).</summary>
    public uint CompletionDword1 => BinaryPrimitives.ReadUInt32LittleEndian(Bytes.Span[12..]);

    /// <summary>CapsuleResp: the status field (header offset 22), shifted past the phase bit.</summary>
    public ushort CompletionStatus => (ushort)(BinaryPrimitives.ReadUInt16LittleEndian(Bytes.Span[22..]) >> 1);

    /// <summary>CapsuleCmd: SQE opcode (header offset 8).</summary>
    public byte CommandOpcode => Bytes.Span[8];

    /// <summary>CapsuleCmd: fabrics command type (SQE byte 4, header offset 12).</summary>
    public byte FabricsCommandType => Bytes.Span[12];
}

/// <summary>
/// A deliberately tiny NVMe/TCP PDU walker for golden-vector tests (the real framer lives in the protocol
/// library): splits a reassembled stream at each common header's PLEN.
/// </summary>
internal static class TestPduWalker
{
    public const int CommonHeaderSize = 8;

    public static IReadOnlyList<TestPdu> Walk(ReadOnlyMemory<byte> stream)
    {
        var pdus = new List<TestPdu>();
        int offset = 0;
        var span = stream.Span;
        while (offset < span.Length)
        {
            if (span.Length - offset < CommonHeaderSize)
            {
                throw new InvalidDataException($"{span.Length - offset} trailing bytes at offset {offset}, shorter than a common header");
            }

            var ch = span[offset..];
            int plen = checked((int)BinaryPrimitives.ReadUInt32LittleEndian(ch[4..]));
            byte hlen = ch[2];
            byte pdo = ch[3];
            if (plen < hlen || hlen < CommonHeaderSize || plen > span.Length - offset || (pdo != 0 && (pdo < hlen || pdo > plen)))
            {
                throw new InvalidDataException($"PDU at offset {offset}: type 0x{ch[0]:x2} hlen {hlen} pdo {pdo} plen {plen} does not fit the {span.Length - offset} bytes left");
            }

            pdus.Add(new TestPdu(ch[0], ch[1], hlen, pdo, plen, stream.Slice(offset, plen)));
            offset += plen;
        }

        return pdus;
    }
}
