using ActorNvme.Protocol.Tcp;

namespace ActorNvme.Transport.Tests;

/// <summary>Opens queue pairs against a scripted peer and completes the handshake on both ends.</summary>
internal static class Connections
{
    public static async Task<(AdminQueuePair Admin, ScriptedPeer Peer, RecordingSink Sink)> AdminAsync(PeerNetwork network, QueuePairOptions? options = null, ICResp? answer = null)
    {
        var sink = new RecordingSink();
        var accepting = network.AcceptAsync();
        var connecting = AdminQueuePair.ConnectAsync(network.Transport, network.Address, options ?? QueuePairOptions.Admin, sink);
        var peer = await accepting;
        await peer.AcceptAsync(answer);
        var admin = await connecting.WaitAsync(ScriptedPeer.Deadline);
        return (admin, peer, sink);
    }

    public static async Task<(IoQueuePair Io, ScriptedPeer Peer)> IoAsync(PeerNetwork network, QueuePairOptions? options = null, ICResp? answer = null)
    {
        var accepting = network.AcceptAsync();
        var connecting = IoQueuePair.ConnectAsync(network.Transport, network.Address, 1, options ?? QueuePairOptions.Io, connect: null);
        var peer = await accepting;
        await peer.AcceptAsync(answer);
        var io = await connecting.WaitAsync(ScriptedPeer.Deadline);
        return (io, peer);
    }

    public static Task<T> Within<T>(this Task<T> task) => task.WaitAsync(ScriptedPeer.Deadline);

    public static Task<T> Within<T>(this ValueTask<T> task) => task.AsTask().WaitAsync(ScriptedPeer.Deadline);

    public static byte[] Pattern(int length, int seed)
    {
        var bytes = new byte[length];
        new Random(seed).NextBytes(bytes);
        return bytes;
    }
}
