using System.CommandLine;
using System.Net.Sockets;
using ActorNvme.Host.JsonRpc;
using ActorNvme.Host.TargetProcess;
using ActorNvme.Target;
using Serilog;
using Serilog.Events;
using Serilog.Extensions.Logging;

namespace ActorNvme.Host.Cli;

internal static class TargetCommand
{
    public static Command Create()
    {
        var config = new Option<FileInfo?>("--config", "-c") { Description = "JSON file describing the target (address, discovery_port, rpc_socket, subsystems[{nqn, port, secure_channel, namespaces[{size_mib, block_size, backend}], hosts[nqn | {nqn, dhchap_key, dhchap_ctrlr_key, dhchap_digests, dhchap_dhgroups, psk}]}])" };
        var address = new Option<string?>("--address", "-a") { Description = "Address every listener binds (default 127.0.0.1)" };
        var discoveryPort = new Option<int?>("--discovery-port", "-d") { Description = "Discovery listener port (default 8009; 0: any free port)" };
        var ports = new Option<string?>("--ports", "-p") { Description = "Comma-separated ports, one NVM subsystem each (default 4420,4421; 0: any free port)" };
        var size = new Option<long>("--size-mib") { Description = "Size of each subsystem's namespace in MiB", DefaultValueFactory = _ => 64 };
        var blockSize = new Option<int>("--block-size") { Description = "Block size of each namespace (512 or 4096)", DefaultValueFactory = _ => 512 };
        var nullNamespaces = new Option<bool>("--null") { Description = "Null namespaces (reads return zeros, writes are dropped) instead of RAM" };
        var socket = new Option<string?>("--rpc-socket", "-r") { Description = $"JSON-RPC socket for fault injection (default {TargetConfig.DefaultRpcSocket})" };
        var verbose = new Option<bool>("--verbose", "-v") { Description = "Log every connection and fault" };
        var command = new Command("target", "Run an NVMe/TCP target (discovery + NVM subsystems with RAM or null namespaces) with a JSON-RPC socket for fault injection")
        {
            config, address, discoveryPort, ports, size, blockSize, nullNamespaces, socket, verbose,
        };
        command.SetAction(async (parse, cancellationToken) =>
        {
            TargetConfig settings;
            try
            {
                settings = parse.GetValue(config) is { } file ? TargetConfig.Load(file.FullName) : new TargetConfig();
                if (parse.GetValue(ports) is { } list)
                {
                    int[] parsed = [.. list.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(ParsePort)];
                    settings = settings with { Subsystems = TargetConfig.Defaults(parsed, parse.GetValue(size) * 1024 * 1024, parse.GetValue(blockSize), parse.GetValue(nullNamespaces)) };
                }
                else if (parse.GetValue(config) is null)
                {
                    settings = settings with { Subsystems = TargetConfig.Defaults([4420, 4421], parse.GetValue(size) * 1024 * 1024, parse.GetValue(blockSize), parse.GetValue(nullNamespaces)) };
                }

                settings = settings with
                {
                    Address = parse.GetValue(address) ?? settings.Address,
                    DiscoveryPort = parse.GetValue(discoveryPort) is { } d ? CheckPort(d) : settings.DiscoveryPort,
                    RpcSocket = parse.GetValue(socket) ?? settings.RpcSocket,
                };
            }
            catch (Exception e) when (e is InvalidDataException or FormatException or System.Text.Json.JsonException)
            {
                await Console.Error.WriteLineAsync($"actornvme target: {e.Message}").ConfigureAwait(false);
                return 2;
            }

            return await RunAsync(settings, parse.GetValue(verbose), cancellationToken).ConfigureAwait(false);
        });
        return command;
    }

    private static int ParsePort(string text) =>
        int.TryParse(text, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int port) ? CheckPort(port) : throw new FormatException($"'{text}' is not a port");

    private static int CheckPort(int port) => port is >= 0 and <= 65535 ? port : throw new FormatException($"{port} is not a TCP port (0..65535)");

    private static async Task<int> RunAsync(TargetConfig settings, bool verbose, CancellationToken cancellationToken)
    {
        // Every accepted connection is a descriptor: take what the hard limit allows.
        _ = Transport.DescriptorLimit.RaiseSoftLimitToHard();
        using var signals = new ProcessSignals(cancellationToken);
        using var serilog = new LoggerConfiguration()
            .MinimumLevel.Is(verbose ? LogEventLevel.Debug : LogEventLevel.Warning)
            .WriteTo.Console(standardErrorFromLevel: LogEventLevel.Verbose)
            .CreateLogger();
        using var loggers = new SerilogLoggerFactory(serilog);
        await using var target = new NvmeTarget(
            settings.MaxConnections is { } maxConnections ? new TargetOptions { MaxConnections = maxConnections } : null,
            logger: loggers.CreateLogger("ActorNvme.Target"));
        try
        {
            foreach (int port in settings.Subsystems.Select(s => s.Port).Append(settings.DiscoveryPort).Distinct())
            {
                if (!PortProbe.IsFree(settings.Address, port))
                {
                    throw new InvalidOperationException($"port {port} is already in use on {settings.Address} (another target?)");
                }
            }

            var discovery = target.ListenTcp(settings.Address, settings.DiscoveryPort);
            Console.Out.WriteLine($"actornvme target: discovery tcp {discovery.Address}");
            foreach (var s in settings.Subsystems)
            {
                var listener = target.Listeners.FirstOrDefault(l => s.Port != 0 && l.Address.Port == s.Port) ?? target.ListenTcp(settings.Address, s.Port, s.SecureChannel);
                if (listener.SecureChannel != s.SecureChannel)
                {
                    throw new InvalidOperationException($"subsystem {s.Nqn}: port {s.Port} is shared with a subsystem that does {(listener.SecureChannel ? string.Empty : "not ")}require TLS");
                }

                foreach (var host in s.HostKeys)
                {
                    if (host.DhChap is not null)
                    {
                        target.SetDhChapKeys(s.Nqn, host.Nqn, host.DhChap);
                    }

                    if (host.Psk is not null)
                    {
                        target.SetTlsPsk(s.Nqn, host.Nqn, host.Psk);
                    }
                }

                var subsystem = target.AddSubsystem(new NvmSubsystemOptions(s.Nqn) { LinkToAllListeners = false, AllowAnyHost = s.Hosts is null, AllowedHosts = s.Hosts ?? [] });
                subsystem.Link(listener);
                foreach (var ns in s.Namespaces)
                {
                    subsystem.AddNamespace(ns.Null ? NamespaceOptions.Null(ns.SizeBytes, ns.BlockSize) : NamespaceOptions.Ram(ns.SizeBytes, ns.BlockSize));
                }

                string namespaces = s.Namespaces.Count == 0 ? "no namespace" : string.Join(", ", s.Namespaces.Select(n => $"{(n.Null ? "null" : "RAM")} {n.SizeBytes / (1024 * 1024)} MiB ({n.BlockSize} B blocks)"));
                string security = string.Concat(
                    s.SecureChannel ? " (TLS PSK)" : string.Empty,
                    s.HostKeys.Any(h => h.DhChap is not null) ? $" (DH-HMAC-CHAP for {s.HostKeys.Count(h => h.DhChap is not null)} host(s))" : string.Empty);
                Console.Out.WriteLine($"actornvme target: subsystem {s.Nqn} tcp {listener.Address}{security}: {namespaces}");
            }
        }
        catch (Exception e) when (e is SocketException or ArgumentException or InvalidOperationException or FormatException)
        {
            await Console.Error.WriteLineAsync($"actornvme target: {e.Message}").ConfigureAwait(false);
            return 1;
        }

        await using var rpc = new JsonRpcServer(settings.RpcSocket, new TargetRpcService(target), logger: loggers.CreateLogger("ActorNvme.Target.Rpc"));
        try
        {
            rpc.Start();
        }
        catch (Exception e) when (e is IOException or SocketException)
        {
            await Console.Error.WriteLineAsync($"actornvme target: cannot serve JSON-RPC on {settings.RpcSocket}: {e.Message}").ConfigureAwait(false);
            return 1;
        }

        Console.Out.WriteLine($"actornvme target: rpc {settings.RpcSocket}");
        Console.Out.WriteLine("actornvme target: ready");
        await Console.Out.FlushAsync(CancellationToken.None).ConfigureAwait(false);
        try
        {
            await Task.Delay(Timeout.Infinite, signals.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }

        Console.Out.WriteLine("actornvme target: stopping");
        return 0;
    }
}
