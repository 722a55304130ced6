using System.Reflection;
using System.Text.Json.Nodes;

namespace ActorNvme.Host.JsonRpc;

/// <summary>What spdk_get_version answers: SPDK's shape ({version, fields{major, minor, patch, suffix}}) with ours.</summary>
internal static class VersionInfo
{
    public static JsonObject Json(string product)
    {
        var version = typeof(VersionInfo).Assembly.GetName().Version ?? new System.Version(0, 1, 0);
        return new JsonObject
        {
            ["version"] = $"{product} v{version.Major}.{version.Minor}.{version.Build} (SPDK JSON-RPC compatible)",
            ["fields"] = new JsonObject
            {
                ["major"] = version.Major,
                ["minor"] = version.Minor,
                ["patch"] = Math.Max(0, version.Build),
                ["suffix"] = string.Empty,
            },
        };
    }
}
