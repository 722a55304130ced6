using ActorNvme.Protocol.Tls;
using ActorNvme.Transport.Authentication;

namespace ActorNvme.Transport.Tls;

/// <summary>
/// TLS PSKs as users give them: an interchange string (<c>NVMeTLSkey-1:hh:...:</c>), or the absolute path of a
/// file holding one that only its owner may read or write (0600, SPDK's keyring rule). Errors name the setting
/// and the problem, never the key.
/// </summary>
public static class TlsPskKeys
{
    /// <summary>Loads a PSK given inline or as a file; null for an empty value. Throws <see cref="FormatException"/> naming <paramref name="setting"/>.</summary>
    public static NvmeTlsPsk? Load(string? valueOrPath, string setting)
    {
        if (string.IsNullOrWhiteSpace(valueOrPath))
        {
            return null;
        }

        string value = valueOrPath.Trim();
        if (value.StartsWith("NVMeTLSkey-", StringComparison.Ordinal))
        {
            return NvmeTlsPsk.Parse(value, setting);
        }

        if (!Path.IsPathRooted(value))
        {
            throw new FormatException($"{setting}: neither a NVMeTLSkey-1 interchange string nor an absolute path to a key file (non-absolute paths are not allowed)");
        }

        return NvmeTlsPsk.Parse(DhChapKeys.ReadKeyFile(value, setting), $"{setting} (file {value})");
    }
}
