using ActorNvme.Actors.Settings;
using ActorNvme.Io;
using ActorNvme.Protocol.Nvme;
using ActorNvme.Transport;
using ActorNvme.Transport.Tls;

namespace ActorNvme.Actors.Connection;

/// <summary>The production <see cref="IAdminConnector"/>: an <see cref="AdminQueuePair"/> over an <see cref="INvmeTransport"/>.</summary>
/// <param name="transport">What admin queues are opened over.</param>
/// <param name="ioQueues">Makes, from the settings, the connector of the I/O queues of the associations this connector opens.</param>
public sealed class TransportAdminConnector(INvmeTransport transport, Func<NvmeHostSettings, IIoQueueConnector> ioQueues) : IAdminConnector
{
    /// <summary>Admin and I/O queues both over <paramref name="transport"/> (an in-memory network, say).</summary>
    public TransportAdminConnector(INvmeTransport transport)
        : this(transport, _ => new TransportIoQueueConnector(transport))
    {
    }

    /// <summary>
    /// The default: NVMe/TCP, admin queues over the transport chosen for them, I/O queues over the one
    /// chosen for I/O (<see cref="TransportIoQueueConnector.Tcp"/>, polling for io-receive-spin).
    /// </summary>
    public static TransportAdminConnector Tcp() =>
        new(NvmeTransports.ForAdminQueues(), settings => TransportIoQueueConnector.Tcp(settings.IoReceiveSpin, settings.IoThreads));

    /// <summary>The transport admin queues are opened over.</summary>
    public INvmeTransport Transport => transport;

    public IIoQueueConnector IoQueueConnector(NvmeHostSettings settings)
    {
        ArgumentNullException.ThrowIfNull(settings);
        return ioQueues(settings);
    }

    public async Task<IAdminConnection> ConnectAsync(AdminConnectRequest request, IAdminEvents events, CancellationToken lifetime)
    {
        INvmeTransport secured = request.Tls is { } tls ? new TlsPskTransport(transport, tls) : transport;
        var opened = request.TcpUserTimeout > TimeSpan.Zero ? new TcpUserTimeoutTransport(secured, request.TcpUserTimeout) : secured;
        var connection = await opened.ConnectAsync(request.Address, lifetime).ConfigureAwait(false);

        var adminConnection = new TransportAdminConnection(connection, request, events);
        lifetime.Register(() => adminConnection.Abort(new ConnectionClosed(CloseReason.LocalShutdown, "the owner ended this association")));
        return adminConnection;
    }

    private sealed class TransportAdminConnection(INvmeConnection connection, AdminConnectRequest request, IAdminEvents events) : IAdminConnection, IAdminCompletionSink
    {
        private readonly TaskCompletionSource<ConnectionClosed> _closed = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private AdminQueuePair? _queuePair;
        private ConnectionClosed? _abortedWith;

        public Task<ConnectionClosed> Closed => _closed.Task;

        public async Task InitializeAsync(CancellationToken cancellationToken)
        {
            _ = connection.Closed.ContinueWith(t => _closed.TrySetResult(t.Result), CancellationToken.None, TaskContinuationOptions.OnlyOnRanToCompletion, TaskScheduler.Default);
            var options = QueuePairOptions.Admin with { Digests = request.Digests, QueueSize = request.QueueSize };
            var queuePair = await AdminQueuePair.StartAsync(connection, options, this, cancellationToken).ConfigureAwait(false);
            _queuePair = queuePair;
            _ = queuePair.Closed.ContinueWith(t => _closed.TrySetResult(t.Result), CancellationToken.None, TaskContinuationOptions.OnlyOnRanToCompletion, TaskScheduler.Default);
            if (Volatile.Read(ref _abortedWith) is { } reason)
            {
                queuePair.Abort(reason); // aborted while the handshake was in flight
            }
        }

        public bool TrySubmit(in SubmissionQueueEntry command, ReadOnlyMemory<byte> dataOut, int dataInLength, out ushort commandId)
        {
            var queuePair = _queuePair;
            if (queuePair is null)
            {
                commandId = 0;
                return false;
            }

            SubmitStatus status;
            if (dataInLength > 0)
            {
                var buffer = new byte[dataInLength];
                status = queuePair.TrySubmitRead(command, buffer, buffer, out commandId);
            }
            else if (!dataOut.IsEmpty)
            {
                status = queuePair.TrySubmitWrite(command, dataOut, null, out commandId);
            }
            else
            {
                status = queuePair.TrySubmit(command, null, out commandId);
            }

            return status == SubmitStatus.Submitted;
        }

        public void Release(ushort commandId) => _queuePair?.Release(commandId);

        public void Abort(ConnectionClosed reason)
        {
            Volatile.Write(ref _abortedWith, reason);
            if (_queuePair is { } queuePair)
            {
                queuePair.Abort(reason);
            }
            else
            {
                connection.Abort(reason);
            }
        }

        public void OnCompletion(AdminCompletion completion)
        {
            if (completion.Outcome == CommandOutcome.ConnectionClosed)
            {
                return; // the actor fails its pending commands itself when it learns of the close
            }

            var data = completion.State is byte[] buffer ? buffer.AsMemory(0, Math.Min(buffer.Length, completion.BytesTransferred)) : ReadOnlyMemory<byte>.Empty;
            events.Completed(new AdminResponse(completion.CommandId, completion.Completion, data, completion.Outcome == CommandOutcome.DataDigestError));
        }

        public void OnClosed(ConnectionClosed closed)
        {
            _closed.TrySetResult(closed);
            events.Closed(closed);
        }
    }
}
