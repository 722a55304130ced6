using ActorNvme.Actors.Settings;
using ActorNvme.Host.Cli;

namespace ActorNvme.Host.Tests;

/// <summary>One host identity for every command: configuration, else nvme-cli's files, else one generated once and kept.</summary>
public sealed class HostIdentityTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("anvme-identity").FullName;

    private string Etc => Path.Combine(_root, "etc");

    private string State => Path.Combine(_root, "state");

    public void Dispose() => Directory.Delete(_root, recursive: true);

    [Fact]
    public void Without_configuration_or_etc_files_one_identity_is_generated_kept_and_reused()
    {
        var first = HostIdentity.Resolve(etcDirectory: Etc, stateDirectory: State);
        Assert.Equal($"nqn.2014-08.org.nvmexpress:uuid:{first.HostId}", first.HostNqn);
        Assert.Contains("generated, kept in", first.Source, StringComparison.Ordinal);
        Assert.True(File.Exists(Path.Combine(State, "host-identity")));

        var second = HostIdentity.Resolve(etcDirectory: Etc, stateDirectory: State);
        Assert.Equal(first.HostNqn, second.HostNqn);
        Assert.Equal(first.HostId, second.HostId);
        Assert.Equal(Path.Combine(State, "host-identity"), second.Source);
    }

    [Fact]
    public void Nvme_clis_files_come_before_the_state_file_and_the_configuration_before_both()
    {
        HostIdentity.Resolve(etcDirectory: Etc, stateDirectory: State); // a kept identity exists
        Directory.CreateDirectory(Etc);
        var etcId = Guid.NewGuid();
        File.WriteAllText(Path.Combine(Etc, "hostnqn"), "nqn.2014-08.org.nvmexpress:uuid:11111111-2222-3333-4444-555555555555\n");
        File.WriteAllText(Path.Combine(Etc, "hostid"), $"{etcId}\n");

        var fromEtc = HostIdentity.Resolve(etcDirectory: Etc, stateDirectory: State);
        Assert.Equal("nqn.2014-08.org.nvmexpress:uuid:11111111-2222-3333-4444-555555555555", fromEtc.HostNqn);
        Assert.Equal(etcId, fromEtc.HostId);

        var configuredId = Guid.NewGuid();
        var configured = HostIdentity.Resolve("nqn.2016-06.io.example:gateway-1", configuredId, Etc, State);
        Assert.Equal("nqn.2016-06.io.example:gateway-1", configured.HostNqn);
        Assert.Equal(configuredId, configured.HostId);
        Assert.Equal("configuration", configured.Source);
    }

    [Fact]
    public void A_malformed_etc_hostnqn_is_refused_naming_the_file()
    {
        Directory.CreateDirectory(Etc);
        File.WriteAllText(Path.Combine(Etc, "hostnqn"), "not an nqn\n");
        var error = Assert.Throws<InvalidNvmeSettingsException>(() => HostIdentity.Resolve(etcDirectory: Etc, stateDirectory: State));
        Assert.Contains(Path.Combine(Etc, "hostnqn"), error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_damaged_state_file_is_replaced_by_a_new_identity_that_is_kept()
    {
        Directory.CreateDirectory(State);
        File.WriteAllText(Path.Combine(State, "host-identity"), "hostnqn=broken\nhostid=nope\n");
        var fresh = HostIdentity.Resolve(etcDirectory: Etc, stateDirectory: State);
        Assert.StartsWith("nqn.2014-08.org.nvmexpress:uuid:", fresh.HostNqn, StringComparison.Ordinal);
        Assert.Equal(fresh.HostNqn, HostIdentity.Resolve(etcDirectory: Etc, stateDirectory: State).HostNqn);
    }
}
