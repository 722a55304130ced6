using System.Buffers;
using System.Diagnostics;
using System.Net.Sockets;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace ActorNvme.Host.JsonRpc;

/// <summary>Answers one method call. Throw <see cref="JsonRpcException"/> to answer with an error.</summary>
public interface IJsonRpcDispatcher
{
    /// <summary>The result (serialized as the response's "result"); throws <see cref="JsonRpcException"/> for -32601 and every other error.</summary>
    Task<JsonNode?> DispatchAsync(string method, JsonElement? parameters, CancellationToken cancellationToken);
}

/// <summary>Limits of a <see cref="JsonRpcServer"/>.</summary>
public sealed record JsonRpcServerOptions
{
    public static JsonRpcServerOptions Default { get; } = new();

    /// <summary>The longest request accepted; a longer one is answered with a parse error and its connection closed.</summary>
    public int MaxMessageBytes { get; init; } = JsonFraming.DefaultMaxMessageBytes;

    /// <summary>
    /// Connections served at once. A new connection beyond it takes the place of the connection idle the
    /// longest (one waiting for its next request), so silent clients cannot lock an operator out; only
    /// when every connection is executing a request is the new one closed.
    /// </summary>
    public int MaxConnections { get; init; } = 64;

    /// <summary>A connection that sends no request for this long is closed (its slot freed).</summary>
    public TimeSpan IdleTimeout { get; init; } = TimeSpan.FromSeconds(60);
}

/// <summary>One answered call, for logs and metrics.</summary>
public readonly record struct JsonRpcCallRecord(string Method, TimeSpan Elapsed, int? ErrorCode);

/// <summary>
/// A JSON-RPC 2.0 server on a Unix domain socket, framed as SPDK frames it (JSON values back to back;
/// each response followed by a newline). Each connection is served by its own task, its requests one
/// after another; a malformed or oversized request closes that connection only.
/// </summary>
public sealed class JsonRpcServer : IAsyncDisposable
{
    private const int MaxUnixSocketPath = 107;

    private readonly IJsonRpcDispatcher _dispatcher;
    private readonly JsonRpcServerOptions _options;
    private readonly ILogger _logger;
    private readonly CancellationTokenSource _stopping = new();
    private readonly Dictionary<int, Connection> _connections = [];
    private readonly object _sync = new();
    private Socket? _listener;
    private Task? _acceptLoop;
    private int _nextConnectionId;
    private int _evicting;

    public JsonRpcServer(string socketPath, IJsonRpcDispatcher dispatcher, JsonRpcServerOptions? options = null, ILogger? logger = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(socketPath);
        ArgumentNullException.ThrowIfNull(dispatcher);
        SocketPath = socketPath;
        _dispatcher = dispatcher;
        _options = options ?? JsonRpcServerOptions.Default;
        _logger = logger ?? NullLogger.Instance;
    }

    public string SocketPath { get; }

    /// <summary>Called after every answered call (from the connection's task); must not throw or block.</summary>
    public Action<JsonRpcCallRecord>? CallCompleted { get; init; }

    /// <summary>
    /// Binds the socket and starts accepting. A socket file left behind by a process that is gone is
    /// replaced; one that another server still answers on is not (throws <see cref="IOException"/>).
    /// </summary>
    public void Start()
    {
        if (System.Text.Encoding.UTF8.GetByteCount(SocketPath) > MaxUnixSocketPath)
        {
            throw new IOException($"socket path '{SocketPath}' is longer than {MaxUnixSocketPath} bytes, the limit of a Unix socket address");
        }

        if (File.Exists(SocketPath))
        {
            if (IsServed(SocketPath))
            {
                throw new IOException($"another server is listening on {SocketPath}");
            }

            File.Delete(SocketPath);
        }

        var listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            listener.Bind(new UnixDomainSocketEndPoint(SocketPath));
            // A Unix socket refuses connects (EAGAIN) once its backlog is full: keep it well above the
            // connection limit, so a burst of clients reaches the accept loop, which makes room or closes.
            listener.Listen(Math.Max(1024, _options.MaxConnections * 4));
        }
        catch
        {
            listener.Dispose();
            throw;
        }

        _listener = listener;
        _acceptLoop = Task.Run(() => AcceptLoopAsync(listener));
        _logger.LogInformation("JSON-RPC server listening on {Socket}", SocketPath);
    }

    public async ValueTask DisposeAsync()
    {
        await _stopping.CancelAsync().ConfigureAwait(false);
        _listener?.Dispose();
        if (_acceptLoop is not null)
        {
            await _acceptLoop.ConfigureAwait(false);
        }

        Task[] connections;
        lock (_sync)
        {
            connections = [.. _connections.Values.Select(c => c.Served)];
        }

        await Task.WhenAll(connections).WaitAsync(TimeSpan.FromSeconds(5)).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        try
        {
            if (_listener is not null)
            {
                File.Delete(SocketPath);
            }
        }
        catch (IOException)
        {
        }

        _stopping.Dispose();
    }

    private static bool IsServed(string path)
    {
        using var probe = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            probe.Connect(new UnixDomainSocketEndPoint(path));
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    private async Task AcceptLoopAsync(Socket listener)
    {
        while (!_stopping.IsCancellationRequested)
        {
            Socket client;
            try
            {
                client = await listener.AcceptAsync(_stopping.Token).ConfigureAwait(false);
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException)
            {
                if (!_stopping.IsCancellationRequested)
                {
                    _logger.LogWarning(e, "JSON-RPC accept failed on {Socket}", SocketPath);
                    continue;
                }

                return;
            }

            lock (_sync)
            {
                if (_connections.Count - _evicting >= _options.MaxConnections && !TryEvictIdle())
                {
                    _logger.LogWarning("JSON-RPC: all {Count} connections are executing requests; closing a new one", _connections.Count);
                    client.Dispose();
                    continue;
                }

                int id = ++_nextConnectionId;
                // Idle from the start: a client that connects and says nothing is as evictable as any silent one.
                var connection = new Connection(id, CancellationTokenSource.CreateLinkedTokenSource(_stopping.Token)) { IdleSince = Math.Max(1, Stopwatch.GetTimestamp()) };
                var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                connection.Served = Task.Run(async () =>
                {
                    await started.Task.ConfigureAwait(false);
                    await ServeAsync(connection, client).ConfigureAwait(false);
                });
                _connections[id] = connection;
                started.SetResult();
            }
        }
    }

    /// <summary>Closes the connection idle the longest, if any is idle. Under <see cref="_sync"/>.</summary>
    private bool TryEvictIdle()
    {
        Connection? oldest = null;
        foreach (var connection in _connections.Values)
        {
            long since = connection.IdleSince;
            if (since != 0 && !connection.Evicted && (oldest is null || since < oldest.IdleSince))
            {
                oldest = connection;
            }
        }

        if (oldest is null)
        {
            return false;
        }

        oldest.Evicted = true;
        _evicting++;
        _logger.LogDebug("JSON-RPC: {Max} connections open; closing connection {Id}, idle the longest, for a new one", _options.MaxConnections, oldest.Id);
        oldest.Lifetime.Cancel();
        return true;
    }

    private async Task ServeAsync(Connection connection, Socket client)
    {
        int id = connection.Id;
        try
        {
            await using var stream = new NetworkStream(client, ownsSocket: true);
            var reader = new JsonMessageReader(stream, _options.MaxMessageBytes);
            while (!_stopping.IsCancellationRequested)
            {
                // Idle: evictable, and closed after the idle timeout.
                lock (_sync)
                {
                    connection.IdleSince = Math.Max(1, Stopwatch.GetTimestamp());
                    connection.Lifetime.CancelAfter(_options.IdleTimeout);
                }

                var message = await reader.ReadAsync(connection.Lifetime.Token).ConfigureAwait(false);
                bool evicted;
                lock (_sync)
                {
                    evicted = connection.Evicted;
                    connection.IdleSince = 0;
                    if (!evicted)
                    {
                        connection.Lifetime.CancelAfter(Timeout.InfiniteTimeSpan);
                    }
                }

                if (evicted && message is null)
                {
                    return;
                }

                if (message is null)
                {
                    if (reader.Fault != JsonStreamFault.None)
                    {
                        // The framing is lost: answer once, then close this connection (and only this one).
                        _logger.LogWarning("JSON-RPC connection {Id}: {Detail}; closing it", id, reader.FaultDetail);
                        await WriteAsync(stream, ErrorResponse(null, JsonRpcErrorCodes.ParseError, $"Parse error: {reader.FaultDetail}")).ConfigureAwait(false);
                    }

                    return;
                }

                byte[]? response = await HandleAsync(message.Value).ConfigureAwait(false);
                if (response is not null)
                {
                    await WriteAsync(stream, response).ConfigureAwait(false);
                }

                if (evicted)
                {
                    return; // its request arrived as it was evicted: answered, then closed
                }
            }
        }
        catch (Exception e) when (e is IOException or SocketException or OperationCanceledException or ObjectDisposedException)
        {
            // The client went away, or the server is stopping.
        }
        catch (Exception e)
        {
            _logger.LogError(e, "JSON-RPC connection {Id} failed", id);
        }
        finally
        {
            lock (_sync)
            {
                _connections.Remove(id);
                if (connection.Evicted)
                {
                    _evicting--;
                }
            }

            connection.Lifetime.Dispose();
        }
    }

    /// <summary>One client connection; <see cref="IdleSince"/> and <see cref="Evicted"/> change under the server's lock (IdleSince is read there too).</summary>
    private sealed class Connection(int id, CancellationTokenSource lifetime)
    {
        public int Id { get; } = id;

        /// <summary>Cancelled to close the connection: idle timeout, eviction, or the server stopping.</summary>
        public CancellationTokenSource Lifetime { get; } = lifetime;

        public Task Served { get; set; } = Task.CompletedTask;

        /// <summary>When it started waiting for its next request (a Stopwatch timestamp); 0 while a request runs.</summary>
        public long IdleSince { get; set; }

        public bool Evicted { get; set; }
    }

    private static async Task WriteAsync(Stream stream, byte[] response)
    {
        await stream.WriteAsync(response).ConfigureAwait(false);
        await stream.FlushAsync().ConfigureAwait(false);
    }

    /// <summary>Answers one request; null for a notification (no id).</summary>
    internal async Task<byte[]?> HandleAsync(ReadOnlyMemory<byte> message)
    {
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(message, new JsonDocumentOptions { MaxDepth = 64 });
        }
        catch (JsonException e)
        {
            return ErrorResponse(null, JsonRpcErrorCodes.ParseError, $"Parse error: {e.Message}");
        }

        using (document)
        {
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
            {
                return ErrorResponse(null, JsonRpcErrorCodes.InvalidRequest, "Invalid request: a request is a JSON object (batches are not supported)");
            }

            JsonElement? id = root.TryGetProperty("id", out var idElement) ? idElement.Clone() : null;
            if (id is { ValueKind: not (JsonValueKind.Number or JsonValueKind.String or JsonValueKind.Null) })
            {
                return ErrorResponse(null, JsonRpcErrorCodes.InvalidRequest, "Invalid request: 'id' must be a number, a string or null");
            }

            if (!root.TryGetProperty("jsonrpc", out var version) || version.ValueKind != JsonValueKind.String || version.GetString() != "2.0")
            {
                return ErrorResponse(id, JsonRpcErrorCodes.InvalidRequest, "Invalid request: 'jsonrpc' must be \"2.0\"");
            }

            if (!root.TryGetProperty("method", out var methodElement) || methodElement.ValueKind != JsonValueKind.String)
            {
                return ErrorResponse(id, JsonRpcErrorCodes.InvalidRequest, "Invalid request: 'method' must be a string");
            }

            string method = methodElement.GetString()!;
            if (method.Length > 256)
            {
                return ErrorResponse(id, JsonRpcErrorCodes.InvalidRequest, "Invalid request: 'method' is longer than 256 characters");
            }

            JsonElement? parameters = root.TryGetProperty("params", out var p) ? p : null;
            var clock = Stopwatch.StartNew();
            int? errorCode = null;
            byte[] response;
            try
            {
                var result = await _dispatcher.DispatchAsync(method, parameters, _stopping.Token).ConfigureAwait(false);
                response = ResultResponse(id, result);
            }
            catch (JsonRpcException e)
            {
                errorCode = e.Code;
                response = ErrorResponse(id, e.Code, e.Message);
            }
            catch (OperationCanceledException) when (_stopping.IsCancellationRequested)
            {
                errorCode = JsonRpcErrorCodes.InternalError;
                response = ErrorResponse(id, JsonRpcErrorCodes.InternalError, "the server is shutting down");
            }
            catch (Exception e)
            {
                errorCode = JsonRpcErrorCodes.InternalError;
                _logger.LogError(e, "JSON-RPC method {Method} failed", method);
                response = ErrorResponse(id, JsonRpcErrorCodes.InternalError, $"{method}: {e.Message}");
            }

            try
            {
                CallCompleted?.Invoke(new JsonRpcCallRecord(method, clock.Elapsed, errorCode));
            }
            catch (Exception e)
            {
                _logger.LogWarning(e, "JSON-RPC call observer failed");
            }

            return id is null ? null : response;
        }
    }

    public static byte[] ResultResponse(JsonElement? id, JsonNode? result) => Write(writer =>
    {
        writer.WriteStartObject();
        writer.WriteString("jsonrpc", "2.0");
        WriteId(writer, id);
        writer.WritePropertyName("result");
        if (result is null)
        {
            writer.WriteNullValue();
        }
        else
        {
            result.WriteTo(writer);
        }

        writer.WriteEndObject();
    });

    public static byte[] ErrorResponse(JsonElement? id, int code, string message) => Write(writer =>
    {
        writer.WriteStartObject();
        writer.WriteString("jsonrpc", "2.0");
        WriteId(writer, id);
        writer.WriteStartObject("error");
        writer.WriteNumber("code", code);
        writer.WriteString("message", message);
        writer.WriteEndObject();
        writer.WriteEndObject();
    });

    private static void WriteId(Utf8JsonWriter writer, JsonElement? id)
    {
        writer.WritePropertyName("id");
        if (id is { } value)
        {
            value.WriteTo(writer);
        }
        else
        {
            writer.WriteNullValue();
        }
    }

    private static readonly JsonWriterOptions WriterOptions = new() { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    private static byte[] Write(Action<Utf8JsonWriter> write)
    {
        var buffer = new ArrayBufferWriter<byte>(256);
        using (var writer = new Utf8JsonWriter(buffer, WriterOptions))
        {
            write(writer);
        }

        buffer.Write("\n"u8);
        return buffer.WrittenSpan.ToArray();
    }
}
