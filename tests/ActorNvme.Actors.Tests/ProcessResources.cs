using System.Threading.Channels;
using Akka.Actor;
using ActorNvme.Actors.Connection;
using ActorNvme.Actors.Host;

namespace ActorNvme.Actors.Tests;

/// <summary>What the process holds at one moment, for leak checks across many controller lifetimes.</summary>
public readonly record struct ResourceCounts(int Sockets, int Threads, int ReceiveThreads, int HostActors, int LedgerEntries)
{
    public override string ToString() =>
        $"{Sockets} socket(s), {Threads} thread(s) of which {ReceiveThreads} NVMe/TCP receive thread(s), {HostActors} actor(s) under /user/{NvmeHost.ActorName}, {LedgerEntries} ledger entr(ies)";
}

public static class ProcessResources
{
    /// <summary>Reads /proc for sockets and threads (Linux), and counts the host's actors by asking them to identify themselves.</summary>
    public static async Task<ResourceCounts> MeasureAsync(ActorSystem system)
    {
        int sockets = Directory.EnumerateFileSystemEntries("/proc/self/fd").Count(IsSocket);
        var threadNames = Directory.EnumerateDirectories("/proc/self/task").Select(ThreadName).ToArray();
        int receiveThreads = threadNames.Count(n => n.StartsWith("nvme-tcp", StringComparison.Ordinal));
        int actors = await CountActorsAsync(system, $"/user/{NvmeHost.ActorName}", depth: 5);
        return new ResourceCounts(sockets, threadNames.Length, receiveThreads, actors, OwnershipLedger.Get(system).Count);
    }

    private static bool IsSocket(string fd)
    {
        try
        {
            return new FileInfo(fd).LinkTarget?.StartsWith("socket:", StringComparison.Ordinal) == true;
        }
        catch (IOException)
        {
            return false; // closed meanwhile
        }
    }

    private static string ThreadName(string task)
    {
        try
        {
            return File.ReadAllText(Path.Combine(task, "comm")).Trim();
        }
        catch (IOException)
        {
            return string.Empty; // ended meanwhile
        }
    }

    /// <summary>Actors below <paramref name="root"/>, level by level through wildcard selections.</summary>
    private static async Task<int> CountActorsAsync(ActorSystem system, string root, int depth)
    {
        int total = 0;
        string pattern = root;
        for (int level = 1; level <= depth; level++)
        {
            pattern += "/*";
            total += await CountAsync(system, pattern);
        }

        return total;
    }

    private static async Task<int> CountAsync(ActorSystem system, string pattern)
    {
        // The answers are collected in a channel and the quiet period is a .NET timer: an Inbox's receive
        // timeout was seen never to fire at the end of a long run, which left the test waiting forever.
        var answers = Channel.CreateUnbounded<ActorIdentity>();
        var collector = system.ActorOf(Props.Create(() => new IdentityCollector(answers.Writer)));
        try
        {
            system.ActorSelection(pattern).Tell(new Identify(pattern), collector);
            int count = 0;
            while (true)
            {
                using var quiet = new CancellationTokenSource(TimeSpan.FromMilliseconds(300));
                try
                {
                    if ((await answers.Reader.ReadAsync(quiet.Token)).Subject is not null)
                    {
                        count++;
                    }
                }
                catch (OperationCanceledException)
                {
                    return count;
                }
            }
        }
        finally
        {
            system.Stop(collector);
        }
    }

    private sealed class IdentityCollector : ReceiveActor
    {
        public IdentityCollector(ChannelWriter<ActorIdentity> answers) => Receive<ActorIdentity>(m => answers.TryWrite(m));
    }
}

/// <summary>
/// Tests that compare process-wide counts (sockets, threads) run alone: a test running beside them
/// would open and close sockets of its own.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class ProcessWideCounts
{
    public const string Name = "process-wide counts";
}
