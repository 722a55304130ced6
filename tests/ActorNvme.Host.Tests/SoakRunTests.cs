using ActorNvme.Host.Soak;
using ActorNvme.Io;
using ActorNvme.Target;
using ActorNvme.Transport;

namespace ActorNvme.Host.Tests;

/// <summary>
/// <c>actornvme soak</c> against our Target over two paths: the figures the multipath shell tests assert on
/// (commands per path, the write resubmit delay) are in its summary, and a second soak on the same
/// namespace does not take the blocks the first one left for bad reads (the shell tests run two soaks).
/// </summary>
public sealed class SoakRunTests : IAsyncDisposable
{
    private const string Nqn = "nqn.2016-06.io.actornvme:soak-test";

    private readonly NvmeTarget _target = new();

    public async ValueTask DisposeAsync() => await _target.DisposeAsync();

    [Fact]
    public async Task A_second_soak_on_the_same_namespace_reads_no_block_of_the_first_as_bad_and_round_robin_counts_both_paths()
    {
        _target.AddSubsystem(Nqn).AddNamespace(NamespaceOptions.Ram(16 * 1024 * 1024, 512));
        var paths = new[] { _target.ListenTcp("127.0.0.1", 0), _target.ListenTcp("127.0.0.1", 0) }
            .Select(l => new TransportAddress("127.0.0.1", l.Address.Port))
            .ToArray();

        // The second run writes over the first's blocks but has no time to write them all, so at its last
        // check many still hold the first run's stamps, with generations the second never wrote.
        var first = await RunAsync(paths, writers: 4, blocksPerWriter: 4000, seconds: 2, new MultipathPolicy(MultipathPolicyMode.ActivePassive));
        Assert.Equal(0, first["bad_reads"]!.GetValue<long>());
        Assert.True(first["writes"]!.GetValue<long>() > 100, "the first soak wrote next to nothing");
        Assert.True(first["write_resubmit_delay_ms"]!.GetValue<double>() >= 2000, "the write resubmit delay covers at least KATO (2 s)");

        var second = await RunAsync(paths, writers: 1, blocksPerWriter: 16000, seconds: 0.2, new MultipathPolicy(MultipathPolicyMode.ActiveActive, MultipathSelector.RoundRobin, 1));
        Assert.InRange(second["writes"]!.GetValue<long>(), 1, 15_999);
        Assert.Equal(0, second["bad_reads"]!.GetValue<long>());
        Assert.Equal(0, second["lost_acknowledged_writes"]!.GetValue<long>());
        Assert.Empty(second["problems"]!.AsArray());
        var perPath = second["commands_per_path"]!.AsObject().Select(kv => kv.Value!.GetValue<long>()).ToArray();
        Assert.Equal(2, perPath.Length);
        Assert.All(perPath, count => Assert.True(count > 0, "round robin left a path idle"));
        Assert.InRange(Math.Abs(perPath[0] - perPath[1]), 0, Math.Max(perPath[0], perPath[1]) / 10);
    }

    private static async Task<System.Text.Json.Nodes.JsonObject> RunAsync(TransportAddress[] paths, int writers, int blocksPerWriter, double seconds, MultipathPolicy policy)
    {
        var options = new SoakOptions(
            paths,
            Nqn,
            "nqn.2014-08.org.nvmexpress:uuid:5e0f6c2a-55d4-4a39-9a57-1c1f0b6b4d11",
            TimeSpan.FromSeconds(seconds),
            writers,
            blocksPerWriter,
            CheckpointEvery: TimeSpan.FromMinutes(10),
            KeepAliveTimeout: TimeSpan.FromSeconds(2),
            policy,
            StallThreshold: TimeSpan.FromMilliseconds(100),
            Readers: 1,
            ReadBlocks: 8);
        return await SoakRun.RunAsync(options, TextWriter.Null, CancellationToken.None).WaitAsync(TimeSpan.FromMinutes(3));
    }
}
