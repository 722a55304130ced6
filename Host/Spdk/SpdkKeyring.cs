using System.Text.Json.Nodes;
using ActorNvme.Host.JsonRpc;
using ActorNvme.Protocol.Auth;
using ActorNvme.Protocol.Tls;
using ActorNvme.Transport.Authentication;

namespace ActorNvme.Host.Spdk;

/// <summary>
/// SPDK's file keyring: named keys whose secrets stay in their files (absolute paths, mode 0600), read
/// when a key is used, so a changed file takes effect at the next connect. Thread-safe: RPCs may arrive
/// on several connections at once. Nothing secret is kept, logged or returned.
/// </summary>
public sealed class SpdkKeyring
{
    private readonly Dictionary<string, string> _paths = new(StringComparer.Ordinal);
    private readonly Lock _lock = new();

    /// <summary>keyring_file_add_key: checks the file now (absolute, 0600, a readable secret), as SPDK does.</summary>
    public void Add(string name, string path)
    {
        if (!Path.IsPathRooted(path))
        {
            throw new JsonRpcException(JsonRpcErrorCodes.Invalid, $"Non-absolute paths are not allowed: {path}");
        }

        try
        {
            DhChapKeys.ReadKeyFile(path, $"key '{name}'");
        }
        catch (FormatException e)
        {
            throw new JsonRpcException(JsonRpcErrorCodes.InvalidParams, e.Message);
        }
        catch (IOException e)
        {
            throw new JsonRpcException(JsonRpcErrorCodes.InvalidParams, $"key '{name}': {path} cannot be read: {e.Message}");
        }
        catch (UnauthorizedAccessException)
        {
            throw new JsonRpcException(JsonRpcErrorCodes.InvalidParams, $"key '{name}': {path} cannot be read (permission denied)");
        }

        lock (_lock)
        {
            if (!_paths.TryAdd(name, path))
            {
                throw new JsonRpcException(JsonRpcErrorCodes.Exists, $"Key '{name}' already exists");
            }
        }
    }

    /// <summary>keyring_file_remove_key.</summary>
    public void Remove(string name)
    {
        lock (_lock)
        {
            if (!_paths.Remove(name))
            {
                throw new JsonRpcException(JsonRpcErrorCodes.NoDevice, $"Key '{name}' does not exist");
            }
        }
    }

    /// <summary>keyring_get_keys: names, modules and paths; never the secrets.</summary>
    public JsonArray List()
    {
        lock (_lock)
        {
            var keys = new JsonArray();
            foreach (var (name, path) in _paths.OrderBy(k => k.Key, StringComparer.Ordinal))
            {
                keys.Add(new JsonObject
                {
                    ["name"] = name,
                    ["removed"] = false,
                    ["probed"] = false,
                    ["module"] = "keyring_file",
                    ["path"] = path,
                });
            }

            return keys;
        }
    }

    /// <summary>The secret of key <paramref name="name"/>, read from its file now; refused naming the parameter when there is no such key or its file went bad.</summary>
    public DhChapSecret Load(string name, string parameter) =>
        Read(name, parameter, (text, what) => DhChapSecret.Parse(text, what));

    /// <summary>The TLS PSK (interchange string) of key <paramref name="name"/>, read from its file now; refused as <see cref="Load"/> is.</summary>
    public NvmeTlsPsk LoadPsk(string name, string parameter) =>
        Read(name, parameter, (text, what) => NvmeTlsPsk.Parse(text, what));

    private T Read<T>(string name, string parameter, Func<string, string, T> parse)
    {
        string? path;
        lock (_lock)
        {
            _paths.TryGetValue(name, out path);
        }

        if (path is null)
        {
            throw new JsonRpcException(JsonRpcErrorCodes.NoDevice, $"{parameter}: key '{name}' is not in the keyring (keyring_file_add_key first)");
        }

        try
        {
            return parse(DhChapKeys.ReadKeyFile(path, $"{parameter} (key '{name}')"), $"{parameter} (key '{name}')");
        }
        catch (Exception e) when (e is FormatException or IOException or UnauthorizedAccessException)
        {
            throw new JsonRpcException(JsonRpcErrorCodes.InvalidParams, e.Message);
        }
    }
}
