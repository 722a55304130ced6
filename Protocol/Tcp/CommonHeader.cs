using System.Buffers.Binary;
using System.Runtime.CompilerServices;

namespace ActorNvme.Protocol.Tcp;

/// <summary>The 8-byte header every NVMe/TCP PDU starts with.</summary>
public readonly record struct CommonHeader(PduType Type, PduFlags Flags, byte HeaderLength, byte DataOffset, uint PduLength)
{
    public const int Size = PduSizes.CommonHeader;

    public static bool TryRead(ReadOnlySpan<byte> source, out CommonHeader header)
    {
        if (source.Length < Size)
        {
            header = default;
            return false;
        }

        header = new CommonHeader(
            (PduType)source[0],
            (PduFlags)source[1],
            source[2],
            source[3],
            BinaryPrimitives.ReadUInt32LittleEndian(source[4..]));
        return true;
    }

    public void WriteTo(Span<byte> destination)
    {
        destination[0] = (byte)Type;
        destination[1] = (byte)Flags;
        destination[2] = HeaderLength;
        destination[3] = DataOffset;
        BinaryPrimitives.WriteUInt32LittleEndian(destination[4..], PduLength);
    }
}
