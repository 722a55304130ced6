using System.Buffers.Binary;
using System.Globalization;
using System.Runtime.InteropServices;
using Akka.Actor;
using Akka.Configuration;
using ActorNvme.Actors.Settings;
using ActorNvme.Actors.Subsystem;
using ActorNvme.Cluster;
using ActorNvme.Host.Discover;
using ActorNvme.Host.JsonRpc;
using ActorNvme.Io;
using ActorNvme.Protocol.Data;

namespace ActorNvme.Host.ClusterNode;

/// <summary>What <c>actornvme serve --cluster</c> runs with.</summary>
public sealed record ClusterNodeOptions
{
    public required NvmeClusterNodeOptions Node { get; init; }

    /// <summary>The application's akka.hocon (host settings, actornvme.cluster), behind the node options.</summary>
    public Config Application { get; init; } = Config.Empty;

    /// <summary>Write and verify a block of every attached block device, continuously (the demo's load).</summary>
    public bool IoWriter { get; init; }

    /// <summary>The host NQN every node of the cluster connects with (actornvme.host-nqn); null: the configuration's.</summary>
    public string? HostNqn { get; init; }

    public bool Verbose { get; init; }

    /// <summary>Unix socket of this node's JSON-RPC server (cluster-wide lists); null: none.</summary>
    public string? RpcSocket { get; init; }
}

/// <summary>
/// One node of an ActorNvme cluster: joins through the seed nodes, holds the subsystem entities whose
/// shards it owns, and (on the oldest node) the discovery coordinator. SIGTERM/SIGINT leave the cluster
/// gracefully: the shards are handed over, each entity shutting its controllers down (CC.SHN) first.
/// Prints one machine-readable line per ownership change (<see cref="EventPrefix"/>), which the cluster
/// demo reads.
/// </summary>
public static class ClusterNodeRunner
{
    public const string EventPrefix = "CLUSTER-EVENT";
    public const string IoPrefix = "CLUSTER-IO";

    public static async Task<int> RunAsync(ClusterNodeOptions options, TextWriter output, CancellationToken stop)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(output);
        var logLevel = ConfigurationFactory.ParseString($"akka.loglevel = {(options.Verbose ? "INFO" : "WARNING")}\nakka.stdout-loglevel = {(options.Verbose ? "INFO" : "WARNING")}");
        if (options.HostNqn is { } hostNqn)
        {
            logLevel = ConfigurationFactory.ParseString($"actornvme.host-nqn = \"{hostNqn}\"").WithFallback(logLevel);
        }

        var system = NvmeCluster.CreateSystem(options.Node, logLevel.WithFallback(options.Application));
        var hostSettings = NvmeHostSettings.Create(system);
        var cluster = NvmeCluster.Start(system, (path, timeout, token) => ReadDiscoveryLogAsync(path, hostSettings, timeout, token));
        var writer = TextWriter.Synchronized(output);
        await using var rpc = options.RpcSocket is { } socket
            ? new JsonRpcServer(socket, new ClusterRpcService(cluster, hostSettings))
            : null;
        try
        {
            rpc?.Start();
        }
        catch (Exception e) when (e is IOException or System.Net.Sockets.SocketException or UnauthorizedAccessException)
        {
            await Console.Error.WriteLineAsync($"actornvme serve --cluster: --rpc-socket {options.RpcSocket}: {e.Message}").ConfigureAwait(false);
            await system.Terminate().ConfigureAwait(false);
            return 1;
        }

        var observer = system.ActorOf(Props.Create(() => new NodeObserver(writer, cluster.Node, options.IoWriter)), "cluster-node-observer");
        system.EventStream.Subscribe(observer, typeof(ClusterSubsystem.OwnershipEvent));
        system.EventStream.Subscribe(observer, typeof(BlockDeviceAdded));
        system.EventStream.Subscribe(observer, typeof(BlockDeviceRemoved));
        system.EventStream.Subscribe(observer, typeof(ClusterSubsystem.EntityEvent));
        system.EventStream.Subscribe(observer, typeof(WriterFencing));
        system.EventStream.Subscribe(observer, typeof(WriterFenced));
        var akkaCluster = Akka.Cluster.Cluster.Get(system);
        akkaCluster.Subscribe(observer, Akka.Cluster.ClusterEvent.SubscriptionInitialStateMode.InitialStateAsEvents, typeof(Akka.Cluster.ClusterEvent.IMemberEvent), typeof(Akka.Cluster.ClusterEvent.IReachabilityEvent));
        akkaCluster.RegisterOnMemberUp(() => writer.WriteLine($"{EventPrefix} {Now()} {cluster.Node} MemberUp - {akkaCluster.SelfAddress}"));
        writer.WriteLine($"{EventPrefix} {Now()} {cluster.Node} NodeStarted - {akkaCluster.SelfAddress} host {hostSettings.HostNqn} hostid {(cluster.Settings.FenceWithReservations ? NodeFence.HostIdOf(hostSettings.HostNqn, cluster.Node) : hostSettings.HostId)}{(rpc is null ? string.Empty : " rpc " + rpc.SocketPath)}");
        writer.Flush();

        var terminated = system.WhenTerminated;
        var stopped = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);

        // SIGTERM/SIGINT: leave in order. The registrations live until the process ends, so a late or repeated
        // signal finds a handler that only completes a task (completing it twice is harmless).
        var leave = (PosixSignalContext context) =>
        {
            context.Cancel = true;
            stopped.TrySetResult();
        };
        using var term = PosixSignalRegistration.Create(PosixSignal.SIGTERM, leave);
        using var interrupt = PosixSignalRegistration.Create(PosixSignal.SIGINT, leave);
        using (stop.Register(() => stopped.TrySetResult()))
        {
            await Task.WhenAny(terminated, stopped.Task).ConfigureAwait(false);
        }

        if (!terminated.IsCompleted)
        {
            writer.WriteLine($"{EventPrefix} {Now()} {cluster.Node} Leaving - graceful leave: handing the shards over");
            writer.Flush();
            await CoordinatedShutdown.Get(system).Run(CoordinatedShutdown.ClusterLeavingReason.Instance).ConfigureAwait(false);
        }

        await terminated.ConfigureAwait(false);
        writer.WriteLine($"{EventPrefix} {Now()} {cluster.Node} Stopped - the node left the cluster");
        writer.Flush();
        return 0;
    }

    internal static string Now() => DateTimeOffset.UtcNow.ToUnixTimeMilliseconds().ToString(CultureInfo.InvariantCulture);

    /// <summary>One read of a discovery log with the command line's one-shot reader: the NVM subsystems it lists over TCP.</summary>
    internal static async Task<IReadOnlyList<DiscoveredSubsystem>> ReadDiscoveryLogAsync(string path, NvmeHostSettings settings, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var log = await DiscoveryLogReader.ReadAsync(ClusterSubsystem.ParsePath(path), settings.HostNqn, settings.HostId, timeout, cancellationToken).ConfigureAwait(false);
        var found = new List<DiscoveredSubsystem>();
        foreach (var entry in log.Entries)
        {
            if (entry.SubsystemType != SubsystemType.Nvm || entry.TransportType != TransportType.Tcp || entry.SubsystemNqn.Length == 0)
            {
                continue;
            }

            if (int.TryParse(entry.TransportServiceId, NumberStyles.None, CultureInfo.InvariantCulture, out int port) && port is > 0 and < 65536 && entry.TransportAddress.Length > 0)
            {
                found.Add(new DiscoveredSubsystem(entry.SubsystemNqn, $"{entry.TransportAddress}:{port.ToString(CultureInfo.InvariantCulture)}"));
            }
        }

        return found;
    }

    /// <summary>Prints ownership changes, and (with the writer on) runs a write-then-verify loop per block device.</summary>
    private sealed class NodeObserver : ReceiveActor
    {
        private readonly Dictionary<string, CancellationTokenSource> _writers = new(StringComparer.Ordinal);

        public NodeObserver(TextWriter output, string node, bool ioWriter)
        {
            Receive<ClusterSubsystem.OwnershipEvent>(m =>
            {
                output.WriteLine($"{EventPrefix} {m.At.ToUnixTimeMilliseconds().ToString(CultureInfo.InvariantCulture)} {m.Node} {m.Change} {m.SubsystemNqn} {m.Detail}");
                output.Flush();
            });
            // The steps of a takeover, for the demo's timeline: what this node saw of the others (unreachable,
            // downed, removed), entities started here and read back from the store, fences begun and held, block
            // devices handed to writers.
            Receive<Akka.Cluster.ClusterEvent.UnreachableMember>(m => Line(output, node, "Unreachable", "-", m.Member.Address.ToString()));
            Receive<Akka.Cluster.ClusterEvent.ReachableMember>(m => Line(output, node, "Reachable", "-", m.Member.Address.ToString()));
            Receive<Akka.Cluster.ClusterEvent.MemberDowned>(m => Line(output, node, "MemberDowned", "-", m.Member.Address.ToString()));
            Receive<Akka.Cluster.ClusterEvent.MemberRemoved>(m => Line(output, node, "MemberRemoved", "-", $"{m.Member.Address} (was {m.PreviousStatus})"));
            Receive<Akka.Cluster.ClusterEvent.IMemberEvent>(_ => { });
            Receive<ClusterSubsystem.EntityEvent>(m => Line(output, node, "Entity" + m.Stage, m.SubsystemNqn, m.Stage == EntityStage.Recovered ? (m.RememberedDesire ? "desired state read back from the store" : "nothing in the store") : "started by its shard; reading its desired state from the store", m.At));
            Receive<WriterFencing>(m => Line(output, node, "FenceBegin", m.SubsystemNqn, $"{m.BlockDevice}: register key 0x{m.Key:x16}, acquire (preempt and abort the holder), attempt {m.Attempt}"));
            Receive<WriterFenced>(m => Line(output, node, "Fenced", m.SubsystemNqn, m.Fence.Preempted is { } previous
                ? $"{m.BlockDevice}: {m.Fence.Type} held; preempted and aborted host id {previous.HostId:x32} (key 0x{previous.Key:x16})"
                : $"{m.BlockDevice}: {m.Fence.Type} {(m.Fence.AlreadyHeld ? "already held" : "acquired")}"));
            Receive<BlockDeviceAdded>(m =>
            {
                Line(output, node, "DeviceUp", m.Device.SubsystemNqn, $"{m.Device.Name} handed to writers");
                if (!ioWriter || m.BlockDevice is null || _writers.ContainsKey(m.Device.Name))
                {
                    return;
                }

                var cancel = new CancellationTokenSource();
                _writers[m.Device.Name] = cancel;
                _ = WriteVerifyLoopAsync(m.BlockDevice, m.Device, node, output, cancel.Token);
            });
            Receive<BlockDeviceRemoved>(m =>
            {
                if (_writers.Remove(m.Device.Name, out var cancel))
                {
                    cancel.Cancel();
                    cancel.Dispose();
                }
            });
        }

        private static void Line(TextWriter output, string node, string change, string subsystemNqn, string detail, DateTimeOffset? at = null)
        {
            output.WriteLine($"{EventPrefix} {(at ?? DateTimeOffset.UtcNow).ToUnixTimeMilliseconds().ToString(CultureInfo.InvariantCulture)} {node} {change} {subsystemNqn} {detail}");
            output.Flush();
        }

        protected override void PostStop()
        {
            foreach (var cancel in _writers.Values)
            {
                cancel.Cancel();
                cancel.Dispose();
            }
        }
    }

    /// <summary>
    /// Before its first write: the namespace's reservation as the target reports it (holder and registrants,
    /// printed as a <c>Registrants</c> event), and every block of the ledger read back and printed
    /// (<see cref="IoPrefix"/>-READBACK: the stamp each block holds), so that a reader can check that no write a
    /// previous owner had acknowledged (<see cref="IoPrefix"/>-ACK lines) was lost. Then, 20 a second: write a
    /// block stamped with the node and a sequence number, print the acknowledgement, read it back, compare. A
    /// write the device refuses (the path going away) ends the loop quietly; a read that does not return what
    /// was acknowledged is printed as an error line.
    /// </summary>
    private static async Task WriteVerifyLoopAsync(BlockDevice device, BlockDeviceInfo info, string node, TextWriter output, CancellationToken cancel)
    {
        int blockSize = info.BlockSize;
        var written = new byte[blockSize];
        var read = new byte[blockSize];
        long sequence = 0;
        ulong blocks = Math.Min(info.BlockCount, LedgerBlocks);
        try
        {
            if (device.SupportsReservations)
            {
                string detail;
                try
                {
                    var report = await device.ReservationReportAsync().ConfigureAwait(false);
                    string registrants = string.Join(",", report.Registrants.Select(r => $"0x{r.Key:x16}{(r.HoldsReservation ? ":holder" : string.Empty)}"));
                    detail = $"type {report.Type} registrants {(registrants.Length == 0 ? "none" : registrants)}";
                }
                catch (BlockDeviceException e)
                {
                    detail = $"report failed: {e.Message}";
                }

                output.WriteLine($"{EventPrefix} {Now()} {node} Registrants {info.SubsystemNqn} {info.Name}: {detail}");
                output.Flush();
            }

            var stamps = new List<string>((int)blocks);
            for (ulong lba = 0; lba < blocks; lba++)
            {
                await device.ReadAsync(lba, read).ConfigureAwait(false);
                stamps.Add($"{lba.ToString(CultureInfo.InvariantCulture)}={StampOf(read)}");
            }

            output.WriteLine($"{IoPrefix}-READBACK {Now()} {node} {info.SubsystemNqn} {string.Join(' ', stamps)}");
            output.Flush();
            while (!cancel.IsCancellationRequested && !device.IsDeleted)
            {
                sequence++;
                ulong lba = (ulong)sequence % blocks;
                written.AsSpan().Fill((byte)sequence);
                BinaryPrimitives.WriteInt64LittleEndian(written, sequence);
                int nameLength = System.Text.Encoding.ASCII.GetBytes(node.AsSpan(0, Math.Min(node.Length, 32)), written.AsSpan(9));
                written[8] = (byte)nameLength;
                await device.WriteAsync(lba, written).ConfigureAwait(false);
                output.WriteLine($"{IoPrefix}-ACK {Now()} {node} {info.SubsystemNqn} {lba.ToString(CultureInfo.InvariantCulture)}={node}:{sequence.ToString(CultureInfo.InvariantCulture)}");
                output.Flush(); // out before anything else can end this process
                await device.ReadAsync(lba, read).ConfigureAwait(false);
                if (!read.AsSpan().SequenceEqual(written))
                {
                    output.WriteLine($"{IoPrefix}-ERROR {Now()} {node} {info.SubsystemNqn} lba {lba}: read back differs from the acknowledged write {sequence}");
                }

                output.Flush();
                await Task.Delay(50, cancel).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException)
        {
        }
        catch (BlockDeviceException)
        {
        }
    }

    /// <summary>Blocks of a device the writer cycles through (its ledger).</summary>
    private const int LedgerBlocks = 64;

    /// <summary>"node:sequence" of a block the writer stamped; "-" for one it did not (never written, or foreign).</summary>
    internal static string StampOf(ReadOnlySpan<byte> block)
    {
        if (block.Length < 9 + 32)
        {
            return "-";
        }

        long sequence = BinaryPrimitives.ReadInt64LittleEndian(block);
        int nameLength = block[8];
        if (sequence <= 0 || nameLength is 0 or > 32)
        {
            return "-";
        }

        var name = block.Slice(9, nameLength);
        foreach (byte b in name)
        {
            if (b is <= (byte)' ' or >= 0x7F or (byte)':' or (byte)'=')
            {
                return "-";
            }
        }

        return $"{System.Text.Encoding.ASCII.GetString(name)}:{sequence.ToString(CultureInfo.InvariantCulture)}";
    }
}
