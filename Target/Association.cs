using System.Buffers;
using System.IO.Pipelines;
using ActorNvme.Protocol;
using ActorNvme.Protocol.Nvme;
using ActorNvme.Protocol.Tcp;
using ActorNvme.Transport;

namespace ActorNvme.Target;

/// <summary>
/// One NVMe/TCP connection, which carries one queue (the admin queue or an I/O queue) of a controller.
/// A single read loop parses PDUs and runs commands; every write (responses, data, R2T, AER completions
/// from other threads, delayed completions) goes through one send lock. While its listener is
/// blackholed it neither reads nor writes.
/// </summary>
internal sealed partial class Association
{
    /// <summary>Output written but not flushed beyond which the read loop flushes before parsing on.</summary>
    private const int FlushThreshold = 256 * 1024;
    private static readonly TimeSpan CloseLockTimeout = TimeSpan.FromSeconds(5);

    private readonly NvmeTarget _target;
    private readonly TargetConnection _connection;
    private readonly TargetOptions _options;
    private readonly PipeReader _input;
    private readonly PipeWriter _output;
    private readonly SemaphoreSlim _sendLock = new(1, 1);
    private readonly CancellationTokenSource _stop = new();

    // Commands a slow backend holds before executing them, by command id: what an Abort may still stop.
    // The sequence number tells a command from a later one that reuses its id.
    private readonly System.Collections.Concurrent.ConcurrentDictionary<ushort, WaitingCommand> _delayedCommands = new();
    private long _waitingCommandSequence;

    private readonly record struct WaitingCommand(long Sequence, bool Write);
    private readonly byte[] _header = new byte[PduSizes.ICReq];
    private PduFramerOptions _framer;
    private DigestOptions _digests;
    private int _hostAlignment = 4;
    private bool _initialized;
    private Controller? _controller;
    private ushort _queueId;
    private int _queueSize = 1;
    private bool _sqFlowControlDisabled;
    private int _sqHead;
    private int _outstanding;
    private bool _writesClosed;
    private int _closeRequested;
    private string _closeReason = "connection closed";
    private volatile bool _closeWithReset;

    public Association(NvmeTarget target, TargetListener listener, TargetConnection connection)
    {
        _target = target;
        Listener = listener;
        _connection = connection;
        _options = target.Options;
        _input = connection.Pipe.Input;
        _output = connection.Pipe.Output;
        _framer = PduFramerOptions.Controller(MaxPduLength(_options));
    }

    public TargetListener Listener { get; }

    public Controller? Controller => Volatile.Read(ref _controller);

    public ushort QueueId => _queueId;

    public string Remote => _connection.Remote;

    /// <summary>NQN of the subsystem this queue belongs to, once connected.</summary>
    public string? SubsystemNqn => Controller?.Subsystem.Nqn;

    private bool IsAdminQueue => _queueId == 0;

    /// <summary>Largest PDU a host may send: the largest in-capsule data or H2CData plus header, padding and digests.</summary>
    internal static uint MaxPduLength(TargetOptions options) =>
        (uint)(Math.Max(Math.Max(options.InCapsuleDataSize, options.AdminInCapsuleDataSize), Math.Max(options.MaxH2CData, FabricsCommands.ConnectDataSize))
            + PduSizes.CapsuleCmdHeader + (2 * PduSizes.Digest) + 128);

    public async Task RunAsync()
    {
        using var initialization = new Timer(
            static s => ((Association)s!).InitializationExpired(), this, _options.InitializationTimeout, Timeout.InfiniteTimeSpan);
        try
        {
            await ReadLoopAsync().ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }
        catch (Exception ex) when (ex is InvalidOperationException or IOException or ConnectionClosedException or ObjectDisposedException)
        {
            _target.Log.ConnectionFailed(ex, Remote);
        }
        finally
        {
            await ShutdownAsync().ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Asks the connection to close, from any thread. <paramref name="reset"/> sends an RST at once; otherwise the
    /// read loop stops and the connection ends with a FIN — or, while the listener is blackholed, with an RST once
    /// it is restored (as a host finds a target that dropped it while the cable was out).
    /// </summary>
    public void Close(string reason, bool reset = false, bool force = false)
    {
        if (Interlocked.Exchange(ref _closeRequested, 1) == 1)
        {
            if (reset)
            {
                _closeWithReset = true;
                _connection.Reset();
            }

            return;
        }

        _closeReason = reason;
        if (reset || (force && !Listener.Gate.IsOpen))
        {
            _closeWithReset = true;
            _connection.Reset();
            _stop.Cancel();
            return;
        }

        if (!Listener.Gate.IsOpen)
        {
            // Frozen: nothing leaves now; once the listener is restored the connection is reset.
            _closeWithReset = true;
            _ = Listener.Gate.WaitOpenAsync(CancellationToken.None).ContinueWith(_ => _stop.Cancel(), TaskScheduler.Default);
            return;
        }

        _stop.Cancel();
    }

    private void InitializationExpired()
    {
        // Half-open connections (nothing sent, or an ICReq and no Connect) hold a slot of max_connections:
        // a connection that has not bound a queue by now is reaped, so they cannot lock real hosts out.
        if (Volatile.Read(ref _controller) is null && Listener.Gate.IsOpen)
        {
            Close(Volatile.Read(ref _initialized) ? "ICReq but no Connect within the initialization timeout" : "no ICReq within the initialization timeout");
        }
    }

    private async Task ReadLoopAsync()
    {
        var token = _stop.Token;
        while (true)
        {
            await Listener.Gate.WaitOpenAsync(token).ConfigureAwait(false);
            if (Volatile.Read(ref _closeRequested) == 1)
            {
                return;
            }

            var result = await _input.ReadAsync(token).ConfigureAwait(false);
            var buffer = result.Buffer;
            bool frozen = false;
            bool stop = false;
            try
            {
                while (true)
                {
                    if (!Listener.Gate.IsOpen || Volatile.Read(ref _closeRequested) == 1)
                    {
                        frozen = true;
                        break;
                    }

                    var status = PduFramer.TryParse(buffer, _framer, out var frame, out var fault);
                    if (status == FrameStatus.NeedMoreData)
                    {
                        break;
                    }

                    if (status == FrameStatus.Error)
                    {
                        await FatalAsync(fault, buffer).ConfigureAwait(false);
                        stop = true;
                        break;
                    }

                    frame.HeaderBytes.CopyTo(_header);
                    if (!await HandleFrameAsync(frame).ConfigureAwait(false))
                    {
                        stop = true;
                        break;
                    }

                    buffer = buffer.Slice(frame.Length);
                    if (_output.UnflushedBytes > FlushThreshold)
                    {
                        await FlushAsync().ConfigureAwait(false);
                    }
                }
            }
            finally
            {
                // Frozen between PDUs: leave the rest unexamined so that the next read returns it at once.
                _input.AdvanceTo(buffer.Start, frozen ? buffer.Start : buffer.End);
            }

            await FlushAsync().ConfigureAwait(false);
            if (stop)
            {
                return;
            }

            if (result.IsCompleted || result.IsCanceled)
            {
                _closeReason = "the host closed the connection";
                return;
            }
        }
    }

    private async ValueTask<bool> HandleFrameAsync(PduFrame frame)
    {
        if (frame.Type == PduType.ICReq)
        {
            return _initialized
                ? await SendTermReqAsync(TermReqError.PduSequenceError, 0, PduSizes.ICReq, "ICReq after initialization").ConfigureAwait(false)
                : await HandleICReqAsync().ConfigureAwait(false);
        }

        if (!_initialized)
        {
            return await SendTermReqAsync(TermReqError.PduSequenceError, 0, frame.Common.HeaderLength, $"{frame.Type} before ICReq").ConfigureAwait(false);
        }

        switch (frame.Type)
        {
            case PduType.CapsuleCmd:
                return await HandleCapsuleAsync(frame).ConfigureAwait(false);
            case PduType.H2CData:
                return await HandleH2CDataAsync(frame).ConfigureAwait(false);
            case PduType.H2CTermReq:
                var term = TermReq.Read(_header);
                _target.Log.HostTerminated(Remote, term.Status.ToString(), term.ErrorInformation);
                _closeReason = "the host sent H2CTermReq";
                return false;
            default:
                return await SendTermReqAsync(TermReqError.PduSequenceError, 0, frame.Common.HeaderLength, $"unexpected {frame.Type}").ConfigureAwait(false);
        }
    }

    private async ValueTask<bool> HandleICReqAsync()
    {
        var request = ICReq.Read(_header);
        if (request.PduFormatVersion != 0)
        {
            return await SendTermReqAsync(TermReqError.InvalidHeaderField, 8, PduSizes.ICReq, $"unsupported PFV {request.PduFormatVersion}").ConfigureAwait(false);
        }

        if (request.HostPduDataAlignment > 31)
        {
            return await SendTermReqAsync(TermReqError.InvalidHeaderField, 10, PduSizes.ICReq, $"HPDA {request.HostPduDataAlignment} out of range").ConfigureAwait(false);
        }

        var digests = request.Digests & DigestOptions.Both & _options.SupportedDigests;
        var response = new ICResp(0, 0, digests, (uint)_options.MaxH2CData);
        await _sendLock.WaitAsync(_stop.Token).ConfigureAwait(false);
        try
        {
            var span = _output.GetSpan(ICResp.Size);
            response.WriteTo(span);
            _output.Advance(ICResp.Size);
        }
        finally
        {
            _sendLock.Release();
        }

        _digests = digests;
        _framer = _framer.WithDigests(digests);
        _hostAlignment = (request.HostPduDataAlignment + 1) * 4;
        Volatile.Write(ref _initialized, true);
        return true;
    }

    private async ValueTask<bool> HandleCapsuleAsync(PduFrame frame)
    {
        var sqe = SubmissionQueueEntry.Read(_header.AsSpan(CommonHeader.Size, SubmissionQueueEntry.Size));
        var controller = Controller;
        controller?.Touch();
        _sqHead = _queueSize > 1 ? (_sqHead + 1) % _queueSize : 0;
        int outstanding = Interlocked.Increment(ref _outstanding);
        if (controller is not null && outstanding > _queueSize)
        {
            return await SendTermReqAsync(TermReqError.PduSequenceError, 0, frame.Common.HeaderLength, $"{outstanding} commands outstanding on a queue of {_queueSize}").ConfigureAwait(false);
        }

        if (controller is null)
        {
            if (!sqe.IsFabrics || sqe.FabricsType != FabricsCommandType.Connect)
            {
                await CompleteAsync(sqe.CommandId, NvmeStatus.Generic(GenericStatus.InvalidOpcode, true)).ConfigureAwait(false);
                return true;
            }
        }

        var kind = controller is null
            ? (FabricsCommands.ConnectQueueId(sqe) == 0 ? CommandQueueKind.Admin : CommandQueueKind.Io)
            : (IsAdminQueue ? CommandQueueKind.Admin : CommandQueueKind.Io);
        if (kind == CommandQueueKind.Io && controller is not null && !sqe.IsFabrics && _target.Faults.TakeResetOnIo(sqe.Opcode))
        {
            _target.Log.FaultApplied("reset on I/O command", sqe.ToString());
            Close("fault injection: connection reset on an I/O command", reset: true);
            return false;
        }

        if (_target.Faults.TryTakeFailure(kind, sqe.Opcode, controller?.Subsystem.Nqn, out var injected))
        {
            _target.Log.InjectedFailure(sqe.ToString(), injected.ToString());
            await CompleteAsync(sqe.CommandId, injected).ConfigureAwait(false);
            return true;
        }

        if (frame.Data.Length > 0 && !frame.DataDigestValid)
        {
            await CompleteAsync(sqe.CommandId, NvmeStatus.Generic(GenericStatus.TransientTransportError)).ConfigureAwait(false);
            return true;
        }

        if (controller is not null && IsAuthenticationCommand(sqe))
        {
            return await HandleAuthenticationAsync(controller, sqe, frame.Data).ConfigureAwait(false);
        }

        if (controller is not null && AwaitsAuthentication(sqe))
        {
            await CompleteAsync(sqe.CommandId, NvmeStatus.Specific((byte)FabricsStatus.AuthenticationRequired, doNotRetry: true)).ConfigureAwait(false);
            return true;
        }

        if (sqe.IsFabrics)
        {
            await HandleFabricsAsync(sqe, frame.Data).ConfigureAwait(false);
        }
        else if (!controller!.IsReady)
        {
            await CompleteAsync(sqe.CommandId, NvmeStatus.Generic(GenericStatus.CommandSequenceError, true)).ConfigureAwait(false);
        }
        else if (IsAdminQueue)
        {
            await HandleAdminAsync(controller, sqe, frame.Data).ConfigureAwait(false);
        }
        else
        {
            await HandleIoAsync(controller, sqe, frame.Data).ConfigureAwait(false);
        }

        return true;
    }

    /// <summary>A PDU the framer refused: C2HTermReq with the fault's FES and FEI and the offending header, then close.</summary>
    private async ValueTask FatalAsync(PduFault fault, ReadOnlySequence<byte> buffer)
    {
        int headerLength = (int)Math.Min(buffer.Length, PduSizes.MaxTermReqData);
        var offending = new byte[headerLength];
        buffer.Slice(0, headerLength).CopyTo(offending);
        if (buffer.Length >= CommonHeader.Size)
        {
            int declared = offending[2];
            if (declared >= CommonHeader.Size && declared < headerLength)
            {
                Array.Resize(ref offending, declared);
            }
        }

        _target.Log.ProtocolFault(Remote, fault.Describe());
        await WriteTermReqAsync(fault.TermReqStatus, (uint)fault.FieldOffset, offending).ConfigureAwait(false);
        _closeReason = $"protocol error: {fault.Describe()}";
    }

    /// <summary>Sends C2HTermReq carrying the current PDU's header and returns false (the connection ends).</summary>
    private async ValueTask<bool> SendTermReqAsync(TermReqError status, uint fieldOffset, int headerLength, string why)
    {
        _target.Log.ProtocolFault(Remote, why);
        await WriteTermReqAsync(status, fieldOffset, _header.AsSpan(0, Math.Min(headerLength, _header.Length)).ToArray()).ConfigureAwait(false);
        _closeReason = $"protocol error: {why}";
        return false;
    }

    internal async ValueTask WriteTermReqAsync(TermReqError status, uint fieldOffset, byte[] offendingHeader)
    {
        await _sendLock.WaitAsync(_stop.Token).ConfigureAwait(false);
        try
        {
            if (_writesClosed)
            {
                return;
            }

            var span = _output.GetSpan(PduSizes.TermReqHeader + PduSizes.MaxTermReqData);
            int length = new TermReq(status, fieldOffset).WriteTo(span, PduType.C2HTermReq, offendingHeader);
            _output.Advance(length);
            await _output.FlushAsync(_stop.Token).ConfigureAwait(false);
        }
        finally
        {
            _sendLock.Release();
        }
    }

    /// <summary>Fault injection: sends C2HTermReq unprompted and closes.</summary>
    internal async Task InjectTermReqAsync(TermReqError status, uint fieldOffset)
    {
        try
        {
            await Listener.Gate.WaitOpenAsync(_stop.Token).ConfigureAwait(false);
            await WriteTermReqAsync(status, fieldOffset, []).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is OperationCanceledException or InvalidOperationException or IOException)
        {
        }

        Close("fault injection: C2HTermReq sent");
    }

    private async ValueTask FlushAsync()
    {
        if (_output.UnflushedBytes == 0)
        {
            return;
        }

        await _sendLock.WaitAsync(_stop.Token).ConfigureAwait(false);
        try
        {
            if (!_writesClosed)
            {
                await _output.FlushAsync(_stop.Token).ConfigureAwait(false);
            }
        }
        finally
        {
            _sendLock.Release();
        }
    }

    private async Task ShutdownAsync()
    {
        var controller = Controller;
        if (controller is not null)
        {
            if (IsAdminQueue)
            {
                controller.Teardown(_closeReason);
            }
            else
            {
                controller.RemoveIoQueue(_queueId, this);
            }
        }

        ReleaseTransfers();
        _authentication?.Dispose();
        _target.Unregister(this);
        Interlocked.Exchange(ref _closeRequested, 1);

        if (_closeWithReset)
        {
            _connection.Reset();
        }
        else if (await _sendLock.WaitAsync(CloseLockTimeout).ConfigureAwait(false))
        {
            try
            {
                _writesClosed = true;
                _connection.Close();
            }
            finally
            {
                _sendLock.Release();
            }
        }
        else
        {
            _connection.Reset();
        }

        try
        {
            _input.Complete();
        }
        catch (InvalidOperationException)
        {
        }

        _target.Log.ConnectionClosed(Remote, _queueId, _closeReason);
    }
}
