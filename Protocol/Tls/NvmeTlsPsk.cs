using System.Buffers.Binary;
using System.Security.Cryptography;
using ActorNvme.Protocol.Auth;

namespace ActorNvme.Protocol.Tls;

/// <summary>The hash named by the second field of a PSK interchange string; it also fixes the key's length.</summary>
public enum NvmeTlsPskHash : byte
{
    /// <summary>00: the configured PSK is the retained PSK as is (32 or 48 bytes).</summary>
    None = 0,

    /// <summary>01: a 32-byte key; the retained PSK is derived with HKDF-SHA-256.</summary>
    Sha256 = 1,

    /// <summary>02: a 48-byte key; the retained PSK is derived with HKDF-SHA-384.</summary>
    Sha384 = 2,
}

/// <summary>
/// A configured TLS PSK in the NVMe/TCP interchange format, <c>NVMeTLSkey-1:hh:base64(key || crc32_le(key)):</c>
/// (hh 01: 32-byte key, 02: 48-byte key, 00: either, used as is). Error messages name what is wrong and never the
/// secret; <see cref="ToString"/> does not show it either. Dispose zeroes the key.
/// </summary>
public sealed class NvmeTlsPsk : IDisposable
{
    private const string Prefix = "NVMeTLSkey-1";

    private readonly byte[] _key;

    private NvmeTlsPsk(byte[] key, NvmeTlsPskHash hash)
    {
        _key = key;
        Hash = hash;
    }

    public NvmeTlsPskHash Hash { get; }

    /// <summary>The configured PSK's length in bytes: 32 (TLS_AES_128_GCM_SHA256) or 48 (TLS_AES_256_GCM_SHA384).</summary>
    public int KeyLength => _key.Length;

    /// <summary>The cipher suite this key is used with: chosen by its length, as SPDK and the Linux host do.</summary>
    public NvmeTlsCipherSuite CipherSuite => _key.Length == 48 ? NvmeTlsCipherSuite.Aes256GcmSha384 : NvmeTlsCipherSuite.Aes128GcmSha256;

    public bool IsDisposed { get; private set; }

    /// <summary>Parses an interchange string (surrounding white space is ignored). Throws <see cref="FormatException"/> naming <paramref name="what"/> and the problem.</summary>
    public static NvmeTlsPsk Parse(string? text, string what = "TLS PSK") =>
        TryParse(text, out var psk, out string? error) ? psk! : throw new FormatException($"{what}: {error}");

    public static bool TryParse(string? text, out NvmeTlsPsk? psk, out string? error)
    {
        psk = null;
        if (string.IsNullOrWhiteSpace(text))
        {
            error = "empty; expected NVMeTLSkey-1:hh:<base64>:";
            return false;
        }

        var parts = text.Trim().Split(':');
        if (parts.Length != 4 || parts[3].Length != 0)
        {
            error = $"not in the form NVMeTLSkey-1:hh:<base64>: ({parts.Length - 1} ':' separators{(parts.Length == 3 ? ", the closing ':' is missing" : string.Empty)})";
            return false;
        }

        if (parts[0] != Prefix)
        {
            error = "does not start with NVMeTLSkey-1:";
            return false;
        }

        NvmeTlsPskHash hash;
        switch (parts[1])
        {
            case "00": hash = NvmeTlsPskHash.None; break;
            case "01": hash = NvmeTlsPskHash.Sha256; break;
            case "02": hash = NvmeTlsPskHash.Sha384; break;
            default:
                error = $"the hash field must be 00, 01 (SHA-256) or 02 (SHA-384) (is {parts[1].Length} characters long{(parts[1].Length == 2 ? ", an unknown value" : string.Empty)})";
                return false;
        }

        int? expected = hash switch { NvmeTlsPskHash.Sha256 => 32, NvmeTlsPskHash.Sha384 => 48, _ => null };
        string hashField = parts[1];
        if (!KeyWithCrc.TryDecode(
            parts[2],
            length => (expected is { } want ? length - 4 == want : (length - 4) is 32 or 48) ? null
                : expected is { } l
                    ? $"the key with its CRC is {length} bytes long; hash {hashField} needs {l + 4} (a {l}-byte key)"
                    : $"the key with its CRC is {length} bytes long; expected 36 or 52 (a 32 or 48-byte key)",
            out var key,
            out error))
        {
            return false;
        }

        psk = new NvmeTlsPsk(key!, hash);
        error = null;
        return true;
    }

    /// <summary>Builds the interchange string of <paramref name="key"/> (for tools and tests).</summary>
    public static string Format(ReadOnlySpan<byte> key, NvmeTlsPskHash hash)
    {
        bool fits = hash switch
        {
            NvmeTlsPskHash.Sha256 => key.Length == 32,
            NvmeTlsPskHash.Sha384 => key.Length == 48,
            NvmeTlsPskHash.None => key.Length is 32 or 48,
            _ => false,
        };
        if (!fits)
        {
            throw new ArgumentException($"a TLS PSK with hash {(byte)hash:00} cannot be {key.Length} bytes long", nameof(key));
        }

        var buffer = new byte[key.Length + 4];
        key.CopyTo(buffer);
        BinaryPrimitives.WriteUInt32LittleEndian(buffer.AsSpan(key.Length), Crc32Ieee.Compute(key));
        string text = $"{Prefix}:{(byte)hash:00}:{Convert.ToBase64String(buffer)}:";
        CryptographicOperations.ZeroMemory(buffer);
        return text;
    }

    /// <summary>A random configured PSK (01: 32 bytes, 02: 48 bytes), for tests and key generation.</summary>
    public static string Generate(NvmeTlsPskHash hash = NvmeTlsPskHash.Sha256)
    {
        var key = RandomNumberGenerator.GetBytes(hash == NvmeTlsPskHash.Sha384 ? 48 : 32);
        try
        {
            return Format(key, hash);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(key);
        }
    }

    /// <summary>
    /// The retained PSK for <paramref name="hostNqn"/> (see <see cref="NvmeTlsPskDerivation.RetainedPsk"/>);
    /// the configured key itself for hash 00. The caller zeroes it after use.
    /// </summary>
    public byte[] RetainedPsk(string hostNqn)
    {
        ObjectDisposedException.ThrowIf(IsDisposed, this);
        return Hash == NvmeTlsPskHash.None ? (byte[])_key.Clone() : NvmeTlsPskDerivation.RetainedPsk(_key, Hash, hostNqn);
    }

    public void Dispose()
    {
        CryptographicOperations.ZeroMemory(_key);
        IsDisposed = true;
    }

    public override string ToString() => $"{Prefix}:{(byte)Hash:00}:<{_key.Length}-byte key>:";
}
