namespace ActorNvme.Host.Cli;

/// <summary>The host NQN and host id a command uses when none is given: nvme-cli's files when present, else fresh ones.</summary>
internal static class HostIdentity
{
    public static string DefaultHostNqn(Guid hostId)
    {
        string? fromFile = ReadFirstLine("/etc/nvme/hostnqn");
        return string.IsNullOrWhiteSpace(fromFile) ? $"nqn.2014-08.org.nvmexpress:uuid:{hostId}" : fromFile;
    }

    public static Guid DefaultHostId() =>
        Guid.TryParse(ReadFirstLine("/etc/nvme/hostid"), out var id) ? id : Guid.NewGuid();

    private static string? ReadFirstLine(string path)
    {
        try
        {
            if (!File.Exists(path))
            {
                return null;
            }

            using var reader = new StreamReader(path);
            char[] buffer = new char[512]; // bounded: an NQN is at most 223 bytes
            int read = reader.Read(buffer, 0, buffer.Length);
            return new string(buffer, 0, read).Split('\n')[0].Trim();
        }
        catch (IOException)
        {
            return null;
        }
        catch (UnauthorizedAccessException)
        {
            return null;
        }
    }
}
