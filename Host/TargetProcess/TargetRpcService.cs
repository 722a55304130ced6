using System.Text.Json;
using System.Text.Json.Nodes;
using ActorNvme.Host.JsonRpc;
using ActorNvme.Target;
using ActorNvme.Transport;

namespace ActorNvme.Host.TargetProcess;

/// <summary>
/// The JSON-RPC methods of <c>actornvme target</c>: what it serves, and the faults it can inject
/// (listeners removed and added, blackholed and restored, subsystems unlinked, namespaces added and
/// removed, connections reset). Listeners are named by their port (<c>trsvcid</c>).
/// </summary>
public sealed class TargetRpcService : IJsonRpcDispatcher
{
    private readonly NvmeTarget _target;
    private readonly Dictionary<string, Method> _methods;

    public TargetRpcService(NvmeTarget target)
    {
        ArgumentNullException.ThrowIfNull(target);
        _target = target;
        _methods = new Dictionary<string, Method>(StringComparer.Ordinal)
        {
            ["rpc_get_methods"] = new([ "current", "include_aliases" ], _ => Task.FromResult<JsonNode?>(new JsonArray([.. _methods!.Keys.Order(StringComparer.Ordinal).Select(k => (JsonNode?)k)]))),
            ["spdk_get_version"] = new([], _ => Task.FromResult<JsonNode?>(VersionInfo.Json("actornvme target"))),
            ["target_get_listeners"] = new([], _ => Task.FromResult<JsonNode?>(new JsonArray([.. _target.Listeners.Select(l => (JsonNode?)Describe(l))]))),
            ["target_get_subsystems"] = new(["nqn"], GetSubsystems),
            ["nvmf_get_subsystems"] = new(["nqn", "tgt_name"], GetSubsystems),
            ["target_add_listener"] = new(["traddr", "trsvcid"], AddListener),
            ["target_remove_listener"] = new(["traddr", "trsvcid"], async p =>
            {
                await _target.RemoveListenerAsync(FindListener(p)).ConfigureAwait(false);
                return true;
            }),
            ["target_listener_down"] = new(["traddr", "trsvcid"], async p =>
            {
                await _target.Faults.TakeDownListenerAsync(FindListener(p)).ConfigureAwait(false);
                return true;
            }),
            ["target_listener_up"] = new(["traddr", "trsvcid"], p =>
            {
                _target.Faults.BringUpListener(FindListener(p));
                return Task.FromResult<JsonNode?>(true);
            }),
            ["target_blackhole"] = new(["traddr", "trsvcid"], p => Task.FromResult<JsonNode?>(ForListeners(p, _target.Faults.Blackhole))),
            ["target_restore"] = new(["traddr", "trsvcid"], p => Task.FromResult<JsonNode?>(ForListeners(p, _target.Faults.Restore))),
            ["target_unlink_subsystem"] = new(["nqn", "traddr", "trsvcid"], p =>
            {
                _target.Faults.UnlinkSubsystem(FindSubsystem(p).Nqn, FindListener(p));
                return Task.FromResult<JsonNode?>(true);
            }),
            ["target_link_subsystem"] = new(["nqn", "traddr", "trsvcid"], p =>
            {
                _target.Faults.RelinkSubsystem(FindSubsystem(p).Nqn, FindListener(p));
                return Task.FromResult<JsonNode?>(true);
            }),
            ["target_add_subsystem"] = new(["nqn", "traddr", "trsvcid"], AddSubsystem),
            ["target_remove_subsystem"] = new(["nqn"], p => Task.FromResult<JsonNode?>(_target.RemoveSubsystem(FindSubsystem(p).Nqn))),
            ["target_add_namespace"] = new(["nqn", "nsid", "size_mib", "block_size", "backend"], AddNamespace),
            ["target_remove_namespace"] = new(["nqn", "nsid"], p =>
            {
                var subsystem = FindSubsystem(p);
                uint nsid = (uint)p.RequiredInt64("nsid", 1, uint.MaxValue - 1);
                return subsystem.RemoveNamespace(nsid)
                    ? Task.FromResult<JsonNode?>(true)
                    : throw new JsonRpcException(JsonRpcErrorCodes.NoDevice, $"{subsystem.Nqn} has no namespace {nsid}");
            }),
            ["target_resize_namespace"] = new(["nqn", "nsid", "size_mib"], p =>
            {
                var subsystem = FindSubsystem(p);
                uint nsid = (uint)p.RequiredInt64("nsid", 1, uint.MaxValue - 1);
                long sizeMib = p.RequiredInt64("size_mib", 1, 1024 * 1024);
                return subsystem.ResizeNamespace(nsid, sizeMib * 1024 * 1024)
                    ? Task.FromResult<JsonNode?>(true)
                    : throw new JsonRpcException(JsonRpcErrorCodes.NoDevice, $"{subsystem.Nqn} has no namespace {nsid}");
            }),
            ["target_reset_connections"] = new(["nqn", "traddr", "trsvcid"], p =>
            {
                var listener = p.Has("trsvcid") ? FindListener(p) : null;
                string? nqn = p.Has("nqn") ? FindSubsystem(p).Nqn : null;
                return Task.FromResult<JsonNode?>(_target.Faults.ResetConnections(listener, nqn));
            }),
        };
    }

    public Task<JsonNode?> DispatchAsync(string method, JsonElement? parameters, CancellationToken cancellationToken)
    {
        if (!_methods.TryGetValue(method, out var entry))
        {
            throw new JsonRpcException(JsonRpcErrorCodes.MethodNotFound, $"Method not found: {method}");
        }

        var p = RpcParams.Parse(method, parameters, entry.Parameters);
        try
        {
            return entry.Handler(p);
        }
        catch (Exception e) when (e is InvalidOperationException or ArgumentException or ObjectDisposedException)
        {
            throw new JsonRpcException(JsonRpcErrorCodes.Invalid, $"{method}: {e.Message}");
        }
    }

    public static JsonObject Describe(TargetListener listener) => new()
    {
        ["trtype"] = listener.Transport.ToUpperInvariant(),
        ["adrfam"] = listener.Address.Host.Contains(':', StringComparison.Ordinal) ? "IPv6" : "IPv4",
        ["traddr"] = listener.Address.Host,
        ["trsvcid"] = listener.Address.Port.ToString(System.Globalization.CultureInfo.InvariantCulture),
        ["portid"] = listener.PortId,
        ["up"] = listener.IsUp,
        ["blackholed"] = listener.IsBlackholed,
    };

    private Task<JsonNode?> GetSubsystems(RpcParams p)
    {
        string? only = p.OptionalString("nqn", 223);
        var result = new JsonArray();
        if (only is null || only == DiscoverySubsystem.WellKnownNqn)
        {
            result.Add(new JsonObject
            {
                ["nqn"] = DiscoverySubsystem.WellKnownNqn,
                ["subtype"] = "Discovery",
                ["listen_addresses"] = new JsonArray([.. _target.Listeners.Select(l => (JsonNode?)Address(l))]),
                ["controllers"] = _target.Discovery.ControllerCount,
            });
        }

        foreach (var subsystem in _target.Subsystems.Where(s => only is null || s.Nqn == only))
        {
            result.Add(new JsonObject
            {
                ["nqn"] = subsystem.Nqn,
                ["subtype"] = "NVMe",
                ["serial_number"] = subsystem.SerialNumber,
                ["model_number"] = subsystem.ModelNumber,
                ["allow_any_host"] = subsystem.AllowAnyHost,
                ["listen_addresses"] = new JsonArray([.. _target.Listeners.Where(subsystem.IsLinked).Select(l => (JsonNode?)Address(l))]),
                ["namespaces"] = new JsonArray([.. subsystem.Namespaces.Select(n => (JsonNode?)new JsonObject
                {
                    ["nsid"] = n.NamespaceId,
                    ["backend"] = n.Backend.ToString().ToLowerInvariant(),
                    ["block_size"] = n.BlockSize,
                    ["num_blocks"] = n.BlockCount,
                    ["uuid"] = n.Uuid.ToString(),
                })]),
                ["controllers"] = subsystem.ControllerCount,
            });
        }

        if (only is not null && result.Count == 0)
        {
            throw new JsonRpcException(JsonRpcErrorCodes.NoDevice, $"no subsystem {only}");
        }

        return Task.FromResult<JsonNode?>(result);
    }

    private Task<JsonNode?> AddListener(RpcParams p)
    {
        string traddr = p.OptionalNonEmptyString("traddr", 256) ?? "127.0.0.1";
        int port = p.RequiredPort("trsvcid", min: 0);
        try
        {
            return Task.FromResult<JsonNode?>(Describe(_target.ListenTcp(traddr, port)));
        }
        catch (FormatException)
        {
            throw JsonRpcException.InvalidParams($"target_add_listener: traddr '{traddr}' is not an IP address");
        }
        catch (System.Net.Sockets.SocketException e)
        {
            throw new JsonRpcException(JsonRpcErrorCodes.Invalid, $"target_add_listener: cannot listen on {traddr}:{port}: {e.Message}");
        }
    }

    private Task<JsonNode?> AddSubsystem(RpcParams p)
    {
        string nqn = p.RequiredNonEmptyString("nqn", 223);
        bool linkToOne = p.Has("trsvcid");
        var listener = linkToOne ? FindListener(p) : null;
        if (_target.FindSubsystem(nqn) is not null)
        {
            throw new JsonRpcException(JsonRpcErrorCodes.Exists, $"subsystem {nqn} already exists");
        }

        var subsystem = _target.AddSubsystem(new NvmSubsystemOptions(nqn) { LinkToAllListeners = !linkToOne });
        if (listener is not null)
        {
            subsystem.Link(listener);
        }

        return Task.FromResult<JsonNode?>(true);
    }

    private Task<JsonNode?> AddNamespace(RpcParams p)
    {
        var subsystem = FindSubsystem(p);
        long sizeMib = p.RequiredInt64("size_mib", 1, 1024 * 1024);
        int blockSize = (int)(p.OptionalInt64("block_size", 512, 4096) ?? 512);
        string backend = p.OptionalString("backend", 8) ?? "ram";
        var options = backend switch
        {
            "ram" => NamespaceOptions.Ram(sizeMib * 1024 * 1024, blockSize),
            "null" => NamespaceOptions.Null(sizeMib * 1024 * 1024, blockSize),
            _ => throw JsonRpcException.InvalidParams($"target_add_namespace: parameter 'backend' must be ram or null, not '{backend}'"),
        };
        if (p.OptionalInt64("nsid", 1, uint.MaxValue - 1) is { } nsid)
        {
            options = options with { NamespaceId = (uint)nsid };
        }

        return Task.FromResult<JsonNode?>(subsystem.AddNamespace(options).NamespaceId);
    }

    private JsonArray ForListeners(RpcParams p, Action<TargetListener> act)
    {
        IReadOnlyList<TargetListener> chosen = p.Has("trsvcid") ? [FindListener(p)] : _target.Listeners;
        var done = new JsonArray();
        foreach (var listener in chosen)
        {
            act(listener);
            done.Add(Describe(listener));
        }

        return done;
    }

    private TargetListener FindListener(RpcParams p)
    {
        int port = p.RequiredPort("trsvcid");
        string? traddr = p.OptionalString("traddr", 256);
        return _target.Listeners.FirstOrDefault(l => l.Address.Port == port && (traddr is null || l.Address.Host == traddr))
            ?? throw new JsonRpcException(JsonRpcErrorCodes.NoDevice, $"{p.Method}: no listener on {(traddr is null ? string.Empty : traddr + ":")}{port}");
    }

    private NvmSubsystem FindSubsystem(RpcParams p)
    {
        string nqn = p.RequiredNonEmptyString("nqn", 223);
        return _target.FindSubsystem(nqn) ?? throw new JsonRpcException(JsonRpcErrorCodes.NoDevice, $"{p.Method}: no subsystem {nqn}");
    }

    private static JsonObject Address(TargetListener listener) => new()
    {
        ["trtype"] = listener.Transport.ToUpperInvariant(),
        ["adrfam"] = listener.Address.Host.Contains(':', StringComparison.Ordinal) ? "IPv6" : "IPv4",
        ["traddr"] = listener.Address.Host,
        ["trsvcid"] = listener.Address.Port.ToString(System.Globalization.CultureInfo.InvariantCulture),
    };

    private sealed record Method(IReadOnlyCollection<string> Parameters, Func<RpcParams, Task<JsonNode?>> Handler);
}
