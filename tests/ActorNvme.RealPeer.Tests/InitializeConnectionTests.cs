using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using ActorNvme.RealPeer.Tests.Harness;
using Xunit;

namespace ActorNvme.RealPeer.Tests;

/// <summary>The NVMe/TCP connection handshake against the Linux target, bytes built by hand.</summary>
public sealed class InitializeConnectionTests
{
    private const int PduLength = 128;

    [RealPeerFact]
    public async Task Linux_target_answers_ICReq_with_ICResp()
    {
        var target = LinuxTarget.Current;
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        await socket.ConnectAsync(new IPEndPoint(target.Address, LinuxTarget.DiscoveryPort), cts.Token);

        await socket.SendAsync(BuildIcReq(), SocketFlags.None, cts.Token);
        var response = new byte[PduLength];
        var received = 0;
        while (received < PduLength)
        {
            var n = await socket.ReceiveAsync(response.AsMemory(received), SocketFlags.None, cts.Token);
            Assert.True(n > 0, $"the target closed the connection after {received} bytes of ICResp");
            received += n;
        }

        Assert.Equal(0x01, response[0]); // PDU type: ICResp
        Assert.Equal(0x00, response[1]); // flags
        Assert.Equal(PduLength, response[2]); // HLEN
        Assert.Equal(0x00, response[3]); // PDO
        Assert.Equal((uint)PduLength, BinaryPrimitives.ReadUInt32LittleEndian(response.AsSpan(4))); // PLEN
        Assert.Equal(0, BinaryPrimitives.ReadUInt16LittleEndian(response.AsSpan(8))); // PFV
        Assert.Equal(0x00, response[11]); // DGST: no digests, none asked for
        var maxH2CData = BinaryPrimitives.ReadUInt32LittleEndian(response.AsSpan(12));
        Assert.True(maxH2CData >= 4096, $"MAXH2CDATA {maxH2CData} is below the 4096 the specification requires");

        // Nothing else may follow an ICResp before we send a command.
        Assert.Equal(0, socket.Available);
    }

    private static byte[] BuildIcReq()
    {
        var pdu = new byte[PduLength]; // reserved bytes stay zero
        pdu[0] = 0x00; // PDU type: ICReq
        pdu[1] = 0x00; // flags
        pdu[2] = PduLength; // HLEN
        pdu[3] = 0x00; // PDO
        BinaryPrimitives.WriteUInt32LittleEndian(pdu.AsSpan(4), PduLength); // PLEN
        BinaryPrimitives.WriteUInt16LittleEndian(pdu.AsSpan(8), 0); // PFV 0 (NVMe/TCP 1.0)
        pdu[10] = 0x00; // HPDA
        pdu[11] = 0x00; // DGST: no header or data digest
        BinaryPrimitives.WriteUInt32LittleEndian(pdu.AsSpan(12), 0); // MAXR2T (0's based): one R2T
        return pdu;
    }
}
