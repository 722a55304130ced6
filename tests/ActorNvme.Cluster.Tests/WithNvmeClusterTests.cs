using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Akka.Actor;
using Akka.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace ActorNvme.Cluster.Tests;

/// <summary><c>WithNvmeCluster</c> on Akka.Hosting: a one-node cluster whose shard region and node view answer.</summary>
public sealed class WithNvmeClusterTests
{
    [Fact]
    public async Task WithNvmeCluster_starts_the_region_and_registers_it()
    {
        int port = FreePort();
        NvmeCluster? started = null;
        string store = Path.Combine(Path.GetTempPath(), $"actornvme-hosted-{Guid.NewGuid():N}.db");
        var options = new NvmeClusterNodeOptions
        {
            Store = "sqlite:" + store,
            Port = port,
            NodeName = "hosted",
            SeedNodes = [$"127.0.0.1:{port.ToString(CultureInfo.InvariantCulture)}"],
        };
        using var host = new HostBuilder()
            .ConfigureServices(services => services.AddAkka(NvmeClusterNodeOptions.SystemName, akka => akka
                .AddHocon("akka.loglevel = WARNING\nakka.stdout-loglevel = WARNING", HoconAddMode.Prepend)
                .WithNvmeCluster(options, (_, _, _) => Task.FromResult<IReadOnlyList<DiscoveredSubsystem>>([]), started: c => started = c)))
            .Build();
        await host.StartAsync();
        try
        {
            var registry = host.Services.GetRequiredService<ActorRegistry>();
            var region = await registry.GetAsync<NvmeSubsystemRegion>().WaitAsync(TimeSpan.FromSeconds(60));

            // Answered by an entity the region started on this node once the node is Up: the region works.
            var ownership = await region.Ask<ClusterSubsystem.Ownership>(
                new ClusterSubsystem.GetOwnership("nqn.2016-06.io.actornvme:hosted", "nqn.2014-08.org.nvmexpress:uuid:1f0e2d3c-4b5a-4697-8877-665544332211"),
                TimeSpan.FromSeconds(60));
            Assert.Equal("hosted", ownership.Node);
            Assert.False(ownership.Attached);

            Assert.NotNull(started);
            Assert.Equal(region, started!.Region);
            var view = await started.GatherViewAsync(TimeSpan.FromSeconds(30));
            Assert.Equal(["hosted"], view.Nodes.Select(n => n.Node));
            Assert.Empty(view.Unanswered);
        }
        finally
        {
            await host.StopAsync(CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(60));
            Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
            File.Delete(store);
        }
    }

    private static int FreePort()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        int port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return port;
    }
}
