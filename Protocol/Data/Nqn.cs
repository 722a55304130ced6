using System.Text;

namespace ActorNvme.Protocol.Data;

/// <summary>NVMe Qualified Names: limits, well-known names and validation.</summary>
public static class Nqn
{
    /// <summary>Maximum NQN length in bytes of UTF-8, without the terminating NUL.</summary>
    public const int MaxLength = 223;

    /// <summary>Size of the NQN fields in data structures.</summary>
    public const int FieldSize = 256;

    /// <summary>The well-known discovery subsystem NQN.</summary>
    public const string Discovery = "nqn.2014-08.org.nvmexpress.discovery";

    /// <summary>The prefix of every NQN.</summary>
    public const string Prefix = "nqn.";

    /// <summary>
    /// Checks that <paramref name="value"/> is a usable NQN: not empty, starts with "nqn.", at most 223 bytes of
    /// UTF-8, no control characters. <paramref name="field"/> names the NQN in the error (e.g. "SUBNQN").
    /// </summary>
    public static bool TryValidate(string? value, out DataError error, string field = "NQN")
    {
        if (string.IsNullOrEmpty(value))
        {
            error = new DataError(DataErrorCode.NqnEmpty, field, 0, MaxLength);
            return false;
        }

        for (int i = 0; i < value.Length; i++)
        {
            if (char.IsControl(value[i]))
            {
                error = new DataError(DataErrorCode.NqnNotPrintable, field, value[i], 0, i);
                return false;
            }

            if (value[i] == '\uFFFD')
            {
                // What a UTF-8 decoder makes of bytes that are not UTF-8.
                error = new DataError(DataErrorCode.NqnNotUtf8, field, value[i], 0, i);
                return false;
            }
        }

        int bytes = Encoding.UTF8.GetByteCount(value);
        if (bytes > MaxLength)
        {
            error = new DataError(DataErrorCode.NqnTooLong, field, (ulong)bytes, MaxLength);
            return false;
        }

        if (!value.StartsWith(Prefix, StringComparison.Ordinal))
        {
            error = new DataError(DataErrorCode.NqnBadPrefix, field, 0, 0);
            return false;
        }

        error = DataError.None;
        return true;
    }

    /// <summary>As <see cref="TryValidate"/>, throwing <see cref="NvmeDataException"/>.</summary>
    public static void Validate(string? value, string field = "NQN")
    {
        if (!TryValidate(value, out var error, field))
        {
            throw new NvmeDataException(error);
        }
    }
}
