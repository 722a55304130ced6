namespace ActorNvme.Protocol.Data;

/// <summary>Argument checks shared by the encoders.</summary>
internal static class DataGuard
{
    /// <summary>Throws <see cref="ArgumentException"/> when the destination cannot hold <paramref name="size"/> bytes.</summary>
    public static void Destination(Span<byte> destination, int size, string structure)
    {
        if (destination.Length < size)
        {
            throw new ArgumentException(
                new DataError(DataErrorCode.DestinationTooShort, structure, (ulong)destination.Length, (ulong)size).Describe(),
                nameof(destination));
        }
    }
}
