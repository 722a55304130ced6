using System.Net.Sockets;
using ActorNvme.Protocol.Data;
using ActorNvme.Protocol.Nvme;
using ActorNvme.Transport;
using ActorNvme.Transport.BringUp;

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
/// bring the controller up to ready (the Transport's bring-up script, as every controller), read the
/// log page (again when GENCTR moves between header and body), shut the controller down (CC.SHN) and
/// disconnect. No actor is involved: this is a short-lived command, not a host.
/// </summary>
public sealed class DiscoveryLogReader
{
    private const int GenctrRetries = 3;
    private static readonly TimeSpan StatusPollInterval = TimeSpan.FromMilliseconds(10);

    private readonly TransportAddress _address;
    private AdminClient? _client;

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
            return await reader.RunAsync(hostNqn, hostId, timeout, deadline.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            throw new DiscoveryFailedException($"no answer from the discovery controller at {address} within {timeout.TotalSeconds:0.#} s (unreachable, or not an NVMe/TCP target)");
        }
        finally
        {
            reader._client?.Abort(new ConnectionClosed(CloseReason.LocalShutdown, "discovery done"));
        }
    }

    private async Task<DiscoveryLog> RunAsync(string hostNqn, Guid hostId, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var transport = NvmeTransports.ForAdminQueues();
        try
        {
            _client = await AdminClient.ConnectAsync(transport, _address, QueuePairOptions.Admin, cancellationToken).ConfigureAwait(false);
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

        ControllerBringUpResult controller;
        try
        {
            var options = new BringUpOptions(new FabricsConnectParameters(hostId, Nqn.Discovery, hostNqn), QueuePairOptions.Admin.QueueSize)
            {
                Goal = BringUpGoal.Ready,
                MinimumReadyTimeout = timeout,
                ReadyPollInterval = StatusPollInterval,
            };
            controller = await _client.BringUpAsync(options, cancellationToken).ConfigureAwait(false);
        }
        catch (ControllerBringUpException e)
        {
            throw new DiscoveryFailedException($"the discovery controller at {_address}: {e.Failure}", e);
        }

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
            await _client.ShutdownAsync(controller.Configuration, StatusPollInterval, timeout, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is ControllerBringUpException or ConnectionClosedException)
        {
        }

        return log;
    }

    private async Task<byte[]> ReadLogAsync(int length, CancellationToken cancellationToken)
    {
        const string what = "Get Log Page (discovery)";
        AdminCompletion completion;
        ReadOnlyMemory<byte> data;
        try
        {
            (completion, data) = await _client!.SubmitAsync(AdminCommands.GetLogPage((byte)LogPageId.Discovery, (uint)length, namespaceId: 0), default, length, cancellationToken).ConfigureAwait(false);
        }
        catch (ConnectionClosedException e)
        {
            throw new DiscoveryFailedException($"{_address} closed the connection during {what}: {e.Closed.Detail}", e);
        }

        if (completion.Outcome != CommandOutcome.Completed)
        {
            throw new DiscoveryFailedException($"{what} at {_address} did not complete ({completion.Outcome})");
        }

        if (!completion.Status.IsSuccess)
        {
            throw new DiscoveryFailedException($"{what} refused by {_address}: {completion.Status.ToString(CommandSet.Admin)}");
        }

        return data.ToArray();
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
