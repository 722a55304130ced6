using System.Buffers.Binary;

namespace ActorNvme.Protocol.Nvme;

/// <summary>
/// A 16-byte SGL descriptor as NVMe/TCP uses it in DPTR: a data block with an offset address for
/// in-capsule data, or a transport data block for data moved by C2HData / R2T+H2CData.
/// </summary>
public readonly record struct SglDescriptor(ulong Address, uint Length, byte Identifier)
{
    public const int Size = 16;

    /// <summary>SGL descriptor type 0 (data block), subtype 1 (offset): data inside the capsule.</summary>
    public const byte InCapsuleDataBlock = 0x01;

    /// <summary>SGL descriptor type 5 (transport data block), subtype 0xA (transport specific).</summary>
    public const byte TransportDataBlock = 0x5A;

    /// <summary>Data carried inside the command capsule, starting at <paramref name="offset"/> from the capsule data.</summary>
    public static SglDescriptor InCapsule(uint length, ulong offset = 0) => new(offset, length, InCapsuleDataBlock);

    /// <summary>Data moved by the transport (C2HData, or R2T then H2CData). Also used with length 0 for no data.</summary>
    public static SglDescriptor Transport(uint length) => new(0, length, TransportDataBlock);

    public byte DescriptorType => (byte)(Identifier >> 4);

    public byte DescriptorSubtype => (byte)(Identifier & 0x0F);

    public bool IsInCapsule => Identifier == InCapsuleDataBlock;

    public bool IsTransport => Identifier == TransportDataBlock;

    public static SglDescriptor Read(ReadOnlySpan<byte> source) => new(
        BinaryPrimitives.ReadUInt64LittleEndian(source),
        BinaryPrimitives.ReadUInt32LittleEndian(source[8..]),
        source[15]);

    public void WriteTo(Span<byte> destination)
    {
        BinaryPrimitives.WriteUInt64LittleEndian(destination, Address);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[8..], Length);
        destination[12] = 0;
        destination[13] = 0;
        destination[14] = 0;
        destination[15] = Identifier;
    }
}
