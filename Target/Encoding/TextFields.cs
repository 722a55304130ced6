
namespace ActorNvme.Target.Encoding;

// Minimal encoders for the target's own use. They will be replaced by the shared types of
// Protocol/Data (branch protocol-data) once that lands on main.
internal static class TextFields
{
    /// <summary>ASCII, space padded (SN, MN, FR).</summary>
    public static void WriteAsciiPadded(Span<byte> field, string value)
    {
        field.Fill((byte)' ');
        int n = System.Text.Encoding.ASCII.GetBytes(value.AsSpan(0, Math.Min(value.Length, field.Length)), field);
        _ = n;
    }

    /// <summary>UTF-8, NUL padded (NQNs, TRADDR, TRSVCID as nvmet writes them).</summary>
    public static void WriteNulPadded(Span<byte> field, string value)
    {
        field.Clear();
        int max = field.Length - 1;
        var bytes = System.Text.Encoding.UTF8.GetBytes(value);
        bytes.AsSpan(0, Math.Min(bytes.Length, max)).CopyTo(field);
    }

    /// <summary>Reads a NUL-terminated (or NUL/space padded) UTF-8 field.</summary>
    public static string ReadNulTerminated(ReadOnlySpan<byte> field)
    {
        int end = field.IndexOf((byte)0);
        if (end < 0)
        {
            end = field.Length;
        }

        return System.Text.Encoding.UTF8.GetString(field[..end]).TrimEnd(' ');
    }
}
