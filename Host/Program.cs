using System.CommandLine;
using ActorNvme.Host.Cli;

namespace ActorNvme.Host;

/// <summary>The <c>actornvme</c> command: demo, discover, serve, rpc, target, perf.</summary>
public static class Program
{
    public static Task<int> Main(string[] args) => BuildRoot().Parse(args).InvokeAsync();

    public static RootCommand BuildRoot()
    {
        var root = new RootCommand("ActorNvme: an NVMe/TCP host runtime on Akka.NET")
        {
            DemoCommand.Create(),
            DiscoverCommand.Create(),
            TargetCommand.Create(),
            RpcCommand.Create(),
            ServeCommand.Create(),
        };
        return root;
    }
}
