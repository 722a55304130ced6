using System.Diagnostics;
using System.Globalization;

namespace ActorNvme.Benchmarks;

/// <summary>
/// The end-to-end harness: <c>e2e [seconds] [rounds]</c>. For each design and queue depth 1/32/128,
/// a warm-up, then a timed closed loop of 4 KiB reads; prints IOPS, mean latency, bytes allocated
/// per read and process CPU (host and responder together), rounds interleaved so the shared
/// machine's noise hits every design alike.
/// </summary>
public static class EndToEnd
{
    private static readonly int[] QueueDepths = [1, 32, 128];

    public static async Task RunAsync(string[] args)
    {
        var seconds = TimeSpan.FromSeconds(args.Length > 1 ? double.Parse(args[1], CultureInfo.InvariantCulture) : 5);
        int rounds = args.Length > 2 ? int.Parse(args[2], CultureInfo.InvariantCulture) : 1;
        var designs = args.Length > 3 ? args[3].Split(',') : Designs.All;
        using var responder = new LoopbackResponder();
        Console.WriteLine($"{"round",5} {"design",-22} {"QD",4} {"IOPS",10} {"mean µs",9} {"B/read",8} {"CPU %",6}");
        for (int round = 1; round <= rounds; round++)
        {
            foreach (int depth in QueueDepths)
            {
                foreach (var design in designs)
                {
                    await using var queuePair = await Designs.ConnectAsync(design, responder, depth).ConfigureAwait(false);
                    var loop = new ClosedLoop(queuePair, depth);
                    await loop.RunForAsync(TimeSpan.FromSeconds(Math.Min(2, seconds.TotalSeconds))).ConfigureAwait(false);

                    long allocatedBefore = GC.GetTotalAllocatedBytes(precise: true);
                    var cpuBefore = Process.GetCurrentProcess().TotalProcessorTime;
                    var clock = Stopwatch.StartNew();
                    long reads = await loop.RunForAsync(seconds).ConfigureAwait(false);
                    clock.Stop();
                    var cpu = Process.GetCurrentProcess().TotalProcessorTime - cpuBefore;
                    long allocated = GC.GetTotalAllocatedBytes(precise: true) - allocatedBefore;

                    double iops = reads / clock.Elapsed.TotalSeconds;
                    Console.WriteLine(string.Create(
                        CultureInfo.InvariantCulture,
                        $"{round,5} {design,-22} {depth,4} {iops,10:0} {depth / iops * 1e6,9:0.0} {(double)allocated / reads,8:0.00} {cpu / clock.Elapsed * 100,6:0}"));
                }
            }
        }
    }
}
