using ActorNvme.Protocol.Nvme;
using ActorNvme.Transport;
using ActorNvme.Transport.Authentication;
using ActorNvme.Transport.RawSocket;
using ActorNvme.Transport.Tcp;
using ActorNvme.Transport.Tls;

namespace ActorNvme.Io;

/// <summary>The production <see cref="IIoQueueConnector"/>: <see cref="IoQueuePair"/>s over an <see cref="INvmeTransport"/>.</summary>
public sealed class TransportIoQueueConnector(INvmeTransport transport) : IIoQueueConnector
{
    /// <summary>SQHD in a Connect response that says SQ flow control is disabled for the queue.</summary>
    private const ushort SqFlowControlDisabledHead = 0xFFFF;

    /// <summary>
    /// The default: NVMe/TCP over the transport chosen for I/O queues (raw socket, served by
    /// <paramref name="ioThreads"/> shared I/O threads, 0: one per core), which poll for a busy queue
    /// for <paramref name="receiveSpin"/> before they block (io-receive-spin).
    /// </summary>
    private static readonly Lazy<INvmeTransport> TlsInner = new(() => new SocketStreamTransport());

    public static TransportIoQueueConnector Tcp(TimeSpan receiveSpin = default, int ioThreads = 0) =>
        new(NvmeTransports.ForIoQueues(receiveSpin > TimeSpan.Zero || ioThreads > 0 ? new RawSocketTransportOptions { SpinBeforeBlocking = receiveSpin, IoThreads = ioThreads } : null));

    public async Task<IoQueueSet> ConnectAsync(IoQueueConnectRequest request, CancellationToken lifetime)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentOutOfRangeException.ThrowIfNegative(request.QueueCount);
        if (request.QueueCount > ushort.MaxValue - 1)
        {
            throw new ArgumentOutOfRangeException(nameof(request), request.QueueCount, "at most 65534 I/O queues");
        }

        int maxTransfer = Math.Clamp(request.MaxTransferSize, 4096, 64 * 1024 * 1024);
        var options = QueuePairOptions.Io with
        {
            QueueSize = request.QueueSize,
            MaxTransferSize = maxTransfer,
            InCapsuleDataSize = Math.Clamp(request.InCapsuleDataSize, 0, maxTransfer),
            Digests = request.Digests,
            InitializationTimeout = request.ConnectTimeout,
        };
        var parameters = new FabricsConnectParameters(request.HostId, request.SubsystemNqn, request.HostNqn)
        {
            ControllerId = request.ControllerId,
            DisableSqFlowControl = request.DisableSqFlowControl,
        };

        var attempts = new Task<(IoQueuePair Queue, bool FlowControlDisabled)>[request.QueueCount];
        for (int i = 0; i < attempts.Length; i++)
        {
            attempts[i] = ConnectOneAsync(request, (ushort)(i + 1), options, parameters, lifetime);
        }

        try
        {
            await Task.WhenAll(attempts).ConfigureAwait(false);
        }
        catch
        {
            // One failed: close the ones that connected, report the first failure that says why.
            foreach (var attempt in attempts)
            {
                if (attempt.IsCompletedSuccessfully)
                {
                    await attempt.Result.Queue.DisposeAsync().ConfigureAwait(false);
                }
            }

            var failures = attempts.Where(a => a.IsFaulted).Select(a => a.Exception!.InnerException!).ToArray();
            var reason = failures.OfType<ConnectionClosedException>().FirstOrDefault();
            if (reason is not null)
            {
                throw new ConnectionClosedException(reason.Closed);
            }

            throw;
        }

        var queues = attempts.Select(a => a.Result.Queue).ToArray();
        bool flowControlDisabled = queues.Length > 0 && attempts.All(a => a.Result.FlowControlDisabled);
        var set = new IoQueueSet(request.Address, queues, maxTransfer, flowControlDisabled, request.WaitLimit);

        // Runs at once when the owner is gone already.
        lifetime.Register(static s => ((IoQueueSet)s!).Abort(new ConnectionClosed(CloseReason.LocalShutdown, "the owner ended this association")), set);
        return set;
    }

    private async Task<(IoQueuePair Queue, bool FlowControlDisabled)> ConnectOneAsync(
        IoQueueConnectRequest request,
        ushort queueId,
        QueuePairOptions options,
        FabricsConnectParameters parameters,
        CancellationToken lifetime)
    {
        // ICReq/ICResp only; Connect is sent here so its answer (SQHD) can be read.
        // TLS records are read and written by blocking calls on the socket itself (BouncyCastle's record layer
        // blocks): over TCP that is the socket-stream transport, not the raw-socket one whose reads the shared
        // I/O threads drive, nor pipes, whose thread hand-offs cost more than the cipher on this path.
        INvmeTransport secured = request.Tls is { } tls ? new TlsPskTransport(transport is RawSocketTransport or TcpTransport ? TlsInner.Value : transport, tls) : transport;
        var opened = request.TcpUserTimeout > TimeSpan.Zero ? new TcpUserTimeoutTransport(secured, request.TcpUserTimeout) : secured;
        var queue = await IoQueuePair.ConnectAsync(opened, request.Address, queueId, options, connect: null, lifetime).ConfigureAwait(false);
        try
        {
            IoResult result;
            try
            {
                result = await queue.SendConnectAsync(parameters).AsTask().WaitAsync(request.ConnectTimeout, lifetime).ConfigureAwait(false);
            }
            catch (TimeoutException)
            {
                throw new ConnectionClosedException(new ConnectionClosed(
                    CloseReason.InitializationTimeout,
                    $"no answer to Fabrics Connect (I/O queue {queueId}) from {request.Address} within {request.ConnectTimeout.TotalSeconds:0.###} s"));
            }

            if (result.Outcome == CommandOutcome.ConnectionClosed)
            {
                throw new ConnectionClosedException(await queue.Closed.ConfigureAwait(false));
            }

            if (!result.IsSuccess)
            {
                string status = result.Outcome == CommandOutcome.Completed ? result.Status.ToString(CommandSet.Fabrics) : result.Outcome.ToString();
                throw new ConnectionClosedException(new ConnectionClosed(
                    CloseReason.ConnectRejected,
                    $"{request.Address} refused Fabrics Connect for I/O queue {queueId} of {request.SubsystemNqn} (controller {request.ControllerId}): {status}"));
            }

            // The answer resumed us on the queue's receive thread; the caller must not run there.
            await Task.Yield();
            await AuthenticateAsync(queue, request, queueId, FabricsCommands.DecodeConnectResponse(result.Completion.Dw0).AuthenticationRequirements, lifetime).ConfigureAwait(false);
            return (queue, result.Completion.SqHead == SqFlowControlDisabledHead);
        }
        catch
        {
            await queue.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>DH-HMAC-CHAP on the queue when its Connect answer asks for it (AUTHREQ.ATR), within the connect timeout.</summary>
    private static async Task AuthenticateAsync(IoQueuePair queue, IoQueueConnectRequest request, ushort queueId, ushort authenticationRequirements, CancellationToken lifetime)
    {
        if (!ConnectAuthentication.TryStart(authenticationRequirements, request.Authentication, request.HostNqn, request.SubsystemNqn, queueId, out var exchange, out string? error))
        {
            throw new ConnectionClosedException(new ConnectionClosed(CloseReason.AuthenticationFailed, $"{request.Address}: {error}"));
        }

        if (exchange is null)
        {
            return;
        }

        await IoQueueAuthentication.RunAsync(queue, exchange, request.Address, request.SubsystemNqn, request.ConnectTimeout, CloseReason.InitializationTimeout, holdQueue: null, lifetime).ConfigureAwait(false);
    }
}
