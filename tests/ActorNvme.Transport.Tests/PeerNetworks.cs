using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;
using System.Threading.Channels;
using ActorNvme.Transport.InMemory;
using ActorNvme.Transport.RawSocket;
using ActorNvme.Transport.Tcp;

namespace ActorNvme.Transport.Tests;

/// <summary>Where a scripted peer listens: the in-memory network or TCP on 127.0.0.1:0.</summary>
internal abstract class PeerNetwork : IAsyncDisposable
{
    public const string Memory = "memory";
    public const string Tcp = "tcp";
    public const string Raw = "raw-socket";

    public abstract INvmeTransport Transport { get; }

    public abstract TransportAddress Address { get; }

    public static PeerNetwork Create(string kind) => kind switch
    {
        Memory => new InMemoryPeerNetwork(),
        Tcp => new TcpPeerNetwork(new TcpTransport()),
        Raw => new TcpPeerNetwork(new RawSocketTransport()),
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, "memory or tcp"),
    };

    public abstract Task<ScriptedPeer> AcceptAsync();

    public abstract ValueTask DisposeAsync();
}

internal sealed class InMemoryPeerNetwork : PeerNetwork
{
    private static int _nextPort = 1;
    private readonly InMemoryNetwork _network = new();
    private readonly Channel<INvmeConnection> _accepted = Channel.CreateUnbounded<INvmeConnection>();
    private readonly IDisposable _listener;

    public InMemoryPeerNetwork()
    {
        Address = new TransportAddress("scripted-peer", Interlocked.Increment(ref _nextPort));
        Transport = new InMemoryTransport(_network);
        _listener = _network.Listen(Address, connection => _accepted.Writer.WriteAsync(connection).AsTask());
    }

    public override INvmeTransport Transport { get; }

    public override TransportAddress Address { get; }

    public override async Task<ScriptedPeer> AcceptAsync()
    {
        using var timeout = new CancellationTokenSource(ScriptedPeer.Deadline);
        var connection = await _accepted.Reader.ReadAsync(timeout.Token);
        return new ScriptedPeer(connection.Pipe, async () =>
        {
            await connection.Pipe.Output.CompleteAsync();
            await connection.DisposeAsync();
        });
    }

    public override ValueTask DisposeAsync()
    {
        _listener.Dispose();
        return ValueTask.CompletedTask;
    }
}

internal sealed class TcpPeerNetwork : PeerNetwork
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly int? _receiveBufferSize;

    /// <param name="receiveBufferSize">The peer's SO_RCVBUF (fixed, no autotuning): small, so that a peer that stops reading fills up soon.</param>
    public TcpPeerNetwork(INvmeTransport transport, int? receiveBufferSize = null)
    {
        _receiveBufferSize = receiveBufferSize;
        _listener.Start();
        Address = new TransportAddress("127.0.0.1", ((IPEndPoint)_listener.LocalEndpoint).Port);
        Transport = transport;
    }

    public override INvmeTransport Transport { get; }

    public override TransportAddress Address { get; }

    public override async Task<ScriptedPeer> AcceptAsync()
    {
        using var timeout = new CancellationTokenSource(ScriptedPeer.Deadline);
        var socket = await _listener.AcceptSocketAsync(timeout.Token);
        socket.NoDelay = true;
        if (_receiveBufferSize is { } size)
        {
            socket.ReceiveBufferSize = size;
        }

        var stream = new NetworkStream(socket, ownsSocket: true);
        var pipe = new StreamDuplexPipe(PipeReader.Create(stream), PipeWriter.Create(stream));
        return new ScriptedPeer(pipe, async () =>
        {
            await pipe.Output.CompleteAsync();
            await stream.DisposeAsync();
        });
    }

    public override ValueTask DisposeAsync()
    {
        _listener.Stop();
        _listener.Dispose();
        return ValueTask.CompletedTask;
    }

    private sealed class StreamDuplexPipe(PipeReader input, PipeWriter output) : IDuplexPipe
    {
        public PipeReader Input { get; } = input;

        public PipeWriter Output { get; } = output;
    }
}
