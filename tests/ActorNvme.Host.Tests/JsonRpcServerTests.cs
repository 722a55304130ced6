using System.Text.Json;
using System.Text.Json.Nodes;
using ActorNvme.Host.JsonRpc;

namespace ActorNvme.Host.Tests;

/// <summary>The server's framing and error codes, with a dispatcher that echoes its params.</summary>
public sealed class JsonRpcServerTests : IAsyncLifetime
{
    private readonly string _socket = TempSocket.NewPath("srv");
    private JsonRpcServer _server = null!;

    public Task InitializeAsync()
    {
        _server = new JsonRpcServer(_socket, new EchoDispatcher(), new JsonRpcServerOptions { MaxMessageBytes = 64 * 1024 });
        _server.Start();
        return Task.CompletedTask;
    }

    public async Task DisposeAsync() => await _server.DisposeAsync();

    [Fact]
    public async Task A_call_is_answered_with_its_id_and_result()
    {
        await using var client = await JsonRpcClient.ConnectAsync(_socket);
        var result = await client.CallAsync("echo", new JsonObject { ["a"] = 1 });
        Assert.Equal(1, result!["a"]!.GetValue<int>());
    }

    [Fact]
    public async Task Requests_sent_back_to_back_without_delimiters_get_one_answer_each_in_order()
    {
        await using var raw = await RawRpc.ConnectAsync(_socket);
        await raw.SendAsync("""{"jsonrpc":"2.0","id":1,"method":"echo","params":{"n":1}}{"jsonrpc":"2.0","id":2,"method":"echo","params":{"n":2}}""");
        Assert.Equal(1, (await raw.ReadAsync())!.Value.GetProperty("id").GetInt32());
        Assert.Equal(2, (await raw.ReadAsync())!.Value.GetProperty("id").GetInt32());
    }

    [Fact]
    public async Task A_request_split_across_writes_is_answered_once_whole()
    {
        await using var raw = await RawRpc.ConnectAsync(_socket);
        await raw.SendAsync("""{"jsonrpc":"2.0","id":"x","met""");
        await Task.Delay(50);
        await raw.SendAsync("""hod":"echo"}""");
        var answer = (await raw.ReadAsync())!.Value;
        Assert.Equal("x", answer.GetProperty("id").GetString());
        Assert.True(answer.TryGetProperty("result", out _));
    }

    [Fact]
    public async Task Malformed_json_is_a_parse_error_that_closes_only_that_connection()
    {
        await using var bad = await RawRpc.ConnectAsync(_socket);
        await using var good = await JsonRpcClient.ConnectAsync(_socket);
        await bad.SendAsync("""{"jsonrpc":"2.0","id":1,"method":}""");
        var answer = (await bad.ReadAsync())!.Value;
        Assert.Equal(JsonRpcErrorCodes.ParseError, answer.GetProperty("error").GetProperty("code").GetInt32());
        Assert.Equal(JsonValueKind.Null, answer.GetProperty("id").ValueKind);
        Assert.Null(await bad.ReadAsync());

        Assert.NotNull(await good.CallAsync("echo", new JsonObject()));
    }

    [Fact]
    public async Task A_request_longer_than_the_bound_is_refused_without_reading_on()
    {
        await using var raw = await RawRpc.ConnectAsync(_socket);
        await using var good = await JsonRpcClient.ConnectAsync(_socket);
        string huge = """{"jsonrpc":"2.0","id":1,"method":"echo","params":{"pad":" """ + new string('x', 200 * 1024);
        var send = raw.SendAsync(huge); // the server stops reading, so this may never finish
        var answer = (await raw.ReadAsync())!.Value;
        var error = answer.GetProperty("error");
        Assert.Equal(JsonRpcErrorCodes.ParseError, error.GetProperty("code").GetInt32());
        Assert.Contains("longer than 65536 bytes", error.GetProperty("message").GetString(), StringComparison.Ordinal);
        Assert.NotNull(await good.CallAsync("echo", new JsonObject()));
        await Task.WhenAny(send, Task.Delay(1000));
    }

    [Theory]
    [InlineData("""[{"jsonrpc":"2.0","id":1,"method":"echo"}]""", "batches are not supported")]
    [InlineData("""{"jsonrpc":"1.0","id":1,"method":"echo"}""", "'jsonrpc' must be \"2.0\"")]
    [InlineData("""{"jsonrpc":"2.0","id":1}""", "'method' must be a string")]
    [InlineData("""{"jsonrpc":"2.0","id":1,"method":7}""", "'method' must be a string")]
    [InlineData("""{"jsonrpc":"2.0","id":{},"method":"echo"}""", "'id' must be")]
    public async Task A_request_that_is_not_json_rpc_is_an_invalid_request(string request, string message)
    {
        await using var raw = await RawRpc.ConnectAsync(_socket);
        await raw.SendAsync(request);
        var error = (await raw.ReadAsync())!.Value.GetProperty("error");
        Assert.Equal(JsonRpcErrorCodes.InvalidRequest, error.GetProperty("code").GetInt32());
        Assert.Contains(message, error.GetProperty("message").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_unknown_method_is_method_not_found()
    {
        await using var client = await JsonRpcClient.ConnectAsync(_socket);
        var error = await Assert.ThrowsAsync<JsonRpcErrorResponseException>(() => client.CallAsync("no_such_method"));
        Assert.Equal(JsonRpcErrorCodes.MethodNotFound, error.Code);
        Assert.Contains("no_such_method", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_notification_gets_no_answer()
    {
        await using var raw = await RawRpc.ConnectAsync(_socket);
        await raw.SendAsync("""{"jsonrpc":"2.0","method":"echo"}{"jsonrpc":"2.0","id":9,"method":"echo"}""");
        Assert.Equal(9, (await raw.ReadAsync())!.Value.GetProperty("id").GetInt32());
    }

    [Fact]
    public async Task A_handler_failure_is_an_internal_error_and_the_connection_lives_on()
    {
        await using var client = await JsonRpcClient.ConnectAsync(_socket);
        var error = await Assert.ThrowsAsync<JsonRpcErrorResponseException>(() => client.CallAsync("boom"));
        Assert.Equal(JsonRpcErrorCodes.InternalError, error.Code);
        Assert.NotNull(await client.CallAsync("echo", new JsonObject()));
    }

    [Fact]
    public async Task A_second_server_on_a_live_socket_is_refused_and_a_stale_socket_file_is_replaced()
    {
        var second = new JsonRpcServer(_socket, new EchoDispatcher());
        var refused = Assert.Throws<IOException>(second.Start);
        Assert.Contains(_socket, refused.Message, StringComparison.Ordinal);

        string stale = TempSocket.NewPath("stale");
        await using (var first = new JsonRpcServer(stale, new EchoDispatcher()))
        {
            first.Start();
        }

        File.WriteAllText(stale, string.Empty); // left behind by a process that is gone
        await using var replacement = new JsonRpcServer(stale, new EchoDispatcher());
        replacement.Start();
        await using var client = await JsonRpcClient.ConnectAsync(stale);
        Assert.NotNull(await client.CallAsync("echo", new JsonObject()));
    }

    [Fact]
    public async Task Two_hundred_silent_clients_do_not_lock_an_operator_out()
    {
        // An idle timeout far beyond the test: only taking the place of an idle connection can serve the operator.
        string path = TempSocket.NewPath("idle");
        await using var server = new JsonRpcServer(path, new EchoDispatcher(), new JsonRpcServerOptions { MaxConnections = 64, IdleTimeout = TimeSpan.FromMinutes(10) });
        server.Start();
        var silent = new List<RawRpc>();
        try
        {
            for (int i = 0; i < 200; i++)
            {
                silent.Add(await RawRpc.ConnectAsync(path));
            }

            await using var operatorClient = await JsonRpcClient.ConnectAsync(path);
            var answer = await operatorClient.CallAsync("echo", new JsonObject { ["who"] = "operator" }).WaitAsync(TimeSpan.FromSeconds(10));
            Assert.Equal("operator", answer!["who"]!.GetValue<string>());

            // The ones that made room were the longest idle: the first clients, now closed by the server.
            Assert.Null(await silent[0].ReadAsync(TimeSpan.FromSeconds(10)));
        }
        finally
        {
            foreach (var client in silent)
            {
                await client.DisposeAsync();
            }
        }
    }

    [Fact]
    public async Task A_silent_connection_is_closed_after_the_idle_timeout_and_a_busy_one_is_never_evicted()
    {
        string path = TempSocket.NewPath("busy");
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var server = new JsonRpcServer(path, new EchoDispatcher(release.Task), new JsonRpcServerOptions { MaxConnections = 1, IdleTimeout = TimeSpan.FromMilliseconds(300) });
        server.Start();

        await using (var idle = await RawRpc.ConnectAsync(path))
        {
            Assert.Null(await idle.ReadAsync(TimeSpan.FromSeconds(10))); // closed by the server, not by the read's own deadline
        }

        await using var busy = await RawRpc.ConnectAsync(path);
        await busy.SendAsync("""{"jsonrpc":"2.0","id":1,"method":"wait"}""");
        await Task.Delay(200); // let the request start (were it not started yet, the new one would evict an idle connection: also correct)
        await using var late = await RawRpc.ConnectAsync(path);
        Assert.Null(await late.ReadAsync(TimeSpan.FromSeconds(10)));
        release.SetResult();
        Assert.Equal(1, (await busy.ReadAsync())!.Value.GetProperty("id").GetInt32());
    }

    [Theory]
    [InlineData("{\"a\":1}", true, 24)]
    [InlineData("  \n{\"a\":[1,2,{\"b\":\"}\"}]} {", true, 24)]
    [InlineData("{\"a\":", false, 0)]
    public void Framing_finds_the_end_of_one_value(string text, bool found, int length)
    {
        var bytes = System.Text.Encoding.UTF8.GetBytes(text);
        Assert.Equal(found, JsonFraming.TryFindValue(bytes, out int end));
        if (found && length == 24)
        {
            Assert.Equal('}', text[end - 1]);
        }
    }

    private sealed class EchoDispatcher(Task? released = null) : IJsonRpcDispatcher
    {
        public Task<JsonNode?> DispatchAsync(string method, JsonElement? parameters, CancellationToken cancellationToken) => method switch
        {
            "echo" => Task.FromResult(parameters is { } p ? JsonNode.Parse(p.GetRawText()) : new JsonObject()),
            "wait" => (released ?? Task.CompletedTask).ContinueWith(_ => (JsonNode?)true, TaskScheduler.Default),
            "boom" => throw new InvalidOperationException("boom"),
            _ => throw new JsonRpcException(JsonRpcErrorCodes.MethodNotFound, $"Method not found: {method}"),
        };
    }
}
