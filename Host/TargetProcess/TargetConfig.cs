using System.Text.Json;
using ActorNvme.Host.JsonRpc;

namespace ActorNvme.Host.TargetProcess;

/// <summary>One namespace of a subsystem of <c>actornvme target</c>.</summary>
public sealed record TargetNamespaceConfig(long SizeBytes, int BlockSize = 512, bool Null = false);

/// <summary>One NVM subsystem of <c>actornvme target</c>, listening on its own port.</summary>
/// <summary>One NVM subsystem of the target; <paramref name="Hosts"/>, when given, are the only host NQNs it lets connect.</summary>
public sealed record TargetSubsystemConfig(string Nqn, int Port, IReadOnlyList<TargetNamespaceConfig> Namespaces, IReadOnlyList<string>? Hosts = null);

/// <summary>
/// What <c>actornvme target</c> serves. Defaults: discovery on 127.0.0.1:8009, two subsystems on :4420
/// and :4421 with one 64 MiB RAM namespace each. A JSON file (<c>--config</c>) can say all of it:
/// <code>
/// { "address": "127.0.0.1", "discovery_port": 8009, "rpc_socket": "/var/tmp/actornvme-target.sock", "max_connections": 1024,
///   "subsystems": [ { "nqn": "nqn.2016-06.io.actornvme:disk1", "port": 4420,
///                     "namespaces": [ { "size_mib": 64, "block_size": 512, "backend": "ram" } ],
///                     "hosts": [ "nqn.2014-08.org.nvmexpress:uuid:..." ] } ] }
/// </code>
/// Without "hosts" a subsystem lets any host connect; with it, only those (others: Connect Invalid Host).
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
        var p = RpcParams.Parse(where, element, ["nqn", "port", "namespaces", "hosts"]);
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

        return new TargetSubsystemConfig(p.RequiredNonEmptyString("nqn", 223), (int)p.RequiredInt64("port", 0, 65535), namespaces, p.OptionalStringArray("hosts", 1024, 223));
    }
}
