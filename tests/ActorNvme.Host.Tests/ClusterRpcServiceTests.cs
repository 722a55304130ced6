using System.Text.Json.Nodes;
using ActorNvme.Cluster;
using ActorNvme.Host.Cli;
using ActorNvme.Host.ClusterNode;
using ActorNvme.Host.JsonRpc;

namespace ActorNvme.Host.Tests;

/// <summary>
/// A cluster node's JSON-RPC methods over gathered node views (no cluster here: the views are given), and
/// <c>actornvme list</c> against them: the owner of each device is shown, a node that did not answer is named.
/// </summary>
public sealed class ClusterRpcServiceTests
{
    private const string HostNqn = "nqn.2014-08.org.nvmexpress:uuid:0b7e1c2a-5d4f-4e3a-9c1b-2a3d4e5f6071";
    private const string NqnA = "nqn.2016-06.io.actornvme:owned-by-a";
    private const string NqnB = "nqn.2016-06.io.actornvme:owned-by-b";

    private static ClusterView.NodeView Node(string node, string nqn, string controller) => new(
        node,
        $"akka.tcp://actornvme@127.0.0.1:{(node == "node-a" ? 4001 : 4002)}",
        [new ClusterView.SubsystemView(
            controller,
            nqn,
            HostNqn,
            [new ClusterView.PathView(controller + "p0", "Live", null, "127.0.0.1", 4420)],
            [new ClusterView.DeviceView(controller + "n1", controller, nqn, 1, 512, 8192)])]);

    private static ClusterRpcService Service(params string[] unanswered) => new(
        (_, _) => Task.FromResult(new ClusterView.Gathered([Node("node-a", NqnA, "ca-0001"), Node("node-b", NqnB, "cb-0002")], unanswered)),
        "node-a");

    [Fact]
    public async Task The_cluster_wide_lists_carry_each_entrys_owner_in_SPDKs_shape()
    {
        var service = Service();
        var bdevs = (await service.DispatchAsync("bdev_get_bdevs", null, CancellationToken.None))!.AsArray();
        Assert.Equal(2, bdevs.Count);
        var byName = bdevs.ToDictionary(b => b!["name"]!.GetValue<string>(), b => b!);
        Assert.Equal("node-a", byName["ca-0001n1"]["actornvme"]!["owner"]!.GetValue<string>());
        Assert.Equal("node-b", byName["cb-0002n1"]["actornvme"]!["owner"]!.GetValue<string>());
        Assert.Equal(NqnB, byName["cb-0002n1"]["driver_specific"]!["nvme"]![0]!["ctrlr_data"]!["subnqn"]!.GetValue<string>());
        Assert.Null(byName["cb-0002n1"]["actornvme"]!["unanswered"]);

        var controllers = (await service.DispatchAsync("bdev_nvme_get_controllers", null, CancellationToken.None))!.AsArray();
        Assert.Equal(["ca-0001:node-a", "cb-0002:node-b"], controllers.Select(c => $"{c!["name"]}:{c["actornvme"]!["owner"]}").Order(StringComparer.Ordinal));
        Assert.Equal("enabled", controllers[0]!["ctrlrs"]![0]!["state"]!.GetValue<string>());
    }

    [Fact]
    public async Task A_list_only_service_refuses_attach_with_why()
    {
        var e = await Assert.ThrowsAsync<JsonRpcException>(() => Service().DispatchAsync("bdev_nvme_attach_controller", null, CancellationToken.None));
        Assert.Equal(JsonRpcErrorCodes.NotSupported, e.Code);
        Assert.Contains("cluster", e.Message, StringComparison.Ordinal);
        Assert.Contains("node-a", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_node_that_did_not_answer_is_named_and_an_empty_partial_answer_is_an_error()
    {
        const string Missing = "akka.tcp://actornvme@127.0.0.1:4003";
        var bdevs = (await Service(Missing).DispatchAsync("bdev_get_bdevs", null, CancellationToken.None))!.AsArray();
        Assert.All(bdevs, b => Assert.Equal(Missing, b!["actornvme"]!["unanswered"]![0]!.GetValue<string>()));

        var empty = new ClusterRpcService((_, _) => Task.FromResult(new ClusterView.Gathered([new ClusterView.NodeView("node-a", "a", [])], [Missing])), "node-a");
        var e = await Assert.ThrowsAsync<JsonRpcException>(() => empty.DispatchAsync("bdev_nvme_get_controllers", null, CancellationToken.None));
        Assert.Equal(JsonRpcErrorCodes.TimedOut, e.Code);
        Assert.Contains(Missing, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task List_shows_an_Owner_column_when_the_answer_carries_owners()
    {
        string socket = TempSocket.NewPath("owner");
        await using var server = new JsonRpcServer(socket, Service("akka.tcp://actornvme@127.0.0.1:4003"));
        server.Start();
        await using var client = await JsonRpcClient.ConnectAsync(socket);

        var table = new StringWriter();
        Assert.Equal(0, await NvmeCliCommands.ListAsync(client, json: false, table, CancellationToken.None));
        string[] lines = table.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Contains("Owner", lines[0], StringComparison.Ordinal);
        int ownerColumn = lines[0].IndexOf("Owner", StringComparison.Ordinal);
        Assert.Equal("node-a", lines.Single(l => l.StartsWith("ca-0001n1", StringComparison.Ordinal))[ownerColumn..].Split(' ')[0]);
        Assert.Equal("node-b", lines.Single(l => l.StartsWith("cb-0002n1", StringComparison.Ordinal))[ownerColumn..].Split(' ')[0]);
        Assert.Contains(lines, l => l.Contains("partial", StringComparison.Ordinal) && l.Contains("127.0.0.1:4003", StringComparison.Ordinal));

        var json = new StringWriter();
        await NvmeCliCommands.ListAsync(client, json: true, json, CancellationToken.None);
        var devices = JsonNode.Parse(json.ToString())!["Devices"]!.AsArray();
        Assert.Equal(["ca-0001n1=node-a", "cb-0002n1=node-b"], devices.Select(d => $"{d!["DevicePath"]}={d["Owner"]}").Order(StringComparer.Ordinal));
        Assert.Contains("ca-0001", devices.Single(d => d!["Owner"]!.GetValue<string>() == "node-a")!["Controller"]!.GetValue<string>(), StringComparison.Ordinal);
    }
}
