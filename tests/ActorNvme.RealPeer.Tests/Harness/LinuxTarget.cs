using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace ActorNvme.RealPeer.Tests.Harness;

/// <summary>
/// The Linux kernel NVMe/TCP target booted by <c>scripts/nvmet-qemu/nvmet.sh</c>, as seen from a
/// test running inside the harness's network namespace: its address and a control channel that
/// runs shell commands in the guest without using the guest's network (so it keeps working while
/// a test has taken the guest's interface down).
/// </summary>
/// <remarks>
/// Control protocol (the guest side is <c>scripts/nvmet-qemu/guest/commands/control-agent</c>), over the
/// unix stream socket named by <c>ACTORNVME_NVMET_CONTROL</c>, one client at a time:
/// <list type="bullet">
/// <item>request: <c>"&lt;id&gt; &lt;command&gt;\n"</c>; id is 1–64 characters of <c>[A-Za-z0-9_.-]</c>;
/// the command has no LF and is run by <c>sh -c</c> with stdin from /dev/null;</item>
/// <item>answer: <c>"%BEGIN &lt;id&gt;\n"</c>, then lines of base64 holding stdout and stderr as
/// written, then <c>"%END &lt;id&gt; &lt;exit code&gt;\n"</c>. Lines before our <c>%BEGIN</c> belong to
/// an earlier, abandoned request and are skipped.</item>
/// </list>
/// Commands run one at a time in the guest; this class also serializes its callers.
/// </remarks>
public sealed class LinuxTarget
{
    public const string ControlVariable = "ACTORNVME_NVMET_CONTROL";
    public const string AddressVariable = "ACTORNVME_NVMET_ADDR";
    public const string HostAddressVariable = "ACTORNVME_NVMET_HOSTADDR";
    public const string NamespaceVariable = "ACTORNVME_NVMET_NETNS";
    public const string KernelVariable = "ACTORNVME_NVMET_KERNEL";
    public const string FeaturesVariable = "ACTORNVME_NVMET_FEATURES";

    /// <summary>Port of nvmet-default's discovery (and I/O) port, port id 1.</summary>
    public const int DiscoveryPort = 8009;

    /// <summary>Port of nvmet-default's second port, port id 2.</summary>
    public const int IoPort = 4420;

    private static readonly SemaphoreSlim Gate = new(1, 1);
    private static readonly Lazy<LinuxTarget> FromEnvironment = new(Create);
    private static int requestCounter;

    private LinuxTarget(string controlSocket, IPAddress address, IPAddress hostAddress, string? netns, string? kernel)
    {
        ControlSocket = controlSocket;
        Address = address;
        HostAddress = hostAddress;
        NetworkNamespace = netns;
        KernelVersion = kernel;
    }

    /// <summary>The target started by the harness; throws when not running inside it.</summary>
    public static LinuxTarget Current => FromEnvironment.Value;

    /// <summary>Path of the guest's control socket.</summary>
    public string ControlSocket { get; }

    /// <summary>The guest's address, where nvmet listens.</summary>
    public IPAddress Address { get; }

    /// <summary>Our side of the link (the tap device in the namespace).</summary>
    public IPAddress HostAddress { get; }

    public string? NetworkNamespace { get; }

    /// <summary>The guest kernel's release (<c>uname -r</c>) as built by the harness, when known.</summary>
    public string? KernelVersion { get; }

    private static LinuxTarget Create()
    {
        var control = Environment.GetEnvironmentVariable(ControlVariable);
        if (string.IsNullOrEmpty(control))
        {
            throw new InvalidOperationException(
                $"{ControlVariable} is unset: these tests run inside scripts/nvmet-qemu/nvmet.sh (run or with).");
        }

        return new LinuxTarget(
            control,
            ParseAddress(AddressVariable, "10.0.0.2"),
            ParseAddress(HostAddressVariable, "10.0.0.1"),
            Environment.GetEnvironmentVariable(NamespaceVariable),
            Environment.GetEnvironmentVariable(KernelVariable));
    }

    private static IPAddress ParseAddress(string variable, string fallback)
    {
        var text = Environment.GetEnvironmentVariable(variable);
        return IPAddress.Parse(string.IsNullOrEmpty(text) ? fallback : text);
    }

    /// <summary>Runs <paramref name="command"/> in the guest with <c>sh -c</c>.</summary>
    /// <returns>The command's exit code and its stdout and stderr, interleaved as written.</returns>
    /// <exception cref="TimeoutException">The guest did not finish within <paramref name="timeout"/>.</exception>
    /// <exception cref="IOException">The control channel failed or answered out of protocol.</exception>
    public (int ExitCode, string Output) Exec(string command, TimeSpan timeout)
    {
        ArgumentNullException.ThrowIfNull(command);
        if (command.Contains('\n', StringComparison.Ordinal))
        {
            throw new ArgumentException("a guest command cannot contain a newline", nameof(command));
        }

        var deadline = DateTime.UtcNow + timeout;
        if (!Gate.Wait(timeout))
        {
            throw new TimeoutException($"another guest command held the control channel for {timeout.TotalSeconds:0.#} s; '{command}' did not start");
        }

        try
        {
            var id = string.Create(CultureInfo.InvariantCulture, $"cs{Environment.ProcessId}-{Interlocked.Increment(ref requestCounter)}");
            using var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            try
            {
                socket.Connect(new UnixDomainSocketEndPoint(ControlSocket));
                socket.SendTimeout = Milliseconds(deadline - DateTime.UtcNow);
                socket.Send(Encoding.UTF8.GetBytes($"{id} {command}\n"));
            }
            catch (SocketException e)
            {
                throw new IOException($"cannot send '{command}' to the guest's control socket {ControlSocket}: {e.Message}", e);
            }

            return ReadAnswer(socket, id, command, timeout, deadline);
        }
        finally
        {
            Gate.Release();
        }
    }

    /// <summary>Runs <paramref name="command"/> and returns its output; throws when it exits non-zero.</summary>
    public string ExecChecked(string command, TimeSpan timeout)
    {
        var (code, output) = Exec(command, timeout);
        if (code != 0)
        {
            throw new InvalidOperationException($"guest command '{command}' exited with {code}: {output}");
        }

        return output;
    }

    private static (int ExitCode, string Output) ReadAnswer(Socket socket, string id, string command, TimeSpan timeout, DateTime deadline)
    {
        var begin = $"%BEGIN {id}";
        var endPrefix = $"%END {id} ";
        var started = false;
        var base64 = new StringBuilder();
        var pending = new List<byte>();
        var buffer = new byte[4096];
        while (true)
        {
            var remaining = deadline - DateTime.UtcNow;
            if (remaining <= TimeSpan.Zero)
            {
                throw Timeout();
            }

            socket.ReceiveTimeout = Milliseconds(remaining);
            int n;
            try
            {
                n = socket.Receive(buffer);
            }
            catch (SocketException e) when (e.SocketErrorCode is SocketError.TimedOut or SocketError.WouldBlock)
            {
                throw Timeout();
            }
            catch (SocketException e)
            {
                throw new IOException($"control socket failed while waiting for '{command}': {e.Message}", e);
            }

            if (n == 0)
            {
                throw new IOException($"control socket closed before the guest answered '{command}' (did QEMU exit?)");
            }

            for (var i = 0; i < n; i++)
            {
                if (buffer[i] != (byte)'\n')
                {
                    pending.Add(buffer[i]);
                    continue;
                }

                var line = Encoding.ASCII.GetString(pending.ToArray());
                pending.Clear();
                if (!started)
                {
                    started = line == begin;
                }
                else if (line.StartsWith(endPrefix, StringComparison.Ordinal))
                {
                    if (!int.TryParse(line.AsSpan(endPrefix.Length), NumberStyles.None, CultureInfo.InvariantCulture, out var code))
                    {
                        throw new IOException($"malformed end line from the guest: '{line}'");
                    }

                    try
                    {
                        return (code, Encoding.UTF8.GetString(Convert.FromBase64String(base64.ToString())));
                    }
                    catch (FormatException e)
                    {
                        throw new IOException($"the guest's answer to '{command}' is not valid base64", e);
                    }
                }
                else
                {
                    base64.Append(line);
                }
            }
        }

        TimeoutException Timeout() => new(
            $"the guest did not finish '{command}' within {timeout.TotalSeconds:0.#} s (request {id}, "
            + (started ? "started, no end marker)" : "not acknowledged)"));
    }

    private static int Milliseconds(TimeSpan t) => (int)Math.Clamp(Math.Ceiling(t.TotalMilliseconds), 1, int.MaxValue);
}
