using System.Text.Json;
using ActorNvme.Host.JsonRpc;
using ActorNvme.Protocol.Auth;
using ActorNvme.Target;
using ActorNvme.Transport.Authentication;

namespace ActorNvme.Host.TargetProcess;

/// <summary>One namespace of a subsystem of <c>actornvme target</c>.</summary>
public sealed record TargetNamespaceConfig(long SizeBytes, int BlockSize = 512, bool Null = false);

/// <summary>One NVM subsystem of the target; <paramref name="Hosts"/>, when given, are the only host NQNs it lets connect.</summary>
public sealed record TargetSubsystemConfig(string Nqn, int Port, IReadOnlyList<TargetNamespaceConfig> Namespaces, IReadOnlyList<string>? Hosts = null)
{
    /// <summary>Its listener takes only NVMe/TCP over TLS 1.3 with a PSK (SPDK's listener -k); each host needs a "psk".</summary>
    public bool SecureChannel { get; init; }

    /// <summary>Keys of the hosts listed as objects: DH-HMAC-CHAP they must pass on every queue, the TLS PSK they use.</summary>
    public IReadOnlyList<TargetHostConfig> HostKeys { get; init; } = [];
}

/// <summary>A host of a subsystem with keys, as SPDK's <c>nvmf_subsystem_add_host --dhchap-key --dhchap-ctrlr-key --psk</c>.</summary>
public sealed record TargetHostConfig(string Nqn)
{
    public DhChapHostKeys? DhChap { get; init; }

    /// <summary>The TLS PSK interchange string (<c>NVMeTLSkey-1:...</c>), for secure-channel listeners.</summary>
    public string? Psk { get; init; }

    public override string ToString() => $"host {Nqn}{(DhChap is null ? string.Empty : ", DH-HMAC-CHAP")}{(Psk is null ? string.Empty : ", TLS PSK")}";
}

/// <summary>
/// What <c>actornvme target</c> serves. Defaults: discovery on 127.0.0.1:8009, two subsystems on :4420
/// and :4421 with one 64 MiB RAM namespace each. A JSON file (<c>--config</c>) can say all of it:
/// <code>
/// { "address": "127.0.0.1", "discovery_port": 8009, "rpc_socket": "/var/tmp/actornvme-target.sock", "max_connections": 1024,
///   "subsystems": [ { "nqn": "nqn.2016-06.io.actornvme:disk1", "port": 4420,
///                     "namespaces": [ { "size_mib": 64, "block_size": 512, "backend": "ram" } ],
///                     "hosts": [ "nqn.2014-08.org.nvmexpress:uuid:..." ] } ] }
/// </code>
/// Without "hosts" a subsystem lets any host connect; with it, only those (others: Connect Invalid Host). A host may
/// be an object with keys, as SPDK's nvmf_subsystem_add_host: <c>{ "nqn": "...", "dhchap_key": "/abs/host.key",
/// "dhchap_ctrlr_key": "/abs/ctrlr.key", "dhchap_digests": ["sha256", ...], "dhchap_dhgroups": ["null", "ffdhe2048", ...],
/// "psk": "/abs/psk.key" }</c> (each key inline or the absolute path of a 0600 file); with "dhchap_key" it must pass
/// DH-HMAC-CHAP on every queue. <c>"secure_channel": true</c> on a subsystem makes its port TLS-only (as SPDK's -k).
/// </summary>
public sealed record TargetConfig
{
    public const string DefaultRpcSocket = "/var/tmp/actornvme-target.sock";
    public const string DefaultNqnPrefix = "nqn.2016-06.io.actornvme:disk";
    private const int MaxConfigBytes = 1024 * 1024;

    public string Address { get; init; } = "127.0.0.1";

    public int DiscoveryPort { get; init; } = 8009;

    public string RpcSocket { get; init; } = DefaultRpcSocket;

    /// <summary>Connections the target holds at once (two per controller with one I/O queue); null: the target's default.</summary>
    public int? MaxConnections { get; init; }

    public IReadOnlyList<TargetSubsystemConfig> Subsystems { get; init; } = Defaults([4420, 4421], 64L * 1024 * 1024, 512, nullBackend: false);

    public static IReadOnlyList<TargetSubsystemConfig> Defaults(IReadOnlyList<int> ports, long sizeBytes, int blockSize, bool nullBackend) =>
        [.. ports.Select((port, i) => new TargetSubsystemConfig($"{DefaultNqnPrefix}{i + 1}", port, [new TargetNamespaceConfig(sizeBytes, blockSize, nullBackend)]))];

    /// <summary>Reads a JSON config file; every problem names the field.</summary>
    public static TargetConfig Load(string path)
    {
        var info = new FileInfo(path);
        if (!info.Exists)
        {
            throw new InvalidDataException($"{path}: no such file");
        }

        if (info.Length > MaxConfigBytes)
        {
            throw new InvalidDataException($"{path}: larger than {MaxConfigBytes} bytes");
        }

        using var document = JsonDocument.Parse(File.ReadAllBytes(path), new JsonDocumentOptions { AllowTrailingCommas = true, CommentHandling = JsonCommentHandling.Skip });
        try
        {
            var p = RpcParams.Parse(path, document.RootElement, ["address", "discovery_port", "rpc_socket", "max_connections", "subsystems"]);
            var config = new TargetConfig
            {
                Address = p.OptionalNonEmptyString("address", 256) ?? "127.0.0.1",
                DiscoveryPort = (int)(p.OptionalInt64("discovery_port", 0, 65535) ?? 8009),
                RpcSocket = p.OptionalNonEmptyString("rpc_socket", 107) ?? DefaultRpcSocket,
                MaxConnections = (int?)p.OptionalInt64("max_connections", 1, 1_000_000),
            };
            if (document.RootElement.TryGetProperty("subsystems", out var subsystems))
            {
                if (subsystems.ValueKind != JsonValueKind.Array || subsystems.GetArrayLength() > 1024)
                {
                    throw new InvalidDataException($"{path}: 'subsystems' must be an array of at most 1024 objects");
                }

                config = config with { Subsystems = [.. subsystems.EnumerateArray().Select((s, i) => ParseSubsystem($"{path}: subsystems[{i}]", s))] };
            }

            return config;
        }
        catch (JsonRpcException e)
        {
            throw new InvalidDataException(e.Message, e);
        }
    }

    private static TargetSubsystemConfig ParseSubsystem(string where, JsonElement element)
    {
        var p = RpcParams.Parse(where, element, ["nqn", "port", "namespaces", "hosts", "secure_channel"]);
        var namespaces = new List<TargetNamespaceConfig>();
        if (element.TryGetProperty("namespaces", out var list))
        {
            if (list.ValueKind != JsonValueKind.Array || list.GetArrayLength() > 1024)
            {
                throw new InvalidDataException($"{where}: 'namespaces' must be an array of at most 1024 objects");
            }

            int i = 0;
            foreach (var ns in list.EnumerateArray())
            {
                var n = RpcParams.Parse($"{where}.namespaces[{i++}]", ns, ["size_mib", "block_size", "backend"]);
                string backend = n.OptionalString("backend", 8) ?? "ram";
                if (backend is not ("ram" or "null"))
                {
                    throw new InvalidDataException($"{where}: namespace backend '{backend}' must be ram or null");
                }

                namespaces.Add(new TargetNamespaceConfig(n.RequiredInt64("size_mib", 1, 1024 * 1024) * 1024 * 1024, (int)(n.OptionalInt64("block_size", 512, 4096) ?? 512), backend == "null"));
            }
        }

        var (hosts, hostKeys) = ParseHosts(where, element);
        var subsystem = new TargetSubsystemConfig(p.RequiredNonEmptyString("nqn", 223), (int)p.RequiredInt64("port", 0, 65535), namespaces, hosts)
        {
            SecureChannel = p.OptionalBool("secure_channel") ?? false,
            HostKeys = hostKeys,
        };
        if (subsystem.SecureChannel && (hosts is null || hostKeys.Any(h => h.Psk is null) || hosts.Count != hostKeys.Count))
        {
            throw new InvalidDataException($"{where}: a secure_channel subsystem lists its hosts, each with a psk");
        }

        return subsystem;
    }

    /// <summary>"hosts": NQN strings, or objects with an "nqn" and keys.</summary>
    private static (IReadOnlyList<string>? Hosts, IReadOnlyList<TargetHostConfig> Keys) ParseHosts(string where, JsonElement subsystem)
    {
        if (!subsystem.TryGetProperty("hosts", out var list) || list.ValueKind == JsonValueKind.Null)
        {
            return (null, []);
        }

        if (list.ValueKind != JsonValueKind.Array || list.GetArrayLength() > 1024)
        {
            throw new InvalidDataException($"{where}: 'hosts' must be an array of at most 1024 host NQNs or host objects");
        }

        var hosts = new List<string>();
        var keys = new List<TargetHostConfig>();
        int i = 0;
        foreach (var item in list.EnumerateArray())
        {
            string at = $"{where}.hosts[{i++}]";
            if (item.ValueKind == JsonValueKind.String)
            {
                string nqn = item.GetString()!;
                if (nqn.Length is 0 or > 223)
                {
                    throw new InvalidDataException($"{at}: a host NQN is 1..223 characters");
                }

                hosts.Add(nqn);
                continue;
            }

            var h = RpcParams.Parse(at, item, ["nqn", "dhchap_key", "dhchap_ctrlr_key", "dhchap_digests", "dhchap_dhgroups", "psk"]);
            string hostNqn = h.RequiredNonEmptyString("nqn", 223);
            string? hostKey = KeyText(h.OptionalNonEmptyString("dhchap_key", 4096), "DHHC-", $"{at}.dhchap_key");
            string? controllerKey = KeyText(h.OptionalNonEmptyString("dhchap_ctrlr_key", 4096), "DHHC-", $"{at}.dhchap_ctrlr_key");
            if (controllerKey is not null && hostKey is null)
            {
                throw new InvalidDataException($"{at}: dhchap_ctrlr_key is set without dhchap_key");
            }

            DhChapHostKeys? dhChap = null;
            if (hostKey is not null)
            {
                dhChap = new DhChapHostKeys(hostKey, controllerKey)
                {
                    Hashes = h.OptionalStringArray("dhchap_digests", 3, 16)?.Select(n => DhChapHashes.TryParse(n, out var id) ? id : throw new InvalidDataException($"{at}: dhchap_digests: '{n}' is not sha256, sha384 or sha512")).ToArray(),
                    Groups = h.OptionalStringArray("dhchap_dhgroups", 6, 16)?.Select(n => DhChapGroups.TryParse(n, out var id) ? id : throw new InvalidDataException($"{at}: dhchap_dhgroups: '{n}' is not null or ffdhe2048..ffdhe8192")).ToArray(),
                };
            }

            hosts.Add(hostNqn);
            keys.Add(new TargetHostConfig(hostNqn) { DhChap = dhChap, Psk = KeyText(h.OptionalNonEmptyString("psk", 4096), "NVMeTLSkey-", $"{at}.psk") });
        }

        return (hosts, keys);
    }

    /// <summary>A key given inline (starting with <paramref name="inlinePrefix"/>) or as the absolute path of a 0600 file.</summary>
    private static string? KeyText(string? valueOrPath, string inlinePrefix, string setting)
    {
        if (valueOrPath is null)
        {
            return null;
        }

        try
        {
            return (valueOrPath.StartsWith(inlinePrefix, StringComparison.Ordinal) ? valueOrPath : DhChapKeys.ReadKeyFile(valueOrPath, setting)).Trim();
        }
        catch (FormatException e)
        {
            throw new InvalidDataException(e.Message, e);
        }
    }
}
