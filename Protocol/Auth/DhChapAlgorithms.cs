using System.Security.Cryptography;

namespace ActorNvme.Protocol.Auth;

/// <summary>DH-HMAC-CHAP hash function identifiers (HASHID).</summary>
public enum DhChapHashId : byte
{
    Sha256 = 0x01,
    Sha384 = 0x02,
    Sha512 = 0x03,
}

/// <summary>DH-HMAC-CHAP Diffie-Hellman group identifiers (DHGID): null (no DH) and the RFC 7919 groups.</summary>
public enum DhChapGroupId : byte
{
    Null = 0x00,
    Ffdhe2048 = 0x01,
    Ffdhe3072 = 0x02,
    Ffdhe4096 = 0x03,
    Ffdhe6144 = 0x04,
    Ffdhe8192 = 0x05,
}

/// <summary>The hashes and HMACs of DH-HMAC-CHAP, by identifier.</summary>
public static class DhChapHashes
{
    /// <summary>Every hash this implementation offers, strongest last (the controller picks).</summary>
    public static IReadOnlyList<DhChapHashId> All { get; } = [DhChapHashId.Sha256, DhChapHashId.Sha384, DhChapHashId.Sha512];

    public static bool IsDefined(byte id) => id is >= 1 and <= 3;

    /// <summary>The hash's output length in bytes (HL).</summary>
    public static int Length(DhChapHashId id) => id switch
    {
        DhChapHashId.Sha256 => 32,
        DhChapHashId.Sha384 => 48,
        DhChapHashId.Sha512 => 64,
        _ => throw new ArgumentOutOfRangeException(nameof(id), id, "not a DH-HMAC-CHAP hash id (1..3)"),
    };

    public static HashAlgorithmName Algorithm(DhChapHashId id) => id switch
    {
        DhChapHashId.Sha256 => HashAlgorithmName.SHA256,
        DhChapHashId.Sha384 => HashAlgorithmName.SHA384,
        DhChapHashId.Sha512 => HashAlgorithmName.SHA512,
        _ => throw new ArgumentOutOfRangeException(nameof(id), id, "not a DH-HMAC-CHAP hash id (1..3)"),
    };

    /// <summary>The name SPDK and Linux use (sha256, sha384, sha512).</summary>
    public static string Name(DhChapHashId id) => id switch
    {
        DhChapHashId.Sha256 => "sha256",
        DhChapHashId.Sha384 => "sha384",
        DhChapHashId.Sha512 => "sha512",
        _ => $"hash 0x{(byte)id:x2}",
    };

    public static bool TryParse(string? name, out DhChapHashId id)
    {
        id = (name ?? string.Empty).Trim().ToLowerInvariant() switch
        {
            "sha256" or "hmac(sha256)" => DhChapHashId.Sha256,
            "sha384" or "hmac(sha384)" => DhChapHashId.Sha384,
            "sha512" or "hmac(sha512)" => DhChapHashId.Sha512,
            _ => 0,
        };
        return id != 0;
    }

    public static byte[] Hash(DhChapHashId id, ReadOnlySpan<byte> data)
    {
        using var hash = IncrementalHash.CreateHash(Algorithm(id));
        hash.AppendData(data);
        return hash.GetHashAndReset();
    }

    public static byte[] Hmac(DhChapHashId id, ReadOnlySpan<byte> key, ReadOnlySpan<byte> data)
    {
        using var hmac = IncrementalHash.CreateHMAC(Algorithm(id), key);
        hmac.AppendData(data);
        return hmac.GetHashAndReset();
    }
}

/// <summary>Names and parsing of <see cref="DhChapGroupId"/>.</summary>
public static class DhChapGroups
{
    /// <summary>Every group this implementation offers: null, then the RFC 7919 groups.</summary>
    public static IReadOnlyList<DhChapGroupId> All { get; } =
        [DhChapGroupId.Null, DhChapGroupId.Ffdhe2048, DhChapGroupId.Ffdhe3072, DhChapGroupId.Ffdhe4096, DhChapGroupId.Ffdhe6144, DhChapGroupId.Ffdhe8192];

    public static bool IsDefined(byte id) => id <= 5;

    /// <summary>The name SPDK and Linux use (null, ffdhe2048 ...).</summary>
    public static string Name(DhChapGroupId id) => id switch
    {
        DhChapGroupId.Null => "null",
        DhChapGroupId.Ffdhe2048 => "ffdhe2048",
        DhChapGroupId.Ffdhe3072 => "ffdhe3072",
        DhChapGroupId.Ffdhe4096 => "ffdhe4096",
        DhChapGroupId.Ffdhe6144 => "ffdhe6144",
        DhChapGroupId.Ffdhe8192 => "ffdhe8192",
        _ => $"group 0x{(byte)id:x2}",
    };

    public static bool TryParse(string? name, out DhChapGroupId id)
    {
        name ??= string.Empty;
        foreach (var group in All)
        {
            if (string.Equals(Name(group), name.Trim(), StringComparison.OrdinalIgnoreCase))
            {
                id = group;
                return true;
            }
        }

        id = default;
        return false;
    }
}

/// <summary>CRC-32 (IEEE 802.3, reflected, as zlib's crc32) for the DHHC-1 secret's check value.</summary>
internal static class Crc32Ieee
{
    private static readonly uint[] Table = BuildTable();

    public static uint Compute(ReadOnlySpan<byte> data)
    {
        uint crc = 0xFFFFFFFF;
        foreach (byte b in data)
        {
            crc = Table[(crc ^ b) & 0xFF] ^ (crc >> 8);
        }

        return ~crc;
    }

    private static uint[] BuildTable()
    {
        var table = new uint[256];
        for (uint i = 0; i < 256; i++)
        {
            uint c = i;
            for (int k = 0; k < 8; k++)
            {
                c = (c & 1) != 0 ? 0xEDB88320 ^ (c >> 1) : c >> 1;
            }

            table[i] = c;
        }

        return table;
    }
}
