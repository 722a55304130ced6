using System.Buffers;
using System.IO.Pipelines;
using ActorNvme.Protocol.Nvme;
using ActorNvme.Protocol.Tcp;

namespace ActorNvme.Transport.Tests;

/// <summary>One PDU as the scripted controller received it, copied out of the pipe.</summary>
internal sealed record ReceivedPdu(CommonHeader Common, byte[] Header, byte[] Data, bool DataDigestValid, byte[] Raw)
{
    public PduType Type => Common.Type;

    public SubmissionQueueEntry Command => SubmissionQueueEntry.Read(Header.AsSpan(CommonHeader.Size));

    public DataPduHeader DataHeader => DataPduHeader.Read(Header);

    public TermReq TermReq => TermReq.Read(Header);
}

/// <summary>
/// A controller that tests drive frame by frame: it receives what the host sends and writes exactly
/// the bytes a test asks for, well-formed or hostile.
/// </summary>
internal sealed class ScriptedPeer : IAsyncDisposable
{
    public static readonly TimeSpan Deadline = TimeSpan.FromSeconds(20);

    private readonly PipeReader _input;
    private readonly PipeWriter _output;
    private readonly Func<ValueTask> _dispose;
    private PduFramerOptions _framer = PduFramerOptions.Controller();

    public ScriptedPeer(IDuplexPipe pipe, Func<ValueTask> dispose)
    {
        _input = pipe.Input;
        _output = pipe.Output;
        _dispose = dispose;
    }

    public DigestOptions Digests { get; private set; }

    public int DataAlignment { get; private set; } = 4;

    /// <summary>Receives the next PDU, or null when the host closed the connection.</summary>
    public async Task<ReceivedPdu?> ReceiveAsync()
    {
        using var timeout = new CancellationTokenSource(Deadline);
        while (true)
        {
            var result = await _input.ReadAsync(timeout.Token);
            var buffer = result.Buffer;
            var status = PduFramer.TryParse(buffer, _framer, out var frame, out var fault);
            if (status == FrameStatus.Frame)
            {
                var pdu = new ReceivedPdu(frame.Common, frame.HeaderBytes.ToArray(), frame.Data.ToArray(), frame.DataDigestValid, buffer.Slice(0, frame.Length).ToArray());
                _input.AdvanceTo(buffer.GetPosition(frame.Length));
                return pdu;
            }

            if (status == FrameStatus.Error)
            {
                throw new InvalidDataException($"the host sent a malformed PDU: {fault}");
            }

            _input.AdvanceTo(buffer.Start, buffer.End);
            if (result.IsCompleted || result.IsCanceled)
            {
                return null;
            }
        }
    }

    public async Task<ReceivedPdu> ExpectAsync(PduType type)
    {
        var pdu = await ReceiveAsync() ?? throw new InvalidOperationException($"the host closed the connection while the peer expected {type}");
        if (pdu.Type != type)
        {
            throw new InvalidOperationException($"the peer expected {type}, the host sent {pdu.Type}");
        }

        return pdu;
    }

    /// <summary>Receives ICReq and answers with <paramref name="answer"/>; digests follow the answer from then on.</summary>
    public async Task<ICReq> AcceptAsync(ICResp? answer = null, DigestOptions? digests = null)
    {
        var request = await ExpectAsync(PduType.ICReq);
        var icreq = ICReq.Read(request.Raw);
        var response = answer ?? new ICResp(0, 0, digests ?? icreq.Digests, 128 * 1024);
        var bytes = new byte[ICResp.Size];
        response.WriteTo(bytes);
        await SendAsync(bytes);
        if (response.Digests == icreq.Digests)
        {
            Digests = response.Digests;
            DataAlignment = response.DataAlignment;
            _framer = _framer.WithDigests(response.Digests);
        }

        return icreq;
    }

    public async Task<ReceivedPdu> ReceiveCommandAsync() => await ExpectAsync(PduType.CapsuleCmd);

    public async Task SendAsync(ReadOnlyMemory<byte> bytes)
    {
        await _output.WriteAsync(bytes);
    }

    public Task RespondAsync(ushort commandId, NvmeStatus status = default, uint dw0 = 0, ushort sqHead = 0) =>
        SendAsync(Response(commandId, status, dw0, sqHead));

    public byte[] Response(ushort commandId, NvmeStatus status = default, uint dw0 = 0, ushort sqHead = 0)
    {
        var bytes = new byte[PduWriter.PduLength(PduSizes.CapsuleResp, 0, Digests, 4)];
        PduWriter.WriteCapsuleResponse(bytes, new CompletionQueueEntry(dw0, 0, sqHead, 0, commandId, status), Digests);
        return bytes;
    }

    public byte[] C2HData(ushort commandId, uint offset, ReadOnlySpan<byte> data, bool last, bool success)
    {
        var bytes = new byte[PduWriter.PduLength(PduSizes.DataHeader, data.Length, Digests, 4)];
        PduWriter.WriteDataPdu(bytes, PduType.C2HData, new DataPduHeader(commandId, 0, offset, (uint)data.Length), data, Digests, last, success);
        return bytes;
    }

    public Task SendC2HDataAsync(ushort commandId, uint offset, ReadOnlyMemory<byte> data, bool last, bool success) =>
        SendAsync(C2HData(commandId, offset, data.Span, last, success));

    public byte[] ReadyToTransfer(ushort commandId, ushort transferTag, uint offset, uint length)
    {
        var bytes = new byte[PduWriter.PduLength(PduSizes.R2T, 0, Digests, 4)];
        PduWriter.WriteR2T(bytes, new R2THeader(commandId, transferTag, offset, length), Digests);
        return bytes;
    }

    public Task SendR2TAsync(ushort commandId, ushort transferTag, uint offset, uint length) =>
        SendAsync(ReadyToTransfer(commandId, transferTag, offset, length));

    /// <summary>Reads until the host ends the connection; returns what it sent meanwhile.</summary>
    public async Task<List<ReceivedPdu>> DrainUntilClosedAsync()
    {
        var received = new List<ReceivedPdu>();
        while (await ReceiveAsync() is { } pdu)
        {
            received.Add(pdu);
        }

        return received;
    }

    public ValueTask DisposeAsync() => _dispose();
}
