using System.Net.Sockets;
using System.Text;
using System.Text.Json;

namespace ActorNvme.Host.Tests;

/// <summary>A byte-level JSON-RPC client: sends whatever it is given, reads whole answers, sees the connection close.</summary>
internal sealed class RawRpc : IAsyncDisposable
{
    private readonly Socket _socket;
    private readonly NetworkStream _stream;
    private readonly JsonRpc.JsonMessageReader _reader;

    private RawRpc(Socket socket)
    {
        _socket = socket;
        _stream = new NetworkStream(socket, ownsSocket: true);
        _reader = new JsonRpc.JsonMessageReader(_stream, 4 * 1024 * 1024);
    }

    public static async Task<RawRpc> ConnectAsync(string path)
    {
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        await socket.ConnectAsync(new UnixDomainSocketEndPoint(path));
        return new RawRpc(socket);
    }

    public Task SendAsync(string text) => SendAsync(Encoding.UTF8.GetBytes(text));

    public async Task SendAsync(byte[] bytes)
    {
        await _stream.WriteAsync(bytes);
        await _stream.FlushAsync();
    }

    /// <summary>The next answer, or null when the server closed the connection.</summary>
    public async Task<JsonElement?> ReadAsync(TimeSpan? timeout = null)
    {
        using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(10));
        var message = await _reader.ReadAsync(cts.Token);
        return message is { } m ? JsonDocument.Parse(m).RootElement.Clone() : null;
    }

    public async ValueTask DisposeAsync()
    {
        await _stream.DisposeAsync();
        _socket.Dispose();
    }
}
