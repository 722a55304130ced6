using System.Buffers.Binary;
using System.Security.Cryptography;

namespace ActorNvme.Protocol.Auth;

/// <summary>
/// The base64 field both key formats carry (DHHC-1 secrets and NVMe TLS PSK interchange strings): the key
/// followed by its CRC-32 (IEEE, little-endian). Decoded bytes that are not returned are zeroed.
/// </summary>
internal static class KeyWithCrc
{
    /// <param name="lengthProblem">Given the decoded length (key + 4), the error to report, or null when the length is right.</param>
    public static bool TryDecode(string base64, Func<int, string?> lengthProblem, out byte[]? key, out string? error)
    {
        key = null;
        byte[] decoded;
        try
        {
            decoded = Convert.FromBase64String(base64);
        }
        catch (FormatException)
        {
            error = "the key is not valid base64";
            return false;
        }

        if (decoded.Length < 4 || lengthProblem(decoded.Length) is { } problem)
        {
            CryptographicOperations.ZeroMemory(decoded);
            error = decoded.Length < 4 ? $"the key with its CRC is {decoded.Length} bytes long" : lengthProblem(decoded.Length);
            return false;
        }

        int keyLength = decoded.Length - 4;
        var candidate = decoded[..keyLength];
        uint stored = BinaryPrimitives.ReadUInt32LittleEndian(decoded.AsSpan(keyLength));
        CryptographicOperations.ZeroMemory(decoded);
        if (Crc32Ieee.Compute(candidate) != stored)
        {
            CryptographicOperations.ZeroMemory(candidate);
            error = "the key's CRC-32 does not match (a typo or a truncated key)";
            return false;
        }

        key = candidate;
        error = null;
        return true;
    }
}
