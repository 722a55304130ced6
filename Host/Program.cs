using System.CommandLine;
using ActorNvme.Host.Cli;
using ActorNvme.Host.Perf;

namespace ActorNvme.Host;

/// <summary>The <c>actornvme</c> command: demo, discover, serve, config, rpc, target, perf.</summary>
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

        var parsed = BuildRoot().Parse(args);
        if (parsed.Errors.Count > 0 && !args.Contains("--help") && !args.Contains("-h"))
        {
            // One line per mistake, naming the command; the usage is one --help away.
            string command = string.Join(' ', parsed.CommandResult.Command.Name is "actornvme" or "" ? [] : new[] { parsed.CommandResult.Command.Name });
            foreach (var error in parsed.Errors)
            {
                await Console.Error.WriteLineAsync($"actornvme{(command.Length > 0 ? " " + command : string.Empty)}: {error.Message.ReplaceLineEndings(" ")} (see --help)").ConfigureAwait(false);
            }

            return 2;
        }

        try
        {
            return await parsed.InvokeAsync(new InvocationConfiguration { EnableDefaultExceptionHandler = false }).ConfigureAwait(false);
        }
        catch (Exception e) when (Environment.GetEnvironmentVariable("ACTORNVME_TRACE") is null)
        {
            // A failure nobody anticipated: one line for the operator (ACTORNVME_TRACE=1 shows the stack).
            await Console.Error.WriteLineAsync($"actornvme: {e.GetType().Name}: {e.Message.ReplaceLineEndings(" ")}").ConfigureAwait(false);
            return 70;
        }
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
            ConfigCommand.Create(),
            RpcCommand.Create(),
            TargetCommand.Create(),
            Soak.SoakCommand.Create(),
            Soak.IdleControllersCommand.Create(),
            CompletionCommand.Create(),
            perf,
        };
        foreach (var command in NvmeCliCommands.Create())
        {
            root.Subcommands.Add(command);
        }

        return root;
    }
}
