using ActorNvme.Protocol.Auth;

namespace ActorNvme.Transport.Authentication;

/// <summary>
/// DH-HMAC-CHAP secrets as users give them: a DHHC-1 string, or the absolute path of a file holding
/// one, which only its owner may read or write (mode 0600 or stricter, SPDK's keyring rule). Errors
/// name the setting and the problem, never the secret.
/// </summary>
public static class DhChapKeys
{
    private const UnixFileMode GroupOrOther =
        UnixFileMode.GroupRead | UnixFileMode.GroupWrite | UnixFileMode.GroupExecute |
        UnixFileMode.OtherRead | UnixFileMode.OtherWrite | UnixFileMode.OtherExecute;

    /// <summary>Loads a secret given inline or as a file; null for an empty value. Throws <see cref="FormatException"/> naming <paramref name="setting"/>.</summary>
    public static DhChapSecret? Load(string? valueOrPath, string setting)
    {
        if (string.IsNullOrWhiteSpace(valueOrPath))
        {
            return null;
        }

        string value = valueOrPath.Trim();
        if (value.StartsWith("DHHC-", StringComparison.Ordinal))
        {
            return DhChapSecret.Parse(value, setting);
        }

        return DhChapSecret.Parse(ReadKeyFile(value, setting), $"{setting} (file {value})");
    }

    /// <summary>Reads a key file after checking SPDK's rules: an absolute path to a regular file of mode 0600 (or stricter).</summary>
    public static string ReadKeyFile(string path, string setting)
    {
        if (!Path.IsPathRooted(path))
        {
            throw new FormatException($"{setting}: neither a DHHC-1 secret nor an absolute path to a key file (non-absolute paths are not allowed)");
        }

        var info = new FileInfo(path);
        if (!info.Exists)
        {
            throw new FormatException($"{setting}: key file {path} does not exist");
        }

        if (!OperatingSystem.IsWindows() && (File.GetUnixFileMode(path) & GroupOrOther) != 0)
        {
            throw new FormatException($"{setting}: key file {path} is readable or writable by others (mode {Convert.ToString((int)File.GetUnixFileMode(path), 8)}); it must be 0600");
        }

        if (info.Length > 4096)
        {
            throw new FormatException($"{setting}: key file {path} is {info.Length} bytes long; a key file holds one short secret");
        }

        return File.ReadAllText(path);
    }

    /// <summary>Credentials from a host key and an optional controller key (a controller key without a host key is refused).</summary>
    public static DhChapHostCredentials? Credentials(string? hostKey, string? controllerKey, string hostSetting = "dhchap-key", string controllerSetting = "dhchap-ctrlr-key")
    {
        var host = Load(hostKey, hostSetting);
        var controller = Load(controllerKey, controllerSetting);
        if (host is null)
        {
            if (controller is not null)
            {
                controller.Dispose();
                throw new FormatException($"{controllerSetting} is set without {hostSetting}: bidirectional authentication needs the host's key too");
            }

            return null;
        }

        return new DhChapHostCredentials(host, controller);
    }
}
