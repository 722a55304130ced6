using System.Buffers;
using System.Buffers.Binary;
using System.IO.Pipelines;
using System.Net.Sockets;
using System.Text;
using ActorNvme.Protocol.Data;
using ActorNvme.Protocol.Nvme;
using ActorNvme.Protocol.Tcp;
using ActorNvme.Transport;
using ActorNvme.Transport.BringUp;
using ActorNvme.Transport.InMemory;

namespace ActorNvme.Target.Tests;

/// <summary>What a receive saw: a PDU, the end of the stream (FIN), a reset, nothing before the deadline, or a PDU the framer refused.</summary>
public enum ReceiveKind
{
    Pdu,
    Closed,
    Reset,
    Timeout,
    FramingError,
}

public sealed record ReceivedPdu(ReceiveKind Kind, PduType Type, PduFlags Flags, byte[] Header, byte[] Data, bool DataDigestValid, PduFault Fault = default)
{
    public CompletionQueueEntry Completion => CompletionQueueEntry.Read(Header.AsSpan(CommonHeader.Size));

    public DataPduHeader DataHeader => DataPduHeader.Read(Header);

    public R2THeader R2T => R2THeader.Read(Header);

    public TermReq TermReq => TermReq.Read(Header);
}

/// <summary>A command's outcome: its completion (synthesized for C2HData with SUCCESS), the data returned, and what the data PDUs looked like.</summary>
public sealed record CommandResult(CompletionQueueEntry Completion, byte[] Data, List<ReceivedPdu> DataPdus, List<ReceivedPdu> R2Ts, bool SuccessFlag)
{
    public NvmeStatus Status => Completion.Status;

    public bool AllDigestsValid => DataPdus.TrueForAll(p => p.DataDigestValid);
}

/// <summary>
/// A test-side host that talks to the target PDU by PDU: raw bytes when a test wants to misbehave,
/// and small helpers (ICReq, Connect, enable, commands with R2T handling) when it does not.
/// </summary>
public sealed class RawClient : IAsyncDisposable
{
    public const string HostNqn = "nqn.2014-08.org.nvmexpress:uuid:00000000-0000-0000-0000-000000000001";
    public const int AdminQueueSize = 32;
    public static readonly Guid HostId = new("6f1c3b2a-0000-4000-8000-000000000001");
    public static readonly TimeSpan Deadline = TimeSpan.FromSeconds(10);

    private readonly PipeReader _input;
    private readonly PipeWriter _output;
    private readonly IAsyncDisposable _owner;
    private readonly Socket? _socket;
    private PduFramerOptions _framer = PduFramerOptions.Host();
    private ushort _nextCommandId = 1;
    private ValueTask<ReadResult>? _pendingRead;

    private RawClient(PipeReader input, PipeWriter output, IAsyncDisposable owner, Socket? socket)
    {
        _input = input;
        _output = output;
        _owner = owner;
        _socket = socket;
    }

    public DigestOptions Digests { get; private set; }

    public uint MaxH2CData { get; private set; } = 4096;

    public bool SqFlowControlDisabled { get; private set; }

    /// <summary>Completions of commands other than the one awaited (AERs, mostly), in arrival order.</summary>
    public Queue<CompletionQueueEntry> Unsolicited { get; } = new();

    public static async Task<RawClient> ConnectAsync(TargetListener listener, InMemoryNetwork? network)
    {
        if (listener.Transport == "tcp")
        {
            var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            await socket.ConnectAsync(listener.Address.Host, listener.Address.Port).WaitAsync(Deadline);
            var stream = new NetworkStream(socket, ownsSocket: true);
            return new RawClient(PipeReader.Create(stream), PipeWriter.Create(stream), stream, socket);
        }

        var connection = await new InMemoryTransport(network!).ConnectAsync(listener.Address, CancellationToken.None);
        return new RawClient(connection.Pipe.Input, connection.Pipe.Output, connection, null);
    }

    public ushort NextCommandId() => _nextCommandId++;

    public async Task SendAsync(ReadOnlyMemory<byte> bytes)
    {
        await _output.WriteAsync(bytes);
    }

    /// <summary>Receives one PDU, or reports the end, a reset, or nothing before <paramref name="timeout"/>.</summary>
    public async Task<ReceivedPdu> ReceiveAsync(TimeSpan? timeout = null)
    {
        while (true)
        {
            ReadResult result;
            try
            {
                var read = _pendingRead ?? _input.ReadAsync();
                _pendingRead = read;
                var task = read.AsTask();
                if (await Task.WhenAny(task, Task.Delay(timeout ?? Deadline)) != task)
                {
                    _pendingRead = new ValueTask<ReadResult>(task);
                    return new ReceivedPdu(ReceiveKind.Timeout, default, default, [], [], true);
                }

                _pendingRead = null;
                result = await task;
            }
            catch (Exception ex) when (ex is IOException or SocketException or ConnectionClosedException or InvalidOperationException)
            {
                _pendingRead = null;
                return new ReceivedPdu(ReceiveKind.Reset, default, default, [], [], true);
            }

            try
            {
                var parsed = Parse(result);
                if (parsed is not null)
                {
                    return parsed;
                }
            }
            catch (InvalidOperationException)
            {
                // The in-memory peer aborted and completed our reader under us: a reset.
                return new ReceivedPdu(ReceiveKind.Reset, default, default, [], [], true);
            }
        }
    }

    private ReceivedPdu? Parse(ReadResult result)
    {
        {
            var buffer = result.Buffer;
            var status = PduFramer.TryParse(buffer, _framer, out var frame, out var fault);
            if (status == FrameStatus.Frame)
            {
                var pdu = new ReceivedPdu(ReceiveKind.Pdu, frame.Type, frame.Common.Flags, frame.HeaderBytes.ToArray(), frame.Data.ToArray(), frame.DataDigestValid);
                _input.AdvanceTo(buffer.GetPosition(frame.Length));
                return pdu;
            }

            if (status == FrameStatus.Error)
            {
                _input.AdvanceTo(buffer.Start, buffer.End);
                return new ReceivedPdu(ReceiveKind.FramingError, default, default, [], [], true, fault);
            }

            _input.AdvanceTo(buffer.Start, buffer.End);
            if (result.IsCompleted || result.IsCanceled)
            {
                return new ReceivedPdu(ReceiveKind.Closed, default, default, [], [], true);
            }

            return null;
        }
    }

    /// <summary>Receives until the stream ends (or is reset); PDUs on the way are returned too.</summary>
    public async Task<(ReceiveKind End, List<ReceivedPdu> Pdus)> ReceiveUntilClosedAsync(TimeSpan? timeout = null)
    {
        var pdus = new List<ReceivedPdu>();
        while (true)
        {
            var pdu = await ReceiveAsync(timeout);
            if (pdu.Kind == ReceiveKind.Pdu)
            {
                pdus.Add(pdu);
                continue;
            }

            return (pdu.Kind, pdus);
        }
    }

    public async Task<ICResp> InitializeAsync(DigestOptions digests = DigestOptions.None, byte hpda = 0)
    {
        var request = new byte[ICReq.Size];
        new ICReq(0, hpda, digests, 0).WriteTo(request);
        await SendAsync(request);
        var pdu = await ReceiveAsync();
        Assert.Equal(ReceiveKind.Pdu, pdu.Kind);
        Assert.Equal(PduType.ICResp, pdu.Type);
        var response = ICResp.Read(pdu.Header);
        Digests = response.Digests;
        MaxH2CData = response.MaxH2CData;
        _framer = _framer.WithDigests(response.Digests);
        return response;
    }

    /// <summary>
    /// Connect's 1024 bytes. Written by hand rather than with <see cref="Protocol.Data.ConnectData"/>,
    /// which refuses invalid NQNs: tests send those on purpose.
    /// </summary>
    public static byte[] ConnectData(string subsystemNqn, string hostNqn = HostNqn, ushort controllerId = 0xFFFF)
    {
        var data = new byte[FabricsCommands.ConnectDataSize];
        HostId.TryWriteBytes(data.AsSpan(0, 16), bigEndian: true, out _);
        BinaryPrimitives.WriteUInt16LittleEndian(data.AsSpan(16), controllerId);
        System.Text.Encoding.UTF8.GetBytes(subsystemNqn).CopyTo(data.AsSpan(256));
        System.Text.Encoding.UTF8.GetBytes(hostNqn).CopyTo(data.AsSpan(512));
        return data;
    }

    public async Task<CommandResult> ConnectAsync(string subsystemNqn, ushort queueId = 0, int queueSize = 32, uint kato = 0, ushort controllerId = 0xFFFF, string hostNqn = HostNqn, bool disableSqFlow = false)
    {
        var sqe = FabricsCommands.Connect(queueId, queueSize, kato, disableSqFlow ? FabricsCommands.DisableSqFlowControl : (byte)0);
        var result = await CommandAsync(sqe, inCapsule: ConnectData(subsystemNqn, hostNqn, controllerId));
        SqFlowControlDisabled = disableSqFlow && result.Status.IsSuccess;
        return result;
    }

    /// <summary>
    /// ICReq, then the host's bring-up script up to CSTS.RDY (the Transport's <see cref="ControllerBringUp"/>,
    /// driven PDU by PDU). Returns the controller ID.
    /// </summary>
    public async Task<ushort> SetUpAdminAsync(string subsystemNqn, uint kato = 0, DigestOptions digests = DigestOptions.None, bool disableSqFlow = false, string hostNqn = HostNqn)
    {
        await InitializeAsync(digests);
        var connect = new FabricsConnectParameters(HostId, subsystemNqn, hostNqn) { KeepAliveMilliseconds = kato, DisableSqFlowControl = disableSqFlow };
        var result = await BringUpAsync(new BringUpOptions(connect, AdminQueueSize) { Goal = BringUpGoal.Ready });
        SqFlowControlDisabled = disableSqFlow;
        return result.ControllerId;
    }

    /// <summary>Drives <see cref="ControllerBringUp"/> over this client's PDUs; throws <see cref="ControllerBringUpException"/> naming the failed step.</summary>
    public Task<ControllerBringUpResult> BringUpAsync(BringUpOptions options) =>
        AdminScriptDriver.RunAsync(new ControllerBringUp(options), async (command, _) =>
        {
            var sqe = command.Command;
            CommandResult answer;
            if (command.DataInLength > 0)
            {
                sqe.DataPointer = SglDescriptor.Transport((uint)command.DataInLength);
                answer = await CommandAsync(sqe);
            }
            else
            {
                answer = await CommandAsync(sqe, inCapsule: command.DataOut.IsEmpty ? null : command.DataOut.ToArray());
            }

            return new BringUpCompletion(answer.Completion, answer.Data, !answer.AllDigestsValid);
        });

    /// <summary>CC.EN = 1 (the host's CC for fabrics) and a check of CSTS.RDY, after a Connect of the test's own.</summary>
    public async Task EnableAsync()
    {
        var set = await CommandAsync(FabricsCommands.PropertySet(ControllerConfiguration.Offset, ControllerConfiguration.ForFabrics.Enabled.Value, false));
        Assert.True(set.Status.IsSuccess, set.Status.ToString());
        var csts = await CommandAsync(FabricsCommands.PropertyGet(ControllerStatus.Offset, false));
        Assert.True(new ControllerStatus(csts.Completion.Dw0).Ready);
    }

    /// <summary>ICReq and an I/O queue Connect for <paramref name="controllerId"/>.</summary>
    public async Task SetUpIoAsync(string subsystemNqn, ushort controllerId, ushort queueId = 1, int queueSize = 32, DigestOptions digests = DigestOptions.None, bool disableSqFlow = false, string hostNqn = HostNqn)
    {
        await InitializeAsync(digests);
        var connect = await ConnectAsync(subsystemNqn, queueId, queueSize, 0, controllerId, hostNqn, disableSqFlow: disableSqFlow);
        Assert.True(connect.Status.IsSuccess, connect.Status.ToString());
    }

    /// <summary>Sends a command and collects its data and completion; answers R2Ts from <paramref name="h2cData"/>.</summary>
    public async Task<CommandResult> CommandAsync(SubmissionQueueEntry sqe, byte[]? inCapsule = null, byte[]? h2cData = null, bool corruptH2CDigest = false, TimeSpan? timeout = null)
    {
        var sent = await SendCommandAsync(sqe, inCapsule, h2cData);
        return await ReceiveCompletionAsync(sent.CommandId, h2cData, corruptH2CDigest, timeout);
    }

    /// <summary>Sends a command without waiting; fills in the command id and the data pointer.</summary>
    public async Task<SubmissionQueueEntry> SendCommandAsync(SubmissionQueueEntry sqe, byte[]? inCapsule = null, byte[]? h2cData = null)
    {
        if (sqe.CommandId == 0)
        {
            sqe.CommandId = NextCommandId();
        }

        if (inCapsule is not null)
        {
            sqe.DataPointer = SglDescriptor.InCapsule((uint)inCapsule.Length);
        }
        else if (h2cData is not null)
        {
            sqe.DataPointer = SglDescriptor.Transport((uint)h2cData.Length);
        }

        var pdu = new byte[PduSizes.CapsuleCmdHeader + 8 + (inCapsule?.Length ?? 0) + 8];
        int length = PduWriter.WriteCapsuleCommand(pdu, sqe, inCapsule ?? [], Digests);
        await SendAsync(pdu.AsMemory(0, length));
        return sqe;
    }

    public async Task<CommandResult> ReceiveCompletionAsync(ushort commandId, byte[]? h2cData = null, bool corruptH2CDigest = false, TimeSpan? timeout = null)
    {
        var data = new MemoryStream();
        var dataPdus = new List<ReceivedPdu>();
        var r2ts = new List<ReceivedPdu>();
        while (true)
        {
            var pdu = await ReceiveAsync(timeout);
            if (pdu.Kind != ReceiveKind.Pdu)
            {
                throw new InvalidOperationException($"no completion for command {commandId}: {pdu.Kind} {pdu.Fault}");
            }

            switch (pdu.Type)
            {
                case PduType.C2HData:
                    Assert.Equal(commandId, pdu.DataHeader.CommandId);
                    Assert.Equal(data.Length, pdu.DataHeader.DataOffset);
                    data.Write(pdu.Data);
                    dataPdus.Add(pdu);
                    if ((pdu.Flags & PduFlags.Success) != 0)
                    {
                        return new CommandResult(new CompletionQueueEntry(0, 0, 0, 0, commandId, NvmeStatus.Success), data.ToArray(), dataPdus, r2ts, true);
                    }

                    break;
                case PduType.R2T:
                    r2ts.Add(pdu);
                    await SendH2CDataAsync(pdu.R2T, h2cData ?? throw new InvalidOperationException("R2T for a command without data"), corruptH2CDigest);
                    break;
                case PduType.CapsuleResp:
                    var cqe = pdu.Completion;
                    if (cqe.CommandId != commandId)
                    {
                        Unsolicited.Enqueue(cqe);
                        break;
                    }

                    return new CommandResult(cqe, data.ToArray(), dataPdus, r2ts, false);
                default:
                    throw new InvalidOperationException($"unexpected {pdu.Type} while waiting for command {commandId}");
            }
        }
    }

    /// <summary>Answers an R2T with H2CData PDUs of at most MAXH2CDATA bytes.</summary>
    public async Task SendH2CDataAsync(R2THeader r2t, byte[] source, bool corruptDigest = false)
    {
        int sent = 0;
        while (sent < r2t.Length)
        {
            int chunk = (int)Math.Min(r2t.Length - sent, MaxH2CData);
            var header = new DataPduHeader(r2t.CommandId, r2t.TransferTag, r2t.Offset + (uint)sent, (uint)chunk);
            var pdu = new byte[PduSizes.DataHeader + 16 + chunk];
            int length = PduWriter.WriteDataPdu(pdu, PduType.H2CData, header, source.AsSpan((int)r2t.Offset + sent, chunk), Digests, last: sent + chunk == r2t.Length);
            if (corruptDigest && (Digests & DigestOptions.Data) != 0)
            {
                pdu[length - 1] ^= 0xFF;
            }

            await SendAsync(pdu.AsMemory(0, length));
            sent += chunk;
        }
    }

    /// <summary>Waits for an AER completion (one already received, or the next PDU).</summary>
    public async Task<CompletionQueueEntry?> WaitUnsolicitedAsync(TimeSpan timeout)
    {
        if (Unsolicited.Count > 0)
        {
            return Unsolicited.Dequeue();
        }

        var pdu = await ReceiveAsync(timeout);
        if (pdu.Kind == ReceiveKind.Pdu && pdu.Type == PduType.CapsuleResp)
        {
            return pdu.Completion;
        }

        Assert.True(pdu.Kind == ReceiveKind.Timeout, $"expected a completion or nothing, got {pdu.Kind} {pdu.Type}");
        return null;
    }

    public async Task<CommandResult> GetLogPageAsync(byte logPageId, uint length, ulong offset = 0, bool retain = false, byte logSpecific = 0)
    {
        var sqe = AdminCommands.GetLogPage(logPageId, length, offset, retainAsyncEvent: retain, logSpecific: logSpecific);
        sqe.DataPointer = SglDescriptor.Transport(length);
        sqe.CommandId = NextCommandId();
        return await CommandAsync(sqe);
    }

    public async Task<CommandResult> IdentifyAsync(byte cns, uint namespaceId = 0)
    {
        var sqe = AdminCommands.Identify(cns, namespaceId);
        sqe.DataPointer = SglDescriptor.Transport(4096);
        sqe.CommandId = NextCommandId();
        return await CommandAsync(sqe);
    }

    public async Task<CommandResult> ReadAsync(uint namespaceId, ulong lba, int blocks, int blockSize)
    {
        var sqe = NvmCommands.Read(namespaceId, lba, blocks);
        sqe.DataPointer = SglDescriptor.Transport((uint)(blocks * blockSize));
        sqe.CommandId = NextCommandId();
        return await CommandAsync(sqe);
    }

    /// <summary>Writes in the capsule when <paramref name="inCapsule"/>, otherwise through R2T/H2CData.</summary>
    public Task<CommandResult> WriteAsync(uint namespaceId, ulong lba, byte[] data, int blockSize, bool inCapsule, bool corruptDigest = false)
    {
        var sqe = NvmCommands.Write(namespaceId, lba, data.Length / blockSize);
        return inCapsule ? CommandAsync(sqe, inCapsule: data) : CommandAsync(sqe, h2cData: data, corruptH2CDigest: corruptDigest);
    }

    /// <summary>Ends the stream (FIN).</summary>
    public void Close() => _output.Complete();

    public async ValueTask DisposeAsync()
    {
        try
        {
            _socket?.Shutdown(SocketShutdown.Both);
        }
        catch (SocketException)
        {
        }
        catch (ObjectDisposedException)
        {
        }

        await _owner.DisposeAsync();
    }
}
