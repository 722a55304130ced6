using System.Diagnostics;
using System.Security.Cryptography;
using Akka.Actor;
using Akka.Configuration;
using Akka.Event;
using ActorNvme.Actors.Connection;
using ActorNvme.Actors.Settings;
using ActorNvme.Actors.Subsystem;
using ActorNvme.Io;
using ActorNvme.Protocol.Auth;
using ActorNvme.Protocol.Tls;
using ActorNvme.RealPeer.Tests.Harness;
using ActorNvme.Transport;
using ActorNvme.Transport.BringUp;
using ActorNvme.Transport.Tcp;
using Xunit;
using Xunit.Abstractions;

namespace ActorNvme.RealPeer.Tests;

/// <summary>
/// Our host's DH-HMAC-CHAP and NVMe/TCP TLS 1.3 (PSK) against Linux 6.12's nvmet in the harness's guest
/// (<c>ACTORNVME_NVMET_SUITE=trixie</c>; tlshd does the target's handshakes). One guest for the whole class:
/// each fact reconfigures the target through the guest verbs (nvmet-dhchap, nvmet-allow, nvmet-psk) before
/// it connects. cnode0 is reached in cleartext on port 4420; cnode1 over TLS on port 4422 (nvmet-tls-port).
/// Every success brings up the admin queue and two I/O queues through the actors and writes and reads data
/// back; every refusal must be the authentication or TLS step (not a timeout), name the subsystem, bring no more
/// connection attempts than the loss-timeout rules allow (counted by the host and seen by the guest), and leave no
/// secret in the error or in the actor system's log. Times are printed, not judged (a 60 s hang guard only).
/// </summary>
public sealed class LinuxAuthTlsTests(LinuxAuthTlsTests.Guest guest, ITestOutputHelper output) : IClassFixture<LinuxAuthTlsTests.Guest>
{
    private const string AuthSubsystem = "nqn.2016-06.io.spdk:cnode0";
    private const string TlsSubsystem = "nqn.2016-06.io.spdk:cnode1";
    private const int TlsPort = 4422;
    private static readonly Guid HostId = Guid.Parse("3e9a51c2-6d7b-4f08-9a1c-2b3d4e5f6071");
    private static readonly string HostNqn = $"nqn.2014-08.org.nvmexpress:uuid:{HostId}";
    private static readonly TimeSpan Deadline = TimeSpan.FromMinutes(2);
    private static readonly TimeSpan GuestTimeout = TimeSpan.FromSeconds(60);

    public static TheoryData<DhChapHashId, DhChapGroupId, bool> DhChapCases => new()
    {
        { DhChapHashId.Sha256, DhChapGroupId.Null, false },
        { DhChapHashId.Sha384, DhChapGroupId.Ffdhe2048, false },
        { DhChapHashId.Sha512, DhChapGroupId.Ffdhe8192, false },
        { DhChapHashId.Sha256, DhChapGroupId.Ffdhe2048, true },
        { DhChapHashId.Sha384, DhChapGroupId.Null, true },
        { DhChapHashId.Sha512, DhChapGroupId.Ffdhe8192, true },
    };

    [LinuxSecurityPeerTheory]
    [MemberData(nameof(DhChapCases))]
    public async Task Dh_hmac_chap_with_the_targets_hash_and_group_authenticates_every_queue_and_data_reads_back(DhChapHashId hash, DhChapGroupId group, bool bidirectional)
    {
        string hostKey = DhChapSecret.Generate(32, 1);
        string? controllerKey = bidirectional ? DhChapSecret.Generate(64, 3) : null;
        ConfigureDhChap(AuthSubsystem, hash, group, hostKey, controllerKey);

        // The host offers every hash and group: nvmet's configured pair must be what it chose.
        var credentials = new DhChapHostCredentials(DhChapSecret.Parse(hostKey), controllerKey is null ? null : DhChapSecret.Parse(controllerKey));
        var result = await BringUpAdminAsync(AuthSubsystem, credentials);
        Assert.Equal(new DhChapStep.Authenticated(hash, group, bidirectional), result.Authentication);

        guest.Target.ExecChecked("dmesg -c >/dev/null", GuestTimeout);
        await WriteAndReadBackAsync(AuthSubsystem, LinuxTarget.IoPort, Settings() with { DhChap = credentials }, Secrets(hostKey, controllerKey), seed: (int)hash * 10 + (int)group);
        // The target created the controller under DH-HMAC-CHAP (I/O on the queues works only once each authenticated).
        Assert.Equal(1, Count(guest.Target.ExecChecked("dmesg", GuestTimeout), $"for NQN {HostNqn} with DH-HMAC-CHAP"));
    }

    [LinuxSecurityPeerFact]
    public async Task New_keys_re_authenticate_the_admin_and_both_io_queues_while_connected_and_data_reads_back()
    {
        string hostKey = DhChapSecret.Generate(32, 1), controllerKey = DhChapSecret.Generate(32, 3);
        string newHostKey = DhChapSecret.Generate(32, 1), newControllerKey = DhChapSecret.Generate(32, 3);
        ConfigureDhChap(AuthSubsystem, DhChapHashId.Sha256, DhChapGroupId.Ffdhe2048, hostKey, controllerKey);
        static DhChapHostCredentials Credentials(string host, string controller) => new(DhChapSecret.Parse(host), DhChapSecret.Parse(controller));
        using var system = ActorSystem.Create("linux-auth-tls-rekey", ConfigurationFactory.ParseString("akka.loglevel = INFO"));
        var logs = Collect(system);
        try
        {
            var (added, failures) = Attach(system, AuthSubsystem, LinuxTarget.IoPort, Settings() with { DhChap = Credentials(hostKey, controllerKey) });
            var device = await Task.WhenAny(added.Task, failures.Reader.ReadAsync().AsTask()).WaitAsync(Deadline) == added.Task
                ? await added.Task
                : throw new InvalidOperationException($"the controller failed: {await failures.Reader.ReadAsync()}");
            var data = new byte[64 * 1024];
            new Random(41).NextBytes(data);
            await device.WriteAsync(4096, data).AsTask().WaitAsync(Deadline);

            // nvmet takes the new keys for the host; only they pass a transaction from now on, on a connection that stays.
            ConfigureDhChap(AuthSubsystem, DhChapHashId.Sha256, DhChapGroupId.Ffdhe2048, newHostKey, newControllerKey);
            var subsystem = await system.ActorSelection("/user/nvme0").ResolveOne(Deadline);
            var answer = await subsystem.Ask<object>(new Subsystem.SetKeys(Credentials(newHostKey, newControllerKey)), Deadline);
            var set = Assert.IsType<Subsystem.KeysSet>(answer);
            output.WriteLine($"re-authenticated {set.Paths} path(s), {set.IoQueues} I/O queue(s)");
            Assert.Equal((1, 2), (set.Paths, set.IoQueues));

            var back = new byte[data.Length];
            await device.ReadAsync(4096, back).AsTask().WaitAsync(Deadline);
            Assert.Equal(data, back);
            Assert.False(failures.Reader.TryRead(out string? lost), $"the path was lost: {lost}");
        }
        finally
        {
            await system.Terminate().WaitAsync(Deadline);
        }

        AssertNoSecret(logs, Secrets(hostKey, controllerKey).Concat(Secrets(newHostKey, newControllerKey)).ToArray());
    }

    [LinuxSecurityPeerFact]
    public async Task Tls_with_a_sha256_psk_runs_aes_128_gcm_and_data_reads_back_on_two_queues()
    {
        ConfigureOpen(TlsSubsystem);
        string psk = NvmeTlsPsk.Generate(NvmeTlsPskHash.Sha256);
        string tlsPsk = InstallPsk(psk, TlsSubsystem);
        guest.Target.ExecChecked(": >/tmp/tlshd.log", GuestTimeout);

        await WriteAndReadBackAsync(TlsSubsystem, TlsPort, Settings() with { TlsPsk = NvmeTlsPsk.Parse(psk) }, Secrets(psk, tlsPsk), seed: 101);

        // tlshd's own account: one successful TLS 1.3 handshake per queue, with the suite of the PSK's hash.
        string log = guest.Target.ExecChecked("cat /tmp/tlshd.log", GuestTimeout);
        Assert.True(Count(log, "was successful") >= 3, log);
        Assert.Contains("(TLS1.3)--(AES-128-GCM)", log, StringComparison.Ordinal);
    }

    /// <summary>
    /// The TP 8018 identity (psk-identity-version 1: <c>NVMe1R01 hostnqn subnqn digest</c>, whose digest matches libnvme's published
    /// vectors in the Protocol tests): tlshd finds the PSK by that name, and the TLS PSK derived from it (context "01 digest",
    /// as the kernel's nvme_auth_derive_tls_psk) must be what the guest holds.
    /// </summary>
    [LinuxSecurityPeerFact]
    public async Task Tls_with_the_version_1_identity_runs_and_data_reads_back_on_two_queues()
    {
        ConfigureOpen(TlsSubsystem);
        string psk = NvmeTlsPsk.Generate(NvmeTlsPskHash.Sha256);
        string tlsPsk = InstallPsk(psk, TlsSubsystem, identityVersion: 1);
        guest.Target.ExecChecked(": >/tmp/tlshd.log", GuestTimeout);

        await WriteAndReadBackAsync(TlsSubsystem, TlsPort, Settings() with { TlsPsk = NvmeTlsPsk.Parse(psk), TlsIdentityVersion = 1 }, Secrets(psk, tlsPsk), seed: 102);
        string log = guest.Target.ExecChecked("cat /tmp/tlshd.log", GuestTimeout);
        Assert.True(Count(log, "was successful") >= 3, log);
    }

    /// <summary>
    /// A 48-byte PSK (identity NVMe0R02) means TLS_AES_256_GCM_SHA384 and a SHA-384 binder (as SPDK does too), but
    /// tlshd 1.0.0 binds every PSK to SHA-256 (its own client picks CHACHA20-POLY1305 with such a key), so it cannot
    /// verify our binder and ends the handshake. The refusal must still be quick and clear.
    /// </summary>
    [LinuxSecurityPeerFact]
    public async Task A_sha384_psk_is_refused_clearly_since_tlshd_binds_every_psk_to_sha256()
    {
        ConfigureOpen(TlsSubsystem);
        string psk = NvmeTlsPsk.Generate(NvmeTlsPskHash.Sha384);
        string tlsPsk = InstallPsk(psk, TlsSubsystem);
        guest.Target.ExecChecked(": >/tmp/tlshd.log", GuestTimeout);

        string reason = await RefusedAsync(TlsSubsystem, TlsPort, Settings() with { TlsPsk = NvmeTlsPsk.Parse(psk) }, Secrets(psk, tlsPsk), CloseReason.TlsHandshakeFailed);
        Assert.Contains($"TLS handshake with {TlsSubsystem}", reason, StringComparison.Ordinal);
        Assert.Contains("NVMe0R02", reason, StringComparison.Ordinal);
        Assert.Contains($"Handshake with 'unknown' ({guest.Target.HostAddress}) failed", guest.Target.ExecChecked("cat /tmp/tlshd.log", GuestTimeout), StringComparison.Ordinal);
    }

    [LinuxSecurityPeerFact]
    public async Task Tls_and_bidirectional_dh_hmac_chap_together_authenticate_every_queue_and_data_reads_back()
    {
        string hostKey = DhChapSecret.Generate(48, 2);
        string controllerKey = DhChapSecret.Generate(32, 1);
        ConfigureDhChap(TlsSubsystem, DhChapHashId.Sha512, DhChapGroupId.Ffdhe2048, hostKey, controllerKey);
        string psk = NvmeTlsPsk.Generate();
        string tlsPsk = InstallPsk(psk, TlsSubsystem);
        guest.Target.ExecChecked("dmesg -c >/dev/null; : >/tmp/tlshd.log", GuestTimeout);

        var settings = Settings() with
        {
            TlsPsk = NvmeTlsPsk.Parse(psk),
            DhChap = new DhChapHostCredentials(DhChapSecret.Parse(hostKey), DhChapSecret.Parse(controllerKey)),
        };
        await WriteAndReadBackAsync(TlsSubsystem, TlsPort, settings, Secrets(hostKey, controllerKey, psk, tlsPsk), seed: 200);

        Assert.Equal(1, Count(guest.Target.ExecChecked("dmesg", GuestTimeout), $"for NQN {HostNqn} with DH-HMAC-CHAP"));
        Assert.True(Count(guest.Target.ExecChecked("cat /tmp/tlshd.log", GuestTimeout), "was successful") >= 3);
    }

    [LinuxSecurityPeerFact]
    public async Task A_wrong_host_key_is_refused_naming_the_subsystem_and_the_step()
    {
        string hostKey = DhChapSecret.Generate(32, 1);
        string wrong = DhChapSecret.Generate(32, 1);
        ConfigureDhChap(AuthSubsystem, DhChapHashId.Sha256, DhChapGroupId.Null, hostKey, null);

        string reason = await RefusedAsync(AuthSubsystem, LinuxTarget.IoPort, Settings() with { DhChap = new DhChapHostCredentials(DhChapSecret.Parse(wrong)) }, Secrets(hostKey, wrong), CloseReason.AuthenticationFailed);
        Assert.Contains(nameof(CloseReason.AuthenticationFailed), reason, StringComparison.Ordinal);
        Assert.Contains("DH-HMAC-CHAP", reason, StringComparison.Ordinal);
    }

    [LinuxSecurityPeerFact]
    public async Task A_wrong_controller_key_fails_controller_authentication_naming_the_subsystem()
    {
        string hostKey = DhChapSecret.Generate(32, 1);
        string controllerKey = DhChapSecret.Generate(32, 1);
        string wrong = DhChapSecret.Generate(32, 1);
        ConfigureDhChap(AuthSubsystem, DhChapHashId.Sha256, DhChapGroupId.Null, hostKey, controllerKey);

        var settings = Settings() with { DhChap = new DhChapHostCredentials(DhChapSecret.Parse(hostKey), DhChapSecret.Parse(wrong)) };
        string reason = await RefusedAsync(AuthSubsystem, LinuxTarget.IoPort, settings, Secrets(hostKey, controllerKey, wrong), CloseReason.AuthenticationFailed);
        Assert.Contains(nameof(CloseReason.AuthenticationFailed), reason, StringComparison.Ordinal);
        Assert.Contains("controller authentication failed", reason, StringComparison.Ordinal);
    }

    [LinuxSecurityPeerFact]
    public async Task No_key_for_a_subsystem_that_requires_dh_hmac_chap_is_refused_naming_it()
    {
        string hostKey = DhChapSecret.Generate(32, 1);
        ConfigureDhChap(AuthSubsystem, DhChapHashId.Sha256, DhChapGroupId.Null, hostKey, null);

        string reason = await RefusedAsync(AuthSubsystem, LinuxTarget.IoPort, Settings(), Secrets(hostKey), CloseReason.AuthenticationFailed);
        Assert.Contains(nameof(CloseReason.AuthenticationFailed), reason, StringComparison.Ordinal);
        Assert.Contains($"{AuthSubsystem} requires DH-HMAC-CHAP", reason, StringComparison.Ordinal);
    }

    [LinuxSecurityPeerFact]
    public async Task A_wrong_psk_fails_the_tls_handshake_naming_the_subsystem()
    {
        ConfigureOpen(TlsSubsystem);
        string psk = NvmeTlsPsk.Generate();
        string tlsPsk = InstallPsk(psk, TlsSubsystem);
        string wrong = NvmeTlsPsk.Generate();

        string reason = await RefusedAsync(TlsSubsystem, TlsPort, Settings() with { TlsPsk = NvmeTlsPsk.Parse(wrong) }, Secrets(psk, tlsPsk, wrong), CloseReason.TlsHandshakeFailed);
        Assert.Contains(nameof(CloseReason.TlsHandshakeFailed), reason, StringComparison.Ordinal);
        Assert.Contains($"TLS handshake with {TlsSubsystem}", reason, StringComparison.Ordinal);
    }

    private static NvmeHostSettings Settings() => NvmeHostSettings.Default with { HostNqn = HostNqn, HostId = HostId, IoQueues = 2 };

    private static int Count(string text, string what)
    {
        int n = 0;
        for (int i = text.IndexOf(what, StringComparison.Ordinal); i >= 0; i = text.IndexOf(what, i + what.Length, StringComparison.Ordinal))
        {
            n++;
        }

        return n;
    }

    /// <summary>The parts of key strings that must never be shown: the base64 field of interchange strings, or the whole string.</summary>
    private static string[] Secrets(params string?[] keys) =>
        keys.Where(k => k is not null).Select(k => k!.Split(':') is { Length: 4 } parts ? parts[2] : k!).ToArray();

    /// <summary>Only <see cref="HostNqn"/> may connect to <paramref name="subsystem"/>, and it must authenticate with these keys.</summary>
    private void ConfigureDhChap(string subsystem, DhChapHashId hash, DhChapGroupId group, string hostKey, string? controllerKey)
    {
        string hashName = hash switch { DhChapHashId.Sha256 => "sha256", DhChapHashId.Sha384 => "sha384", _ => "sha512" };
        string groupName = group == DhChapGroupId.Null ? "null" : group.ToString().ToLowerInvariant();
        guest.Target.ExecChecked($"nvmet-dhchap '{HostNqn}' {hashName} {groupName} '{hostKey}'{(controllerKey is null ? string.Empty : $" '{controllerKey}'")} && nvmet-allow {subsystem} '{HostNqn}'", GuestTimeout);
    }

    private void ConfigureOpen(string subsystem) => guest.Target.ExecChecked($"nvmet-anyhost {subsystem}", GuestTimeout);

    /// <summary>
    /// Puts the PSK TLS uses for <paramref name="configuredPsk"/> into the guest's .nvme keyring under the identity
    /// our host sends (NVMe0R0h hostnqn subnqn, or NVMe1R0h with the digest), where tlshd looks it up; returns it in base64.
    /// </summary>
    private string InstallPsk(string configuredPsk, string subsystem, int identityVersion = 0)
    {
        using var psk = NvmeTlsPsk.Parse(configuredPsk);
        byte[] retained = psk.RetainedPsk(HostNqn);
        string digest = NvmeTlsPskDerivation.PskDigest(retained, psk.CipherSuite, HostNqn, subsystem);
        string identity = identityVersion == 1
            ? NvmeTlsPskDerivation.IdentityV1(psk.CipherSuite, HostNqn, subsystem, digest)
            : NvmeTlsPskDerivation.Identity(psk.CipherSuite, HostNqn, subsystem);
        byte[] tlsPsk = identityVersion == 1
            ? NvmeTlsPskDerivation.TlsPskV1(retained, digest, psk.CipherSuite)
            : NvmeTlsPskDerivation.TlsPsk(retained, identity, psk.CipherSuite);
        string encoded = Convert.ToBase64String(tlsPsk);
        CryptographicOperations.ZeroMemory(retained);
        CryptographicOperations.ZeroMemory(tlsPsk);
        guest.Target.ExecChecked($"nvmet-psk -c && nvmet-psk '{identity}' {encoded}", GuestTimeout);
        return encoded;
    }

    private async Task<ControllerBringUpResult> BringUpAdminAsync(string subsystemNqn, DhChapHostCredentials credentials)
    {
        var address = new TransportAddress(guest.Target.Address.ToString(), LinuxTarget.IoPort);
        await using var client = await AdminClient.ConnectAsync(new TcpTransport(), address, QueuePairOptions.Admin).WaitAsync(Deadline);
        var parameters = new FabricsConnectParameters(HostId, subsystemNqn, HostNqn) { KeepAliveMilliseconds = 30_000 };
        var options = new BringUpOptions(parameters, QueuePairOptions.Admin.QueueSize) { Goal = BringUpGoal.Identified, Authentication = credentials };
        return await client.BringUpAsync(options).WaitAsync(Deadline);
    }

    private async Task WriteAndReadBackAsync(string subsystemNqn, int port, NvmeHostSettings settings, string[] secrets, int seed)
    {
        using var system = ActorSystem.Create($"linux-auth-tls-{seed}", ConfigurationFactory.ParseString("akka.loglevel = INFO"));
        var logs = Collect(system);
        var clock = Stopwatch.StartNew();
        try
        {
            var (added, failures) = Attach(system, subsystemNqn, port, settings);
            var device = await Task.WhenAny(added.Task, failures.Reader.ReadAsync().AsTask()).WaitAsync(Deadline) == added.Task
                ? await added.Task
                : throw new InvalidOperationException($"the controller failed: {await failures.Reader.ReadAsync()}");
            output.WriteLine($"{subsystemNqn}:{port}: attached with 2 I/O queues in {clock.Elapsed.TotalSeconds:0.0} s");
            var path = Assert.Single(device.Paths);
            Assert.Equal(2, path.Value.Queues.Count);

            var random = new Random(seed);
            var writes = new List<(ulong Lba, byte[] Data)>();
            for (int i = 0; i < 12; i++)
            {
                // Up to 64 KiB: beyond the in-capsule size (H2CData), several TLS records per PDU.
                var data = new byte[random.Next(1, 129) * 512];
                random.NextBytes(data);
                writes.Add(((ulong)(seed % 64) * 2048 + (ulong)i * 128, data));
            }

            await Task.WhenAll(writes.Select(w => Task.Run(async () => await device.WriteAsync(w.Lba, w.Data)))).WaitAsync(Deadline);
            await Task.WhenAll(writes.Select(w => Task.Run(async () =>
            {
                var back = new byte[w.Data.Length];
                await device.ReadAsync(w.Lba, back);
                Assert.True(w.Data.AsSpan().SequenceEqual(back), $"{w.Data.Length} bytes at LBA {w.Lba} read back differently");
            }))).WaitAsync(Deadline);
            output.WriteLine($"{writes.Count} writes and reads verified in {clock.Elapsed.TotalSeconds:0.0} s in all");
        }
        finally
        {
            await system.Terminate().WaitAsync(Deadline);
        }

        AssertNoSecret(logs, secrets);
    }

    /// <summary>
    /// Attaches and waits for the controller to fail; returns the reason after checking what makes a refusal one:
    /// it is the authentication or TLS step (<paramref name="expected"/>, never a timeout), and the host then tries no
    /// more often than the loss-timeout rules allow — with <see cref="RefusalResiliency"/>, the refused attempt and
    /// one per reconnect-delay (less at most a tenth of jitter) until ctrlr-loss-timeout, when the path is given up.
    /// The guest saw at most as many connections as the host counted (dmesg's controller lines for a Connect,
    /// tlshd's failed handshakes for TLS). The elapsed time is printed; the only deadline is a hang guard.
    /// </summary>
    private async Task<string> RefusedAsync(string subsystemNqn, int port, NvmeHostSettings settings, string[] secrets, CloseReason expected)
    {
        guest.Target.ExecChecked("dmesg -c >/dev/null; : >/tmp/tlshd.log", GuestTimeout);
        using var system = ActorSystem.Create("linux-auth-tls-refused", ConfigurationFactory.ParseString("akka.loglevel = INFO"));
        var logs = Collect(system);
        try
        {
            var clock = Stopwatch.StartNew();
            var run = WatchedAttach.StartCounted(system, subsystemNqn, new TransportAddress(guest.Target.Address.ToString(), port), settings with { Resiliency = RefusalResiliency });
            var first = await Task.WhenAny(run.Added.Task, run.Failures.Reader.ReadAsync().AsTask()).WaitAsync(HangGuard);
            Assert.NotSame(run.Added.Task, first);
            string reason = await (Task<string>)first;
            output.WriteLine($"refused in {clock.Elapsed.TotalSeconds:0.00} s: {reason}");
            Assert.Equal(expected, ReasonOf(reason));
            Assert.Contains(subsystemNqn, reason, StringComparison.Ordinal);

            // Given up at ctrlr-loss-timeout; every attempt until then was refused the same way.
            await run.Stopped.WaitAsync(HangGuard);
            int attempts = run.ConnectAttempts();
            var reasons = new List<string> { reason };
            while (run.Failures.Reader.TryRead(out string? further))
            {
                reasons.Add(further);
            }

            output.WriteLine($"given up after {clock.Elapsed.TotalSeconds:0.00} s and {attempts} connection attempts");
            Assert.All(reasons, r => Assert.Equal(expected, ReasonOf(r)));
            int most = 1 + (int)Math.Floor(RefusalResiliency.CtrlrLossTimeout / (RefusalResiliency.ReconnectDelay * (1 - ReconnectJitter.Fraction)));
            Assert.True(attempts >= 2 && attempts <= most, $"{attempts} connection attempts; ctrlr-loss-timeout {RefusalResiliency.CtrlrLossTimeout.TotalSeconds} s with reconnect-delay {RefusalResiliency.ReconnectDelay.TotalSeconds} s allows 2..{most}");

            string dmesg = guest.Target.ExecChecked("dmesg", GuestTimeout);
            string tlshd = guest.Target.ExecChecked("cat /tmp/tlshd.log", GuestTimeout);
            int seen = Lines(dmesg, $"for NQN {HostNqn}") + Lines(tlshd, "Handshake with", "failed");
            output.WriteLine($"the guest saw {seen} of them");
            Assert.True(seen >= 1 && seen <= attempts, $"the guest saw {seen} connections, the host made {attempts}");
            AssertNoSecret([.. logs, .. reasons], secrets);
            return reason;
        }
        finally
        {
            await system.Terminate().WaitAsync(Deadline);
        }
    }

    /// <summary>The loss-timeout rules the refusal facts run under: give up 6 s after the first loss, try every 2 s.</summary>
    private static readonly ResiliencySettings RefusalResiliency = new ResiliencySettings(TimeSpan.FromSeconds(6), TimeSpan.FromSeconds(2), TimeSpan.Zero).Validated();

    /// <summary>Only a hang is caught by time: a refusal is judged by its reason and the attempts counted.</summary>
    private static readonly TimeSpan HangGuard = TimeSpan.FromSeconds(60);

    /// <summary>The close reason a controller's Failed state names first ("AuthenticationFailed (Remote): ...").</summary>
    private static CloseReason? ReasonOf(string reason)
    {
        int space = reason.IndexOf(' ', StringComparison.Ordinal);
        return Enum.TryParse<CloseReason>(space < 0 ? reason : reason[..space], out var parsed) ? parsed : null;
    }

    /// <summary>How many lines of <paramref name="text"/> contain every one of <paramref name="parts"/>.</summary>
    private static int Lines(string text, params string[] parts) =>
        text.Split('\n').Count(line => parts.All(p => line.Contains(p, StringComparison.Ordinal)));

    private static void AssertNoSecret(IEnumerable<string> texts, string[] secrets)
    {
        foreach (string text in texts)
        {
            foreach (string secret in secrets)
            {
                Assert.False(text.Contains(secret, StringComparison.Ordinal), $"a secret is shown: {text.Replace(secret, "<secret>", StringComparison.Ordinal)}");
            }
        }
    }

    /// <summary>Every log event of <paramref name="system"/>, as text.</summary>
    private static System.Collections.Concurrent.ConcurrentQueue<string> Collect(ActorSystem system)
    {
        var logs = new System.Collections.Concurrent.ConcurrentQueue<string>();
        var collector = system.ActorOf(Props.Create(() => new LogCollector(logs)));
        system.EventStream.Subscribe(collector, typeof(LogEvent));
        return logs;
    }

    private (TaskCompletionSource<BlockDevice> Added, System.Threading.Channels.Channel<string> Failures) Attach(ActorSystem system, string subsystemNqn, int port, NvmeHostSettings settings)
    {
        return WatchedAttach.Start(system, subsystemNqn, new TransportAddress(guest.Target.Address.ToString(), port), settings);
    }

    private sealed class LogCollector : ReceiveActor
    {
        public LogCollector(System.Collections.Concurrent.ConcurrentQueue<string> logs) => Receive<LogEvent>(e => logs.Enqueue(e.ToString()));
    }

    /// <summary>The guest as nvmet-default left it, plus a TLS port 3 (4422) for cnode1; PSKs and host entries are removed at the end.</summary>
    public sealed class Guest : IDisposable
    {
        private readonly LinuxTarget? _target;

        public Guest()
        {
            if (LinuxSecurityPeerFactAttribute.SkipReason() is not null)
            {
                return;
            }

            _target = LinuxTarget.Current;
            _target.ExecChecked("nvmet-default && nvmet-tls-port 3 4422 && nvmet-link nqn.2016-06.io.spdk:cnode1 3", GuestTimeout);
        }

        public LinuxTarget Target => _target ?? throw new InvalidOperationException("not inside the harness");

        public void Dispose() => _target?.Exec("nvmet-default", GuestTimeout);
    }
}
