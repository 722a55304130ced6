using BenchmarkDotNet.Attributes;
using ActorNvme.Transport;

namespace ActorNvme.Benchmarks;

/// <summary>
/// Submit/complete of 4 KiB reads through one I/O queue pair against the loopback responder, per
/// design and queue depth. One operation is one read; Allocated is bytes per read (whole process).
/// </summary>
[MemoryDiagnoser]
[SimpleJob(launchCount: 1, warmupCount: 3, iterationCount: 8)]
public class QueuePairBenchmarks
{
    private const int ReadsPerInvoke = 8192;

    private LoopbackResponder? _responder;
    private IoQueuePair? _queuePair;
    private ClosedLoop? _loop;

    [ParamsSource(nameof(DesignNames))]
    public string Design { get; set; } = Designs.Pipelines;

    [Params(1, 32, 128)]
    public int QueueDepth { get; set; }

    public static IEnumerable<string> DesignNames => Designs.All;

    [GlobalSetup]
    public void Setup()
    {
        _responder = new LoopbackResponder();
        _queuePair = Designs.ConnectAsync(Design, _responder, QueueDepth).GetAwaiter().GetResult();
        _loop = new ClosedLoop(_queuePair, QueueDepth);
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _queuePair?.DisposeAsync().AsTask().GetAwaiter().GetResult();
        _responder?.Dispose();
    }

    [Benchmark(OperationsPerInvoke = ReadsPerInvoke)]
    public Task<long> Read4KiB() => _loop!.RunCountAsync(ReadsPerInvoke / QueueDepth);
}
