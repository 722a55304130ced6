using System.Buffers.Binary;

namespace ActorNvme.Protocol.Data;

/// <summary>
/// The Changed Namespace List log page (LID 04h, 4096 bytes): up to 1024 NSIDs ending at the first zero;
/// a first entry of 0xFFFFFFFF means more than 1024 namespaces changed (rescan them all).
/// </summary>
public static class ChangedNamespaceList
{
    /// <summary>Size of the log page in bytes.</summary>
    public const int Size = NamespaceIdList.Size;

    /// <summary>Maximum number of entries.</summary>
    public const int MaxEntries = NamespaceIdList.MaxEntries;

    /// <summary>First-entry value that means "more than 1024 namespaces changed".</summary>
    public const uint Overflow = 0xFFFFFFFF;

    /// <summary>Copies the NSIDs into <paramref name="destination"/>; on overflow, <paramref name="count"/> is 0 and <paramref name="overflowed"/> true.</summary>
    public static bool TryRead(ReadOnlySpan<byte> source, Span<uint> destination, out int count, out bool overflowed, out DataError error)
    {
        overflowed = source.Length >= 4 && BinaryPrimitives.ReadUInt32LittleEndian(source) == Overflow;
        if (overflowed && source.Length >= Size)
        {
            count = 0;
            error = DataError.None;
            return true;
        }

        return NamespaceIdList.TryRead(source, destination, "Changed Namespace List", out count, out error);
    }

    /// <summary>Decodes into a new array (at most 1024 entries, empty on overflow), throwing <see cref="NvmeDataException"/> on error.</summary>
    public static uint[] Read(ReadOnlySpan<byte> source, out bool overflowed)
    {
        if (source.Length < Size)
        {
            throw new NvmeDataException(DataError.TooShort("Changed Namespace List", source.Length, Size));
        }

        overflowed = BinaryPrimitives.ReadUInt32LittleEndian(source) == Overflow;
        if (overflowed)
        {
            return [];
        }

        var result = new uint[NamespaceIdList.CountEntries(source)];
        return TryRead(source, result, out _, out _, out var error) ? result : throw new NvmeDataException(error);
    }

    /// <summary>Encodes the list; more than 1024 NSIDs are written as the overflow marker.</summary>
    public static void WriteTo(ReadOnlySpan<uint> nsids, Span<byte> destination)
    {
        if (nsids.Length > MaxEntries)
        {
            WriteOverflowTo(destination);
            return;
        }

        NamespaceIdList.Write(nsids, destination, "Changed Namespace List", allowBroadcast: false);
    }

    /// <summary>Encodes the "more than 1024 changed" form.</summary>
    public static void WriteOverflowTo(Span<byte> destination)
    {
        DataGuard.Destination(destination, Size, "Changed Namespace List");
        destination[..Size].Clear();
        BinaryPrimitives.WriteUInt32LittleEndian(destination, Overflow);
    }
}
