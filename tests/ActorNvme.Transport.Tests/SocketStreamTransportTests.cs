using System.Net;
using System.Net.Sockets;
using ActorNvme.Transport;
using ActorNvme.Transport.Tcp;
using Xunit;

namespace ActorNvme.Transport.Tests;

/// <summary>The blocking socket stream TLS runs on: bytes both ways, an abort that wakes a blocked read, refusals named.</summary>
public sealed class SocketStreamTransportTests
{
    private static readonly TimeSpan Generous = TimeSpan.FromSeconds(30);

    private static (Socket Listener, TransportAddress Address) Listen()
    {
        var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(1);
        return (listener, new TransportAddress("127.0.0.1", ((IPEndPoint)listener.LocalEndPoint!).Port));
    }

    [Fact]
    public async Task Bytes_written_by_either_end_arrive_whole_at_the_other()
    {
        var (listener, address) = Listen();
        using var _ = listener;
        await using var connection = await new SocketStreamTransport().ConnectAsync(address, CancellationToken.None);
        using var peer = await listener.AcceptAsync();
        var stream = Assert.IsAssignableFrom<IStreamConnection>(connection).Stream;

        var sent = Enumerable.Range(0, 200_000).Select(i => (byte)i).ToArray(); // larger than the receive buffer
        var peerSends = Task.Run(() => peer.Send(sent));
        var received = new byte[sent.Length];
        int total = 0;
        while (total < received.Length)
        {
            int n = stream.Read(received, total, received.Length - total);
            Assert.True(n > 0, $"the stream ended after {total} of {received.Length} bytes");
            total += n;
        }

        await peerSends.WaitAsync(Generous);
        Assert.Equal(sent, received);

        stream.Write(sent, 0, 1000);
        var back = new byte[1000];
        int got = 0;
        while (got < back.Length)
        {
            got += peer.Receive(back.AsSpan(got));
        }

        Assert.Equal(sent.AsSpan(0, 1000).ToArray(), back);
    }

    [Fact]
    public async Task An_abort_wakes_a_read_blocked_in_the_kernel_and_says_why_the_connection_closed()
    {
        var (listener, address) = Listen();
        using var _ = listener;
        var connection = await new SocketStreamTransport().ConnectAsync(address, CancellationToken.None);
        using var peer = await listener.AcceptAsync();
        var stream = ((IStreamConnection)connection).Stream;
        var blockedRead = Task.Run(() =>
        {
            try
            {
                return stream.Read(new byte[16], 0, 16);
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException)
            {
                return -1;
            }
        });
        await Task.Delay(200);
        Assert.False(blockedRead.IsCompleted, "nothing was sent, yet the read returned");

        connection.Abort(new ConnectionClosed(CloseReason.LocalShutdown, "test ends it"));
        Assert.InRange(await blockedRead.WaitAsync(Generous), -1, 0);
        var closed = await connection.Closed.WaitAsync(Generous);
        Assert.Equal(CloseReason.LocalShutdown, closed.Reason);
    }

    [Fact]
    public async Task A_port_nobody_listens_on_is_refused_as_ConnectFailed_naming_the_address()
    {
        var (listener, address) = Listen();
        listener.Dispose();
        var refused = await Assert.ThrowsAsync<ConnectionClosedException>(async () => await new SocketStreamTransport().ConnectAsync(address, CancellationToken.None));
        Assert.Equal(CloseReason.ConnectFailed, refused.Closed.Reason);
        Assert.Contains(address.ToString(), refused.Closed.Detail, StringComparison.Ordinal);
    }
}
