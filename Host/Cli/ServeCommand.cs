using System.CommandLine;
using Akka.Actor;
using Akka.Configuration;
using Akka.Hosting;
using Akka.Logger.Serilog;
using ActorNvme.Actors.Settings;
using ActorNvme.Hosting;
using ActorNvme.Host.JsonRpc;
using ActorNvme.Host.Spdk;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using OpenTelemetry;
using OpenTelemetry.Metrics;
using Serilog;
using Serilog.Core;
using Serilog.Events;

namespace ActorNvme.Host.Cli;

/// <summary>What <c>actornvme serve</c> runs with.</summary>
public sealed record ServeOptions
{
    public string RpcSocket { get; init; } = RpcCommand.DefaultSocket;

    /// <summary>HOCON for the ActorSystem (akka.hocon); null: akka.hocon in the working directory when present.</summary>
    public string? ConfigPath { get; init; }

    /// <summary>As SPDK's --wait-for-rpc: the host starts only on framework_start_init.</summary>
    public bool WaitForRpc { get; init; }

    /// <summary>Export the ActorNvme meter to the console every this many seconds (0: off).</summary>
    public int MetricsConsoleSeconds { get; init; }

    public bool Verbose { get; init; }

    /// <summary>Also write the log to this file (appended); null: console only.</summary>
    public string? LogFile { get; init; }

    /// <summary>Log lines as compact JSON (one object per line: @t, @l, @mt and properties) on the console and in the file.</summary>
    public bool LogJson { get; init; }

    /// <summary>Run as a node of an ActorNvme cluster (see <see cref="ClusterNode.ClusterNodeRunner"/>); null: a single process.</summary>
    public ClusterNode.ClusterNodeOptions? Cluster { get; init; }
}

internal static class ServeCommand
{
    public static Command Create()
    {
        var socket = new Option<string>("--rpc-socket", "-r") { Description = $"Unix socket of the JSON-RPC server (default {RpcCommand.DefaultSocket})", DefaultValueFactory = _ => RpcCommand.DefaultSocket };
        var config = new Option<FileInfo?>("--config", "-c") { Description = "HOCON configuration of the ActorSystem (default: akka.hocon in the working directory, when there)" };
        var waitForRpc = new Option<bool>("--wait-for-rpc") { Description = "Start the host only on framework_start_init (bdev_nvme_set_options first), as SPDK's --wait-for-rpc" };
        var metrics = new Option<int>("--metrics-console") { Description = "Print the ActorNvme meter's instruments every N seconds through OpenTelemetry's console exporter (0: off)", DefaultValueFactory = _ => 0 };
        var verbose = new Option<bool>("--verbose", "-v") { Description = "Log at Debug level" };
        var logFile = new Option<string?>("--log-file") { Description = "Also append the log to this file" };
        var logJson = new Option<bool>("--log-json") { Description = "Log as compact JSON, one object per line (console and --log-file)" };
        var cluster = new Option<bool>("--cluster") { Description = "Run as a node of an ActorNvme cluster (Akka.Cluster): each subsystem is owned by exactly one node; its JSON-RPC server (--rpc-socket, one per node) lists every node's controllers and block devices with their owner" };
        var seeds = new Option<string[]>("--seed-node") { Description = "Cluster seed node as host:port (repeat for more; the first node lists itself)", AllowMultipleArgumentsPerToken = true };
        var port = new Option<int>("--port") { Description = "Akka.Remote port of this cluster node (0: any free port)", DefaultValueFactory = _ => 0 };
        var hostname = new Option<string>("--hostname") { Description = "Address this cluster node listens on and is reached at", DefaultValueFactory = _ => "127.0.0.1" };
        var nodeName = new Option<string>("--node-name") { Description = "Name of this cluster node in events (default: its cluster address)", DefaultValueFactory = _ => string.Empty };
        var discovery = new Option<string[]>("--discovery-address") { Description = "Discovery controller (traddr:trsvcid) whose NVM subsystems the cluster attaches (repeat for more)", AllowMultipleArgumentsPerToken = true };
        var strategy = new Option<string>("--split-brain-strategy") { Description = "Split-brain resolver strategy: keep-majority (default), keep-oldest, static-quorum, down-all", DefaultValueFactory = _ => "keep-majority" };
        var stableAfter = new Option<double?>("--stable-after") { Description = "Seconds the membership must be stable before the split-brain resolver downs unreachable nodes (default 20)" };
        var heartbeatPause = new Option<double?>("--heartbeat-pause") { Description = "Seconds of missing heartbeats before a node is unreachable (Akka's default otherwise)" };
        var reconcile = new Option<double?>("--reconcile-interval") { Description = "Seconds between discovery log reads of the cluster's coordinator (default 1)" };
        var minMembers = new Option<int?>("--min-members") { Description = "Cluster members that must have joined before subsystems are placed (default 1)" };
        var hostNqn = new Option<string?>("--host-nqn") { Description = "Cluster node: the host NQN the whole cluster connects with (default: actornvme.host-nqn)" };
        var store = new Option<string?>("--cluster-store") { Description = "Cluster node: where the desired state is kept: sqlite:FILE (default: cluster-state.db in the state directory) or postgresql:CONNECTION-STRING" };
        var ioWriter = new Option<bool>("--io-writer") { Description = "Cluster node: write and verify a block of every attached block device continuously (demo load)" };
        var command = new Command("serve", "Run the ActorNvme daemon: the NVMe host with an SPDK-compatible JSON-RPC server on a Unix socket")
        {
            socket, config, waitForRpc, metrics, verbose, logFile, logJson, cluster, seeds, port, hostname, nodeName, discovery, strategy, stableAfter, heartbeatPause, reconcile, minMembers, hostNqn, store, ioWriter,
        };
        command.SetAction((parse, cancellationToken) => RunAsync(
            new ServeOptions
            {
                RpcSocket = parse.GetValue(socket)!,
                ConfigPath = parse.GetValue(config)?.FullName,
                WaitForRpc = parse.GetValue(waitForRpc),
                MetricsConsoleSeconds = parse.GetValue(metrics),
                Verbose = parse.GetValue(verbose),
                LogFile = parse.GetValue(logFile),
                LogJson = parse.GetValue(logJson),
                Cluster = !parse.GetValue(cluster) ? null : new ClusterNode.ClusterNodeOptions
                {
                    Node = new ActorNvme.Cluster.NvmeClusterNodeOptions
                    {
                        Hostname = parse.GetValue(hostname)!,
                        Port = parse.GetValue(port),
                        SeedNodes = parse.GetValue(seeds) ?? [],
                        NodeName = parse.GetValue(nodeName)!,
                        Discovery = parse.GetValue(discovery) ?? [],
                        DowningStrategy = parse.GetValue(strategy)!,
                        StableAfter = Seconds(parse.GetValue(stableAfter)),
                        AcceptableHeartbeatPause = Seconds(parse.GetValue(heartbeatPause)),
                        ReconcileInterval = Seconds(parse.GetValue(reconcile)),
                        MinMembers = parse.GetValue(minMembers),
                        Store = parse.GetValue(store),
                    },
                    RpcSocket = parse.GetValue(socket)!,
                    IoWriter = parse.GetValue(ioWriter),
                    HostNqn = parse.GetValue(hostNqn),
                    Verbose = parse.GetValue(verbose),
                },
            },
            cancellationToken));
        return command;
    }

    private static TimeSpan? Seconds(double? value) => value is { } seconds ? TimeSpan.FromSeconds(seconds) : null;

    public static async Task<int> RunAsync(ServeOptions options, CancellationToken cancellationToken)
    {
        // Every queue pair is a descriptor: take what the hard limit allows (refused clearly beyond it).
        _ = Transport.DescriptorLimit.RaiseSoftLimitToHard();
        Config hocon;
        string configName = options.ConfigPath ?? Path.Combine(Environment.CurrentDirectory, "akka.hocon");
        try
        {
            hocon = LoadConfig(options.ConfigPath);

            // Checked before anything starts: a misspelt key, a value of the wrong kind or out of range refuses start-up.
            NvmeHostSettings.Create(hocon);
        }
        catch (InvalidNvmeSettingsException e)
        {
            await Console.Error.WriteLineAsync($"actornvme serve: {configName}: {e.Message} (rule {e.Rule})").ConfigureAwait(false);
            return 2;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ConfigurationException or FormatException or InvalidOperationException or ArgumentException)
        {
            await Console.Error.WriteLineAsync($"actornvme serve: {configName}: cannot read the configuration: {OneLine(e.Message)}").ConfigureAwait(false);
            return 2;
        }

        if (options.Cluster is { } clusterNode)
        {
            return await RunClusterNodeAsync(clusterNode with { Application = hocon }, cancellationToken).ConfigureAwait(false);
        }

        if (RpcSocketProblem(options.RpcSocket) is { } problem)
        {
            await Console.Error.WriteLineAsync($"actornvme serve: --rpc-socket {options.RpcSocket}: {problem}").ConfigureAwait(false);
            return 2;
        }

        var level = new LoggingLevelSwitch(options.Verbose ? LogEventLevel.Debug : LogEventLevel.Information);
        const string Template = "[{Timestamp:HH:mm:ss.fff} {Level:u3}] {Message:lj}{NewLine}{Exception}";
        var logging = new LoggerConfiguration()
            .MinimumLevel.ControlledBy(level)
            .Enrich.FromLogContext();
        logging = options.LogJson
            ? logging.WriteTo.Console(new Serilog.Formatting.Compact.CompactJsonFormatter())
            : logging.WriteTo.Console(outputTemplate: Template);
        if (options.LogFile is { } logPath)
        {
            logging = options.LogJson
                ? logging.WriteTo.File(new Serilog.Formatting.Compact.CompactJsonFormatter(), logPath)
                : logging.WriteTo.File(logPath, outputTemplate: "[{Timestamp:yyyy-MM-dd HH:mm:ss.fff} {Level:u3}] {Message:lj}{NewLine}{Exception}");
        }

        Log.Logger = logging.CreateLogger();
        try
        {
            var builder = Microsoft.Extensions.Hosting.Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
            builder.Logging.ClearProviders().AddSerilog(Log.Logger);
            builder.Services.AddSingleton(options);
            builder.Services.AddSingleton(level);
            builder.Services.AddAkka("actornvme", akka => akka
                .AddHocon(hocon, HoconAddMode.Prepend)
                .AddHocon(NvmeHostSettings.ReferenceConfig, HoconAddMode.Append)
                .ConfigureLoggers(loggers =>
                {
                    loggers.ClearLoggers();
                    loggers.AddLogger<SerilogLogger>();
                }));
            builder.Services.AddHostedService<RpcServerService>();
            using var meters = options.MetricsConsoleSeconds > 0
                ? Sdk.CreateMeterProviderBuilder()
                    .AddMeter(NvmeMetrics.MeterName)
                    .AddConsoleExporter((_, reader) => reader.PeriodicExportingMetricReaderOptions.ExportIntervalMilliseconds = options.MetricsConsoleSeconds * 1000)
                    .Build()
                : null;
            using var app = builder.Build();
            using var signals = new ProcessSignals(cancellationToken);
            await app.RunAsync(signals.Token).ConfigureAwait(false);
            return 0;
        }
        catch (Exception e) when (e is IOException or System.Net.Sockets.SocketException or UnauthorizedAccessException)
        {
            Log.Error("actornvme serve: {Message}", e.Message);
            return 1;
        }
        finally
        {
            await Log.CloseAndFlushAsync().ConfigureAwait(false);
        }
    }

    private static async Task<int> RunClusterNodeAsync(ClusterNode.ClusterNodeOptions options, CancellationToken cancellationToken)
    {
        try
        {
            options.Node.ToConfig(); // refuses a bad port, seed or strategy before anything starts
        }
        catch (Exception e) when (e is ArgumentException or ConfigurationException)
        {
            await Console.Error.WriteLineAsync($"actornvme serve --cluster: {OneLine(e.Message)}").ConfigureAwait(false);
            return 2;
        }

        if (options.HostNqn is { } nqn && !ActorNvme.Protocol.Data.Nqn.TryValidate(nqn, out var nqnError, "--host-nqn"))
        {
            await Console.Error.WriteLineAsync($"actornvme serve --cluster: {nqnError}").ConfigureAwait(false);
            return 2;
        }

        if (options.Node.SeedNodes.Count == 0)
        {
            await Console.Error.WriteLineAsync("actornvme serve --cluster: give at least one --seed-node (the first node lists itself)").ConfigureAwait(false);
            return 2;
        }

        if (options.RpcSocket is { } rpcSocket && RpcSocketProblem(rpcSocket) is { } problem)
        {
            await Console.Error.WriteLineAsync($"actornvme serve --cluster: --rpc-socket {rpcSocket}: {problem}").ConfigureAwait(false);
            return 2;
        }

        return await ClusterNode.ClusterNodeRunner.RunAsync(options, Console.Out, cancellationToken).ConfigureAwait(false);
    }

    private static string OneLine(string text) => text.ReplaceLineEndings(" ").Trim();

    /// <summary>Why the JSON-RPC socket cannot be created there, or null.</summary>
    private static string? RpcSocketProblem(string path)
    {
        string? directory = Path.GetDirectoryName(Path.GetFullPath(path));
        if (directory is not null && !Directory.Exists(directory))
        {
            return $"the directory {directory} does not exist";
        }

        return Directory.Exists(path) ? "is a directory" : null;
    }

    /// <summary>The daemon's configuration file (akka.hocon in the working directory when <paramref name="path"/> is null), checked for what the HOCON parser lets through.</summary>
    internal static Config LoadConfig(string? path)
    {
        if (path is null)
        {
            path = Path.Combine(Environment.CurrentDirectory, "akka.hocon");
            if (!File.Exists(path))
            {
                return ConfigurationFactory.Empty;
            }
        }

        var info = new FileInfo(path);
        if (!info.Exists)
        {
            throw new IOException($"{path}: no such file");
        }

        if (info.Length > 4 * 1024 * 1024)
        {
            throw new IOException($"{path}: larger than 4 MiB");
        }

        string text = File.ReadAllText(path);
        HoconCheck.Balanced(text);
        var config = ConfigurationFactory.ParseString(text);
        HoconCheck.KnownSections(config);
        return config;
    }

    /// <summary>Starts the SPDK-compatible JSON-RPC server once the ActorSystem is up, and stops it first on shutdown.</summary>
    private sealed class RpcServerService(ActorSystem system, ServeOptions options, LoggingLevelSwitch level, IHostApplicationLifetime lifetime, ILogger<RpcServerService> logger) : IHostedService
    {
        private JsonRpcServer? _server;

        public async Task StartAsync(CancellationToken cancellationToken)
        {
            var settings = HostIdentity.Apply(NvmeHostSettings.Create(system), system.Settings.Config, out var identity);
            logger.LogInformation("Host NQN {HostNqn}, host id {HostId} ({Source})", identity.HostNqn, identity.HostId, identity.Source);
            var metrics = NvmeMetrics.Get(system);
            var service = new SpdkRpcService(system, settings, logger: logger)
            {
                LogLevelChanged = wanted =>
                {
                    level.MinimumLevel = wanted switch
                    {
                        LogLevel.Debug or LogLevel.Trace => LogEventLevel.Debug,
                        LogLevel.Information => LogEventLevel.Information,
                        LogLevel.Warning => LogEventLevel.Warning,
                        _ => LogEventLevel.Error,
                    };
                    system.EventStream.SetLogLevel(wanted switch
                    {
                        LogLevel.Debug or LogLevel.Trace => Akka.Event.LogLevel.DebugLevel,
                        LogLevel.Information => Akka.Event.LogLevel.InfoLevel,
                        LogLevel.Warning => Akka.Event.LogLevel.WarningLevel,
                        _ => Akka.Event.LogLevel.ErrorLevel,
                    });
                },
                InitialLogLevel = options.Verbose ? "DEBUG" : "INFO",
                StopRequested = lifetime.StopApplication,
            };
            NvmeHostShutdown.Register(system, () => service.Host);
            if (!options.WaitForRpc)
            {
                await service.InitializeAsync().ConfigureAwait(false);
            }
            else
            {
                logger.LogInformation("waiting for framework_start_init (--wait-for-rpc)");
            }

            _server = new JsonRpcServer(options.RpcSocket, service, logger: logger)
            {
                CallCompleted = call =>
                {
                    metrics.RecordRpc(call.Method, call.Elapsed, call.ErrorCode);
                    if (call.ErrorCode is { } code)
                    {
                        logger.LogDebug("{Method} answered error {Code} in {Elapsed:0.0} ms", call.Method, code, call.Elapsed.TotalMilliseconds);
                    }
                },
            };
            _server.Start();
            await WarmUpAsync(service).ConfigureAwait(false);
            logger.LogInformation("JSON-RPC ready");
            logger.LogInformation(
                "actornvme serve: host {HostNqn}, JSON-RPC on {Socket}; ctrlr_loss_timeout_sec {Loss}, reconnect_delay_sec {Delay}, fast_io_fail_timeout_sec {Fast}",
                settings.HostNqn,
                options.RpcSocket,
                settings.Resiliency.CtrlrLossTimeout.TotalSeconds,
                settings.Resiliency.ReconnectDelay.TotalSeconds,
                settings.Resiliency.FastIoFailTimeout.TotalSeconds);
        }

        /// <summary>
        /// Calls the list methods once through the socket itself, so that the first client does not pay
        /// for JIT compilation of the whole path (hundreds of milliseconds on a cold process).
        /// </summary>
        private async Task WarmUpAsync(SpdkRpcService service)
        {
            string[] methods = service.IsInitialized
                ? ["spdk_get_version", "rpc_get_methods", "bdev_get_bdevs", "bdev_nvme_get_controllers", "bdev_nvme_get_discovery_info", "bdev_nvme_stop_discovery"]
                : ["spdk_get_version", "rpc_get_methods"];
            try
            {
                await using var client = await JsonRpcClient.ConnectAsync(options.RpcSocket).ConfigureAwait(false);
                foreach (string method in methods)
                {
                    try
                    {
                        await client.CallAsync(method, method == "bdev_nvme_stop_discovery" ? new System.Text.Json.Nodes.JsonObject { ["name"] = "-" } : null).ConfigureAwait(false);
                    }
                    catch (JsonRpcErrorResponseException)
                    {
                    }
                }
            }
            catch (IOException e)
            {
                logger.LogWarning("JSON-RPC warm-up failed: {Message}", e.Message);
            }
        }

        public async Task StopAsync(CancellationToken cancellationToken)
        {
            if (_server is not null)
            {
                await _server.DisposeAsync().ConfigureAwait(false);
            }
        }
    }
}
