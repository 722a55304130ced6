using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace ActorNvme.Transport;

/// <summary>
/// The process's descriptor limit (RLIMIT_NOFILE, Linux). A connection that would leave fewer than
/// <see cref="Reserve"/> descriptors free is refused with a clear error (EMFILE, naming the limit),
/// so that the runtime, logs and listeners keep the descriptors they need and the process is never
/// aborted by a failure deep in a library.
/// </summary>
public static class DescriptorLimit
{
    private const int ResourceOpenFiles = 7;
    private const int MinimumReserve = 64;

    /// <summary>The soft limit now, or null where it cannot be read.</summary>
    public static ulong? SoftLimit => TryGet(out var limit) ? limit.Current : null;

    /// <summary>Descriptors kept free for everything that is not a connection: 2% of the limit, at least 64.</summary>
    public static long Reserve(ulong softLimit) => Math.Max(MinimumReserve, (long)Math.Min(softLimit / 50, int.MaxValue));

    /// <summary>
    /// Raises the soft limit to the hard limit where allowed (as a daemon should at start).
    /// Returns the soft limit in force afterwards, or null where there is none to read.
    /// </summary>
    public static ulong? RaiseSoftLimitToHard()
    {
        if (!TryGet(out var limit))
        {
            return null;
        }

        if (limit.Current < limit.Maximum)
        {
            var raised = new ResourceLimit { Current = limit.Maximum, Maximum = limit.Maximum };
            try
            {
                if (SetLimit(ResourceOpenFiles, ref raised) == 0)
                {
                    return raised.Current;
                }
            }
            catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
            {
            }
        }

        return limit.Current;
    }

    /// <summary>
    /// The refusal for a connection that would take descriptor <paramref name="descriptor"/> (Linux hands
    /// out the lowest free one, so every descriptor below it is in use) under <paramref name="softLimit"/>;
    /// null when it is allowed.
    /// </summary>
    public static ConnectionClosed? Check(long descriptor, ulong softLimit, TransportAddress address)
    {
        long reserve = Reserve(softLimit);
        if (descriptor + reserve < (long)Math.Min(softLimit, long.MaxValue))
        {
            return null;
        }

        return new ConnectionClosed(
            CloseReason.ConnectFailed,
            $"connection to {address} refused: EMFILE, too many open files (descriptor {descriptor} of the limit RLIMIT_NOFILE = {softLimit}, {reserve} kept free for the process); raise the limit (ulimit -n) or attach fewer controllers");
    }

    /// <summary>Closes <paramref name="socket"/> and throws when it leaves too few descriptors free.</summary>
    public static void ThrowIfNearLimit(Socket socket, TransportAddress address)
    {
        ArgumentNullException.ThrowIfNull(socket);
        if (!TryGet(out var limit))
        {
            return;
        }

        if (Check((long)socket.Handle, limit.Current, address) is { } refusal)
        {
            socket.Dispose();
            throw new ConnectionClosedException(refusal);
        }
    }

    /// <summary>The refusal when the socket could not even be created for lack of descriptors.</summary>
    public static ConnectionClosedException OutOfDescriptors(TransportAddress address, SocketException e) =>
        new(new ConnectionClosed(
            CloseReason.ConnectFailed,
            $"connection to {address} refused: EMFILE, too many open files (RLIMIT_NOFILE = {SoftLimit?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "unknown"}); raise the limit (ulimit -n) or attach fewer controllers",
            e));

    /// <summary>Opens a TCP socket for <paramref name="family"/>, refused clearly when descriptors run short.</summary>
    public static Socket OpenTcpSocket(AddressFamily family, TransportAddress address)
    {
        Socket socket;
        try
        {
            socket = new Socket(family, SocketType.Stream, ProtocolType.Tcp);
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.TooManyOpenSockets)
        {
            throw OutOfDescriptors(address, e);
        }

        ThrowIfNearLimit(socket, address);
        return socket;
    }

    private static bool TryGet(out ResourceLimit limit)
    {
        limit = default;
        if (!OperatingSystem.IsLinux())
        {
            return false;
        }

        try
        {
            return GetLimit(ResourceOpenFiles, out limit) == 0;
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            return false;
        }
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct ResourceLimit
    {
        public ulong Current;
        public ulong Maximum;
    }

    [DllImport("libc", EntryPoint = "getrlimit", SetLastError = true)]
    private static extern int GetLimit(int resource, out ResourceLimit limit);

    [DllImport("libc", EntryPoint = "setrlimit", SetLastError = true)]
    private static extern int SetLimit(int resource, ref ResourceLimit limit);
}
