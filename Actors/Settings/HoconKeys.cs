using Akka.Configuration;

namespace ActorNvme.Actors.Settings;

/// <summary>The keys a HOCON section sets, for the settings that refuse keys they do not know.</summary>
public static class HoconKeys
{
    /// <summary>The paths of the values of a config and of its fallbacks, objects descended into (to refuse unknown keys).</summary>
    public static IEnumerable<string> LeafPaths(Config config)
    {
        var seen = new HashSet<string>(StringComparer.Ordinal);
        for (var current = config; current is not null && !current.IsEmpty; current = current.Fallback)
        {
            if (current.Root is { } root && root.IsObject())
            {
                foreach (string path in LeafPaths(root.GetObject(), string.Empty).Where(seen.Add))
                {
                    yield return path;
                }
            }
        }
    }

    private static IEnumerable<string> LeafPaths(Akka.Configuration.Hocon.HoconObject node, string prefix)
    {
        foreach (var (key, value) in node.Items)
        {
            string path = prefix + key;
            if (value.IsObject())
            {
                foreach (string inner in LeafPaths(value.GetObject(), path + "."))
                {
                    yield return inner;
                }
            }
            else
            {
                yield return path;
            }
        }
    }
}
