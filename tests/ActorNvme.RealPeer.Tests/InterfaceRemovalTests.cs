using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using ActorNvme.RealPeer.Tests.Harness;
using Xunit;

namespace ActorNvme.RealPeer.Tests;

/// <summary>
/// The guest's interface can be removed and restored through the control channel (SPDK's
/// remove_ifc step), and new connections follow.
/// </summary>
public sealed class InterfaceRemovalTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    [RealPeerFact]
    public async Task Connect_fails_while_the_interface_is_down_and_works_after_it_is_up()
    {
        var target = LinuxTarget.Current;
        var endpoint = new IPEndPoint(target.Address, LinuxTarget.DiscoveryPort);
        Assert.True(await TryConnectAsync(endpoint, TimeSpan.FromSeconds(10)), "8009 did not accept a connection before ifc-down");

        try
        {
            target.ExecChecked("ifc-down", Timeout);
            Assert.False(
                await TryConnectAsync(endpoint, TimeSpan.FromSeconds(5)),
                "a connection to 8009 succeeded although the guest's interface is down");
        }
        finally
        {
            target.ExecChecked("ifc-up", Timeout);
        }

        // The listener comes back without reconfiguring nvmet; allow time for ARP and retries.
        var clock = Stopwatch.StartNew();
        var connected = false;
        while (!connected && clock.Elapsed < TimeSpan.FromSeconds(60))
        {
            connected = await TryConnectAsync(endpoint, TimeSpan.FromSeconds(5));
            if (!connected)
            {
                await Task.Delay(500);
            }
        }

        Assert.True(connected, $"8009 did not accept a connection within 60 s after ifc-up");
    }

    private static async Task<bool> TryConnectAsync(IPEndPoint endpoint, TimeSpan within)
    {
        using var cts = new CancellationTokenSource(within);
        using var socket = new Socket(endpoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            await socket.ConnectAsync(endpoint, cts.Token);
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }
}
