using System.Buffers.Binary;

namespace ActorNvme.Protocol.Data;

/// <summary>
/// The header of the Discovery log page (LID 70h, 1024 bytes): GENCTR (u64 at 0), NUMREC (u64 at 8),
/// RECFMT (u16 at 16). NUMREC is untrusted: use <see cref="TryGetPageLength"/> before sizing a read.
/// </summary>
/// <param name="GenerationCounter">GENCTR: incremented whenever the log page changes.</param>
/// <param name="NumberOfRecords">NUMREC: the number of entries the page claims.</param>
/// <param name="RecordFormat">RECFMT: record format, 0.</param>
public readonly record struct DiscoveryLogHeader(ulong GenerationCounter, ulong NumberOfRecords, ushort RecordFormat = 0)
{
    /// <summary>Size of the header in bytes (the first entry starts here).</summary>
    public const int Size = 1024;

    /// <summary>Decodes the header only; NUMREC is not checked against anything.</summary>
    public static bool TryRead(ReadOnlySpan<byte> source, out DiscoveryLogHeader value, out DataError error)
    {
        if (source.Length < Size)
        {
            value = default;
            error = DataError.TooShort("discovery log header", source.Length, Size);
            return false;
        }

        value = new DiscoveryLogHeader(
            BinaryPrimitives.ReadUInt64LittleEndian(source),
            BinaryPrimitives.ReadUInt64LittleEndian(source[8..]),
            BinaryPrimitives.ReadUInt16LittleEndian(source[16..]));
        error = DataError.None;
        return true;
    }

    /// <summary>Decodes, throwing <see cref="NvmeDataException"/> on error.</summary>
    public static DiscoveryLogHeader Read(ReadOnlySpan<byte> source) =>
        TryRead(source, out var value, out var error) ? value : throw new NvmeDataException(error);

    /// <summary>
    /// The byte length of the whole page this header announces (header + NUMREC entries), refusing a
    /// NUMREC above <see cref="DiscoveryLogPage.MaxRecords"/>.
    /// </summary>
    public bool TryGetPageLength(out int length, out DataError error)
    {
        if (NumberOfRecords > DiscoveryLogPage.MaxRecords)
        {
            length = 0;
            error = new DataError(DataErrorCode.DiscoveryLogTooManyRecords, "NUMREC", NumberOfRecords, DiscoveryLogPage.MaxRecords, 8);
            return false;
        }

        length = DiscoveryLogPage.GetSize((int)NumberOfRecords);
        error = DataError.None;
        return true;
    }

    /// <summary>Encodes the header into the first 1024 bytes, zeroing the reserved bytes.</summary>
    public void WriteTo(Span<byte> destination)
    {
        DataGuard.Destination(destination, Size, "discovery log header");
        var d = destination[..Size];
        d.Clear();
        BinaryPrimitives.WriteUInt64LittleEndian(d, GenerationCounter);
        BinaryPrimitives.WriteUInt64LittleEndian(d[8..], NumberOfRecords);
        BinaryPrimitives.WriteUInt16LittleEndian(d[16..], RecordFormat);
    }
}
