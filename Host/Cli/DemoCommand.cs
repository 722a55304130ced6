using System.CommandLine;
using ActorNvme.Host.Demo;

namespace ActorNvme.Host.Cli;

internal static class DemoCommand
{
    public static Command Create()
    {
        var verbose = new Option<bool>("--verbose", "-v") { Description = "Also print the actors' own log lines" };
        var command = new Command("demo", "Run the whole story on an in-process target: discover, attach, I/O, remove the interface, loss timeout, restore, re-attach, I/O")
        {
            verbose,
        };
        command.SetAction((parse, cancellationToken) =>
            DemoRunner.RunAsync(DemoOptions.Default with { Verbose = parse.GetValue(verbose) }, Console.Out, cancellationToken));
        return command;
    }
}
