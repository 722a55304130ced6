using System.Diagnostics;
using System.Globalization;

namespace ActorNvme.Benchmarks;

/// <summary>
/// <c>alloc [count] [rounds]</c>: bytes allocated per 4 KiB read and write (whole process: host and in-process target)
/// and reads per second, through the block device and straight on its queue pair, at QD 1 and 32,
/// after a warm-up. A quick check of what <see cref="BlockDeviceBenchmarks"/> measures thoroughly.
/// </summary>
public static class AllocationProbe
{
    public static async Task RunAsync(string[] args)
    {
        int reads = args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 200_000;
        int rounds = args.Length > 2 ? int.Parse(args[2], CultureInfo.InvariantCulture) : 1;
        await using var rig = await BlockDeviceRig.StartAsync().ConfigureAwait(false);
        Console.WriteLine($"{"path",-12} {"op",-6} {"QD",4} {"I/O/s",10} {"B/I/O",8}");
        foreach (var (depth, write) in Enumerable.Range(0, rounds).SelectMany(_ => new[] { (1, false), (32, false), (1, true), (32, true) }))
        {
            foreach (bool bare in new[] { false, true })
            {
                var loop = new DeviceLoop(rig, depth, bare, write);
                await loop.RunCountAsync(Math.Max(1, 100_000 / depth)).ConfigureAwait(false);
                long before = GC.GetTotalAllocatedBytes(precise: true);
                var clock = Stopwatch.StartNew();
                long done = await loop.RunCountAsync(reads / depth).ConfigureAwait(false);
                clock.Stop();
                long allocated = GC.GetTotalAllocatedBytes(precise: true) - before;
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{(bare ? "IoQueuePair" : "BlockDevice"),-12} {(write ? "write" : "read"),-6} {depth,4} {done / clock.Elapsed.TotalSeconds,10:0} {(double)allocated / done,8:0.00}"));
            }
        }
    }
}
