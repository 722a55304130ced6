using ActorNvme.Protocol.Tcp;

namespace ActorNvme.Transport;

public abstract partial class QueuePair
{
    private const ushort PduFormatVersion = 0;

    // Set by the read loop when ICResp is accepted; read by the send path after initialization.
    private DigestOptions _digests;
    private int _dataAlignment = 4;
    private uint _maxH2CData = PduSizes.MinMaxH2CData;
    private bool _initializedOnReadLoop;

    /// <summary>
    /// Starts the read loop, then sends ICReq and waits for an acceptable ICResp. Throws
    /// <see cref="ConnectionClosedException"/> (InitializationRefused, InitializationTimeout, ...)
    /// after closing the queue pair.
    /// </summary>
    private protected async Task InitializeAsync(CancellationToken cancellationToken)
    {
        // The read loop runs before the first byte is sent, so an answer can never find nobody listening.
        _ = _connection.RunReadLoop(ReadLoopAsync);

        if (Interlocked.CompareExchange(ref _writerBusy, 1, 0) != 0)
        {
            throw new InvalidOperationException("the queue pair was already initialized");
        }

        try
        {
            var span = _output.GetSpan(ICReq.Size);
            new ICReq(PduFormatVersion, HostPduDataAlignment: 0, Options.Digests, MaxR2TOutstanding: 0).WriteTo(span);
            _output.Advance(ICReq.Size);
            await _output.FlushAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            Close(new ConnectionClosed(CloseReason.SocketError, $"sending ICReq to {RemoteAddress} failed: {e.Message}", e));
        }
        finally
        {
            Interlocked.Exchange(ref _writerBusy, 0);
        }

        RunWriter();

        try
        {
            await _initialized.Task.WaitAsync(Options.InitializationTimeout, cancellationToken).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            Close(new ConnectionClosed(CloseReason.InitializationTimeout, $"no ICResp from {RemoteAddress} within {Options.InitializationTimeout.TotalSeconds:0.###} s"));
        }
        catch (OperationCanceledException)
        {
            Close(new ConnectionClosed(CloseReason.LocalShutdown, "connection initialization canceled"));
            throw;
        }
        catch (ConnectionClosedException)
        {
            // The reason is recorded; thrown below.
        }

        if (_closeReason is { } closed)
        {
            throw new ConnectionClosedException(closed);
        }
    }

    /// <summary>Checks ICResp against what ICReq asked for; a different answer ends the connection.</summary>
    private bool AcceptInitialization(ReadOnlySpan<byte> pdu)
    {
        var answer = ICResp.Read(pdu);
        string? refusal = null;
        if (answer.PduFormatVersion != PduFormatVersion)
        {
            refusal = $"controller answered PDU format version {answer.PduFormatVersion}, host speaks version {PduFormatVersion}";
        }
        else if (answer.Digests != Options.Digests)
        {
            refusal = $"controller answered digests {DescribeDigests(answer.Digests)}, host asked for {DescribeDigests(Options.Digests)}";
        }
        else if (answer.MaxH2CData < PduSizes.MinMaxH2CData || answer.MaxH2CData % 4 != 0)
        {
            refusal = $"controller answered MAXH2CDATA {answer.MaxH2CData}, host requires at least {PduSizes.MinMaxH2CData} and a multiple of 4";
        }
        else if (answer.ControllerPduDataAlignment > 31)
        {
            refusal = $"controller answered CPDA {answer.ControllerPduDataAlignment}, the largest valid value is 31";
        }

        if (refusal is not null)
        {
            Close(new ConnectionClosed(CloseReason.InitializationRefused, $"ICResp from {RemoteAddress} refused: {refusal}"));
            return false;
        }

        _digests = answer.Digests;
        _dataAlignment = answer.DataAlignment;
        _maxH2CData = answer.MaxH2CData;
        _framerOptions = _framerOptions.WithDigests(answer.Digests);
        _initializedOnReadLoop = true;
        Negotiated = new NegotiatedParameters(answer.Digests, answer.DataAlignment, answer.MaxH2CData);
        _initialized.TrySetResult();
        return true;
    }

    private static string DescribeDigests(DigestOptions digests) => digests switch
    {
        DigestOptions.None => "none",
        DigestOptions.Header => "header only",
        DigestOptions.Data => "data only",
        DigestOptions.Both => "header and data",
        _ => $"0x{(byte)digests:x2}",
    };
}
