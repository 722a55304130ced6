using System.Buffers.Binary;
using System.Runtime.CompilerServices;

namespace ActorNvme.Protocol.Nvme;

/// <summary>
/// The 64-byte submission queue entry. A mutable value type so the hot path can fill one in place;
/// builders for each command live in <see cref="AdminCommands"/>, <see cref="FabricsCommands"/> and
/// <see cref="NvmCommands"/>. For fabrics commands byte 4 (the low byte of NSID) is FCTYPE.
/// </summary>
public struct SubmissionQueueEntry : IEquatable<SubmissionQueueEntry>
{
    public const int Size = 64;

    /// <summary>PSDT = 01b: data pointer is an SGL (the only form NVMe/TCP uses).</summary>
    public const byte SglFlag = 0x40;

    public byte Opcode;
    public byte Flags;
    public ushort CommandId;
    public uint NamespaceId;
    public uint Cdw2;
    public uint Cdw3;
    public ulong MetadataPointer;
    public SglDescriptor DataPointer;
    public uint Cdw10;
    public uint Cdw11;
    public uint Cdw12;
    public uint Cdw13;
    public uint Cdw14;
    public uint Cdw15;

    /// <summary>FCTYPE of a fabrics command (opcode 0x7F).</summary>
    public readonly FabricsCommandType FabricsType => (FabricsCommandType)(byte)NamespaceId;

    public readonly bool IsFabrics => Opcode == FabricsCommands.Opcode;

    public static SubmissionQueueEntry Read(ReadOnlySpan<byte> source)
    {
        if (source.Length < Size)
        {
            throw new ArgumentException($"an SQE is {Size} bytes, got {source.Length}", nameof(source));
        }

        return new SubmissionQueueEntry
        {
            Opcode = source[0],
            Flags = source[1],
            CommandId = BinaryPrimitives.ReadUInt16LittleEndian(source[2..]),
            NamespaceId = BinaryPrimitives.ReadUInt32LittleEndian(source[4..]),
            Cdw2 = BinaryPrimitives.ReadUInt32LittleEndian(source[8..]),
            Cdw3 = BinaryPrimitives.ReadUInt32LittleEndian(source[12..]),
            MetadataPointer = BinaryPrimitives.ReadUInt64LittleEndian(source[16..]),
            DataPointer = SglDescriptor.Read(source[24..]),
            Cdw10 = BinaryPrimitives.ReadUInt32LittleEndian(source[40..]),
            Cdw11 = BinaryPrimitives.ReadUInt32LittleEndian(source[44..]),
            Cdw12 = BinaryPrimitives.ReadUInt32LittleEndian(source[48..]),
            Cdw13 = BinaryPrimitives.ReadUInt32LittleEndian(source[52..]),
            Cdw14 = BinaryPrimitives.ReadUInt32LittleEndian(source[56..]),
            Cdw15 = BinaryPrimitives.ReadUInt32LittleEndian(source[60..]),
        };
    }

    public readonly void WriteTo(Span<byte> destination)
    {
        if (destination.Length < Size)
        {
            throw new ArgumentException($"an SQE is {Size} bytes, got room for {destination.Length}", nameof(destination));
        }

        destination[0] = Opcode;
        destination[1] = Flags;
        BinaryPrimitives.WriteUInt16LittleEndian(destination[2..], CommandId);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[4..], NamespaceId);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[8..], Cdw2);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[12..], Cdw3);
        BinaryPrimitives.WriteUInt64LittleEndian(destination[16..], MetadataPointer);
        DataPointer.WriteTo(destination[24..]);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[40..], Cdw10);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[44..], Cdw11);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[48..], Cdw12);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[52..], Cdw13);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[56..], Cdw14);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[60..], Cdw15);
    }

    public readonly bool Equals(SubmissionQueueEntry other) =>
        Opcode == other.Opcode && Flags == other.Flags && CommandId == other.CommandId && NamespaceId == other.NamespaceId
        && Cdw2 == other.Cdw2 && Cdw3 == other.Cdw3 && MetadataPointer == other.MetadataPointer && DataPointer == other.DataPointer
        && Cdw10 == other.Cdw10 && Cdw11 == other.Cdw11 && Cdw12 == other.Cdw12 && Cdw13 == other.Cdw13
        && Cdw14 == other.Cdw14 && Cdw15 == other.Cdw15;

    public override readonly bool Equals(object? obj) => obj is SubmissionQueueEntry other && Equals(other);

    public override readonly int GetHashCode() => HashCode.Combine(Opcode, CommandId, NamespaceId, Cdw10, Cdw11, Cdw12, DataPointer);

    public static bool operator ==(SubmissionQueueEntry left, SubmissionQueueEntry right) => left.Equals(right);

    public static bool operator !=(SubmissionQueueEntry left, SubmissionQueueEntry right) => !left.Equals(right);

    public override readonly string ToString() =>
        IsFabrics ? $"fabrics {FabricsType} cid={CommandId}" : $"opcode 0x{Opcode:x2} cid={CommandId} nsid={NamespaceId}";
}
