using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using ActorNvme.Protocol.Auth;
using ActorNvme.Protocol.Tls;
using Xunit;

namespace ActorNvme.RealPeer.Tests.Spdk;

/// <summary>
/// A fact that needs SPDK's nvmf_tgt: the unpacked bundle named by ACTORNVME_SPDK_BUNDLE (scripts/spdk-peer.sh
/// prints it; tests/shell/spdk-dhchap.sh sets it) and root. Skipped, with the reason, otherwise.
/// </summary>
[AttributeUsage(AttributeTargets.Method, AllowMultiple = false)]
public sealed class SpdkPeerFactAttribute : FactAttribute
{
    public SpdkPeerFactAttribute()
    {
        if (SpdkTarget.Bundle is null)
        {
            Skip = $"needs SPDK's nvmf_tgt: set {SpdkTarget.BundleVariable} to the bundle scripts/spdk-peer.sh prints (tests/shell/spdk-dhchap.sh does), as root";
        }
    }
}

/// <summary>
/// SPDK's nvmf_tgt on 127.0.0.1 and a free port, without hugepages, configured over rpc.py; its keys in
/// files of mode 0600 in a private directory (SPDK's keyring rule). One per test class.
/// </summary>
public sealed class SpdkTarget : IAsyncDisposable
{
    public const string BundleVariable = "ACTORNVME_SPDK_BUNDLE";

    private readonly Process _process;
    private readonly string _socket;
    private readonly List<string> _log;

    private SpdkTarget(Process process, string directory, string socket, List<string> log, int port)
    {
        _process = process;
        Directory = directory;
        _socket = socket;
        _log = log;
        Port = port;
    }

    /// <summary>The unpacked bundle, or null when it is not given or this is not root.</summary>
    public static string? Bundle
    {
        get
        {
            string? bundle = Environment.GetEnvironmentVariable(BundleVariable);
            bool root = OperatingSystem.IsLinux() && Environment.UserName == "root";
            return root && !string.IsNullOrEmpty(bundle) && File.Exists(Path.Combine(bundle, "build/bin/nvmf_tgt")) ? bundle : null;
        }
    }

    public string Directory { get; }

    public int Port { get; }

    public string Log
    {
        get
        {
            lock (_log)
            {
                return string.Join('\n', _log);
            }
        }
    }

    public static async Task<SpdkTarget> StartAsync()
    {
        string bundle = Bundle ?? throw new InvalidOperationException($"{BundleVariable} is not set");
        if (OperatingSystem.IsWindows())
        {
            throw new PlatformNotSupportedException("nvmf_tgt runs on Linux");
        }

        string directory = System.IO.Directory.CreateTempSubdirectory("anvme-dhchap-").FullName;
        File.SetUnixFileMode(directory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        string socket = Path.Combine(directory, "tgt.sock");
        var log = new List<string>();
        var start = new ProcessStartInfo(Path.Combine(bundle, "build/bin/nvmf_tgt"))
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        foreach (string arg in new[] { "-m", "0x1", "--no-huge", "-s", "1024", "--disable-cpumask-locks", "-r", socket })
        {
            start.ArgumentList.Add(arg);
        }

        var process = Process.Start(start)!;
        process.OutputDataReceived += (_, e) => Append(log, e.Data);
        process.ErrorDataReceived += (_, e) => Append(log, e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        var target = new SpdkTarget(process, directory, socket, log, FreePort());
        try
        {
            var deadline = Stopwatch.StartNew();
            while (!File.Exists(socket) || !await target.TryRpcAsync("spdk_get_version"))
            {
                if (process.HasExited || deadline.Elapsed > TimeSpan.FromSeconds(60))
                {
                    throw new InvalidOperationException($"nvmf_tgt did not come up: {target.Log}");
                }

                await Task.Delay(250);
            }

            await target.RpcAsync("nvmf_create_transport", "-t", "TCP");
            return target;
        }
        catch
        {
            await target.DisposeAsync();
            throw;
        }
    }

    /// <summary>Writes <paramref name="secret"/> to a 0600 key file and adds it to the target's keyring as <paramref name="name"/>.</summary>
    public Task<string> AddKeyAsync(string name, string secret) => AddKeyAsync(name, secret, trailingNewline: true);

    /// <summary>As <see cref="AddKeyAsync(string, string)"/>; TLS PSK files must have no trailing newline (SPDK refuses them with one).</summary>
    public async Task<string> AddKeyAsync(string name, string secret, bool trailingNewline)
    {
        if (OperatingSystem.IsWindows())
        {
            throw new PlatformNotSupportedException("SPDK's keyring wants Unix file modes");
        }

        string path = Path.Combine(Directory, name + ".key");
        await File.WriteAllTextAsync(path, trailingNewline ? secret + "\n" : secret);
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        await RpcAsync("keyring_file_add_key", name, path);
        return path;
    }

    /// <summary>A subsystem with a 64 MiB RAM namespace, listening on <see cref="Port"/>, open only to the hosts added.</summary>
    public async Task AddSubsystemAsync(string nqn, string bdev)
    {
        await RpcAsync("bdev_malloc_create", "64", "512", "-b", bdev);
        await RpcAsync("nvmf_create_subsystem", nqn, "-s", "SPDK" + bdev.PadLeft(16, '0')[^16..]);
        await RpcAsync("nvmf_subsystem_add_ns", nqn, bdev);
        await RpcAsync("nvmf_subsystem_add_listener", nqn, "-t", "tcp", "-a", "127.0.0.1", "-s", Port.ToString(System.Globalization.CultureInfo.InvariantCulture));
    }

    /// <summary>The port of the secure-channel listeners (<see cref="AddTlsSubsystemAsync"/>).</summary>
    public int TlsPort { get; } = FreePort();

    /// <summary>A subsystem with a 64 MiB RAM namespace behind a TLS listener (-k, secure channel) on <see cref="TlsPort"/>.</summary>
    public async Task AddTlsSubsystemAsync(string nqn, string bdev)
    {
        await RpcAsync("bdev_malloc_create", "64", "512", "-b", bdev);
        await RpcAsync("nvmf_create_subsystem", nqn, "-s", "SPDK" + bdev.PadLeft(16, '0')[^16..]);
        await RpcAsync("nvmf_subsystem_add_ns", nqn, bdev);
        await RpcAsync("nvmf_subsystem_add_listener", nqn, "-t", "tcp", "-a", "127.0.0.1", "-s", TlsPort.ToString(System.Globalization.CultureInfo.InvariantCulture), "-k");
    }

    public Task AddHostAsync(string subsystemNqn, string hostNqn, string key, string? controllerKey = null) =>
        controllerKey is null
            ? RpcAsync("nvmf_subsystem_add_host", subsystemNqn, hostNqn, "--dhchap-key", key)
            : RpcAsync("nvmf_subsystem_add_host", subsystemNqn, hostNqn, "--dhchap-key", key, "--dhchap-ctrlr-key", controllerKey);

    public async Task RpcAsync(params string[] args)
    {
        var (code, output) = await RunRpcAsync(args);
        if (code != 0)
        {
            throw new InvalidOperationException($"rpc.py {string.Join(' ', args)} failed ({code}): {output}");
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            // SIGINT lets nvmf_tgt shut down cleanly.
            using var kill = Process.Start("kill", ["-INT", _process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
            await kill.WaitForExitAsync();
            using var wait = new CancellationTokenSource(TimeSpan.FromSeconds(20));
            try
            {
                await _process.WaitForExitAsync(wait.Token);
            }
            catch (OperationCanceledException)
            {
                _process.Kill();
            }
        }

        try
        {
            System.IO.Directory.Delete($"/var/run/dpdk/spdk_pid{_process.Id}", recursive: true);
        }
        catch (IOException)
        {
        }

        _process.Dispose();
        System.IO.Directory.Delete(Directory, recursive: true);
    }

    /// <summary>A DHHC-1 secret (hh 01: transformed with SHA-256 and the NQN, as nvme gen-dhchap-key -m 1 makes them).</summary>
    public static string NewSecret(byte transform = 1) => DhChapSecret.Generate(32, transform);

    /// <summary>
    /// A random PSK interchange string SPDK's host accepts for <paramref name="hostNqn"/> with each subsystem. SPDK's host takes a
    /// derived TLS PSK whose first byte is zero for "no PSK" and fails with "PSK is not set" (one key in 256); such keys are
    /// drawn again, for the version-0 identity SPDK sends.
    /// </summary>
    public static string NewPsk(NvmeTlsPskHash hash, string hostNqn, params string[] subsystemNqns)
    {
        while (true)
        {
            string text = NvmeTlsPsk.Generate(hash);
            using var psk = NvmeTlsPsk.Parse(text);
            byte[] retained = psk.RetainedPsk(hostNqn);
            bool accepted = subsystemNqns.All(nqn =>
                NvmeTlsPskDerivation.TlsPsk(retained, NvmeTlsPskDerivation.Identity(psk.CipherSuite, hostNqn, nqn), psk.CipherSuite)[0] != 0);
            System.Security.Cryptography.CryptographicOperations.ZeroMemory(retained);
            if (accepted)
            {
                return text;
            }
        }
    }

    private async Task<bool> TryRpcAsync(params string[] args) => (await RunRpcAsync(args)).Code == 0;

    private async Task<(int Code, string Output)> RunRpcAsync(string[] args)
    {
        var start = new ProcessStartInfo("python3") { RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add(Path.Combine(Bundle!, "scripts/rpc.py"));
        start.ArgumentList.Add("-s");
        start.ArgumentList.Add(_socket);
        foreach (string arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        return (process.ExitCode, (await output) + (await error));
    }

    private static void Append(List<string> log, string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (log)
        {
            log.Add(line);
        }
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
