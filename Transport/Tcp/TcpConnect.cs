using System.Net;
using System.Net.Sockets;

namespace ActorNvme.Transport.Tcp;

/// <summary>Opens a connected TCP socket, Nagle off, with the failures every TCP transport reports alike.</summary>
internal static class TcpConnect
{
    /// <summary>
    /// Fails with <see cref="ConnectionClosedException"/>: ConnectTimeout after <paramref name="timeout"/>, ConnectFailed on
    /// a socket error. <paramref name="blocking"/>: connect with a blocking call (on a pool thread), so that the socket never
    /// enters .NET's asynchronous mode and its later blocking reads and writes are plain system calls, not waits on the
    /// event loop's thread.
    /// </summary>
    public static async ValueTask<Socket> OpenAsync(TransportAddress address, TimeSpan timeout, CancellationToken cancellationToken, bool blocking = false)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(timeout);
        Socket? socket = null;
        try
        {
            var endpoint = await ResolveAsync(address, deadline.Token).ConfigureAwait(false);
            // Near the descriptor limit a connection is refused here, not left to abort the process later.
            socket = DescriptorLimit.OpenTcpSocket(endpoint.AddressFamily, address);
            socket.NoDelay = true;
            if (blocking)
            {
                // Disposing the socket ends a blocking connect that the deadline gave up on.
                var connecting = socket;
                using var abandon = deadline.Token.Register(static s => ((Socket)s!).Dispose(), connecting);
                await Task.Run(() => connecting.Connect(endpoint), CancellationToken.None).ConfigureAwait(false);
                deadline.Token.ThrowIfCancellationRequested();
            }
            else
            {
                await socket.ConnectAsync(endpoint, deadline.Token).ConfigureAwait(false);
            }

            return socket;
        }
        catch (Exception e) when (e is not OperationCanceledException && cancellationToken.IsCancellationRequested)
        {
            // The caller gave up during a blocking connect (the socket was disposed under it): a cancellation, as in the asynchronous one.
            socket?.Dispose();
            throw new OperationCanceledException($"TCP connect to {address} cancelled", e, cancellationToken);
        }
        catch (OperationCanceledException e) when (!cancellationToken.IsCancellationRequested)
        {
            socket?.Dispose();
            throw new ConnectionClosedException(new ConnectionClosed(CloseReason.ConnectTimeout, $"no TCP connection to {address} within {timeout.TotalSeconds:0.###} s", e));
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException && deadline.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
        {
            socket?.Dispose();
            throw new ConnectionClosedException(new ConnectionClosed(CloseReason.ConnectTimeout, $"no TCP connection to {address} within {timeout.TotalSeconds:0.###} s", e));
        }
        catch (SocketException e)
        {
            socket?.Dispose();
            throw new ConnectionClosedException(new ConnectionClosed(CloseReason.ConnectFailed, $"TCP connect to {address} failed: {e.SocketErrorCode}", e));
        }
        catch
        {
            socket?.Dispose();
            throw;
        }
    }

    private static async ValueTask<IPEndPoint> ResolveAsync(TransportAddress address, CancellationToken cancellationToken)
    {
        if (IPAddress.TryParse(address.Host, out var ip))
        {
            return new IPEndPoint(ip, address.Port);
        }

        var addresses = await Dns.GetHostAddressesAsync(address.Host, cancellationToken).ConfigureAwait(false);
        if (addresses.Length == 0)
        {
            throw new SocketException((int)SocketError.HostNotFound);
        }

        return new IPEndPoint(addresses[0], address.Port);
    }
}
