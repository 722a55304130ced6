using System.Net.Sockets;

namespace ActorNvme.Transport;

/// <summary>
/// A connection over a TCP socket whose user timeout (TCP_USER_TIMEOUT) can be set: how long sent bytes
/// may stay unacknowledged before the kernel gives up on the connection. With it, a peer that vanished
/// (address deleted, link down, host gone) fails the socket within that time even on a queue that sends
/// no Keep Alive, so every queue of an association notices the loss, not only the admin queue.
/// </summary>
public interface ITcpUserTimeoutConnection
{
    /// <summary>Sets the user timeout; false where the platform has no such option (it is Linux's).</summary>
    bool TrySetUserTimeout(TimeSpan timeout);

    /// <summary>The user timeout the socket has now; null where it cannot be read.</summary>
    TimeSpan? TryGetUserTimeout();
}

/// <summary>Sets TCP_USER_TIMEOUT on Linux sockets.</summary>
public static class TcpUserTimeout
{
    // IPPROTO_TCP and TCP_USER_TIMEOUT from Linux's netinet/tcp.h (milliseconds, unsigned int).
    private const int IpProtoTcp = 6;
    private const int TcpUserTimeoutOption = 18;

    /// <summary>The largest timeout the option holds (its value is an unsigned number of milliseconds; we keep it within int).</summary>
    public static readonly TimeSpan Max = TimeSpan.FromMilliseconds(int.MaxValue);

    public static bool TrySet(Socket socket, TimeSpan timeout)
    {
        ArgumentNullException.ThrowIfNull(socket);
        if (timeout < TimeSpan.Zero || timeout > Max)
        {
            throw new ArgumentOutOfRangeException(nameof(timeout), timeout, $"a TCP user timeout is 0 (the kernel's default) to {Max.TotalMilliseconds} ms");
        }

        if (!OperatingSystem.IsLinux())
        {
            return false;
        }

        Span<byte> value = stackalloc byte[sizeof(uint)];
        BitConverter.TryWriteBytes(value, (uint)Math.Ceiling(timeout.TotalMilliseconds));
        try
        {
            socket.SetRawSocketOption(IpProtoTcp, TcpUserTimeoutOption, value);
            return true;
        }
        catch (SocketException)
        {
            return false; // a socket already closed, or a kernel without the option: the keep-alive still detects the loss
        }
        catch (ObjectDisposedException)
        {
            return false;
        }
    }

    /// <summary>Reads the option back (for tests); null where it cannot be read.</summary>
    public static TimeSpan? TryGet(Socket socket)
    {
        ArgumentNullException.ThrowIfNull(socket);
        if (!OperatingSystem.IsLinux())
        {
            return null;
        }

        Span<byte> value = stackalloc byte[sizeof(uint)];
        try
        {
            int length = socket.GetRawSocketOption(IpProtoTcp, TcpUserTimeoutOption, value);
            return length == sizeof(uint) ? TimeSpan.FromMilliseconds(BitConverter.ToUInt32(value)) : null;
        }
        catch (SocketException)
        {
            return null;
        }
    }
}

/// <summary>A transport whose TCP connections get a user timeout as soon as they are open.</summary>
public sealed class TcpUserTimeoutTransport(INvmeTransport inner, TimeSpan userTimeout) : INvmeTransport
{
    public async ValueTask<INvmeConnection> ConnectAsync(TransportAddress address, CancellationToken cancellationToken)
    {
        var connection = await inner.ConnectAsync(address, cancellationToken).ConfigureAwait(false);
        if (userTimeout > TimeSpan.Zero && connection is ITcpUserTimeoutConnection tcp)
        {
            tcp.TrySetUserTimeout(userTimeout);
        }

        return connection;
    }
}
