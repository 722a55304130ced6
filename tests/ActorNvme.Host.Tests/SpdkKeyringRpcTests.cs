using System.Text.Json;
using System.Text.Json.Nodes;
using Akka.Actor;
using Akka.Configuration;
using ActorNvme.Actors.Settings;
using ActorNvme.Host.JsonRpc;
using ActorNvme.Host.Spdk;
using ActorNvme.Protocol.Auth;

namespace ActorNvme.Host.Tests;

/// <summary>keyring_file_add_key / keyring_file_remove_key / keyring_get_keys with SPDK's rules, and dhchap_key naming keyring keys.</summary>
public sealed class SpdkKeyringRpcTests : IAsyncLifetime
{
    private readonly ActorSystem _system = ActorSystem.Create("spdk-keyring-tests", ConfigurationFactory.ParseString("akka.loglevel = WARNING"));
    private readonly string _directory = Directory.CreateTempSubdirectory("keyring-").FullName;
    private SpdkRpcService _service = null!;

    public async Task InitializeAsync()
    {
        _service = new SpdkRpcService(_system, NvmeHostSettings.Default with { ConnectTimeout = TimeSpan.FromMilliseconds(500), Resiliency = ResiliencySettings.FromSeconds(2, 1, 1) });
        await _service.InitializeAsync();
    }

    public async Task DisposeAsync()
    {
        await _system.Terminate();
        Directory.Delete(_directory, recursive: true);
    }

    [Fact]
    public async Task Keys_are_added_listed_without_secrets_and_removed()
    {
        string secret = DhChapSecret.Generate();
        string path = KeyFile("host.key", secret, ownerOnly: true);

        Assert.True((await CallAsync("keyring_file_add_key", $$"""{"name":"key0","path":"{{path}}"}"""))!.GetValue<bool>());
        var keys = (JsonArray)(await CallAsync("keyring_get_keys", null))!;
        var key = Assert.Single(keys)!;
        Assert.Equal("key0", key["name"]!.GetValue<string>());
        Assert.Equal(path, key["path"]!.GetValue<string>());
        Assert.DoesNotContain(secret.Split(':')[2], keys.ToJsonString(), StringComparison.Ordinal);

        var again = await Assert.ThrowsAsync<JsonRpcException>(() => CallAsync("keyring_file_add_key", $$"""{"name":"key0","path":"{{path}}"}"""));
        Assert.Equal(JsonRpcErrorCodes.Exists, again.Code);

        await CallAsync("keyring_file_remove_key", """{"name":"key0"}""");
        Assert.Empty((JsonArray)(await CallAsync("keyring_get_keys", null))!);
        var gone = await Assert.ThrowsAsync<JsonRpcException>(() => CallAsync("keyring_file_remove_key", """{"name":"key0"}"""));
        Assert.Contains("key0", gone.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Relative_paths_and_files_others_can_read_are_refused()
    {
        var relative = await Assert.ThrowsAsync<JsonRpcException>(() => CallAsync("keyring_file_add_key", """{"name":"k","path":"keys/host.key"}"""));
        Assert.Contains("Non-absolute paths are not allowed", relative.Message, StringComparison.Ordinal);

        string open = KeyFile("open.key", DhChapSecret.Generate(), ownerOnly: false);
        var error = await Assert.ThrowsAsync<JsonRpcException>(() => CallAsync("keyring_file_add_key", $$"""{"name":"k","path":"{{open}}"}"""));
        Assert.Contains("0600", error.Message, StringComparison.Ordinal);
        Assert.Empty((JsonArray)(await CallAsync("keyring_get_keys", null))!);
    }

    [Fact]
    public async Task Attach_with_a_key_not_in_the_keyring_or_a_controller_key_alone_is_refused_naming_it()
    {
        var unknown = await Assert.ThrowsAsync<JsonRpcException>(() => CallAsync("bdev_nvme_attach_controller", """{"name":"c","trtype":"tcp","traddr":"127.0.0.1","subnqn":"nqn.2016-06.io.spdk:cnode1","dhchap_key":"nokey"}"""));
        Assert.Contains("dhchap_key", unknown.Message, StringComparison.Ordinal);
        Assert.Contains("nokey", unknown.Message, StringComparison.Ordinal);

        string path = KeyFile("c.key", DhChapSecret.Generate(), ownerOnly: true);
        await CallAsync("keyring_file_add_key", $$"""{"name":"ckey","path":"{{path}}"}""");
        var alone = await Assert.ThrowsAsync<JsonRpcException>(() => CallAsync("bdev_nvme_attach_controller", """{"name":"c","trtype":"tcp","traddr":"127.0.0.1","subnqn":"nqn.2016-06.io.spdk:cnode1","dhchap_ctrlr_key":"ckey"}"""));
        Assert.Contains("dhchap_ctrlr_key needs dhchap_key", alone.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Set_keys_names_what_is_wrong_an_unknown_key_a_controller_key_alone_or_no_such_controller()
    {
        var unknownKey = await Assert.ThrowsAsync<JsonRpcException>(() => CallAsync("bdev_nvme_set_keys", """{"name":"nvme0","dhchap_key":"nokey"}"""));
        Assert.Contains("nokey", unknownKey.Message, StringComparison.Ordinal);

        string path = KeyFile("s.key", DhChapSecret.Generate(), ownerOnly: true);
        await CallAsync("keyring_file_add_key", $$"""{"name":"skey","path":"{{path}}"}""");
        var alone = await Assert.ThrowsAsync<JsonRpcException>(() => CallAsync("bdev_nvme_set_keys", """{"name":"nvme0","dhchap_ctrlr_key":"skey"}"""));
        Assert.Equal(JsonRpcErrorCodes.InvalidParams, alone.Code);
        Assert.Contains("bdev_nvme_set_keys: dhchap_ctrlr_key needs dhchap_key", alone.Message, StringComparison.Ordinal);

        var missing = await Assert.ThrowsAsync<JsonRpcException>(() => CallAsync("bdev_nvme_set_keys", """{"name":"nvme9","dhchap_key":"skey"}"""));
        Assert.Equal(JsonRpcErrorCodes.NoDevice, missing.Code);
        Assert.Contains("nvme9", missing.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_key_file_that_went_bad_after_it_was_added_is_refused_at_attach()
    {
        string path = KeyFile("bad.key", DhChapSecret.Generate(), ownerOnly: true);
        await CallAsync("keyring_file_add_key", $$"""{"name":"key1","path":"{{path}}"}""");
        await File.WriteAllTextAsync(path, "DHHC-1:00:AAAA:");

        var error = await Assert.ThrowsAsync<JsonRpcException>(() => CallAsync("bdev_nvme_attach_controller", """{"name":"c","trtype":"tcp","traddr":"127.0.0.1","subnqn":"nqn.2016-06.io.spdk:cnode1","dhchap_key":"key1"}"""));
        Assert.Equal(JsonRpcErrorCodes.InvalidParams, error.Code);
        Assert.Contains("key1", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_psk_on_start_discovery_reads_a_tls_discovery_port_and_attaches_its_subsystem_over_tls()
    {
        const string Nqn = "nqn.2016-06.io.actornvme:tls-discovery";
        string psk = ActorNvme.Protocol.Tls.NvmeTlsPsk.Generate(ActorNvme.Protocol.Tls.NvmeTlsPskHash.Sha256);
        var settings = NvmeHostSettings.Default with { ConnectTimeout = TimeSpan.FromSeconds(10), Resiliency = ResiliencySettings.FromSeconds(10, 1, 0) };
        await using var target = new ActorNvme.Target.NvmeTarget();
        var secure = target.ListenTcp("127.0.0.1", 0, secureChannel: true);
        target.AddSubsystem(Nqn).AddNamespace(ActorNvme.Target.NamespaceOptions.Ram(1024 * 1024));
        target.SetTlsPsk(Nqn, settings.HostNqn, psk);
        target.SetTlsPsk(ActorNvme.Protocol.Data.Nqn.Discovery, settings.HostNqn, psk);

        using var system = ActorSystem.Create("tls-discovery", ConfigurationFactory.ParseString("akka.loglevel = WARNING"));
        var service = new SpdkRpcService(system, settings);
        await service.InitializeAsync();
        string path = KeyFile("psk.key", psk, ownerOnly: true);
        await service.DispatchAsync("keyring_file_add_key", Parse($$"""{"name":"tls0","path":"{{path}}"}"""), CancellationToken.None);

        string where = $"\"trtype\":\"tcp\",\"traddr\":\"127.0.0.1\",\"trsvcid\":\"{secure.Address.Port}\",\"wait_for_attach\":true,\"attach_timeout_ms\":30000";
        var missing = await Assert.ThrowsAsync<JsonRpcException>(() => service.DispatchAsync("bdev_nvme_start_discovery", Parse($$"""{"name":"d",{{where}},"psk":"nope"}"""), CancellationToken.None));
        Assert.Contains("nope", missing.Message, StringComparison.Ordinal);

        Assert.True((await service.DispatchAsync("bdev_nvme_start_discovery", Parse($$"""{"name":"nvme",{{where}},"psk":"tls0"}"""), CancellationToken.None))!.GetValue<bool>());
        var bdevs = (JsonArray)(await service.DispatchAsync("bdev_get_bdevs", null, CancellationToken.None))!;
        Assert.Equal("nvme0n1", Assert.Single(bdevs)!["name"]!.GetValue<string>());
        await system.Terminate();
    }

    private static JsonElement Parse(string json) => JsonDocument.Parse(json).RootElement.Clone();

    private string KeyFile(string name, string secret, bool ownerOnly)
    {
        string path = Path.Combine(_directory, name);
        File.WriteAllText(path, secret + "\n");
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(path, ownerOnly ? UnixFileMode.UserRead | UnixFileMode.UserWrite : UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead);
        }

        return path;
    }

    private Task<JsonNode?> CallAsync(string method, string? parameters) =>
        _service.DispatchAsync(method, parameters is null ? null : JsonDocument.Parse(parameters).RootElement.Clone(), CancellationToken.None);
}
