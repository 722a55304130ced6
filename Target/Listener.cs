using System.Net;
using System.Net.Sockets;
using ActorNvme.Transport;
using ActorNvme.Transport.InMemory;
using ActorNvme.Transport.Tls;
using Microsoft.Extensions.Logging;

namespace ActorNvme.Target;

/// <summary>
/// Where the target accepts connections (a "port" in nvmet's terms): a TCP address or an address on
/// an <see cref="InMemoryNetwork"/>. Every subsystem linked to it (see <see cref="NvmSubsystem.Link"/>)
/// and the discovery subsystem are reachable through it.
/// </summary>
public abstract class TargetListener
{
    private int _up;

    private protected TargetListener(NvmeTarget target, ushort portId)
    {
        Target = target;
        PortId = portId;
    }

    /// <summary>PORTID in discovery log entries.</summary>
    public ushort PortId { get; }

    /// <summary>The address it listens on; for TCP with port 0, the port the system picked.</summary>
    public abstract TransportAddress Address { get; }

    /// <summary>"tcp" or "in-memory". Discovery lists, for a host, only listeners of the transport it came through.</summary>
    public abstract string Transport { get; }

    /// <summary>Whether it accepts connections (false after <see cref="TargetFaults.TakeDownListenerAsync"/> or removal).</summary>
    public bool IsUp => Volatile.Read(ref _up) == 1;

    /// <summary>
    /// Whether it requires NVMe/TCP's secure channel (TLS 1.3 with a PSK, <see cref="NvmeTarget.SetTlsPsk"/>): every
    /// connection starts with the TLS handshake, and the discovery log says TREQ secure channel required, SECTYPE TLS 1.3.
    /// </summary>
    public bool SecureChannel { get; internal init; }

    /// <summary>Whether it is blackholed (<see cref="TargetFaults.Blackhole"/>).</summary>
    public bool IsBlackholed => !Gate.IsOpen;

    internal NvmeTarget Target { get; }

    internal AsyncGate Gate { get; } = new();

    public override string ToString() => $"{Transport} {Address} (port {PortId})";

    internal void Start()
    {
        StartCore();
        Volatile.Write(ref _up, 1);
    }

    internal void Stop()
    {
        if (Interlocked.Exchange(ref _up, 0) == 1)
        {
            StopCore();
        }
    }

    private protected abstract void StartCore();

    private protected abstract void StopCore();

    private protected async Task ServeAsync(TargetConnection connection, CancellationToken stopping)
    {
        try
        {
            // A blackholed listener leaves new connections unserved (connected, never answered) until restored.
            await Gate.WaitOpenAsync(stopping).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            connection.Close();
            return;
        }

        if (!SecureChannel)
        {
            await Target.ServeAsync(this, connection).ConfigureAwait(false);
            return;
        }

        TlsPskConnection secured;
        try
        {
            var acceptor = new TlsPskAcceptor(Target.FindTlsPsk, Target.Options.TlsHandshakeTimeout);
            secured = await acceptor.AcceptAsync(new TargetConnectionStream(connection), stopping).ConfigureAwait(false);
        }
        catch (Exception e) when (e is ConnectionClosedException or OperationCanceledException)
        {
            Target.Log.ConnectionRefused(connection.Remote, $"{this} (TLS: {(e as ConnectionClosedException)?.Closed.Detail ?? "stopping"})", 0);
            connection.Reset();
            return;
        }

        // Reads block in the TLS layer: the association's loop gets a thread of its own.
        var tls = new TlsTargetConnection(connection, secured);
        await secured.RunReadLoop(() => Target.ServeAsync(this, tls)).ConfigureAwait(false);
    }
}

/// <summary>A TCP listener on a raw socket; while blackholed it stops accepting but keeps the socket open.</summary>
internal sealed class TcpTargetListener : TargetListener
{
    private const int ListenBacklog = 4096;

    private readonly IPAddress _ip;
    private int _port;
    private Socket? _socket;
    private CancellationTokenSource? _stopping;

    public TcpTargetListener(NvmeTarget target, ushort portId, IPAddress ip, int port)
        : base(target, portId)
    {
        _ip = ip;
        _port = port;
    }

    public override TransportAddress Address => new(_ip.ToString(), _port);

    public override string Transport => "tcp";

    private protected override void StartCore()
    {
        var socket = new Socket(_ip.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            // No ReuseAddress: on Linux .NET turns it into SO_REUSEPORT too, and a second target on the same
            // port would bind as well and split the connections. A port in use is refused (EADDRINUSE).
            socket.Bind(new IPEndPoint(_ip, _port));
            // A deep backlog (the kernel caps it at somaxconn): thousands of hosts connecting at once
            // must not lose SYNs, whose retransmission a second later can outlast a short KATO.
            socket.Listen(ListenBacklog);
        }
        catch
        {
            socket.Dispose();
            throw;
        }

        // Keep the port the system picked, so that bringing the listener up again reuses it.
        _port = ((IPEndPoint)socket.LocalEndPoint!).Port;
        _socket = socket;
        _stopping = new CancellationTokenSource();
        var stopping = _stopping.Token;
        _ = Task.Run(() => AcceptLoopAsync(socket, stopping));
    }

    private protected override void StopCore()
    {
        _stopping?.Cancel();
        _socket?.Dispose();
        _socket = null;
    }

    private async Task AcceptLoopAsync(Socket socket, CancellationToken stopping)
    {
        while (!stopping.IsCancellationRequested)
        {
            Socket accepted;
            try
            {
                // Blackholed: stop accepting. The kernel still completes handshakes into the backlog,
                // so a host's connect succeeds and is never served.
                await Gate.WaitOpenAsync(stopping).ConfigureAwait(false);
                accepted = await socket.AcceptAsync(stopping).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is OperationCanceledException or ObjectDisposedException or SocketException)
            {
                if (stopping.IsCancellationRequested)
                {
                    return;
                }

                Target.Log.AcceptFailed(ex, Address.ToString());
                continue;
            }

            var connection = new SocketTargetConnection(accepted);
            _ = Task.Run(() => ServeAsync(connection, stopping), CancellationToken.None);
        }
    }
}

/// <summary>A listener on an <see cref="InMemoryNetwork"/>.</summary>
internal sealed class InMemoryTargetListener(NvmeTarget target, ushort portId, InMemoryNetwork network, TransportAddress address) : TargetListener(target, portId)
{
    private IDisposable? _registration;
    private CancellationTokenSource? _stopping;

    public override TransportAddress Address { get; } = address;

    public override string Transport => "in-memory";

    private protected override void StartCore()
    {
        _stopping = new CancellationTokenSource();
        var stopping = _stopping.Token;
        _registration = network.Listen(Address, connection => ServeAsync(new InMemoryTargetConnection(connection, Address.Host), stopping));
    }

    private protected override void StopCore()
    {
        _registration?.Dispose();
        _registration = null;
        _stopping?.Cancel();
    }
}

/// <summary>A referral entry of the discovery log: another discovery service (<paramref name="SecureChannel"/>: reached over TLS only).</summary>
public sealed record DiscoveryReferral(TransportAddress Address, ushort PortId, bool SecureChannel = false);
