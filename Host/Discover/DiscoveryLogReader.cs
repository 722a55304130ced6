using System.Net.Sockets;
using ActorNvme.Protocol.Data;
using ActorNvme.Protocol.Nvme;
using ActorNvme.Transport;

namespace ActorNvme.Host.Discover;

/// <summary>Why a one-shot discovery failed, in words that name the address.</summary>
public sealed class DiscoveryFailedException : Exception
{
    public DiscoveryFailedException(string message, Exception? innerException = null)
        : base(message, innerException)
    {
    }

    public DiscoveryFailedException()
        : this("discovery failed")
    {
    }

    public DiscoveryFailedException(string message)
        : this(message, null)
    {
    }
}

/// <summary>
/// Reads a discovery controller's log once, as <c>nvme discover</c> does: connect the admin queue,
/// Fabrics Connect to the discovery NQN, enable the controller, read the log page (again when GENCTR
/// moves between header and body), shut the controller down (CC.SHN) and disconnect. No actor is
/// involved: this is a short-lived command, not a host.
/// </summary>
public sealed class DiscoveryLogReader : IAdminCompletionSink
{
    // CC.EN with the NVM command set, 64-byte SQEs and 16-byte CQEs; CC.SHN normal.
    private const uint EnableConfiguration = 0x0046_0001;
    private const uint ShutdownNormal = 1u << 14;
    private const int GenctrRetries = 3;

    private readonly TaskCompletionSource<ConnectionClosed> _closed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TransportAddress _address;
    private AdminQueuePair? _queuePair;

    private DiscoveryLogReader(TransportAddress address)
    {
        _address = address;
    }

    /// <summary>Reads the log of the discovery controller at <paramref name="address"/>; throws <see cref="DiscoveryFailedException"/>.</summary>
    public static async Task<DiscoveryLog> ReadAsync(TransportAddress address, string hostNqn, Guid hostId, TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(address);
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(timeout);
        var reader = new DiscoveryLogReader(address);
        try
        {
            return await reader.RunAsync(hostNqn, hostId, deadline.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            throw new DiscoveryFailedException($"no answer from the discovery controller at {address} within {timeout.TotalSeconds:0.#} s (unreachable, or not an NVMe/TCP target)");
        }
        finally
        {
            reader._queuePair?.Abort(new ConnectionClosed(CloseReason.LocalShutdown, "discovery done"));
        }
    }

    void IAdminCompletionSink.OnCompletion(AdminCompletion completion)
    {
        if (completion.State is TaskCompletionSource<AdminCompletion> waiter)
        {
            waiter.TrySetResult(completion);
        }

        // Matched by its waiter, not by id: the id can go back to the pool at once.
        _queuePair?.Release(completion.CommandId);
    }

    void IAdminCompletionSink.OnClosed(ConnectionClosed closed) => _closed.TrySetResult(closed);

    private async Task<DiscoveryLog> RunAsync(string hostNqn, Guid hostId, CancellationToken cancellationToken)
    {
        var transport = NvmeTransports.ForAdminQueues();
        try
        {
            _queuePair = await AdminQueuePair.ConnectAsync(transport, _address, QueuePairOptions.Admin, this, cancellationToken).ConfigureAwait(false);
        }
        catch (ConnectionClosedException e)
        {
            string hint = e.Closed.Cause == CloseCause.Protocol ? " (is it an NVMe/TCP target?)" : string.Empty;
            throw new DiscoveryFailedException($"cannot connect to {_address}: {Explain(e)}{hint}", e);
        }
        catch (SocketException e)
        {
            throw new DiscoveryFailedException($"cannot connect to {_address}: {e.SocketErrorCode switch { SocketError.ConnectionRefused => "connection refused (nothing listens there)", _ => e.Message }}", e);
        }

        var connect = await SubmitAsync("Fabrics Connect", (qp, waiter) => qp.TrySubmitConnect(new FabricsConnectParameters(hostId, Nqn.Discovery, hostNqn), waiter, out _), cancellationToken).ConfigureAwait(false);
        Check(connect, "Fabrics Connect to the discovery controller", CommandSet.Fabrics);
        Check(await SubmitAsync("Property Set CC.EN", (qp, w) => qp.TrySubmit(FabricsCommands.PropertySet(ControllerRegister.Configuration, EnableConfiguration, eightBytes: false), w, out _), cancellationToken).ConfigureAwait(false), "Property Set CC.EN", CommandSet.Fabrics);
        await WaitForStatusAsync(s => s.Ready, "CSTS.RDY", cancellationToken).ConfigureAwait(false);

        DiscoveryLog? log = null;
        for (int attempt = 0; attempt <= GenctrRetries && log is null; attempt++)
        {
            var header = await ReadLogAsync(DiscoveryLogHeader.Size, cancellationToken).ConfigureAwait(false);
            if (!DiscoveryLogPage.TryReadHeader(header, out var head, out _, out var error) && error.Code != DataErrorCode.DiscoveryLogTruncated)
            {
                throw new DiscoveryFailedException($"the discovery log header from {_address} is unusable: {error.Describe()}");
            }

            if (!head.TryGetPageLength(out int length, out error))
            {
                throw new DiscoveryFailedException($"the discovery log at {_address} is too large: {error.Describe()}");
            }

            var page = await ReadLogAsync(length, cancellationToken).ConfigureAwait(false);
            if (!DiscoveryLogPage.TryRead(page, out var read, out error))
            {
                throw new DiscoveryFailedException($"the discovery log from {_address} is unusable: {error.Describe()}");
            }

            if (read.Header.GenerationCounter == head.GenerationCounter)
            {
                log = read;
            }
        }

        if (log is null)
        {
            throw new DiscoveryFailedException($"the discovery log at {_address} kept changing (GENCTR moved during {GenctrRetries + 1} reads)");
        }

        // A clean goodbye; the log is ours whatever the controller says to it.
        try
        {
            var shutdown = await SubmitAsync("Property Set CC.SHN", (qp, w) => qp.TrySubmit(FabricsCommands.PropertySet(ControllerRegister.Configuration, EnableConfiguration | ShutdownNormal, eightBytes: false), w, out _), cancellationToken).ConfigureAwait(false);
            if (shutdown.IsSuccess)
            {
                await WaitForStatusAsync(s => s.ShutdownStatus == ShutdownStatus.Complete, "CSTS.SHST", cancellationToken).ConfigureAwait(false);
            }
        }
        catch (DiscoveryFailedException)
        {
        }

        return log;
    }

    private async Task<byte[]> ReadLogAsync(int length, CancellationToken cancellationToken)
    {
        var buffer = new byte[length];
        var completion = await SubmitAsync("Get Log Page (discovery)", (qp, w) => qp.TrySubmitRead(AdminCommands.GetLogPage((byte)LogPageId.Discovery, (uint)length, namespaceId: 0), buffer, w, out _), cancellationToken).ConfigureAwait(false);
        Check(completion, "Get Log Page (discovery)", CommandSet.Admin);
        return buffer.AsSpan(0, Math.Min(length, completion.BytesTransferred)).ToArray();
    }

    private async Task WaitForStatusAsync(Func<ControllerStatus, bool> done, string what, CancellationToken cancellationToken)
    {
        while (true)
        {
            var completion = await SubmitAsync("Property Get CSTS", (qp, w) => qp.TrySubmit(FabricsCommands.PropertyGet(ControllerRegister.Status, eightBytes: false), w, out _), cancellationToken).ConfigureAwait(false);
            Check(completion, "Property Get CSTS", CommandSet.Fabrics);
            var status = new ControllerStatus(completion.Completion.Dw0);
            if (status.FatalStatus)
            {
                throw new DiscoveryFailedException($"the discovery controller at {_address} reports a fatal status while waiting for {what}");
            }

            if (done(status))
            {
                return;
            }

            await Task.Delay(TimeSpan.FromMilliseconds(10), cancellationToken).ConfigureAwait(false);
        }
    }

    private async Task<AdminCompletion> SubmitAsync(string what, Func<AdminQueuePair, TaskCompletionSource<AdminCompletion>, SubmitStatus> submit, CancellationToken cancellationToken)
    {
        var waiter = new TaskCompletionSource<AdminCompletion>(TaskCreationOptions.RunContinuationsAsynchronously);
        var status = submit(_queuePair!, waiter);
        if (status != SubmitStatus.Submitted)
        {
            throw new DiscoveryFailedException($"{what} could not be sent to {_address} ({status})");
        }

        var finished = await Task.WhenAny(waiter.Task, _closed.Task).WaitAsync(cancellationToken).ConfigureAwait(false);
        if (finished == waiter.Task)
        {
            return waiter.Task.Result;
        }

        throw new DiscoveryFailedException($"{_address} closed the connection during {what}: {_closed.Task.Result.Detail}");
    }

    private void Check(AdminCompletion completion, string what, CommandSet set)
    {
        if (completion.Outcome != CommandOutcome.Completed)
        {
            throw new DiscoveryFailedException($"{what} at {_address} did not complete ({completion.Outcome})");
        }

        if (!completion.Status.IsSuccess)
        {
            throw new DiscoveryFailedException($"{what} refused by {_address}: {completion.Status.ToString(set)}");
        }
    }

    private static string Explain(ConnectionClosedException e)
    {
        for (Exception? inner = e.InnerException; inner is not null; inner = inner.InnerException)
        {
            if (inner is SocketException socket)
            {
                return socket.SocketErrorCode switch
                {
                    SocketError.ConnectionRefused => "connection refused (nothing listens there)",
                    SocketError.HostUnreachable or SocketError.NetworkUnreachable => "no route to the address",
                    SocketError.TimedOut => "timed out",
                    _ => socket.Message,
                };
            }
        }

        return e.Closed.Detail;
    }
}
