using System.CommandLine;
using ActorNvme.Host.Demo;

namespace ActorNvme.Host.Cli;

internal static class DemoCommand
{
    public static Command Create()
    {
        var verbose = new Option<bool>("--verbose", "-v") { Description = "Also print the actors' own log lines" };
        var cluster = new Option<bool>("--cluster") { Description = "The cluster story instead: three node processes, 8 subsystems spread, a node killed (kill -9), a node leaving gracefully (handover with CC.SHN)" };
        var takeover = new Option<double>("--takeover-limit") { Description = "With --cluster: seconds the survivors may take to attach a killed node's subsystems", DefaultValueFactory = _ => 15 };
        var handover = new Option<double>("--handover-limit") { Description = "With --cluster: seconds a graceful leave may take to hand its subsystems over", DefaultValueFactory = _ => 3 };
        var detection = new Option<double>("--failure-detection") { Description = "With --cluster: seconds of missing heartbeats before a node is unreachable, and the split-brain resolver's stable-after", DefaultValueFactory = _ => 2 };
        var command = new Command("demo", "Run the whole story on an in-process target: discover, attach, I/O, remove the interface, loss timeout, restore, re-attach, I/O")
        {
            verbose, cluster, takeover, handover, detection,
        };
        command.SetAction((parse, cancellationToken) => parse.GetValue(cluster)
            ? ClusterDemoRunner.RunAsync(new ClusterDemoOptions
            {
                Verbose = parse.GetValue(verbose),
                TakeoverLimit = TimeSpan.FromSeconds(Math.Clamp(parse.GetValue(takeover), 1, 600)),
                HandoverLimit = TimeSpan.FromSeconds(Math.Clamp(parse.GetValue(handover), 1, 600)),
                FailureDetection = TimeSpan.FromSeconds(Math.Clamp(parse.GetValue(detection), 1, 60)),
            }, Console.Out, cancellationToken)
            : DemoRunner.RunAsync(DemoOptions.Default with { Verbose = parse.GetValue(verbose) }, Console.Out, cancellationToken));
        return command;
    }
}
