using ActorNvme.Cluster;

namespace ActorNvme.Cluster.Tests;

public sealed class NodeFenceTests
{
    private const string HostNqn = "nqn.2014-08.org.nvmexpress:uuid:5b1f2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d";

    [Fact]
    public void Each_node_has_its_own_stable_nonzero_key_and_host_identifier()
    {
        string[] nodes = ["akka.tcp://actornvme@127.0.0.1:4711", "akka.tcp://actornvme@127.0.0.1:4712", "node-c"];
        var keys = nodes.Select(NodeFence.KeyOf).ToArray();
        var hostIds = nodes.Select(n => NodeFence.HostIdOf(HostNqn, n)).ToArray();

        Assert.Equal(nodes.Length, keys.Distinct().Count());
        Assert.Equal(nodes.Length, hostIds.Distinct().Count());
        Assert.DoesNotContain(0UL, keys);
        Assert.DoesNotContain(Guid.Empty, hostIds);
        // A node restarted under the same name is the same registrant.
        Assert.Equal(keys[0], NodeFence.KeyOf(nodes[0]));
        Assert.Equal(hostIds[0], NodeFence.HostIdOf(HostNqn, nodes[0]));
        // Another host NQN is another host.
        Assert.NotEqual(hostIds[0], NodeFence.HostIdOf(HostNqn + "x", nodes[0]));
    }

    [Fact]
    public void Fencing_is_on_by_default_and_can_be_turned_off()
    {
        Assert.True(NvmeClusterSettings.Create(Akka.Configuration.Config.Empty).FenceWithReservations);
        var off = Akka.Configuration.ConfigurationFactory.ParseString("actornvme.cluster.fence-with-reservations = off");
        Assert.False(NvmeClusterSettings.Create(off).FenceWithReservations);
    }

    [Fact]
    public void With_the_fence_on_the_removal_margin_is_the_fenced_one_unless_the_application_sets_it()
    {
        // Fence on (default), margin left off: the shards of a removed node start on a survivor after the fenced margin.
        var margin = NvmeClusterSettings.RemovalMarginConfig(Akka.Configuration.Config.Empty);
        Assert.Equal(TimeSpan.FromMilliseconds(100), margin.GetTimeSpan("akka.cluster.down-removal-margin"));

        var shorter = Akka.Configuration.ConfigurationFactory.ParseString("actornvme.cluster.fenced-removal-margin = 40ms");
        Assert.Equal(TimeSpan.FromMilliseconds(40), NvmeClusterSettings.RemovalMarginConfig(shorter).GetTimeSpan("akka.cluster.down-removal-margin"));

        // Fence off: nothing, so Akka's margin (the resolver's stable-after) holds the survivors back as before.
        var off = Akka.Configuration.ConfigurationFactory.ParseString("actornvme.cluster.fence-with-reservations = off");
        Assert.True(NvmeClusterSettings.RemovalMarginConfig(off).IsEmpty);

        // The application's own margin wins.
        var own = Akka.Configuration.ConfigurationFactory.ParseString("akka.cluster.down-removal-margin = 7s");
        Assert.True(NvmeClusterSettings.RemovalMarginConfig(own).IsEmpty);

        var zero = Akka.Configuration.ConfigurationFactory.ParseString("actornvme.cluster.fenced-removal-margin = 0s");
        Assert.Throws<ArgumentException>(() => NvmeClusterSettings.Create(zero));
    }

    [Fact]
    public async Task A_node_system_gets_the_fenced_margin_and_without_the_fence_keeps_Akkas()
    {
        var fenced = NvmeCluster.CreateSystem(new NvmeClusterNodeOptions { NodeName = "margin-a", Store = "sqlite:" + Path.Combine(Path.GetTempPath(), $"actornvme-margin-{Guid.NewGuid():N}.db") });
        var unfenced = NvmeCluster.CreateSystem(
            new NvmeClusterNodeOptions { NodeName = "margin-b", Store = "sqlite:" + Path.Combine(Path.GetTempPath(), $"actornvme-margin-{Guid.NewGuid():N}.db"), StableAfter = TimeSpan.FromSeconds(3) },
            Akka.Configuration.ConfigurationFactory.ParseString("actornvme.cluster.fence-with-reservations = off"));
        try
        {
            Assert.Equal(TimeSpan.FromMilliseconds(100), Akka.Cluster.Cluster.Get(fenced).DowningProvider.DownRemovalMargin);
            Assert.Equal(TimeSpan.FromSeconds(3), Akka.Cluster.Cluster.Get(unfenced).DowningProvider.DownRemovalMargin);
        }
        finally
        {
            await fenced.Terminate();
            await unfenced.Terminate();
        }
    }
}
