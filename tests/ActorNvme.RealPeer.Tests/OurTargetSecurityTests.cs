using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using ActorNvme.Protocol.Auth;
using ActorNvme.Protocol.Tls;
using ActorNvme.RealPeer.Tests.Harness;
using ActorNvme.Target;
using Microsoft.Extensions.Logging;
using Xunit;
using Xunit.Abstractions;

namespace ActorNvme.RealPeer.Tests;

/// <summary>
/// The Linux 6.12 kernel host (nvme-tcp in the harness's trixie guest, tlshd for its TLS handshakes) as the peer
/// of our Target, which runs in this process on the harness's host-side address and requires DH-HMAC-CHAP or
/// TLS 1.3 with a PSK. The guest connects with <c>nvme-host-connect</c> (it writes 64 KiB with O_DIRECT, reads
/// them back and prints the kernel's lines); the test then checks what our Target saw: every queue authenticated
/// (its log), the controller on the secure listener, and the guest's bytes in our RAM namespace.
/// </summary>
public sealed class OurTargetSecurityTests(ITestOutputHelper output)
{
    private const string SubsystemNqn = "nqn.2024-01.io.actornvme:secured";
    private const int Port = 4431;
    private const int TlsPort = 4432;

    // The guest's host: an identity of its own, so nvme-fabrics never sees this host ID with another NQN.
    private static readonly Guid HostId = Guid.Parse("7c1d2e3f-4a5b-4c6d-8e7f-901a2b3c4d5e");
    private static readonly string HostNqn = $"nqn.2014-08.org.nvmexpress:uuid:{HostId}";

    // Generous: a refused host that never read AUTH_Failure1 would wait for its own 60 s command timeout.
    private static readonly TimeSpan GuestTimeout = TimeSpan.FromSeconds(120);

    [LinuxSecurityPeerFact]
    public async Task The_linux_host_authenticates_every_queue_with_sha256_null_and_its_data_lands_in_our_namespace()
    {
        string hostKey = DhChapSecret.Generate(32, 1);
        await using var run = Start(new DhChapHostKeys(hostKey) { Hashes = [DhChapHashId.Sha256], Groups = [DhChapGroupId.Null] });

        var (code, text) = run.Connect(Port, $"-s '{hostKey}' -l 2048");

        Assert.True(code == 0, text);
        int instance = run.AssertDataLanded(text, lba: 2048);
        Assert.Contains($"kernel: nvme nvme{instance}: qid 0: authenticated with hash hmac(sha256) dhgroup null", text, StringComparison.Ordinal);
        run.AssertEveryQueueAuthenticated("sha256", "null", bidirectional: false);
        run.AssertNoSecret(hostKey);
    }

    [LinuxSecurityPeerFact]
    public async Task The_linux_host_and_our_target_authenticate_each_other_with_sha512_ffdhe2048_and_data_lands()
    {
        string hostKey = DhChapSecret.Generate(48, 2);
        string controllerKey = DhChapSecret.Generate(64, 3);
        await using var run = Start(new DhChapHostKeys(hostKey, controllerKey) { Hashes = [DhChapHashId.Sha512], Groups = [DhChapGroupId.Ffdhe2048] });

        var (code, text) = run.Connect(Port, $"-s '{hostKey}' -c '{controllerKey}' -l 4096");

        Assert.True(code == 0, text);
        int instance = run.AssertDataLanded(text, lba: 4096);
        Assert.Contains($"kernel: nvme nvme{instance}: qid 0: authenticated with hash hmac(sha512) dhgroup ffdhe2048", text, StringComparison.Ordinal);
        // The host verified our Target's response to its challenge.
        Assert.Contains($"kernel: nvme nvme{instance}: qid 0: controller authenticated", text, StringComparison.Ordinal);
        run.AssertEveryQueueAuthenticated("sha512", "ffdhe2048", bidirectional: true);
        run.AssertNoSecret(hostKey, controllerKey);
    }

    [LinuxSecurityPeerFact]
    public async Task The_linux_host_runs_tls_1_3_with_a_sha256_psk_against_our_secure_listener_and_data_lands()
    {
        string psk = NvmeTlsPsk.Generate(NvmeTlsPskHash.Sha256);
        await using var run = Start(keys: null);
        run.Target.SetTlsPsk(SubsystemNqn, HostNqn, psk);
        string tlsPsk = TlsPskFor(psk);

        var (code, text) = run.Connect(TlsPort, $"-t {tlsPsk} -l 6144");

        Assert.True(code == 0, text);
        run.AssertDataLanded(text, lba: 6144);
        // tlshd, the guest's client: the identity it sent and the suite our Target chose.
        Assert.Contains($"psk identity NVMe0R01 {HostNqn} {SubsystemNqn}", text, StringComparison.Ordinal);
        Assert.Contains("(TLS1.3)--(AES-128-GCM)", text, StringComparison.Ordinal);
        // Our Target: the controller came through the listener that speaks nothing but TLS, and no handshake failed.
        var controller = Assert.Single(run.Subsystem.GetControllers());
        Assert.True(controller.Listener.SecureChannel);
        Assert.Equal(TlsPort, controller.Listener.Address.Port);
        Assert.DoesNotContain(run.Logs, l => l.Message.Contains("TLS", StringComparison.Ordinal) && l.Name == "ConnectionRefused");
        run.AssertNoSecret(psk, tlsPsk);
    }

    [LinuxSecurityPeerFact]
    public async Task The_linux_host_runs_bidirectional_dh_hmac_chap_inside_tls_against_our_target_and_data_lands()
    {
        string hostKey = DhChapSecret.Generate(32, 1);
        string controllerKey = DhChapSecret.Generate(48, 2);
        string psk = NvmeTlsPsk.Generate(NvmeTlsPskHash.Sha256);
        await using var run = Start(new DhChapHostKeys(hostKey, controllerKey) { Hashes = [DhChapHashId.Sha384], Groups = [DhChapGroupId.Ffdhe3072] });
        run.Target.SetTlsPsk(SubsystemNqn, HostNqn, psk);
        string tlsPsk = TlsPskFor(psk);

        var (code, text) = run.Connect(TlsPort, $"-s '{hostKey}' -c '{controllerKey}' -t {tlsPsk} -l 8192");

        Assert.True(code == 0, text);
        int instance = run.AssertDataLanded(text, lba: 8192);
        Assert.Contains($"kernel: nvme nvme{instance}: qid 0: controller authenticated", text, StringComparison.Ordinal);
        Assert.Contains("(TLS1.3)--(AES-128-GCM)", text, StringComparison.Ordinal);
        Assert.True(Assert.Single(run.Subsystem.GetControllers()).Listener.SecureChannel);
        run.AssertEveryQueueAuthenticated("sha384", "ffdhe3072", bidirectional: true);
        run.AssertNoSecret(hostKey, controllerKey, psk, tlsPsk);
    }

    [LinuxSecurityPeerFact]
    public async Task A_wrong_psk_fails_the_linux_hosts_tls_handshake_with_our_target()
    {
        string psk = NvmeTlsPsk.Generate(NvmeTlsPskHash.Sha256);
        string wrong = NvmeTlsPsk.Generate(NvmeTlsPskHash.Sha256);
        await using var run = Start(keys: null);
        run.Target.SetTlsPsk(SubsystemNqn, HostNqn, psk);
        string wrongTlsPsk = TlsPskFor(wrong);

        var clock = Stopwatch.StartNew();
        var (code, text) = run.Connect(TlsPort, $"-t {wrongTlsPsk}");
        output.WriteLine($"the guest's connect ended after {clock.Elapsed.TotalSeconds:0.0} s");

        Assert.True(code == 1, text);
        Assert.Contains("connect: failed", text, StringComparison.Ordinal);
        Assert.DoesNotContain("was successful", text, StringComparison.Ordinal);
        // Our Target ended the handshake (the binder does not verify with its PSK) and no controller came to be.
        Assert.Contains(run.Logs, l => l.Name == "ConnectionRefused" && l.Message.Contains("TLS handshake", StringComparison.Ordinal));
        Assert.Equal(0, run.Subsystem.ControllerCount);
        run.AssertNoSecret(psk, wrong, wrongTlsPsk);
    }

    [LinuxSecurityPeerFact]
    public async Task A_wrong_host_key_is_refused_by_our_target_and_the_linux_hosts_connect_fails()
    {
        string hostKey = DhChapSecret.Generate(32, 1);
        string wrong = DhChapSecret.Generate(32, 1);
        await using var run = Start(new DhChapHostKeys(hostKey) { Hashes = [DhChapHashId.Sha256], Groups = [DhChapGroupId.Null] });

        var clock = Stopwatch.StartNew();
        var (code, text) = run.Connect(Port, $"-s '{wrong}'");
        output.WriteLine($"the guest's connect ended after {clock.Elapsed.TotalSeconds:0.0} s");

        Assert.True(code == 1, text);
        Assert.Contains("connect: failed", text, StringComparison.Ordinal);
        // -129 (EKEYREJECTED): the host read our AUTH_Failure1 (a host left without it fails only after its 60 s timeout).
        Assert.Contains("qid 0: authentication failed, error -129", text, StringComparison.Ordinal);
        // Our Target refused the admin queue's response and created nothing that lives on.
        var failure = Assert.Single(run.Logs, l => l.Name == "AuthenticationFailed");
        Assert.Equal(HostNqn, failure.Value("HostNqn"));
        Assert.Equal("0", failure.Value("QueueId"));
        Assert.DoesNotContain(run.Logs, l => l.Name == "HostAuthenticated");
        await run.WaitAsync(() => run.Subsystem.ControllerCount == 0, "our Target to drop the refused controller");
        run.AssertNoSecret(hostKey, wrong);
    }

    /// <summary>The PSK TLS uses for <paramref name="interchange"/> under the identity the guest's host sends, in base64.</summary>
    private static string TlsPskFor(string interchange)
    {
        using var psk = NvmeTlsPsk.Parse(interchange);
        string identity = NvmeTlsPskDerivation.Identity(psk.CipherSuite, HostNqn, SubsystemNqn);
        byte[] retained = psk.RetainedPsk(HostNqn);
        byte[] tlsPsk = NvmeTlsPskDerivation.TlsPsk(retained, identity, psk.CipherSuite);
        try
        {
            return Convert.ToBase64String(tlsPsk);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(retained);
            CryptographicOperations.ZeroMemory(tlsPsk);
        }
    }

    private Run Start(DhChapHostKeys? keys)
    {
        var guest = LinuxTarget.Current;
        var logs = new ConcurrentQueue<LogLine>();
        var target = new NvmeTarget(logger: new CollectingLogger(logs));
        var subsystem = target.AddSubsystem(new NvmSubsystemOptions(SubsystemNqn) { AllowAnyHost = false, AllowedHosts = [HostNqn] });
        var ns = subsystem.AddNamespace(NamespaceOptions.Ram(16 * 1024 * 1024, 512));
        target.ListenTcp(guest.HostAddress.ToString(), Port);
        target.ListenTcp(guest.HostAddress.ToString(), TlsPort, secureChannel: true);
        if (keys is not null)
        {
            target.SetDhChapKeys(SubsystemNqn, HostNqn, keys);
        }

        return new Run(guest, target, subsystem, ns, logs, output);
    }

    private sealed class Run(LinuxTarget guest, NvmeTarget target, NvmSubsystem subsystem, TargetNamespace ns, ConcurrentQueue<LogLine> logs, ITestOutputHelper output) : IAsyncDisposable
    {
        public NvmeTarget Target => target;

        public NvmSubsystem Subsystem => subsystem;

        public IReadOnlyCollection<LogLine> Logs => logs;

        /// <summary>nvme-host-connect from the guest to our Target on <paramref name="port"/>; its exit code and what it printed.</summary>
        public (int Code, string Text) Connect(int port, string options)
        {
            var (code, text) = guest.Exec($"nvme-host-connect {options} {guest.HostAddress} {port} {SubsystemNqn} {HostNqn} {HostId}", GuestTimeout);
            output.WriteLine($"nvme-host-connect (exit {code}):\n{text}");
            return (code, text);
        }

        /// <summary>The guest read back what it wrote, and our namespace holds the same bytes; returns the controller's instance.</summary>
        public int AssertDataLanded(string text, long lba)
        {
            string connect = Line(text, "connect: ");
            int instance = int.Parse(connect.Split(',')[0]["connect: instance=".Length..], CultureInfo.InvariantCulture);
            Assert.Contains($"sectors={ns.BlockCount}", connect, StringComparison.Ordinal);
            string written = Line(text, "write: ").Split("md5=")[1];
            Assert.Equal($"read: md5={written} identical", Line(text, "read: "));

            var stored = new byte[65536];
            ns.Read(lba * ns.BlockSize, stored);
            Assert.Equal(written, Convert.ToHexStringLower(MD5.HashData(stored)));
            return instance;
        }

        /// <summary>Our Target logged one authentication per queue of the guest's controller, with this hash and group.</summary>
        public void AssertEveryQueueAuthenticated(string hash, string group, bool bidirectional)
        {
            var controller = Assert.Single(subsystem.GetControllers());
            Assert.True(controller.IoQueues >= 1);
            var authenticated = logs.Where(l => l.Name == "HostAuthenticated").ToList();
            output.WriteLine(string.Join('\n', authenticated.Select(l => l.Message)));
            Assert.Equal(
                Enumerable.Range(0, controller.IoQueues + 1).Select(q => q.ToString(CultureInfo.InvariantCulture)),
                authenticated.Select(l => l.Value("QueueId")).Order(StringComparer.Ordinal));
            Assert.All(authenticated, l =>
            {
                Assert.Equal(HostNqn, l.Value("HostNqn"));
                Assert.Equal(hash, l.Value("Hash"));
                Assert.Equal(group, l.Value("Group"));
                Assert.Equal(bidirectional ? ", bidirectional" : string.Empty, l.Value("Direction"));
            });
            Assert.DoesNotContain(logs, l => l.Name == "AuthenticationFailed");
        }

        /// <summary>No secret (the base64 field of an interchange string, or the whole string) in our Target's log.</summary>
        public void AssertNoSecret(params string[] keys)
        {
            foreach (string key in keys)
            {
                string secret = key.Split(':') is { Length: 4 } parts ? parts[2] : key;
                Assert.DoesNotContain(logs, l => l.Message.Contains(secret, StringComparison.Ordinal));
            }
        }

        public async Task WaitAsync(Func<bool> condition, string what)
        {
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
            while (!condition())
            {
                if (DateTime.UtcNow > deadline)
                {
                    throw new TimeoutException($"timed out waiting for {what}");
                }

                await Task.Delay(100);
            }
        }

        public async ValueTask DisposeAsync()
        {
            try
            {
                guest.Exec($"nvme-host-disconnect -a {guest.HostAddress}; nvmet-psk -c", GuestTimeout);
                await WaitAsync(() => subsystem.ControllerCount == 0, "our Target to see the guest's controller go");
            }
            finally
            {
                await target.DisposeAsync();
            }
        }

        private static string Line(string text, string prefix) =>
            text.Split('\n').FirstOrDefault(l => l.StartsWith(prefix, StringComparison.Ordinal))?.TrimEnd()
            ?? throw new Xunit.Sdk.XunitException($"no '{prefix}' line in:\n{text}");
    }

    /// <summary>One event of our Target's log: its name (the TargetLog method), the text, and the structured values.</summary>
    private sealed record LogLine(string Name, string Message, IReadOnlyList<KeyValuePair<string, object?>> State)
    {
        public string? Value(string key) => Convert.ToString(State.FirstOrDefault(p => p.Key == key).Value, CultureInfo.InvariantCulture);
    }

    private sealed class CollectingLogger(ConcurrentQueue<LogLine> lines) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            var values = state as IReadOnlyList<KeyValuePair<string, object?>> ?? [];
            lines.Enqueue(new LogLine(eventId.Name ?? string.Empty, formatter(state, exception), values));
        }
    }
}
