using System.Net;
using System.Net.Sockets;

namespace ActorNvme.Host.Cli;

/// <summary>
/// Whether a TCP port is really free. The Target's listeners set ReuseAddress, which on Linux also
/// sets SO_REUSEPORT: a second listener on a busy port then binds without error and the kernel
/// shares the connections between the two. An exclusive bind (no reuse) is refused instead.
/// </summary>
internal static class PortProbe
{
    public static bool IsFree(string address, int port)
    {
        if (port == 0)
        {
            return true;
        }

        using var probe = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            probe.ExclusiveAddressUse = false;
            probe.Bind(new IPEndPoint(IPAddress.Parse(address), port));
            return true;
        }
        catch (SocketException e) when (e.SocketErrorCode is SocketError.AddressAlreadyInUse or SocketError.AccessDenied)
        {
            return false;
        }
    }
}
