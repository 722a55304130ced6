namespace ActorNvme.Host.Tests;

/// <summary>A Unix socket path of its own in the temp directory (short enough for sun_path).</summary>
internal static class TempSocket
{
    public static string NewPath(string tag) => Path.Combine(Path.GetTempPath(), $"anvme-{tag}-{Guid.NewGuid():N}"[..(7 + tag.Length + 12)] + ".sock");
}
