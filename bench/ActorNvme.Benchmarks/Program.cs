using BenchmarkDotNet.Running;

namespace ActorNvme.Benchmarks;

public static class Program
{
    /// <summary><c>e2e [seconds] [rounds] [designs]</c> runs the end-to-end harness, <c>alloc [count] [rounds]</c> the block-device allocation probe, <c>serve [port]</c> the loopback responder alone; anything else goes to BenchmarkDotNet.</summary>
    public static async Task Main(string[] args)
    {
        if (args.Length > 0 && args[0] == "serve")
        {
            // serve [port]: the loopback responder on 127.0.0.1 in a process of its own, until killed.
            using var responder = new LoopbackResponder(port: args.Length > 1 ? int.Parse(args[1], System.Globalization.CultureInfo.InvariantCulture) : 4420);
            Console.WriteLine($"loopback responder on {responder.Address} (any subsystem NQN)");
            await Task.Delay(Timeout.Infinite).ConfigureAwait(false);
            return;
        }

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
