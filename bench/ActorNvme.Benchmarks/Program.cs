using BenchmarkDotNet.Running;

namespace ActorNvme.Benchmarks;

public static class Program
{
    /// <summary><c>e2e [seconds] [rounds] [designs]</c> runs the end-to-end harness, <c>alloc [reads]</c> the block-device allocation probe; anything else goes to BenchmarkDotNet.</summary>
    public static async Task Main(string[] args)
    {
        if (args.Length > 0 && args[0] == "alloc")
        {
            await AllocationProbe.RunAsync(args).ConfigureAwait(false);
            return;
        }

        if (args.Length > 0 && args[0] == "e2e")
        {
            await EndToEnd.RunAsync(args).ConfigureAwait(false);
            return;
        }

        BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
    }
}
