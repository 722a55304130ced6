using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;

namespace ActorNvme.Protocol.Auth;

/// <summary>
/// A DH-HMAC-CHAP secret in the DHHC-1 representation, <c>DHHC-1:hh:base64(key || crc32_le(key)):</c>,
/// with a key of 32, 48 or 64 bytes; hh 00 uses the key as is, 01/02/03 transform it with
/// HMAC-SHA-256/384/512(key, NQN || "NVMe-over-Fabrics"). Error messages name what is wrong and never
/// contain the secret; <see cref="ToString"/> does not show it either.
/// </summary>
public sealed class DhChapSecret : IDisposable
{
    private const string Prefix = "DHHC-1";
    private static readonly byte[] TransformSuffix = Encoding.ASCII.GetBytes("NVMe-over-Fabrics");

    private readonly byte[] _key;

    private DhChapSecret(byte[] key, byte transformHash)
    {
        _key = key;
        TransformHash = transformHash;
    }

    /// <summary>0: the key is used as is; 1..3: transformed with that hash (see <see cref="DhChapHashId"/>).</summary>
    public byte TransformHash { get; }

    /// <summary>The key's length in bytes (32, 48 or 64).</summary>
    public int KeyLength => _key.Length;

    /// <summary>Parses a DHHC-1 string (surrounding white space, as a key file's newline, is ignored). Throws <see cref="FormatException"/> naming <paramref name="what"/> and the problem.</summary>
    public static DhChapSecret Parse(string? text, string what = "DH-HMAC-CHAP secret") =>
        TryParse(text, out var secret, out string? error) ? secret! : throw new FormatException($"{what}: {error}");

    public static bool TryParse(string? text, out DhChapSecret? secret, out string? error)
    {
        secret = null;
        if (string.IsNullOrWhiteSpace(text))
        {
            error = "empty; expected DHHC-1:hh:<base64>:";
            return false;
        }

        var parts = text.Trim().Split(':');
        if (parts.Length is < 3 or > 4 || (parts.Length == 4 && parts[3].Length != 0))
        {
            error = $"not in the form DHHC-1:hh:<base64>: ({parts.Length - 1} ':' separators)";
            return false;
        }

        if (parts[0] != Prefix)
        {
            error = "does not start with DHHC-1:";
            return false;
        }

        if (parts[1] is not ("00" or "01" or "02" or "03"))
        {
            error = $"the transformation field must be 00, 01, 02 or 03 (is {parts[1].Length} characters long{(parts[1].Length == 2 ? ", an unknown value" : string.Empty)})";
            return false;
        }

        if (!KeyWithCrc.TryDecode(
            parts[2],
            length => (length - 4) is 32 or 48 or 64 ? null : $"the key with its CRC is {length} bytes long; expected 36, 52 or 68 (a 32, 48 or 64-byte key)",
            out var key,
            out error))
        {
            return false;
        }

        secret = new DhChapSecret(key!, (byte)(parts[1][1] - '0'));
        error = null;
        return true;
    }

    /// <summary>Builds the DHHC-1 string of <paramref name="key"/> (for tools and tests).</summary>
    public static string Format(ReadOnlySpan<byte> key, byte transformHash = 0)
    {
        if (key.Length is not (32 or 48 or 64))
        {
            throw new ArgumentException("a DH-HMAC-CHAP key is 32, 48 or 64 bytes long", nameof(key));
        }

        if (transformHash > 3)
        {
            throw new ArgumentOutOfRangeException(nameof(transformHash), transformHash, "0..3");
        }

        var buffer = new byte[key.Length + 4];
        key.CopyTo(buffer);
        BinaryPrimitives.WriteUInt32LittleEndian(buffer.AsSpan(key.Length), Crc32Ieee.Compute(key));
        string text = $"{Prefix}:{transformHash:00}:{Convert.ToBase64String(buffer)}:";
        CryptographicOperations.ZeroMemory(buffer);
        return text;
    }

    /// <summary>A random secret of <paramref name="keyLength"/> bytes (for tests and key generation).</summary>
    public static string Generate(int keyLength = 32, byte transformHash = 0)
    {
        var key = RandomNumberGenerator.GetBytes(keyLength);
        try
        {
            return Format(key, transformHash);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(key);
        }
    }

    /// <summary>The key the exchange uses for <paramref name="nqn"/> (the host NQN for a host key, the subsystem NQN for a controller key). The caller zeroes it after use.</summary>
    public byte[] TransformedKey(string nqn)
    {
        ObjectDisposedException.ThrowIf(_key.Length == 0 || IsDisposed, this);
        if (TransformHash == 0)
        {
            return (byte[])_key.Clone();
        }

        using var hmac = IncrementalHash.CreateHMAC(DhChapHashes.Algorithm((DhChapHashId)TransformHash), _key);
        hmac.AppendData(Encoding.UTF8.GetBytes(nqn));
        hmac.AppendData(TransformSuffix);
        return hmac.GetHashAndReset();
    }

    public bool IsDisposed { get; private set; }

    public void Dispose()
    {
        CryptographicOperations.ZeroMemory(_key);
        IsDisposed = true;
    }

    public override string ToString() => $"{Prefix}:{TransformHash:00}:<{_key.Length}-byte key>:";
}
