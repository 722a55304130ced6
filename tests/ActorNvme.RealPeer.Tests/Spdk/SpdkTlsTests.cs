using Akka.Actor;
using Akka.Configuration;
using ActorNvme.Actors.Connection;
using ActorNvme.Actors.Settings;
using ActorNvme.Actors.Subsystem;
using ActorNvme.Io;
using ActorNvme.Protocol.Auth;
using ActorNvme.Protocol.Tls;
using ActorNvme.RealPeer.Tests.Harness;
using ActorNvme.Transport;
using Xunit;

namespace ActorNvme.RealPeer.Tests.Spdk;

/// <summary>
/// Our host over NVMe/TCP TLS 1.3 with a PSK against SPDK's nvmf_tgt (secure-channel listeners, PSKs on its
/// keyring): cnode1 has a SHA-256 PSK (TLS_AES_128_GCM_SHA256), cnode2 a SHA-384 one (TLS_AES_256_GCM_SHA384),
/// cnode3 a PSK and a DH-HMAC-CHAP key. Each success brings up two I/O queues through the actors and writes and
/// reads back data; a wrong PSK must fail as a TLS handshake naming the subsystem.
/// </summary>
public sealed class SpdkTlsTests(SpdkTlsTests.Peer peer) : IClassFixture<SpdkTlsTests.Peer>
{
    private const string Sha256Subsystem = "nqn.2016-06.io.spdk:cnode1";
    private const string Sha384Subsystem = "nqn.2016-06.io.spdk:cnode2";
    private const string WithDhChapSubsystem = "nqn.2016-06.io.spdk:cnode3";
    private static readonly Guid HostId = Guid.Parse("5b0c2e1d-3f4a-4b6c-9d8e-7f6a5b4c3d2e");
    private static readonly string HostNqn = $"nqn.2014-08.org.nvmexpress:uuid:{HostId}";
    private static readonly TimeSpan Deadline = TimeSpan.FromMinutes(2);

    [SpdkPeerFact]
    public async Task A_sha256_psk_runs_aes_128_gcm_and_data_reads_back_on_two_queues()
    {
        var psk = NvmeTlsPsk.Parse(peer.Sha256Psk);
        Assert.Equal(NvmeTlsCipherSuite.Aes128GcmSha256, psk.CipherSuite);
        await WriteAndReadBackAsync(Sha256Subsystem, NvmeHostSettings.Default with { TlsPsk = psk }, seed: 1);
    }

    [SpdkPeerFact]
    public async Task A_sha384_psk_runs_aes_256_gcm_and_data_reads_back_on_two_queues()
    {
        var psk = NvmeTlsPsk.Parse(peer.Sha384Psk);
        Assert.Equal(NvmeTlsCipherSuite.Aes256GcmSha384, psk.CipherSuite);
        await WriteAndReadBackAsync(Sha384Subsystem, NvmeHostSettings.Default with { TlsPsk = psk }, seed: 2);
    }

    /// <summary>
    /// SPDK's target (26.09-pre) looks PSKs up by version-0 identities only ("Could not find PSK for identity: NVMe1R01 ..."
    /// in its log) and ends the handshake with internal_error: the refusal must say so and how to get past it.
    /// </summary>
    [SpdkPeerFact]
    public async Task A_version_1_identity_is_refused_with_a_hint_to_offer_version_0()
    {
        var settings = NvmeHostSettings.Default with { HostNqn = HostNqn, HostId = HostId, TlsPsk = NvmeTlsPsk.Parse(peer.Sha256Psk), TlsIdentityVersion = 1 };
        using var system = ActorSystem.Create("spdk-tls-v1", ConfigurationFactory.ParseString("akka.loglevel = WARNING"));
        try
        {
            var (_, failures) = Attach(system, Sha256Subsystem, settings);
            string reason = await failures.Reader.ReadAsync().AsTask().WaitAsync(Deadline);
            Assert.Contains($"TLS handshake with {Sha256Subsystem}", reason, StringComparison.Ordinal);
            Assert.Contains("psk-identity-version 0 offers NVMe0R01", reason, StringComparison.Ordinal);
            Assert.DoesNotContain(peer.Sha256Psk.Split(':')[2], reason, StringComparison.Ordinal);
        }
        finally
        {
            await system.Terminate().WaitAsync(Deadline);
        }
    }

    [SpdkPeerFact]
    public async Task Tls_and_dh_hmac_chap_together_authenticate_every_queue_and_data_reads_back()
    {
        var settings = NvmeHostSettings.Default with
        {
            TlsPsk = NvmeTlsPsk.Parse(peer.Sha256Psk),
            DhChap = new DhChapHostCredentials(DhChapSecret.Parse(peer.DhChapSecret)) { Groups = [DhChapGroupId.Ffdhe2048] },
        };
        await WriteAndReadBackAsync(WithDhChapSubsystem, settings, seed: 3);
    }

    [SpdkPeerFact]
    public async Task A_wrong_psk_fails_the_tls_handshake_naming_the_subsystem_without_the_key()
    {
        string wrong = NvmeTlsPsk.Generate(NvmeTlsPskHash.Sha256);
        var settings = NvmeHostSettings.Default with { HostNqn = HostNqn, HostId = HostId, TlsPsk = NvmeTlsPsk.Parse(wrong) };
        using var system = ActorSystem.Create("spdk-tls-refused", ConfigurationFactory.ParseString("akka.loglevel = WARNING"));
        try
        {
            var (_, failures) = Attach(system, Sha256Subsystem, settings);
            string reason = await failures.Reader.ReadAsync().AsTask().WaitAsync(Deadline);
            Assert.Contains(nameof(CloseReason.TlsHandshakeFailed), reason, StringComparison.Ordinal);
            Assert.Contains($"TLS handshake with {Sha256Subsystem}", reason, StringComparison.Ordinal);
            Assert.DoesNotContain(wrong.Split(':')[2], reason, StringComparison.Ordinal);
            Assert.DoesNotContain(peer.Sha256Psk.Split(':')[2], reason, StringComparison.Ordinal);
        }
        finally
        {
            await system.Terminate().WaitAsync(Deadline);
        }
    }

    [SpdkPeerFact]
    public async Task Plain_tcp_to_a_secure_channel_listener_is_refused()
    {
        var settings = NvmeHostSettings.Default with { HostNqn = HostNqn, HostId = HostId };
        using var system = ActorSystem.Create("spdk-tls-plain", ConfigurationFactory.ParseString("akka.loglevel = WARNING"));
        try
        {
            var (added, failures) = Attach(system, Sha256Subsystem, settings);
            var first = await Task.WhenAny(added.Task, failures.Reader.ReadAsync().AsTask()).WaitAsync(Deadline);
            Assert.NotSame(added.Task, first);
        }
        finally
        {
            await system.Terminate().WaitAsync(Deadline);
        }
    }

    [SpdkPeerFact]
    public async Task Spdk_nvme_perf_runs_over_tls_against_our_target_with_either_suite_and_a_wrong_psk_is_refused()
    {
        const string Nqn = "nqn.2016-06.io.actornvme:tls-target";
        await using var target = new ActorNvme.Target.NvmeTarget();
        var listener = target.ListenTcp("127.0.0.1", 0, secureChannel: true);
        target.AddSubsystem(Nqn).AddNamespace(ActorNvme.Target.NamespaceOptions.Ram(16 * 1024 * 1024));
        string directory = Directory.CreateTempSubdirectory("anvme-tls-perf-").FullName;
        try
        {
            foreach (var hash in new[] { NvmeTlsPskHash.Sha256, NvmeTlsPskHash.Sha384 })
            {
                string psk = SpdkTarget.NewPsk(hash, HostNqn, Nqn);
                target.SetTlsPsk(Nqn, HostNqn, psk);
                var (iops, output) = await SpdkPerfAsync(directory, psk, listener.Address.Port, Nqn);
                Assert.True(iops > 0, $"spdk_nvme_perf over TLS ({hash}) against our target: {output}");
            }

            var (refusedIops, _) = await SpdkPerfAsync(directory, NvmeTlsPsk.Generate(), listener.Address.Port, Nqn);
            Assert.Equal(0, refusedIops);
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    /// <summary>spdk_nvme_perf -S ssl --psk-path for 2 s; the IOPS of its Total line, 0 when it attached nothing.</summary>
    private static async Task<(double Iops, string Output)> SpdkPerfAsync(string directory, string psk, int port, string nqn)
    {
        if (OperatingSystem.IsWindows())
        {
            throw new PlatformNotSupportedException("spdk_nvme_perf runs on Linux");
        }

        string path = Path.Combine(directory, "psk.key");
        File.Delete(path);
        await File.WriteAllTextAsync(path, psk);
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        var start = new System.Diagnostics.ProcessStartInfo(Path.Combine(SpdkTarget.Bundle!, "build/bin/spdk_nvme_perf")) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string arg in new[] { "-q", "8", "-o", "4096", "-w", "randread", "-t", "2", "-c", "0x2", "--no-huge", "-s", "512", "-S", "ssl", "--psk-path", path, "-r", $"trtype:tcp adrfam:IPv4 traddr:127.0.0.1 trsvcid:{port} subnqn:{nqn} hostnqn:{HostNqn}" })
        {
            start.ArgumentList.Add(arg);
        }

        using var process = System.Diagnostics.Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync().WaitAsync(Deadline);
        string output = await stdout + await stderr;
        var total = output.Split('\n').FirstOrDefault(l => l.TrimStart().StartsWith("Total", StringComparison.Ordinal));
        double iops = total is null ? 0 : double.Parse(total.Split(':')[1].Split(' ', StringSplitOptions.RemoveEmptyEntries)[0], System.Globalization.CultureInfo.InvariantCulture);
        return (iops, output);
    }

    private async Task WriteAndReadBackAsync(string subsystemNqn, NvmeHostSettings baseSettings, int seed)
    {
        var settings = baseSettings with { HostNqn = HostNqn, HostId = HostId, IoQueues = 2 };
        using var system = ActorSystem.Create($"spdk-tls-{seed}", ConfigurationFactory.ParseString("akka.loglevel = WARNING"));
        try
        {
            var (added, failures) = Attach(system, subsystemNqn, settings);
            var device = await Task.WhenAny(added.Task, failures.Reader.ReadAsync().AsTask()).WaitAsync(Deadline) == added.Task
                ? await added.Task
                : throw new InvalidOperationException($"the controller failed: {await failures.Reader.ReadAsync()}\n{peer.Target!.Log}");
            var path = Assert.Single(device.Paths);
            Assert.Equal(2, path.Value.Queues.Count);

            var random = new Random(seed);
            var writes = new List<(ulong Lba, byte[] Data)>();
            for (int i = 0; i < 16; i++)
            {
                // Up to 128 KiB: several TLS records per PDU, and H2CData beyond the in-capsule size.
                var data = new byte[random.Next(1, 256) * 512];
                random.NextBytes(data);
                writes.Add(((ulong)i * 256, data));
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
        return WatchedAttach.Start(system, subsystemNqn, new TransportAddress("127.0.0.1", peer.Target!.TlsPort), settings);
    }

    /// <summary>The target with three secure-channel subsystems for <see cref="HostNqn"/>.</summary>
    public sealed class Peer : IAsyncLifetime
    {
        public SpdkTarget? Target { get; private set; }

        public string Sha256Psk { get; } = SpdkTarget.NewPsk(NvmeTlsPskHash.Sha256, HostNqn, Sha256Subsystem, WithDhChapSubsystem);

        public string Sha384Psk { get; } = SpdkTarget.NewPsk(NvmeTlsPskHash.Sha384, HostNqn, Sha384Subsystem);

        public string DhChapSecret { get; } = SpdkTarget.NewSecret(1);

        public async Task InitializeAsync()
        {
            if (SpdkTarget.Bundle is null)
            {
                return;
            }

            Target = await SpdkTarget.StartAsync();
            await Target.AddKeyAsync("psk0", Sha256Psk, trailingNewline: false);
            await Target.AddKeyAsync("psk1", Sha384Psk, trailingNewline: false);
            await Target.AddKeyAsync("key0", DhChapSecret);
            await Target.AddTlsSubsystemAsync(Sha256Subsystem, "Malloc1");
            await Target.RpcAsync("nvmf_subsystem_add_host", Sha256Subsystem, HostNqn, "--psk", "psk0");
            await Target.AddTlsSubsystemAsync(Sha384Subsystem, "Malloc2");
            await Target.RpcAsync("nvmf_subsystem_add_host", Sha384Subsystem, HostNqn, "--psk", "psk1");
            await Target.AddTlsSubsystemAsync(WithDhChapSubsystem, "Malloc3");
            await Target.RpcAsync("nvmf_subsystem_add_host", WithDhChapSubsystem, HostNqn, "--psk", "psk0", "--dhchap-key", "key0");
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
