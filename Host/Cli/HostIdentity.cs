using ActorNvme.Actors.Settings;
using ActorNvme.Protocol.Data;

namespace ActorNvme.Host.Cli;

/// <summary>The host NQN and host id every command uses, and where they came from.</summary>
internal sealed record ResolvedHostIdentity(string HostNqn, Guid HostId, string Source);

/// <summary>
/// One host identity for every command, so targets with host allow-lists know us after a restart: the
/// configuration's host-nqn / host-id (or a command's option) first, else nvme-cli's /etc/nvme/hostnqn and
/// /etc/nvme/hostid, else the identity generated once and kept in a state file
/// (<c>$ACTORNVME_STATE_DIR/host-identity</c>; by default /var/lib/actornvme for root, else
/// $XDG_STATE_HOME/actornvme or ~/.local/state/actornvme).
/// </summary>
internal static class HostIdentity
{
    private const string StateFileName = "host-identity";
    private const string EtcDirectory = "/etc/nvme";

    /// <summary>The identity from the defaults chain; <paramref name="configuredNqn"/>/<paramref name="configuredId"/> (non-empty) win.</summary>
    public static ResolvedHostIdentity Resolve(string? configuredNqn = null, Guid? configuredId = null, string? etcDirectory = null, string? stateDirectory = null)
    {
        etcDirectory ??= EtcDirectory;
        stateDirectory ??= DefaultStateDirectory();
        string statePath = Path.Combine(stateDirectory, StateFileName);
        var saved = ReadState(statePath);
        string? etcNqn = ReadFirstLine(Path.Combine(etcDirectory, "hostnqn"));
        Guid? etcId = Guid.TryParse(ReadFirstLine(Path.Combine(etcDirectory, "hostid")), out var parsedId) ? parsedId : null;

        string? nqn = NonEmpty(configuredNqn);
        string source = nqn is not null ? "configuration" : string.Empty;
        if (nqn is null && NonEmpty(etcNqn) is { } fromEtc)
        {
            if (!Nqn.TryValidate(fromEtc, out var error, Path.Combine(etcDirectory, "hostnqn")))
            {
                throw new InvalidNvmeSettingsException("host-nqn-file", error.Describe());
            }

            nqn = fromEtc;
            source = Path.Combine(etcDirectory, "hostnqn");
        }

        Guid? id = configuredId is { } c && c != Guid.Empty ? c : etcId;
        if (nqn is null && saved is { } state)
        {
            nqn = state.Nqn;
            id ??= state.Id;
            source = statePath;
        }

        id ??= saved?.Id ?? UuidOf(nqn) ?? Guid.NewGuid();
        if (nqn is null)
        {
            nqn = $"nqn.2014-08.org.nvmexpress:uuid:{id}";
            source = TryWriteState(statePath, nqn, id.Value) ? $"generated, kept in {statePath}" : $"generated (could not keep it in {statePath}: a new one next time)";
        }

        return new ResolvedHostIdentity(nqn, id.Value, source);
    }

    /// <summary><paramref name="settings"/> with the resolved identity, unless the configuration set one itself.</summary>
    public static NvmeHostSettings Apply(NvmeHostSettings settings, Akka.Configuration.Config config, out ResolvedHostIdentity identity)
    {
        var section = config.WithFallback(NvmeHostSettings.ReferenceConfig).GetConfig("actornvme");
        string configuredNqn = section.GetString("host-nqn", string.Empty);
        Guid? configuredId = Guid.TryParse(section.GetString("host-id", string.Empty), out var id) ? id : null;
        identity = Resolve(configuredNqn, configuredId);
        return settings with { HostNqn = identity.HostNqn, HostId = identity.HostId };
    }

    public static string DefaultStateDirectory()
    {
        if (NonEmpty(Environment.GetEnvironmentVariable("ACTORNVME_STATE_DIR")) is { } explicitDir)
        {
            return explicitDir;
        }

        if (OperatingSystem.IsLinux() && Environment.UserName == "root")
        {
            return "/var/lib/actornvme";
        }

        string stateHome = NonEmpty(Environment.GetEnvironmentVariable("XDG_STATE_HOME"))
            ?? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".local", "state");
        return Path.Combine(stateHome, "actornvme");
    }

    private static Guid? UuidOf(string? nqn)
    {
        const string prefix = "nqn.2014-08.org.nvmexpress:uuid:";
        return nqn is not null && nqn.StartsWith(prefix, StringComparison.Ordinal) && Guid.TryParse(nqn.AsSpan(prefix.Length), out var uuid) ? uuid : null;
    }

    private static (string Nqn, Guid Id)? ReadState(string path)
    {
        string? text = ReadBounded(path);
        if (text is null)
        {
            return null;
        }

        string? nqn = null;
        Guid? id = null;
        foreach (string line in text.Split('\n'))
        {
            int eq = line.IndexOf('=', StringComparison.Ordinal);
            if (eq <= 0)
            {
                continue;
            }

            string key = line[..eq].Trim();
            string value = line[(eq + 1)..].Trim();
            if (key == "hostnqn" && Nqn.TryValidate(value, out _, "hostnqn"))
            {
                nqn = value;
            }
            else if (key == "hostid" && Guid.TryParse(value, out var parsed))
            {
                id = parsed;
            }
        }

        return nqn is not null && id is not null ? (nqn, id.Value) : null;
    }

    private static bool TryWriteState(string path, string nqn, Guid id)
    {
        try
        {
            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            string temporary = $"{path}.{Environment.ProcessId}.tmp";
            File.WriteAllText(temporary, $"# The host identity actornvme uses when neither its configuration nor /etc/nvme names one.\nhostnqn={nqn}\nhostid={id}\n");
            File.Move(temporary, path, overwrite: true); // whole or not at all, even if two commands start at once
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    private static string? NonEmpty(string? value) => string.IsNullOrWhiteSpace(value) ? null : value.Trim();

    private static string? ReadFirstLine(string path) => ReadBounded(path)?.Split('\n')[0].Trim();

    private static string? ReadBounded(string path)
    {
        try
        {
            if (!File.Exists(path))
            {
                return null;
            }

            using var reader = new StreamReader(path);
            char[] buffer = new char[1024]; // bounded: an NQN is at most 223 bytes
            int read = reader.ReadBlock(buffer, 0, buffer.Length);
            return new string(buffer, 0, read);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }
}
