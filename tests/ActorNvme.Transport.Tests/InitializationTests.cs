using ActorNvme.Protocol.Tcp;
using Xunit;

namespace ActorNvme.Transport.Tests;

public sealed class InitializationTests
{
    [Theory]
    [InlineData(PeerNetwork.Memory, DigestOptions.None)]
    [InlineData(PeerNetwork.Tcp, DigestOptions.None)]
    [InlineData(PeerNetwork.Raw, DigestOptions.None)]
    [InlineData(PeerNetwork.Memory, DigestOptions.Both)]
    [InlineData(PeerNetwork.Tcp, DigestOptions.Both)]
    [InlineData(PeerNetwork.Raw, DigestOptions.Both)]
    public async Task Handshake_asks_for_HPDA_0_MAXR2T_0_and_the_configured_digests(string kind, DigestOptions digests)
    {
        await using var network = PeerNetwork.Create(kind);
        var sink = new RecordingSink();
        var accepting = network.AcceptAsync();
        var connecting = AdminQueuePair.ConnectAsync(network.Transport, network.Address, QueuePairOptions.Admin with { Digests = digests }, sink);
        await using var peer = await accepting;
        var icreq = await peer.AcceptAsync(new ICResp(0, 3, digests, 8192));
        await using var admin = await connecting.Within();

        Assert.Equal(0, icreq.PduFormatVersion);
        Assert.Equal(0, icreq.HostPduDataAlignment);
        Assert.Equal(0u, icreq.MaxR2TOutstanding);
        Assert.Equal(digests, icreq.Digests);
        Assert.Equal(new NegotiatedParameters(digests, 16, 8192), admin.Negotiated);
    }

    [Theory]
    [InlineData(PeerNetwork.Memory)]
    [InlineData(PeerNetwork.Tcp)]
    [InlineData(PeerNetwork.Raw)]
    public async Task Different_digests_are_refused_naming_both_settings(string kind)
    {
        await using var network = PeerNetwork.Create(kind);
        var accepting = network.AcceptAsync();
        var connecting = IoQueuePair.ConnectAsync(network.Transport, network.Address, 1, QueuePairOptions.Io with { Digests = DigestOptions.Both }, null);
        await using var peer = await accepting;
        await peer.AcceptAsync(new ICResp(0, 0, DigestOptions.Header, 131072));

        var refused = await Assert.ThrowsAsync<ConnectionClosedException>(() => connecting.Within());
        Assert.Equal(CloseReason.InitializationRefused, refused.Closed.Reason);
        Assert.Contains("controller answered digests header only", refused.Closed.Detail, StringComparison.Ordinal);
        Assert.Contains("host asked for header and data", refused.Closed.Detail, StringComparison.Ordinal);
        Assert.Null(await peer.ReceiveAsync());
    }

    [Theory]
    [InlineData(1, 0, 131072u, "PDU format version 1")]
    [InlineData(0, 0, 2048u, "MAXH2CDATA 2048")]
    [InlineData(0, 0, 8190u, "MAXH2CDATA 8190")]
    [InlineData(0, 32, 131072u, "CPDA 32")]
    public async Task An_unusable_ICResp_is_refused(ushort version, byte cpda, uint maxH2CData, string named)
    {
        await using var network = PeerNetwork.Create(PeerNetwork.Memory);
        var accepting = network.AcceptAsync();
        var connecting = IoQueuePair.ConnectAsync(network.Transport, network.Address, 1, QueuePairOptions.Io, null);
        await using var peer = await accepting;
        await peer.AcceptAsync(new ICResp(version, cpda, DigestOptions.None, maxH2CData));

        var refused = await Assert.ThrowsAsync<ConnectionClosedException>(() => connecting.Within());
        Assert.Equal(CloseReason.InitializationRefused, refused.Closed.Reason);
        Assert.Contains(named, refused.Closed.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task No_ICResp_closes_with_InitializationTimeout()
    {
        await using var network = PeerNetwork.Create(PeerNetwork.Memory);
        var accepting = network.AcceptAsync();
        var connecting = IoQueuePair.ConnectAsync(network.Transport, network.Address, 1, QueuePairOptions.Io with { InitializationTimeout = TimeSpan.FromMilliseconds(300) }, null);
        await using var peer = await accepting;
        await peer.ExpectAsync(PduType.ICReq);

        var timeout = await Assert.ThrowsAsync<ConnectionClosedException>(() => connecting.Within());
        Assert.Equal(CloseReason.InitializationTimeout, timeout.Closed.Reason);
    }

    [Fact]
    public async Task A_PDU_before_ICResp_is_a_protocol_violation()
    {
        await using var network = PeerNetwork.Create(PeerNetwork.Memory);
        var accepting = network.AcceptAsync();
        var connecting = IoQueuePair.ConnectAsync(network.Transport, network.Address, 1, QueuePairOptions.Io, null);
        await using var peer = await accepting;
        await peer.ExpectAsync(PduType.ICReq);
        await peer.RespondAsync(0);

        var refused = await Assert.ThrowsAsync<ConnectionClosedException>(() => connecting.Within());
        Assert.Equal(CloseReason.UnexpectedPdu, refused.Closed.Reason);
        var termReq = await peer.ExpectAsync(PduType.H2CTermReq);
        Assert.Equal(TermReqError.PduSequenceError, termReq.TermReq.Status);
    }

    [Fact]
    public async Task Nothing_listening_fails_with_ConnectFailed()
    {
        var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        int port = ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();

        var failed = await Assert.ThrowsAsync<ConnectionClosedException>(() =>
            IoQueuePair.ConnectAsync(new Tcp.TcpTransport(), new TransportAddress("127.0.0.1", port), 1, QueuePairOptions.Io, null).Within());
        Assert.Equal(CloseReason.ConnectFailed, failed.Closed.Reason);
    }
}
