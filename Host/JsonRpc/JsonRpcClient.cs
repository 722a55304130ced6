using System.Net.Sockets;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace ActorNvme.Host.JsonRpc;

/// <summary>A JSON-RPC error response received by <see cref="JsonRpcClient"/>.</summary>
public sealed class JsonRpcErrorResponseException : Exception
{
    public JsonRpcErrorResponseException(int code, string message, string response)
        : base(message)
    {
        Code = code;
        Response = response;
    }

    public JsonRpcErrorResponseException()
        : this(0, "JSON-RPC error", "{}")
    {
    }

    public JsonRpcErrorResponseException(string message)
        : this(0, message, "{}")
    {
    }

    public JsonRpcErrorResponseException(string message, Exception innerException)
        : base(message, innerException)
    {
        Response = "{}";
    }

    public int Code { get; }

    /// <summary>The error object as received.</summary>
    public string Response { get; }
}

/// <summary>A client for a <see cref="JsonRpcServer"/> (or SPDK's own socket): one connection, calls one at a time.</summary>
public sealed class JsonRpcClient : IAsyncDisposable
{
    private readonly Socket _socket;
    private readonly NetworkStream _stream;
    private readonly JsonMessageReader _reader;
    private int _nextId;

    private JsonRpcClient(Socket socket)
    {
        _socket = socket;
        _stream = new NetworkStream(socket, ownsSocket: true);
        _reader = new JsonMessageReader(_stream);
    }

    /// <summary>Connects to <paramref name="socketPath"/>; throws <see cref="IOException"/> naming the path when nothing listens there.</summary>
    public static async Task<JsonRpcClient> ConnectAsync(string socketPath, CancellationToken cancellationToken = default)
    {
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            await socket.ConnectAsync(new UnixDomainSocketEndPoint(socketPath), cancellationToken).ConfigureAwait(false);
        }
        catch (SocketException e)
        {
            socket.Dispose();
            throw new IOException($"cannot connect to {socketPath}: {e.Message} (is the server running?)", e);
        }

        return new JsonRpcClient(socket);
    }

    /// <summary>Calls <paramref name="method"/>; returns its result, or throws <see cref="JsonRpcErrorResponseException"/>.</summary>
    public async Task<JsonNode?> CallAsync(string method, JsonNode? parameters = null, CancellationToken cancellationToken = default)
    {
        int id = ++_nextId;
        var request = new JsonObject
        {
            ["jsonrpc"] = "2.0",
            ["method"] = method,
            ["id"] = id,
        };
        if (parameters is not null)
        {
            request["params"] = parameters.DeepClone();
        }

        await _stream.WriteAsync(JsonSerializer.SerializeToUtf8Bytes(request), cancellationToken).ConfigureAwait(false);
        while (true)
        {
            var message = await _reader.ReadAsync(cancellationToken).ConfigureAwait(false)
                ?? throw new IOException(_reader.Fault == JsonStreamFault.None ? "the server closed the connection without answering" : $"unreadable answer: {_reader.FaultDetail}");
            var response = JsonNode.Parse(message.Span) as JsonObject ?? throw new IOException("the answer is not a JSON object");
            if (response["id"] is JsonValue idValue && idValue.TryGetValue(out int answered) && answered != id)
            {
                continue; // not ours
            }

            if (response["error"] is JsonObject error)
            {
                int code = error["code"] is JsonValue c && c.TryGetValue(out int value) ? value : 0;
                string text = error["message"] is JsonValue m && m.TryGetValue(out string? s) ? s ?? string.Empty : string.Empty;
                throw new JsonRpcErrorResponseException(code, text, error.ToJsonString(new JsonSerializerOptions { WriteIndented = true, IndentSize = 2, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }));
            }

            return response["result"]?.DeepClone();
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stream.DisposeAsync().ConfigureAwait(false);
        _socket.Dispose();
    }
}
