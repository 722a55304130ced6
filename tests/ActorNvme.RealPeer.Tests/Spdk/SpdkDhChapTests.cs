using System.Collections.Concurrent;
using Akka.Actor;
using Akka.Configuration;
using ActorNvme.Actors.Connection;
using ActorNvme.Actors.Settings;
using ActorNvme.Actors.Subsystem;
using ActorNvme.Io;
using ActorNvme.Protocol.Auth;
using ActorNvme.RealPeer.Tests.Harness;
using ActorNvme.Transport;
using ActorNvme.Transport.BringUp;
using ActorNvme.Transport.Tcp;
using Xunit;

namespace ActorNvme.RealPeer.Tests.Spdk;

/// <summary>
/// Our host's DH-HMAC-CHAP against SPDK's nvmf_tgt (its keyring, keys in 0600 files): cnode1 requires
/// unidirectional authentication, cnode2 bidirectional. Successful runs bring up the admin queue and two
/// I/O queues through the actors and write and read back data; refusals must name the subsystem and the step.
/// </summary>
public sealed class SpdkDhChapTests(SpdkDhChapTests.Peer peer) : IClassFixture<SpdkDhChapTests.Peer>
{
    private const string Unidirectional = "nqn.2016-06.io.spdk:cnode1";
    private const string Bidirectional = "nqn.2016-06.io.spdk:cnode2";
    private static readonly Guid HostId = Guid.Parse("0c3e5d7a-1b2c-4d5e-8f90-a1b2c3d4e5f6");
    private static readonly string HostNqn = $"nqn.2014-08.org.nvmexpress:uuid:{HostId}";
    private static readonly TimeSpan Deadline = TimeSpan.FromMinutes(2);

    [SpdkPeerFact]
    public async Task Unidirectional_sha256_null_authenticates_every_queue_and_data_reads_back()
    {
        var credentials = new DhChapHostCredentials(DhChapSecret.Parse(peer.HostSecret)) { Hashes = [DhChapHashId.Sha256], Groups = [DhChapGroupId.Null] };
        var result = await BringUpAsync(Unidirectional, credentials);
        Assert.Equal(new DhChapStep.Authenticated(DhChapHashId.Sha256, DhChapGroupId.Null, false), result.Authentication);

        await WriteAndReadBackAsync(Unidirectional, credentials, seed: 1);
    }

    [SpdkPeerFact]
    public async Task Bidirectional_sha384_ffdhe2048_verifies_the_controller_and_data_reads_back()
    {
        var credentials = new DhChapHostCredentials(DhChapSecret.Parse(peer.HostSecret), DhChapSecret.Parse(peer.ControllerSecret))
        {
            Hashes = [DhChapHashId.Sha384],
            Groups = [DhChapGroupId.Ffdhe2048],
        };
        var result = await BringUpAsync(Bidirectional, credentials);
        Assert.Equal(new DhChapStep.Authenticated(DhChapHashId.Sha384, DhChapGroupId.Ffdhe2048, true), result.Authentication);

        await WriteAndReadBackAsync(Bidirectional, credentials, seed: 2);
    }

    [SpdkPeerFact]
    public async Task Bidirectional_sha512_ffdhe8192_authenticates()
    {
        var credentials = new DhChapHostCredentials(DhChapSecret.Parse(peer.HostSecret), DhChapSecret.Parse(peer.ControllerSecret))
        {
            Hashes = [DhChapHashId.Sha512],
            Groups = [DhChapGroupId.Ffdhe8192],
        };
        var result = await BringUpAsync(Bidirectional, credentials);
        Assert.Equal(new DhChapStep.Authenticated(DhChapHashId.Sha512, DhChapGroupId.Ffdhe8192, true), result.Authentication);
    }

    [SpdkPeerFact]
    public async Task Bidirectional_with_every_offer_authenticates_with_the_controllers_choice()
    {
        var credentials = new DhChapHostCredentials(DhChapSecret.Parse(peer.HostSecret), DhChapSecret.Parse(peer.ControllerSecret));
        var result = await BringUpAsync(Bidirectional, credentials);
        Assert.NotNull(result.Authentication);
        Assert.True(result.Authentication!.ControllerAuthenticated);
    }

    [SpdkPeerFact]
    public async Task A_wrong_host_key_is_refused_with_auth_failure1_naming_the_subsystem()
    {
        var credentials = new DhChapHostCredentials(DhChapSecret.Parse(SpdkTarget.NewSecret())) { Groups = [DhChapGroupId.Null] };
        var error = await Assert.ThrowsAsync<ControllerBringUpException>(() => BringUpAsync(Unidirectional, credentials));

        Assert.Equal(BringUpFailureKind.AuthenticationFailed, error.Failure.Kind);
        Assert.Contains(Unidirectional, error.Message, StringComparison.Ordinal);
        Assert.Contains("AUTH_Failure1", error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(peer.HostSecret.Split(':')[2], error.Message, StringComparison.Ordinal);
    }

    [SpdkPeerFact]
    public async Task A_wrong_controller_key_fails_controller_authentication()
    {
        var credentials = new DhChapHostCredentials(DhChapSecret.Parse(peer.HostSecret), DhChapSecret.Parse(SpdkTarget.NewSecret())) { Groups = [DhChapGroupId.Ffdhe2048] };
        var error = await Assert.ThrowsAsync<ControllerBringUpException>(() => BringUpAsync(Bidirectional, credentials));

        Assert.Equal(BringUpFailureKind.AuthenticationFailed, error.Failure.Kind);
        Assert.Contains(Bidirectional, error.Message, StringComparison.Ordinal);
        Assert.Contains("controller authentication failed", error.Message, StringComparison.Ordinal);
    }

    [SpdkPeerFact]
    public async Task No_key_for_a_subsystem_that_requires_one_is_refused_naming_it()
    {
        var error = await Assert.ThrowsAsync<ControllerBringUpException>(() => BringUpAsync(Unidirectional, null));

        Assert.Equal(BringUpFailureKind.AuthenticationFailed, error.Failure.Kind);
        Assert.Contains($"{Unidirectional} requires DH-HMAC-CHAP", error.Message, StringComparison.Ordinal);
    }

    [SpdkPeerFact]
    public async Task The_host_actors_report_a_wrong_key_as_an_authentication_failure()
    {
        var settings = NvmeHostSettings.Default with
        {
            HostNqn = HostNqn,
            HostId = HostId,
            DhChap = new DhChapHostCredentials(DhChapSecret.Parse(SpdkTarget.NewSecret())) { Groups = [DhChapGroupId.Ffdhe2048] },
        };
        using var system = ActorSystem.Create("spdk-dhchap-refused", ConfigurationFactory.ParseString("akka.loglevel = WARNING"));
        try
        {
            var (_, failures) = Attach(system, Unidirectional, settings);
            string reason = await failures.Reader.ReadAsync().AsTask().WaitAsync(Deadline);
            Assert.Contains("AUTH_Failure1", reason, StringComparison.Ordinal);
            Assert.Contains(Unidirectional, reason, StringComparison.Ordinal);
            Assert.Contains(nameof(CloseReason.AuthenticationFailed), reason, StringComparison.Ordinal);
        }
        finally
        {
            await system.Terminate().WaitAsync(Deadline);
        }
    }

    private async Task<ControllerBringUpResult> BringUpAsync(string subsystemNqn, DhChapHostCredentials? credentials)
    {
        var address = new TransportAddress("127.0.0.1", peer.Target!.Port);
        await using var client = await AdminClient.ConnectAsync(new TcpTransport(), address, QueuePairOptions.Admin).WaitAsync(Deadline);
        var parameters = new FabricsConnectParameters(HostId, subsystemNqn, HostNqn) { KeepAliveMilliseconds = 30_000 };
        var options = new BringUpOptions(parameters, QueuePairOptions.Admin.QueueSize)
        {
            Goal = BringUpGoal.Identified,
            Authentication = credentials,
        };
        return await client.BringUpAsync(options).WaitAsync(Deadline);
    }

    private async Task WriteAndReadBackAsync(string subsystemNqn, DhChapHostCredentials credentials, int seed)
    {
        var settings = NvmeHostSettings.Default with { HostNqn = HostNqn, HostId = HostId, IoQueues = 2, DhChap = credentials };
        using var system = ActorSystem.Create($"spdk-dhchap-{seed}", ConfigurationFactory.ParseString("akka.loglevel = WARNING"));
        try
        {
            var (added, failures) = Attach(system, subsystemNqn, settings);
            var device = await Task.WhenAny(added.Task, failures.Reader.ReadAsync().AsTask()).WaitAsync(Deadline) == added.Task
                ? await added.Task
                : throw new InvalidOperationException($"the controller failed: {await failures.Reader.ReadAsync()}");
            var path = Assert.Single(device.Paths);
            Assert.Equal(2, path.Value.Queues.Count);

            var random = new Random(seed);
            var writes = new List<(ulong Lba, byte[] Data)>();
            for (int i = 0; i < 16; i++)
            {
                var data = new byte[random.Next(1, 64) * 512];
                random.NextBytes(data);
                writes.Add(((ulong)i * 128, data));
            }

            await Task.WhenAll(writes.Select(w => Task.Run(async () => await device.WriteAsync(w.Lba, w.Data)))).WaitAsync(Deadline);
            await Task.WhenAll(writes.Select(w => Task.Run(async () =>
            {
                var back = new byte[w.Data.Length];
                await device.ReadAsync(w.Lba, back);
                Assert.True(w.Data.AsSpan().SequenceEqual(back), $"{w.Data.Length} bytes at LBA {w.Lba} read back differently");
            }))).WaitAsync(Deadline);
        }
        finally
        {
            await system.Terminate().WaitAsync(Deadline);
        }
    }

    private (TaskCompletionSource<BlockDevice> Added, System.Threading.Channels.Channel<string> Failures) Attach(ActorSystem system, string subsystemNqn, NvmeHostSettings settings)
    {
        return WatchedAttach.Start(system, subsystemNqn, new TransportAddress("127.0.0.1", peer.Target!.Port), settings);
    }

    /// <summary>The target with cnode1 (host key) and cnode2 (host and controller keys) for <see cref="HostNqn"/>.</summary>
    public sealed class Peer : IAsyncLifetime
    {
        public SpdkTarget? Target { get; private set; }

        public string HostSecret { get; } = SpdkTarget.NewSecret(1);

        public string ControllerSecret { get; } = SpdkTarget.NewSecret(3);

        public async Task InitializeAsync()
        {
            if (SpdkTarget.Bundle is null)
            {
                return;
            }

            Target = await SpdkTarget.StartAsync();
            await Target.AddKeyAsync("key0", HostSecret);
            await Target.AddKeyAsync("ckey0", ControllerSecret);
            await Target.AddSubsystemAsync(Unidirectional, "Malloc1");
            await Target.AddHostAsync(Unidirectional, HostNqn, "key0");
            await Target.AddSubsystemAsync(Bidirectional, "Malloc2");
            await Target.AddHostAsync(Bidirectional, HostNqn, "key0", "ckey0");
        }

        public async Task DisposeAsync()
        {
            if (Target is not null)
            {
                await Target.DisposeAsync();
            }
        }
    }
}
