using System.Buffers.Binary;

namespace ActorNvme.Protocol.Data;

/// <summary>Shared code of the 4096-byte NSID lists (Identify CNS 02h, Changed Namespace List log page).</summary>
internal static class NamespaceIdList
{
    public const int Size = 4096;
    public const int MaxEntries = Size / 4;

    /// <summary>Reads NSIDs up to the first zero into <paramref name="destination"/>.</summary>
    public static bool TryRead(ReadOnlySpan<byte> source, Span<uint> destination, string name, out int count, out DataError error)
    {
        count = 0;
        if (source.Length < Size)
        {
            error = DataError.TooShort(name, source.Length, Size);
            return false;
        }

        int present = CountEntries(source);
        if (present > destination.Length)
        {
            error = new DataError(DataErrorCode.DestinationTooShort, name, (ulong)destination.Length, (ulong)present);
            return false;
        }

        for (int i = 0; i < present; i++)
        {
            destination[i] = BinaryPrimitives.ReadUInt32LittleEndian(source[(i * 4)..]);
        }

        count = present;
        error = DataError.None;
        return true;
    }

    /// <summary>Number of NSIDs before the first zero (at most 1024).</summary>
    public static int CountEntries(ReadOnlySpan<byte> source)
    {
        int i = 0;
        while (i < MaxEntries && BinaryPrimitives.ReadUInt32LittleEndian(source[(i * 4)..]) != 0)
        {
            i++;
        }

        return i;
    }

    public static void Write(ReadOnlySpan<uint> nsids, Span<byte> destination, string name, bool allowBroadcast)
    {
        DataGuard.Destination(destination, Size, name);
        if (nsids.Length > MaxEntries)
        {
            throw new NvmeDataException(new DataError(DataErrorCode.NamespaceListTooLong, name, (ulong)nsids.Length, MaxEntries));
        }

        var d = destination[..Size];
        d.Clear();
        for (int i = 0; i < nsids.Length; i++)
        {
            uint nsid = nsids[i];
            if (nsid == 0 || (nsid == uint.MaxValue && !allowBroadcast))
            {
                throw new NvmeDataException(new DataError(DataErrorCode.InvalidNamespaceId, name, nsid, 0, i * 4));
            }

            BinaryPrimitives.WriteUInt32LittleEndian(d[(i * 4)..], nsid);
        }
    }
}
