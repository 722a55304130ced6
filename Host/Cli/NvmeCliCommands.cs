using System.CommandLine;
using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using ActorNvme.Host.JsonRpc;

namespace ActorNvme.Host.Cli;

/// <summary>
/// nvme-cli's habits on the daemon: <c>actornvme list</c>, <c>connect</c>, <c>connect-all</c>,
/// <c>disconnect</c> and <c>disconnect-all</c> take nvme-cli's option names and become calls on
/// <c>actornvme serve</c>'s JSON-RPC socket (bdev_get_bdevs, bdev_nvme_attach_controller,
/// bdev_nvme_start_discovery, bdev_nvme_detach_controller, bdev_nvme_stop_discovery).
/// </summary>
internal static class NvmeCliCommands
{
    private static readonly JsonSerializerOptions Indented = new() { WriteIndented = true, IndentSize = 2 };

    public static IEnumerable<Command> Create() => [List(), Connect(), ConnectAll(), Disconnect(), DisconnectAll()];

    /// <summary>What nvme-cli's connect options mean for bdev_nvme_attach_controller.</summary>
    internal sealed record ConnectRequest(
        string Transport,
        string Address,
        string? Port,
        string? Nqn,
        string? HostNqn,
        int? KeepAliveSeconds,
        int? ReconnectDelaySeconds,
        int? LossTimeoutSeconds,
        int? IoQueues,
        bool HeaderDigest,
        bool DataDigest,
        string? Name);

    private static Option<string> ServerOption() => new("--server") { Description = $"The daemon's JSON-RPC socket (default {RpcCommand.DefaultSocket})", DefaultValueFactory = _ => RpcCommand.DefaultSocket };

    private static Option<string> OutputOption() => new("--output-format", "-o") { Description = "normal or json", DefaultValueFactory = _ => "normal" };

    private static Command List()
    {
        var server = ServerOption();
        var output = OutputOption();
        output.AcceptOnlyFromAmong("normal", "json");
        var command = new Command("list", "List the daemon's block devices as nvme list does") { server, output };
        command.SetAction((parse, cancellationToken) => RunAsync(parse.GetValue(server)!, client => ListAsync(client, parse.GetValue(output) == "json", Console.Out, cancellationToken), cancellationToken));
        return command;
    }

    private static Command Connect()
    {
        var (transport, address, port, hostNqn, kato, reconnect, loss, queues, hdgst, ddgst) = CommonConnectOptions();
        var nqn = new Option<string>("--nqn", "-n") { Description = "The subsystem NQN", Required = true };
        var name = new Option<string?>("--name") { Description = "The controller's name in the daemon (default: the next free nvmeN)" };
        var server = ServerOption();
        var command = new Command("connect", "Connect to one NVMe-oF subsystem (nvme connect's options), through the daemon")
        {
            transport, address, port, nqn, hostNqn, kato, reconnect, loss, queues, hdgst, ddgst, name, server,
        };
        command.SetAction((parse, cancellationToken) => RunAsync(parse.GetValue(server)!, async client =>
        {
            var request = new ConnectRequest(
                parse.GetValue(transport)!, parse.GetValue(address)!, parse.GetValue(port), parse.GetValue(nqn), parse.GetValue(hostNqn),
                parse.GetValue(kato), parse.GetValue(reconnect), parse.GetValue(loss), parse.GetValue(queues), parse.GetValue(hdgst), parse.GetValue(ddgst), parse.GetValue(name));
            return await ConnectAsync(client, request, Console.Out, cancellationToken).ConfigureAwait(false);
        }, cancellationToken));
        return command;
    }

    private static Command ConnectAll()
    {
        var (transport, address, port, hostNqn, kato, reconnect, loss, queues, hdgst, ddgst) = CommonConnectOptions();
        var name = new Option<string?>("--name") { Description = "The discovery service's name in the daemon; its controllers are NAME0, NAME1, ... (default: nvme, when free)" };
        var server = ServerOption();
        var command = new Command("connect-all", "Discover and connect every subsystem a discovery controller lists (nvme connect-all's options), through the daemon; it stays and follows the log")
        {
            transport, address, port, hostNqn, kato, reconnect, loss, queues, hdgst, ddgst, name, server,
        };
        command.SetAction((parse, cancellationToken) => RunAsync(parse.GetValue(server)!, async client =>
        {
            var request = new ConnectRequest(
                parse.GetValue(transport)!, parse.GetValue(address)!, parse.GetValue(port), null, parse.GetValue(hostNqn),
                parse.GetValue(kato), parse.GetValue(reconnect), parse.GetValue(loss), parse.GetValue(queues), parse.GetValue(hdgst), parse.GetValue(ddgst), parse.GetValue(name));
            return await ConnectAllAsync(client, request, Console.Out, cancellationToken).ConfigureAwait(false);
        }, cancellationToken));
        return command;
    }

    private static Command Disconnect()
    {
        var nqn = new Option<string?>("--nqn", "-n") { Description = "Disconnect every controller of this subsystem NQN" };
        var device = new Option<string?>("--device", "-d") { Description = "Disconnect this controller (nvme0) or the controller of this block device (nvme0n1)" };
        var server = ServerOption();
        var command = new Command("disconnect", "Disconnect controllers by subsystem NQN or by device (nvme disconnect's options), through the daemon") { nqn, device, server };
        command.SetAction((parse, cancellationToken) => RunAsync(parse.GetValue(server)!, client => DisconnectAsync(client, parse.GetValue(nqn), parse.GetValue(device), Console.Out, cancellationToken), cancellationToken));
        return command;
    }

    private static Command DisconnectAll()
    {
        var server = ServerOption();
        var command = new Command("disconnect-all", "Stop every discovery service and disconnect every controller of the daemon") { server };
        command.SetAction((parse, cancellationToken) => RunAsync(parse.GetValue(server)!, client => DisconnectAsync(client, null, null, Console.Out, cancellationToken, all: true), cancellationToken));
        return command;
    }

    private static (Option<string>, Option<string>, Option<string?>, Option<string?>, Option<int?>, Option<int?>, Option<int?>, Option<int?>, Option<bool>, Option<bool>) CommonConnectOptions()
    {
        var transport = new Option<string>("--transport", "-t") { Description = "Transport type (tcp)", Required = true };
        var address = new Option<string>("--traddr", "-a") { Description = "Transport address", Required = true };
        var port = new Option<string?>("--trsvcid", "-s") { Description = "Transport service id (port; default 4420, 8009 for connect-all)" };
        var hostNqn = new Option<string?>("--hostnqn", "-q") { Description = "Host NQN (default: the daemon's)" };
        var kato = new Option<int?>("--keep-alive-tmo", "-k") { Description = "Keep-alive timeout in seconds" };
        var reconnect = new Option<int?>("--reconnect-delay", "-c") { Description = "Seconds between reconnect attempts" };
        var loss = new Option<int?>("--ctrl-loss-tmo", "-l") { Description = "Seconds a lost controller is retried before it is deleted (-1: forever)" };
        var queues = new Option<int?>("--nr-io-queues", "-i") { Description = "I/O queues to ask for" };
        var hdgst = new Option<bool>("--hdr-digest", "-g") { Description = "Header digest" };
        var ddgst = new Option<bool>("--data-digest", "-G") { Description = "Data digest" };
        return (transport, address, port, hostNqn, kato, reconnect, loss, queues, hdgst, ddgst);
    }

    /// <summary>bdev_nvme_attach_controller's params for nvme connect's options; a value it cannot mean is refused here, naming it.</summary>
    internal static JsonObject AttachParameters(ConnectRequest request, string name, int defaultPort = 4420)
    {
        var p = new JsonObject
        {
            ["name"] = name,
            ["trtype"] = CheckTransport(request.Transport),
            ["traddr"] = request.Address,
            ["trsvcid"] = request.Port ?? defaultPort.ToString(CultureInfo.InvariantCulture),
        };
        if (request.Nqn is { } nqn)
        {
            p["subnqn"] = nqn;
        }

        if (request.HostNqn is { } hostNqn)
        {
            p["hostnqn"] = hostNqn;
        }

        if (request.KeepAliveSeconds is { } kato)
        {
            throw new ArgumentException($"--keep-alive-tmo {kato}: the daemon's keep-alive timeout is one setting for all controllers (actornvme.keep-alive-timeout, or bdev_nvme_set_options -k)");
        }

        if (request.LossTimeoutSeconds is { } loss)
        {
            p["ctrlr_loss_timeout_sec"] = loss;
        }

        if (request.ReconnectDelaySeconds is { } delay)
        {
            p["reconnect_delay_sec"] = delay;
        }

        if (request.IoQueues is { } queues)
        {
            p["num_io_queues"] = queues;
        }

        if (request.HeaderDigest)
        {
            p["hdgst"] = true;
        }

        if (request.DataDigest)
        {
            p["ddgst"] = true;
        }

        return p;
    }

    internal static async Task<int> ListAsync(JsonRpcClient client, bool json, TextWriter output, CancellationToken cancellationToken)
    {
        var bdevs = (await client.CallAsync("bdev_get_bdevs", null, cancellationToken).ConfigureAwait(false))?.AsArray() ?? [];
        var controllers = (await client.CallAsync("bdev_nvme_get_controllers", null, cancellationToken).ConfigureAwait(false))?.AsArray() ?? [];
        var rows = new List<(string Node, string Controller, string Nqn, uint Nsid, ulong Bytes, int BlockSize, string Paths, string? Owner)>();
        var unanswered = new SortedSet<string>(StringComparer.Ordinal);
        foreach (var bdev in bdevs)
        {
            string node = bdev!["name"]!.GetValue<string>();
            string? owner = OwnerOf(bdev);
            if ((bdev["actornvme"] as JsonObject)?["unanswered"] is JsonArray missing)
            {
                unanswered.UnionWith(missing.OfType<JsonValue>().Select(m => m.TryGetValue<string>(out var name) ? name : null).OfType<string>());
            }

            var nvme = bdev["driver_specific"]?["nvme"]?.AsArray();
            string nqn = nvme is { Count: > 0 } ? nvme[0]!["ctrlr_data"]?["subnqn"]?.GetValue<string>() ?? string.Empty : string.Empty;
            uint nsid = nvme is { Count: > 0 } ? nvme[0]!["ns_data"]?["id"]?.GetValue<uint>() ?? 0 : 0;
            int blockSize = bdev["block_size"]!.GetValue<int>();
            ulong blocks = bdev["num_blocks"]!.GetValue<ulong>();
            // In a cluster two nodes may both have a controller of one name: the block device's is its owner's.
            var controller = controllers.FirstOrDefault(c => c!["ctrlrs"]!.AsArray().Any(p => p!["trid"]?["subnqn"]?.GetValue<string>() == nqn) && node.StartsWith(c["name"]!.GetValue<string>(), StringComparison.Ordinal) && OwnerOf(c) == owner);
            string paths = controller is null
                ? string.Empty
                : string.Join(", ", controller["ctrlrs"]!.AsArray().Select(p => $"{p!["trid"]!["traddr"]}:{p["trid"]!["trsvcid"]} {p["state"]}"));
            rows.Add((node, controller?["name"]?.GetValue<string>() ?? string.Empty, nqn, nsid, blocks * (ulong)blockSize, blockSize, paths, owner));
        }

        bool clustered = rows.Any(r => r.Owner is not null);

        if (json)
        {
            var devices = new JsonArray([.. rows.Select(r =>
            {
                var device = new JsonObject
                {
                    ["DevicePath"] = r.Node,
                    ["Controller"] = r.Controller,
                    ["SubsystemNQN"] = r.Nqn,
                    ["NameSpace"] = r.Nsid,
                    ["PhysicalSize"] = r.Bytes,
                    ["SectorSize"] = r.BlockSize,
                    ["Paths"] = r.Paths,
                };
                if (clustered)
                {
                    device["Owner"] = r.Owner ?? string.Empty;
                }

                return (JsonNode?)device;
            })]);
            var document = new JsonObject { ["Devices"] = devices };
            if (unanswered.Count > 0)
            {
                document["Unanswered"] = new JsonArray([.. unanswered.Select(n => (JsonNode?)n)]);
            }

            await output.WriteLineAsync(document.ToJsonString(Indented)).ConfigureAwait(false);
            return 0;
        }

        var table = new StringBuilder();
        int ownerWidth = clustered ? Math.Max(8, rows.Max(r => r.Owner?.Length ?? 0)) : 0;
        string Row(string node, string owner, string controller, string nsid, string usage, string format, string nqn, string paths) =>
            (clustered
                ? $"{node,-16} {owner.PadRight(ownerWidth)} {controller,-12} {nsid,-9} {usage,-12} {format,-8} {nqn,-48} {paths}"
                : $"{node,-16} {controller,-12} {nsid,-9} {usage,-12} {format,-8} {nqn,-48} {paths}").TrimEnd();
        table.AppendLine(Row("Node", "Owner", "Controller", "Namespace", "Size", "Format", "Subsystem NQN", "Paths"));
        table.AppendLine(Row(new string('-', 16), new string('-', ownerWidth), new string('-', 12), new string('-', 9), new string('-', 12), new string('-', 8), new string('-', 48), new string('-', 20)));
        foreach (var r in rows)
        {
            table.AppendLine(Row(r.Node, r.Owner ?? string.Empty, r.Controller, r.Nsid.ToString(CultureInfo.InvariantCulture), Size(r.Bytes), $"{r.BlockSize} B", r.Nqn, r.Paths));
        }

        if (unanswered.Count > 0)
        {
            table.AppendLine($"partial list: no answer from {string.Join(", ", unanswered)}");
        }

        await output.WriteAsync(table.ToString()).ConfigureAwait(false);
        return 0;
    }

    /// <summary>The owning cluster node of a list entry (<c>"actornvme": {"owner": ...}</c>), or null outside a cluster.</summary>
    private static string? OwnerOf(JsonNode? entry) =>
        (entry?["actornvme"] as JsonObject)?["owner"] is JsonValue value && value.TryGetValue<string>(out var owner) ? owner : null;

    internal static async Task<int> ConnectAsync(JsonRpcClient client, ConnectRequest request, TextWriter output, CancellationToken cancellationToken)
    {
        string name = request.Name ?? await NextFreeNameAsync(client, cancellationToken).ConfigureAwait(false);
        var devices = await client.CallAsync("bdev_nvme_attach_controller", AttachParameters(request, name), cancellationToken).ConfigureAwait(false);
        await output.WriteLineAsync($"connected {name} to {request.Nqn} at {request.Address}:{request.Port ?? "4420"}: {string.Join(", ", devices?.AsArray().Select(d => d!.GetValue<string>()) ?? [])}").ConfigureAwait(false);
        return 0;
    }

    internal static async Task<int> ConnectAllAsync(JsonRpcClient client, ConnectRequest request, TextWriter output, CancellationToken cancellationToken)
    {
        string name = request.Name ?? await DefaultDiscoveryNameAsync(client, cancellationToken).ConfigureAwait(false);
        var p = AttachParameters(request, name, defaultPort: 8009);
        foreach (string notForDiscovery in new[] { "num_io_queues", "hdgst", "ddgst" })
        {
            if (p.ContainsKey(notForDiscovery))
            {
                throw new ArgumentException($"connect-all: {notForDiscovery} is set per controller; the daemon's discovery service uses its configured defaults");
            }
        }

        p["wait_for_attach"] = true;
        await client.CallAsync("bdev_nvme_start_discovery", p, cancellationToken).ConfigureAwait(false);
        var bdevs = (await client.CallAsync("bdev_get_bdevs", null, cancellationToken).ConfigureAwait(false))?.AsArray() ?? [];
        await output.WriteLineAsync($"discovery {p["name"]} at {request.Address}:{p["trsvcid"]} started; block devices now: {string.Join(", ", bdevs.Select(b => b!["name"]!.GetValue<string>()))}").ConfigureAwait(false);
        return 0;
    }

    internal static async Task<int> DisconnectAsync(JsonRpcClient client, string? nqn, string? device, TextWriter output, CancellationToken cancellationToken, bool all = false)
    {
        if (!all && (nqn is null) == (device is null))
        {
            throw new ArgumentException("disconnect: give exactly one of --nqn and --device");
        }

        int stopped = 0;
        if (all)
        {
            foreach (var service in (await client.CallAsync("bdev_nvme_get_discovery_info", null, cancellationToken).ConfigureAwait(false))?.AsArray() ?? [])
            {
                await client.CallAsync("bdev_nvme_stop_discovery", new JsonObject { ["name"] = service!["name"]!.GetValue<string>() }, cancellationToken).ConfigureAwait(false);
                stopped++;
            }
        }

        var controllers = (await client.CallAsync("bdev_nvme_get_controllers", null, cancellationToken).ConfigureAwait(false))?.AsArray() ?? [];
        var chosen = controllers.Where(c =>
        {
            string name = c!["name"]!.GetValue<string>();
            bool nqnMatches = nqn is not null && c["ctrlrs"]!.AsArray().Any(p => p!["trid"]?["subnqn"]?.GetValue<string>() == nqn);
            bool deviceMatches = device is not null && (device == name || (device.StartsWith(name, StringComparison.Ordinal) && device.Length > name.Length && device[name.Length] == 'n' && device[(name.Length + 1)..].All(char.IsAsciiDigit)));
            return all || nqnMatches || deviceMatches;
        }).Select(c => c!["name"]!.GetValue<string>()).ToArray();
        if (!all && chosen.Length == 0)
        {
            await output.WriteLineAsync($"disconnect: no controller {(nqn is not null ? $"of subsystem {nqn}" : $"for device {device}")}").ConfigureAwait(false);
            return 1;
        }

        foreach (string name in chosen)
        {
            try
            {
                await client.CallAsync("bdev_nvme_detach_controller", new JsonObject { ["name"] = name }, cancellationToken).ConfigureAwait(false);
            }
            catch (JsonRpcErrorResponseException e) when (all && e.Code == JsonRpcErrorCodes.NoDevice)
            {
                // Gone with its discovery service a moment ago.
            }
        }

        await output.WriteLineAsync($"disconnected {chosen.Length} controller(s){(chosen.Length == 0 ? string.Empty : $": {string.Join(", ", chosen)}")}{(all ? $"; stopped {stopped} discovery service(s)" : string.Empty)}").ConfigureAwait(false);
        return 0;
    }

    /// <summary>"nvme" (controllers nvme0, nvme1, ... as the kernel would name them) while no service or controller uses it.</summary>
    private static async Task<string> DefaultDiscoveryNameAsync(JsonRpcClient client, CancellationToken cancellationToken)
    {
        var services = (await client.CallAsync("bdev_nvme_get_discovery_info", null, cancellationToken).ConfigureAwait(false))?.AsArray() ?? [];
        var controllers = (await client.CallAsync("bdev_nvme_get_controllers", null, cancellationToken).ConfigureAwait(false))?.AsArray() ?? [];
        bool taken = services.Any(s => s!["name"]!.GetValue<string>() == "nvme")
            || controllers.Any(c => c!["name"]!.GetValue<string>() is var n && n.StartsWith("nvme", StringComparison.Ordinal) && n.Length > 4 && n[4..].All(char.IsAsciiDigit));
        return taken
            ? throw new ArgumentException("connect-all: the default name 'nvme' is in use (a discovery service or nvmeN controllers); give --name")
            : "nvme";
    }

    private static async Task<string> NextFreeNameAsync(JsonRpcClient client, CancellationToken cancellationToken)
    {
        var taken = ((await client.CallAsync("bdev_nvme_get_controllers", null, cancellationToken).ConfigureAwait(false))?.AsArray() ?? [])
            .Select(c => c!["name"]!.GetValue<string>()).ToHashSet(StringComparer.Ordinal);
        int n = 0;
        while (taken.Contains($"nvme{n}"))
        {
            n++;
        }

        return $"nvme{n}";
    }

    private static string CheckTransport(string transport) =>
        transport.Equals("tcp", StringComparison.OrdinalIgnoreCase)
            ? "tcp"
            : throw new ArgumentException($"--transport {transport}: ActorNvme speaks NVMe/TCP only (tcp)");

    private static string Size(ulong bytes) => bytes switch
    {
        >= 1UL << 40 => string.Create(CultureInfo.InvariantCulture, $"{bytes / (double)(1UL << 40):0.##} TiB"),
        >= 1UL << 30 => string.Create(CultureInfo.InvariantCulture, $"{bytes / (double)(1UL << 30):0.##} GiB"),
        >= 1UL << 20 => string.Create(CultureInfo.InvariantCulture, $"{bytes / (double)(1UL << 20):0.##} MiB"),
        _ => string.Create(CultureInfo.InvariantCulture, $"{bytes / 1024.0:0.##} KiB"),
    };

    private static async Task<int> RunAsync(string socket, Func<JsonRpcClient, Task<int>> action, CancellationToken cancellationToken)
    {
        try
        {
            await using var client = await JsonRpcClient.ConnectAsync(socket, cancellationToken).ConfigureAwait(false);
            return await action(client).ConfigureAwait(false);
        }
        catch (JsonRpcErrorResponseException e)
        {
            await Console.Error.WriteLineAsync($"actornvme: the daemon refused: {e.Message} (error {e.Code})").ConfigureAwait(false);
            return 1;
        }
        catch (ArgumentException e)
        {
            await Console.Error.WriteLineAsync($"actornvme: {e.Message}").ConfigureAwait(false);
            return 2;
        }
        catch (IOException e)
        {
            await Console.Error.WriteLineAsync($"actornvme: cannot reach the daemon at {socket}: {e.Message} (is actornvme serve running?)").ConfigureAwait(false);
            return 1;
        }
    }
}
