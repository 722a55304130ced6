using System.CommandLine;
using ActorNvme.Host.Cli;
using ActorNvme.Host.Perf;

namespace ActorNvme.Host;

/// <summary>The <c>actornvme</c> command: demo, discover, serve, rpc, target, perf.</summary>
public static class Program
{
    public static async Task<int> Main(string[] args)
    {
        ArgumentNullException.ThrowIfNull(args);

        // perf parses SPDK perf's own option syntax (-q 32 -o 4096 -w randread -r '...'), so it gets its arguments untouched.
        if (args.Length > 0 && args[0] == "perf")
        {
            return await PerfCommand.RunAsync(args[1..]).ConfigureAwait(false);
        }

        return await BuildRoot().Parse(args).InvokeAsync().ConfigureAwait(false);
    }

    public static RootCommand BuildRoot()
    {
        var perf = new Command("perf", "Block-device load with SPDK perf's options (actornvme perf --help)") { TreatUnmatchedTokensAsErrors = false };
        perf.SetAction((parse, _) => PerfCommand.RunAsync([.. parse.UnmatchedTokens]));
        var root = new RootCommand("ActorNvme: an NVMe/TCP host runtime on Akka.NET")
        {
            DemoCommand.Create(),
            DiscoverCommand.Create(),
            ServeCommand.Create(),
            RpcCommand.Create(),
            TargetCommand.Create(),
            Soak.SoakCommand.Create(),
            perf,
        };
        return root;
    }
}
