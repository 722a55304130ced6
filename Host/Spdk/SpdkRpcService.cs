using System.Collections.Concurrent;
using System.Text.Json;
using System.Text.Json.Nodes;
using Akka.Actor;
using ActorNvme.Actors.Connection;
using ActorNvme.Actors.Host;
using ActorNvme.Actors.Settings;
using ActorNvme.Host.JsonRpc;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace ActorNvme.Host.Spdk;

/// <summary>
/// SPDK's bdev_nvme JSON-RPC methods over the ActorNvme host, with SPDK's method names, parameter
/// names, result shapes and error codes, so scripts written for SPDK's host (rpc.py, jq pipelines)
/// drive it unchanged. Like SPDK started with --wait-for-rpc, the host is created only by
/// framework_start_init; until then only start-up methods are callable. Every list method is
/// answered from the host's registry: nothing here waits on a reconnecting controller.
/// </summary>
public sealed partial class SpdkRpcService : IJsonRpcDispatcher
{
    private static readonly TimeSpan ListTimeout = TimeSpan.FromSeconds(5);

    /// <summary>Stops are answered once the controllers are gone (after CC.SHN, bounded by the connect timeout each).</summary>
    private TimeSpan StopTimeout => (Settings.ConnectTimeout * 2) + TimeSpan.FromSeconds(5);

    private readonly ActorSystem _system;
    private readonly IAdminConnector? _connector;
    private readonly ILogger _logger;
    private readonly SemaphoreSlim _gate = new(1, 1);
    private readonly TaskCompletionSource _initialized = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly Dictionary<string, Method> _methods;
    private readonly SpdkKeyring _keyring = new();
    private NvmeHostSettings _settings;
    private IActorRef? _host;
    private string _logLevelName = "NOTICE";

    public SpdkRpcService(ActorSystem system, NvmeHostSettings settings, IAdminConnector? connector = null, ILogger? logger = null)
    {
        ArgumentNullException.ThrowIfNull(system);
        ArgumentNullException.ThrowIfNull(settings);
        _system = system;
        _settings = settings;
        _connector = connector;
        _logger = logger ?? NullLogger.Instance;
        _methods = BuildMethods();
    }

    /// <summary>The host actor, once framework_start_init (or <see cref="InitializeAsync"/>) created it.</summary>
    public IActorRef? Host => Volatile.Read(ref _host);

    public bool IsInitialized => _initialized.Task.IsCompleted;

    /// <summary>Applies log_set_level; null: the level cannot be changed (log_set_level answers "not supported").</summary>
    public Action<Microsoft.Extensions.Logging.LogLevel>? LogLevelChanged { get; init; }

    /// <summary>What log_get_level answers until log_set_level is called (SPDK's names: ERROR, WARNING, NOTICE, INFO, DEBUG).</summary>
    public string InitialLogLevel { init => _logLevelName = value; }

    /// <summary>Stops the process for spdk_kill_instance; null: not available.</summary>
    public Action? StopRequested { get; init; }

    /// <summary>The settings the host runs with (or will, once initialized).</summary>
    public NvmeHostSettings Settings => Volatile.Read(ref _settings);

    /// <summary>The method names, sorted.</summary>
    public IReadOnlyList<string> MethodNames => [.. _methods.Keys.Order(StringComparer.Ordinal)];

    /// <summary>Creates the host, as framework_start_init does; a second call is refused with SPDK's invalid-state error.</summary>
    public async Task InitializeAsync()
    {
        await _gate.WaitAsync().ConfigureAwait(false);
        try
        {
            if (IsInitialized)
            {
                throw new JsonRpcException(JsonRpcErrorCodes.InvalidState, "Subsystems have been already initialized");
            }

            Volatile.Write(ref _host, CreateHost(Settings));
            _initialized.TrySetResult();
            _logger.LogInformation("framework initialized: the NVMe host is running");
        }
        finally
        {
            _gate.Release();
        }
    }

    public async Task<JsonNode?> DispatchAsync(string method, JsonElement? parameters, CancellationToken cancellationToken)
    {
        if (!_methods.TryGetValue(method, out var entry))
        {
            throw new JsonRpcException(JsonRpcErrorCodes.MethodNotFound, $"Method not found: {method}");
        }

        if (!IsInitialized && !entry.AtStartup)
        {
            throw new JsonRpcException(JsonRpcErrorCodes.InvalidState, "Method may only be called after framework is initialized using framework_start_init RPC.");
        }

        if (IsInitialized && !entry.AtRuntime)
        {
            throw new JsonRpcException(JsonRpcErrorCodes.InvalidState, "Method may only be called before framework is initialized. Use --wait-for-rpc command line parameter and then issue this RPC before the framework_start_init RPC.");
        }

        var p = RpcParams.Parse(method, parameters, entry.Parameters);
        return await entry.Handler(p, cancellationToken).ConfigureAwait(false);
    }

    private IActorRef CreateHost(NvmeHostSettings settings) =>
        _system.ActorOf(NvmeHost.Props(settings, _connector ?? TransportAdminConnector.Tcp()), NvmeHost.ActorName);

    private IActorRef RequireHost() => Host ?? throw new JsonRpcException(JsonRpcErrorCodes.InvalidState, "Method may only be called after framework is initialized using framework_start_init RPC.");

    /// <summary>Asks the host; a <see cref="NvmeHost.Failed"/> answer becomes the JSON-RPC error SPDK would send.</summary>
    private async Task<T> AskAsync<T>(object request, TimeSpan timeout, int notFoundCode, CancellationToken cancellationToken)
    {
        object answer;
        try
        {
            answer = await RequireHost().Ask<object>(request, timeout, cancellationToken).ConfigureAwait(false);
        }
        catch (AskTimeoutException)
        {
            throw new JsonRpcException(JsonRpcErrorCodes.TimedOut, $"Connection timed out: the host did not answer within {timeout.TotalSeconds:0.#} s");
        }

        return answer switch
        {
            T reply => reply,
            NvmeHost.Failed failed => throw Error(failed, notFoundCode),
            _ => throw new JsonRpcException(JsonRpcErrorCodes.InternalError, $"unexpected answer from the host: {answer.GetType().Name}"),
        };
    }

    private static JsonRpcException Error(NvmeHost.Failed failed, int notFoundCode) => failed.Kind switch
    {
        HostErrorKind.InvalidParameter => JsonRpcException.InvalidValue(failed.Message),
        HostErrorKind.AlreadyExists => new JsonRpcException(JsonRpcErrorCodes.Exists, $"File exists: {failed.Message}"),
        HostErrorKind.Conflict => new JsonRpcException(JsonRpcErrorCodes.Invalid, $"Invalid argument: {failed.Message}"),
        HostErrorKind.PathExists => new JsonRpcException(JsonRpcErrorCodes.Already, $"Operation already in progress: {failed.Message}"),
        HostErrorKind.NotFound => new JsonRpcException(notFoundCode, $"{(notFoundCode == JsonRpcErrorCodes.NoEntry ? "No such file or directory" : "No such device")}: {failed.Message}"),
        HostErrorKind.Timeout => new JsonRpcException(JsonRpcErrorCodes.TimedOut, $"Connection timed out: {failed.Message}"),
        HostErrorKind.ConnectionRefused => new JsonRpcException(JsonRpcErrorCodes.ConnectionRefused, $"Connection refused: {failed.Message}"),
        HostErrorKind.AuthenticationFailed => new JsonRpcException(JsonRpcErrorCodes.AccessDenied, $"Permission denied: {failed.Message}"),
        _ => new JsonRpcException(JsonRpcErrorCodes.IoError, $"Input/output error: {failed.Message}"),
    };

    private sealed record Method(
        IReadOnlyCollection<string> Parameters,
        Func<RpcParams, CancellationToken, Task<JsonNode?>> Handler,
        bool AtStartup = false,
        bool AtRuntime = true);
}
