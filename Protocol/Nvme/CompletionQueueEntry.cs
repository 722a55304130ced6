using System.Buffers.Binary;

namespace ActorNvme.Protocol.Nvme;

/// <summary>The 16-byte completion queue entry.</summary>
public readonly record struct CompletionQueueEntry(uint Dw0, uint Dw1, ushort SqHead, ushort SqId, ushort CommandId, NvmeStatus Status)
{
    public const int Size = 16;

    /// <summary>Dword 0 and 1 as one 64-bit value (Property Get of an 8-byte register returns it so).</summary>
    public ulong Result64 => ((ulong)Dw1 << 32) | Dw0;

    public static CompletionQueueEntry Read(ReadOnlySpan<byte> source)
    {
        if (source.Length < Size)
        {
            throw new ArgumentException($"a CQE is {Size} bytes, got {source.Length}", nameof(source));
        }

        return new CompletionQueueEntry(
            BinaryPrimitives.ReadUInt32LittleEndian(source),
            BinaryPrimitives.ReadUInt32LittleEndian(source[4..]),
            BinaryPrimitives.ReadUInt16LittleEndian(source[8..]),
            BinaryPrimitives.ReadUInt16LittleEndian(source[10..]),
            BinaryPrimitives.ReadUInt16LittleEndian(source[12..]),
            new NvmeStatus(BinaryPrimitives.ReadUInt16LittleEndian(source[14..])));
    }

    public void WriteTo(Span<byte> destination)
    {
        if (destination.Length < Size)
        {
            throw new ArgumentException($"a CQE is {Size} bytes, got room for {destination.Length}", nameof(destination));
        }

        BinaryPrimitives.WriteUInt32LittleEndian(destination, Dw0);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[4..], Dw1);
        BinaryPrimitives.WriteUInt16LittleEndian(destination[8..], SqHead);
        BinaryPrimitives.WriteUInt16LittleEndian(destination[10..], SqId);
        BinaryPrimitives.WriteUInt16LittleEndian(destination[12..], CommandId);
        BinaryPrimitives.WriteUInt16LittleEndian(destination[14..], Status.Raw);
    }
}
