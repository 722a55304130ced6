using BenchmarkDotNet.Attributes;

namespace ActorNvme.Benchmarks;

/// <summary>
/// Submit/complete of 4 KiB reads through <see cref="ActorNvme.Io.BlockDevice"/> over the
/// in-memory transport against the in-process Target's null namespace, and the same reads straight
/// on the device's I/O queue pair as the baseline. One operation is one read; Allocated is bytes per
/// read for the whole process (host and in-process target together).
/// </summary>
[MemoryDiagnoser]
[SimpleJob(launchCount: 1, warmupCount: 3, iterationCount: 8)]
public class BlockDeviceBenchmarks
{
    // Large, so the 32 worker tasks each invocation starts (the harness, not the I/O path) amortize below 1 byte per read.
    private const int ReadsPerInvoke = 65536;

    private BlockDeviceRig? _rig;
    private DeviceLoop? _loop;

    [Params("BlockDevice", "IoQueuePair")]
    public string Path { get; set; } = "BlockDevice";

    [Params(1, 32)]
    public int QueueDepth { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _rig = BlockDeviceRig.StartAsync().GetAwaiter().GetResult();
        _loop = new DeviceLoop(_rig, QueueDepth, bare: Path == "IoQueuePair");
    }

    [GlobalCleanup]
    public void Cleanup() => _rig?.DisposeAsync().AsTask().GetAwaiter().GetResult();

    [Benchmark(OperationsPerInvoke = ReadsPerInvoke)]
    public Task<long> Read4KiB() => _loop!.RunCountAsync(ReadsPerInvoke / QueueDepth);
}
