namespace ActorNvme.Protocol.Data;

/// <summary>Bit-field helpers for register and dword encodings.</summary>
internal static class Bits
{
    public static ulong Get(ulong word, int shift, int width) => (word >> shift) & Mask(width);

    /// <summary>Returns <paramref name="word"/> with the field replaced; throws naming the field when the value does not fit.</summary>
    public static ulong Set(ulong word, int shift, int width, ulong value, string field)
    {
        ulong mask = Mask(width);
        if (value > mask)
        {
            throw NvmeDataException.OutOfRange(field, value, mask);
        }

        return (word & ~(mask << shift)) | (value << shift);
    }

    public static uint Set(uint word, int shift, int width, ulong value, string field) =>
        (uint)Set((ulong)word, shift, width, value, field);

    private static ulong Mask(int width) => width >= 64 ? ulong.MaxValue : (1UL << width) - 1;
}
