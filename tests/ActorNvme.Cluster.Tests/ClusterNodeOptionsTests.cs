using ActorNvme.Cluster;

namespace ActorNvme.Cluster.Tests;

public sealed class ClusterNodeOptionsTests
{
    [Fact]
    public void Seed_given_as_host_and_port_becomes_the_node_address_of_the_system()
    {
        Assert.Equal("akka.tcp://actornvme@127.0.0.1:4551", NvmeClusterNodeOptions.SeedAddress("127.0.0.1:4551"));
        Assert.Equal("akka.tcp://other@10.0.0.1:1", NvmeClusterNodeOptions.SeedAddress("akka.tcp://other@10.0.0.1:1"));
    }

    [Theory]
    [InlineData("127.0.0.1")]
    [InlineData("127.0.0.1:")]
    [InlineData("127.0.0.1:70000")]
    [InlineData(":4420")]
    public void A_path_that_is_not_traddr_and_trsvcid_is_refused(string path)
    {
        Assert.Throws<ArgumentException>(() => ClusterSubsystem.ParsePath(path));
    }

    [Fact]
    public void Node_options_become_config_with_the_split_brain_strategy_and_seeds()
    {
        var config = new NvmeClusterNodeOptions
        {
            Port = 4551,
            SeedNodes = ["127.0.0.1:4551", "127.0.0.1:4552"],
            DowningStrategy = "keep-oldest",
            StableAfter = TimeSpan.FromSeconds(3),
            MinMembers = 2,
        }.ToConfig().WithFallback(NvmeClusterSettings.ReferenceConfig);

        Assert.Equal(4551, config.GetInt("akka.remote.dot-netty.tcp.port"));
        Assert.Equal(["akka.tcp://actornvme@127.0.0.1:4551", "akka.tcp://actornvme@127.0.0.1:4552"], config.GetStringList("akka.cluster.seed-nodes"));
        Assert.Equal("keep-oldest", config.GetString("akka.cluster.split-brain-resolver.active-strategy"));
        Assert.Equal(TimeSpan.FromSeconds(3), config.GetTimeSpan("akka.cluster.split-brain-resolver.stable-after"));
        Assert.Equal(2, config.GetInt("akka.cluster.min-nr-of-members"));
        Assert.Equal("Akka.Cluster.SBR.SplitBrainResolverProvider, Akka.Cluster", config.GetString("akka.cluster.downing-provider-class"));
    }

    [Fact]
    public void Keep_majority_is_the_default_strategy()
    {
        var config = new NvmeClusterNodeOptions { SeedNodes = ["127.0.0.1:1"] }.ToConfig().WithFallback(NvmeClusterSettings.ReferenceConfig);
        Assert.Equal("keep-majority", config.GetString("akka.cluster.split-brain-resolver.active-strategy"));
    }

    [Theory]
    [InlineData("keep-everyone")]
    [InlineData("")]
    public void An_unknown_split_brain_strategy_is_refused_with_its_name(string strategy)
    {
        var e = Assert.Throws<ArgumentException>(() => new NvmeClusterNodeOptions { DowningStrategy = strategy }.ToConfig());
        Assert.Contains("split-brain strategy", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Cluster_settings_refuse_a_bad_discovery_address_and_shard_count()
    {
        Assert.Throws<ArgumentException>(() => NvmeClusterSettings.Create(Akka.Configuration.ConfigurationFactory.ParseString("actornvme.cluster.shards = 0")));
        Assert.Throws<ArgumentException>(() => NvmeClusterSettings.Create(Akka.Configuration.ConfigurationFactory.ParseString("actornvme.cluster.discovery = [\"nowhere\"]")));
        var settings = NvmeClusterSettings.Create(Akka.Configuration.ConfigurationFactory.ParseString("actornvme.cluster.discovery = [\"127.0.0.1:8009\"]"));
        Assert.Equal(["127.0.0.1:8009"], settings.Discovery);
    }

    [Fact]
    public void Local_names_are_safe_and_tell_two_nqns_with_one_tail_apart()
    {
        string a = ClusterSubsystem.LocalName("nqn.2016-06.io.a:disk/1");
        string b = ClusterSubsystem.LocalName("nqn.2016-06.io.b:disk/1");
        Assert.Matches("^[A-Za-z0-9_-]+$", a);
        Assert.NotEqual(a, b);
    }

    [Fact]
    public void Host_settings_leave_the_cluster_section_to_this_layer_but_still_refuse_a_misspelt_key()
    {
        var config = Akka.Configuration.ConfigurationFactory.ParseString("actornvme.cluster.discovery = [\"127.0.0.1:8009\"]\nactornvme.cluster.reassert-interval = 100ms");
        Assert.NotNull(ActorNvme.Actors.Settings.NvmeHostSettings.Create(config));
        Assert.Throws<ActorNvme.Actors.Settings.InvalidNvmeSettingsException>(() =>
            ActorNvme.Actors.Settings.NvmeHostSettings.Create(Akka.Configuration.ConfigurationFactory.ParseString("actornvme.clustr.discovery = []")));
    }

    [Theory]
    [InlineData("actornvme.cluster.shardz = 3", "actornvme.cluster.shardz")]
    [InlineData("actornvme.cluster.store.provder = sqlite", "actornvme.cluster.store.provder")]
    [InlineData("actornvme.cluster.store.provider = mysql", "actornvme.cluster.store.provider")]
    [InlineData("actornvme.cluster.store.provider = postgresql", "actornvme.cluster.store.connection-string")]
    [InlineData("actornvme.cluster.store { provider = postgresql, connection-string = \"Port=5432\" }", "actornvme.cluster.store.connection-string")]
    [InlineData("actornvme.cluster.store.snapshot-every = 0", "actornvme.cluster.store.snapshot-every")]
    [InlineData("actornvme.cluster.unclaimed-entity-timeout = 0s", "actornvme.cluster.unclaimed-entity-timeout")]
    public void A_bad_cluster_key_or_store_value_is_refused_with_the_key_named(string hocon, string key)
    {
        var e = Assert.Throws<ArgumentException>(() => NvmeClusterSettings.Create(Akka.Configuration.ConfigurationFactory.ParseString(hocon)));
        Assert.Contains(key, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void The_store_is_SQLite_by_default_and_PostgreSQL_when_asked()
    {
        var byDefault = NvmeClusterSettings.Create(Akka.Configuration.Config.Empty).Store;
        Assert.Equal(ClusterStoreProvider.Sqlite, byDefault.Provider);
        Assert.EndsWith("cluster-state.db", byDefault.SqliteFile, StringComparison.Ordinal);

        var postgres = NvmeClusterSettings.Create(new NvmeClusterNodeOptions { Store = "postgresql:Host=db.example;Username=nvme;Database=actornvme" }.ToConfig()).Store;
        Assert.Equal(ClusterStoreProvider.PostgreSql, postgres.Provider);
        var akka = postgres.ToAkkaConfig();
        Assert.Equal(ClusterStoreSettings.JournalPluginId, akka.GetString("akka.persistence.journal.plugin"));
        Assert.Equal("PostgreSQL.15", akka.GetString("akka.persistence.journal.sql.provider-name"));
        Assert.Contains("db.example", akka.GetString("akka.persistence.snapshot-store.sql.connection-string"), StringComparison.Ordinal);

        var sqlite = NvmeClusterSettings.Create(new NvmeClusterNodeOptions { Store = "sqlite:/tmp/x/state.db" }.ToConfig()).Store;
        Assert.Equal("/tmp/x/state.db", sqlite.SqliteFile);
        Assert.Equal("SQLite.MS", sqlite.ToAkkaConfig().GetString("akka.persistence.journal.sql.provider-name"));
    }

    [Theory]
    [InlineData("mysql:x")]
    [InlineData("sqlite:")]
    [InlineData("postgresql")]
    public void A_store_option_that_is_not_sqlite_or_postgresql_is_refused(string store)
    {
        var e = Assert.Throws<ArgumentException>(() => new NvmeClusterNodeOptions { Store = store }.ToConfig());
        Assert.Contains("sqlite:FILE or postgresql:CONNECTION-STRING", e.Message, StringComparison.Ordinal);
    }
}
