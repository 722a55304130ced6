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
}
