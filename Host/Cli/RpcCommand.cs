using System.CommandLine;
using System.Text.Json;
using System.Text.Json.Nodes;
using ActorNvme.Host.JsonRpc;

namespace ActorNvme.Host.Cli;

/// <summary><c>actornvme rpc METHOD [PARAMS]</c>: one call on a JSON-RPC socket, printed as SPDK's rpc.py prints it.</summary>
internal static class RpcCommand
{
    public const string DefaultSocket = "/var/tmp/actornvme.sock";

    public static Command Create()
    {
        var socket = new Option<string>("--server", "-s") { Description = $"The server's Unix socket (default {DefaultSocket})", DefaultValueFactory = _ => DefaultSocket };
        var timeout = new Option<double>("--timeout", "-t") { Description = "Seconds to wait for the answer", DefaultValueFactory = _ => 60 };
        var method = new Argument<string>("method") { Description = "The method, e.g. bdev_get_bdevs" };
        var parameters = new Argument<string?>("params") { Description = "Its params as a JSON object, e.g. '{\"name\": \"nvme0n1\"}'", Arity = ArgumentArity.ZeroOrOne };
        var every = new Option<int>("--every") { Description = "Repeat the call every this many milliseconds on one connection until stopped, one line per answer: unix time (ms), time to answer (ms), the result as one line of JSON" };
        var command = new Command("rpc", "Call a method on the actornvme serve (or actornvme target) JSON-RPC socket and print the result")
        {
            socket, timeout, method, parameters, every,
        };
        command.SetAction(async (parse, cancellationToken) =>
        {
            JsonNode? p = null;
            if (parse.GetValue(parameters) is { Length: > 0 } text)
            {
                try
                {
                    p = JsonNode.Parse(text);
                }
                catch (JsonException e)
                {
                    await Console.Error.WriteLineAsync($"actornvme rpc: params are not JSON: {e.Message}").ConfigureAwait(false);
                    return 2;
                }
            }

            using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            deadline.CancelAfter(TimeSpan.FromSeconds(parse.GetValue(timeout)));
            string path = parse.GetValue(socket)!;
            try
            {
                await using var client = await JsonRpcClient.ConnectAsync(path, deadline.Token).ConfigureAwait(false);
                if (parse.GetValue(every) is var intervalMs and not 0)
                {
                    if (intervalMs < 0)
                    {
                        await Console.Error.WriteLineAsync($"actornvme rpc: --every {intervalMs} must be a positive number of milliseconds").ConfigureAwait(false);
                        return 2;
                    }

                    deadline.CancelAfter(Timeout.InfiniteTimeSpan);
                    return await RepeatAsync(client, parse.GetRequiredValue(method), p, TimeSpan.FromMilliseconds(intervalMs), TimeSpan.FromSeconds(parse.GetValue(timeout)), cancellationToken).ConfigureAwait(false);
                }

                var result = await client.CallAsync(parse.GetRequiredValue(method), p, deadline.Token).ConfigureAwait(false);
                await Console.Out.WriteLineAsync(result?.ToJsonString(Indented) ?? "null").ConfigureAwait(false);
                return 0;
            }
            catch (JsonRpcErrorResponseException e)
            {
                await Console.Error.WriteLineAsync($"request:\n{RequestText(parse.GetRequiredValue(method), p)}\nGot JSON-RPC error response\nresponse:\n{e.Response}").ConfigureAwait(false);
                return 1;
            }
            catch (IOException e)
            {
                await Console.Error.WriteLineAsync($"actornvme rpc: {e.Message}").ConfigureAwait(false);
                return 1;
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                await Console.Error.WriteLineAsync($"actornvme rpc: no answer from {path} within {parse.GetValue(timeout)} s").ConfigureAwait(false);
                return 1;
            }
        });
        return command;
    }

    /// <summary>
    /// One call after another on the same connection, so the time printed is the server's answer alone
    /// (no process start, no connect): for watching a daemon's responsiveness during an outage.
    /// </summary>
    private static async Task<int> RepeatAsync(JsonRpcClient client, string method, JsonNode? parameters, TimeSpan interval, TimeSpan perCall, CancellationToken stopped)
    {
        var output = Console.Out;
        while (!stopped.IsCancellationRequested)
        {
            using var deadline = CancellationTokenSource.CreateLinkedTokenSource(stopped);
            deadline.CancelAfter(perCall);
            long started = System.Diagnostics.Stopwatch.GetTimestamp();
            JsonNode? result;
            try
            {
                result = await client.CallAsync(method, parameters?.DeepClone(), deadline.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (stopped.IsCancellationRequested)
            {
                return 0;
            }

            double tookMs = System.Diagnostics.Stopwatch.GetElapsedTime(started).TotalMilliseconds;
            await output.WriteLineAsync(string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{DateTimeOffset.UtcNow.ToUnixTimeMilliseconds()} {tookMs:F1} {result?.ToJsonString() ?? "null"}")).ConfigureAwait(false);
            await output.FlushAsync(stopped).ConfigureAwait(false);
            try
            {
                await Task.Delay(interval, stopped).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return 0;
            }
        }

        return 0;
    }

    private static JsonSerializerOptions Indented { get; } = new() { WriteIndented = true, IndentSize = 2, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    private static string RequestText(string method, JsonNode? parameters)
    {
        var request = new JsonObject { ["method"] = method };
        if (parameters is not null)
        {
            request["params"] = parameters.DeepClone();
        }

        return request.ToJsonString(Indented);
    }
}
