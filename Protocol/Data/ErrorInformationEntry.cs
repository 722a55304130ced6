using System.Buffers.Binary;

namespace ActorNvme.Protocol.Data;

/// <summary>An Error Information log entry (LID 01h, 64 bytes each).</summary>
public readonly record struct ErrorInformationEntry
{
    /// <summary>Size of an entry in bytes.</summary>
    public const int Size = 64;

    /// <summary>Error count (0): unique, incrementing; 0 means the entry is empty.</summary>
    public ulong ErrorCount { get; init; }

    /// <summary>SQID (8): submission queue of the failed command.</summary>
    public ushort SubmissionQueueId { get; init; }

    /// <summary>CID (10): command identifier of the failed command.</summary>
    public ushort CommandId { get; init; }

    /// <summary>Status field (12): bit 0 phase tag, bits 15:1 the status as in the completion.</summary>
    public ushort StatusField { get; init; }

    /// <summary>The status (bits 15:1 of <see cref="StatusField"/>): SC in bits 7:0, SCT 10:8, CRD 12:11, M 13, DNR 14.</summary>
    public ushort Status => (ushort)(StatusField >> 1);

    /// <summary>Parameter error location (14): byte (bits 7:0) and bit (10:8) of the command parameter in error.</summary>
    public ushort ParameterErrorLocation { get; init; }

    /// <summary>LBA (16): first LBA that had the error.</summary>
    public ulong Lba { get; init; }

    /// <summary>Namespace (24).</summary>
    public uint NamespaceId { get; init; }

    /// <summary>Vendor specific information available (28): log page id with more information, 0 when none.</summary>
    public byte VendorSpecificInfo { get; init; }

    /// <summary>Transport type (29) of the transport-type-specific information.</summary>
    public TransportType TransportType { get; init; }

    /// <summary>Command specific information (32).</summary>
    public ulong CommandSpecificInfo { get; init; }

    /// <summary>Transport type specific information (40).</summary>
    public ushort TransportTypeSpecificInfo { get; init; }

    /// <summary>Decodes one entry.</summary>
    public static bool TryRead(ReadOnlySpan<byte> source, out ErrorInformationEntry value, out DataError error)
    {
        if (source.Length < Size)
        {
            value = default;
            error = DataError.TooShort("error information entry", source.Length, Size);
            return false;
        }

        value = new ErrorInformationEntry
        {
            ErrorCount = BinaryPrimitives.ReadUInt64LittleEndian(source),
            SubmissionQueueId = BinaryPrimitives.ReadUInt16LittleEndian(source[8..]),
            CommandId = BinaryPrimitives.ReadUInt16LittleEndian(source[10..]),
            StatusField = BinaryPrimitives.ReadUInt16LittleEndian(source[12..]),
            ParameterErrorLocation = BinaryPrimitives.ReadUInt16LittleEndian(source[14..]),
            Lba = BinaryPrimitives.ReadUInt64LittleEndian(source[16..]),
            NamespaceId = BinaryPrimitives.ReadUInt32LittleEndian(source[24..]),
            VendorSpecificInfo = source[28],
            TransportType = (TransportType)source[29],
            CommandSpecificInfo = BinaryPrimitives.ReadUInt64LittleEndian(source[32..]),
            TransportTypeSpecificInfo = BinaryPrimitives.ReadUInt16LittleEndian(source[40..]),
        };
        error = DataError.None;
        return true;
    }

    /// <summary>Decodes, throwing <see cref="NvmeDataException"/> on error.</summary>
    public static ErrorInformationEntry Read(ReadOnlySpan<byte> source) =>
        TryRead(source, out var value, out var error) ? value : throw new NvmeDataException(error);

    /// <summary>Encodes one entry, zeroing the reserved bytes.</summary>
    public void WriteTo(Span<byte> destination)
    {
        DataGuard.Destination(destination, Size, "error information entry");
        var d = destination[..Size];
        d.Clear();
        BinaryPrimitives.WriteUInt64LittleEndian(d, ErrorCount);
        BinaryPrimitives.WriteUInt16LittleEndian(d[8..], SubmissionQueueId);
        BinaryPrimitives.WriteUInt16LittleEndian(d[10..], CommandId);
        BinaryPrimitives.WriteUInt16LittleEndian(d[12..], StatusField);
        BinaryPrimitives.WriteUInt16LittleEndian(d[14..], ParameterErrorLocation);
        BinaryPrimitives.WriteUInt64LittleEndian(d[16..], Lba);
        BinaryPrimitives.WriteUInt32LittleEndian(d[24..], NamespaceId);
        d[28] = VendorSpecificInfo;
        d[29] = (byte)TransportType;
        BinaryPrimitives.WriteUInt64LittleEndian(d[32..], CommandSpecificInfo);
        BinaryPrimitives.WriteUInt16LittleEndian(d[40..], TransportTypeSpecificInfo);
    }
}

/// <summary>The Error Information log page: a run of 64-byte entries, read one at a time.</summary>
public static class ErrorInformationLog
{
    /// <summary>Number of whole entries in <paramref name="source"/>.</summary>
    public static int CountEntries(ReadOnlySpan<byte> source) => source.Length / ErrorInformationEntry.Size;

    /// <summary>Reads entry <paramref name="index"/> (0-based).</summary>
    public static bool TryReadEntry(ReadOnlySpan<byte> source, int index, out ErrorInformationEntry entry, out DataError error)
    {
        int count = CountEntries(source);
        if (index < 0 || index >= count)
        {
            entry = default;
            error = new DataError(DataErrorCode.RecordIndexOutOfRange, "error information entry", unchecked((ulong)index), (ulong)count);
            return false;
        }

        return ErrorInformationEntry.TryRead(source.Slice(index * ErrorInformationEntry.Size, ErrorInformationEntry.Size), out entry, out error);
    }
}
