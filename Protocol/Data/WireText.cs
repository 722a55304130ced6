using System.Text;

namespace ActorNvme.Protocol.Data;

/// <summary>Text fields of NVMe data structures: ASCII space-padded (SN, MN, FR) and NUL-terminated (NQNs, addresses).</summary>
internal static class WireText
{
    /// <summary>Reads a field up to its first NUL, without trailing spaces; empty fields give <see cref="string.Empty"/>.</summary>
    public static string ReadAscii(ReadOnlySpan<byte> field) => Read(field, Encoding.ASCII);

    /// <summary>
    /// As <see cref="ReadAscii"/>, decoding UTF-8 (NQNs are UTF-8). Evidence of a hostile field is kept
    /// for the NQN check to refuse: bytes that are not UTF-8 decode as U+FFFD, and text after the first NUL
    /// is kept, NUL included, rather than silently naming another subsystem.
    /// </summary>
    public static string ReadUtf8(ReadOnlySpan<byte> field)
    {
        int nul = field.IndexOf((byte)0);
        if (nul >= 0 && field[nul..].ContainsAnyExcept((byte)0))
        {
            field = field[..(field.LastIndexOfAnyExcept((byte)0) + 1)];
            return Encoding.UTF8.GetString(field);
        }

        return Read(field, Encoding.UTF8);
    }

    private static string Read(ReadOnlySpan<byte> field, Encoding encoding)
    {
        int nul = field.IndexOf((byte)0);
        if (nul >= 0)
        {
            field = field[..nul];
        }

        field = field.TrimEnd((byte)' ');
        return field.IsEmpty ? string.Empty : encoding.GetString(field);
    }

    /// <summary>True when the field holds a NUL byte (the string is terminated inside it).</summary>
    public static bool IsTerminated(ReadOnlySpan<byte> field) => field.Contains((byte)0);

    /// <summary>
    /// Writes printable ASCII into a fixed field, padding the rest with <paramref name="pad"/>. When
    /// <paramref name="reserveTerminator"/> is set the last byte must stay free for the NUL.
    /// </summary>
    public static void WriteAscii(string? value, Span<byte> field, byte pad, string fieldName, bool reserveTerminator = false)
    {
        value ??= string.Empty;
        int room = reserveTerminator ? field.Length - 1 : field.Length;
        if (value.Length > room)
        {
            throw new NvmeDataException(new DataError(DataErrorCode.TextTooLong, fieldName, (ulong)value.Length, (ulong)room));
        }

        for (int i = 0; i < value.Length; i++)
        {
            char ch = value[i];
            if (ch < 0x20 || ch > 0x7E)
            {
                throw new NvmeDataException(new DataError(DataErrorCode.TextNotPrintable, fieldName, ch, 0x7E, i));
            }

            field[i] = (byte)ch;
        }

        field[value.Length..].Fill(pad);
    }

    /// <summary>Writes UTF-8 text NUL-padded into a fixed field, keeping at least one terminating NUL.</summary>
    public static void WriteUtf8(string? value, Span<byte> field, string fieldName)
    {
        value ??= string.Empty;
        field.Clear();
        int room = field.Length - 1;
        int bytes = Encoding.UTF8.GetByteCount(value);
        if (bytes > room)
        {
            throw new NvmeDataException(new DataError(DataErrorCode.TextTooLong, fieldName, (ulong)bytes, (ulong)room));
        }

        Encoding.UTF8.GetBytes(value, field);
    }
}
