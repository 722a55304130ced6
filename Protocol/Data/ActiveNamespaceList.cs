namespace ActorNvme.Protocol.Data;

/// <summary>
/// The Active Namespace ID list (Identify CNS 02h, 4096 bytes): up to 1024 NSIDs in increasing order,
/// ending at the first zero entry.
/// </summary>
public static class ActiveNamespaceList
{
    /// <summary>Size of the structure in bytes.</summary>
    public const int Size = NamespaceIdList.Size;

    /// <summary>Maximum number of entries.</summary>
    public const int MaxEntries = NamespaceIdList.MaxEntries;

    /// <summary>Copies the NSIDs into <paramref name="destination"/> (allocation free); fails when it is too small.</summary>
    public static bool TryRead(ReadOnlySpan<byte> source, Span<uint> destination, out int count, out DataError error) =>
        NamespaceIdList.TryRead(source, destination, "Active Namespace List", out count, out error);

    /// <summary>Decodes into a new array of exactly the entries present (at most 1024), throwing <see cref="NvmeDataException"/> on error.</summary>
    public static uint[] Read(ReadOnlySpan<byte> source)
    {
        if (source.Length < Size)
        {
            throw new NvmeDataException(DataError.TooShort("Active Namespace List", source.Length, Size));
        }

        var result = new uint[NamespaceIdList.CountEntries(source)];
        return NamespaceIdList.TryRead(source, result, "Active Namespace List", out _, out var error)
            ? result
            : throw new NvmeDataException(error);
    }

    /// <summary>Encodes up to 1024 NSIDs (none may be 0 or 0xFFFFFFFF) and zero-fills the rest of the 4096 bytes.</summary>
    public static void WriteTo(ReadOnlySpan<uint> nsids, Span<byte> destination) =>
        NamespaceIdList.Write(nsids, destination, "Active Namespace List", allowBroadcast: false);
}
