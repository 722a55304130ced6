using System.Collections.Concurrent;
using System.Diagnostics;
using System.Diagnostics.Metrics;
using Akka.Actor;
using ActorNvme.Actors.Controller;
using ActorNvme.Actors.Subsystem;

namespace ActorNvme.Hosting;

/// <summary>
/// The <c>ActorNvme</c> meter of one ActorSystem (an Akka extension: <c>NvmeMetrics.Get(system)</c>).
/// Instruments are lower-case and dotted, with units. Controller and block-device instruments follow
/// the event stream; callers record RPC calls and block I/O. Recording never throws: a metric that
/// fails is dropped, the operation it measured goes on.
/// </summary>
/// <remarks>
/// Other assemblies may create their own <c>Meter("ActorNvme")</c> (the I/O path, for instance):
/// exporters subscribe by meter name, so one <c>AddMeter(NvmeMetrics.MeterName)</c> collects them all.
/// </remarks>
public sealed class NvmeMetrics : IExtension, IDisposable
{
    public const string MeterName = "ActorNvme";

    private readonly Meter _meter;
    private readonly Counter<long> _rpcRequests;
    private readonly Histogram<double> _rpcDuration;
    private readonly Counter<long> _ioCommands;
    private readonly Histogram<double> _ioDuration;
    private readonly Counter<long> _ioBytes;
    private readonly Counter<long> _reconnects;
    private readonly Counter<long> _losses;
    private readonly Counter<long> _deviceRemovals;
    private readonly ConcurrentDictionary<string, ControllerState> _paths = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, BlockDeviceInfo> _devices = new(StringComparer.Ordinal);

    // Latencies from tens of microseconds (an I/O on a fast path) to seconds (an attach).
    private static readonly InstrumentAdvice<double> SecondsBuckets = new()
    {
        HistogramBucketBoundaries = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    };

    public NvmeMetrics(ActorSystem? system = null)
    {
        _meter = new Meter(MeterName, typeof(NvmeMetrics).Assembly.GetName().Version?.ToString());
        _rpcRequests = _meter.CreateCounter<long>("actornvme.rpc.requests", "{request}", "JSON-RPC requests answered, by method and outcome");
        _rpcDuration = _meter.CreateHistogram("actornvme.rpc.duration", "s", "Time to answer a JSON-RPC request", tags: null, advice: SecondsBuckets);
        _ioCommands = _meter.CreateCounter<long>("actornvme.io.commands", "{command}", "Block-device commands completed, by operation and outcome");
        _ioDuration = _meter.CreateHistogram("actornvme.io.duration", "s", "Block-device command latency", tags: null, advice: SecondsBuckets);
        _ioBytes = _meter.CreateCounter<long>("actornvme.io.bytes", "By", "Bytes read or written through block devices");
        _reconnects = _meter.CreateCounter<long>("actornvme.controller.reconnects", "{attempt}", "Reconnect attempts of controllers after a loss");
        _losses = _meter.CreateCounter<long>("actornvme.controller.losses", "{loss}", "Controller associations lost");
        _deviceRemovals = _meter.CreateCounter<long>("actornvme.block_device.removals", "{device}", "Block devices removed, by reason");
        _meter.CreateObservableUpDownCounter("actornvme.controllers", ObserveControllers, "{controller}", "Controller paths by state");
        _meter.CreateObservableUpDownCounter("actornvme.block_devices", () => _devices.Count, "{device}", "Block devices attached");

        if (system is not null)
        {
            system.ActorOf(Props.Create(() => new NvmeMetricsListener(this)), "actornvme-metrics");
        }
    }

    public static NvmeMetrics Get(ActorSystem system) => system.WithExtension<NvmeMetrics, NvmeMetricsProvider>();

    /// <summary>Records one answered JSON-RPC request; <paramref name="errorCode"/> null for success.</summary>
    public void RecordRpc(string method, TimeSpan elapsed, int? errorCode) => Safely(() =>
    {
        var tags = new TagList { { "method", method }, { "outcome", errorCode is null ? "ok" : "error" } };
        if (errorCode is { } code)
        {
            tags.Add("error.code", code);
        }

        _rpcRequests.Add(1, tags);
        _rpcDuration.Record(elapsed.TotalSeconds, new TagList { { "method", method } });
    });

    /// <summary>Records one block-device command: operation ("read", "write", ...), bytes moved, latency, success.</summary>
    public void RecordIo(string operation, long bytes, TimeSpan elapsed, bool succeeded) => Safely(() =>
    {
        var tags = new TagList { { "operation", operation }, { "outcome", succeeded ? "ok" : "error" } };
        _ioCommands.Add(1, tags);
        _ioDuration.Record(elapsed.TotalSeconds, new TagList { { "operation", operation } });
        if (succeeded && bytes > 0)
        {
            _ioBytes.Add(bytes, new TagList { { "operation", operation } });
        }
    });

    public void Dispose() => _meter.Dispose();

    internal void OnStateChanged(Controller.StateChanged changed) => Safely(() =>
    {
        bool discovery = NvmeHostShutdown.IsDiscoveryPath(changed.Name);
        var role = new TagList { { "role", discovery ? "discovery" : "nvm" } };
        _paths.TryGetValue(changed.Name, out var previous);
        bool known = _paths.ContainsKey(changed.Name);
        if (changed.State == ControllerState.Failed && changed.Reason == ControllerActor.StoppedReason)
        {
            _paths.TryRemove(changed.Name, out _);
            return;
        }

        _paths[changed.Name] = changed.State;
        if (changed.State == ControllerState.Failed && known && previous != ControllerState.Failed)
        {
            _losses.Add(1, role);
        }
        else if (changed.State == ControllerState.Connecting && known && previous == ControllerState.Failed)
        {
            _reconnects.Add(1, role);
        }
    });

    internal void OnDeviceAdded(BlockDeviceAdded added) => Safely(() => _devices[added.Device.Name] = added.Device);

    internal void OnDeviceRemoved(BlockDeviceRemoved removed) => Safely(() =>
    {
        _devices.TryRemove(removed.Device.Name, out _);
        string reason = removed.Reason.Contains("ctrlr-loss-timeout", StringComparison.Ordinal) ? "ctrlr-loss-timeout" : "detached";
        _deviceRemovals.Add(1, new TagList { { "reason", reason } });
    });

    private IEnumerable<Measurement<int>> ObserveControllers()
    {
        KeyValuePair<string, ControllerState>[] snapshot;
        try
        {
            snapshot = [.. _paths];
        }
        catch (Exception)
        {
            yield break;
        }

        foreach (var group in snapshot.GroupBy(p => (p.Value, Discovery: NvmeHostShutdown.IsDiscoveryPath(p.Key))))
        {
            yield return new Measurement<int>(group.Count(), new KeyValuePair<string, object?>("state", group.Key.Value.ToString().ToLowerInvariant()), new KeyValuePair<string, object?>("role", group.Key.Discovery ? "discovery" : "nvm"));
        }
    }

    private static void Safely(Action record)
    {
        try
        {
            record();
        }
        catch (Exception)
        {
            // A metric must never break what it measures.
        }
    }
}

/// <summary>Creates the <see cref="NvmeMetrics"/> of a system and disposes it when the system terminates.</summary>
public sealed class NvmeMetricsProvider : ExtensionIdProvider<NvmeMetrics>
{
    public override NvmeMetrics CreateExtension(ExtendedActorSystem system)
    {
        var metrics = new NvmeMetrics(system);
        system.RegisterOnTermination(metrics.Dispose);
        return metrics;
    }
}

/// <summary>Feeds <see cref="NvmeMetrics"/> from the event stream.</summary>
internal sealed class NvmeMetricsListener : ReceiveActor
{
    public NvmeMetricsListener(NvmeMetrics metrics)
    {
        Receive<Controller.StateChanged>(metrics.OnStateChanged);
        Receive<BlockDeviceAdded>(metrics.OnDeviceAdded);
        Receive<BlockDeviceRemoved>(metrics.OnDeviceRemoved);
    }

    protected override void PreStart()
    {
        Context.System.EventStream.Subscribe(Self, typeof(Controller.StateChanged));
        Context.System.EventStream.Subscribe(Self, typeof(BlockDeviceAdded));
        Context.System.EventStream.Subscribe(Self, typeof(BlockDeviceRemoved));
    }

    protected override void PostStop() => Context.System.EventStream.Unsubscribe(Self);
}
