using ActorNvme.Host.Perf;

namespace ActorNvme.Host;

public static class Program
{
    public static async Task<int> Main(string[] args)
    {
        ArgumentNullException.ThrowIfNull(args);
        if (args.Length > 0 && args[0] == "perf")
        {
            return await PerfCommand.RunAsync(args[1..]).ConfigureAwait(false);
        }

        await Console.Error.WriteLineAsync("actornvme: the only command in this build is 'perf' (actornvme perf --help).").ConfigureAwait(false);
        return 2;
    }
}
