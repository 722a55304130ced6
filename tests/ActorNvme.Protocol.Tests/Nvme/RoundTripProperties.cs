using ActorNvme.Protocol.Nvme;
using ActorNvme.Protocol.Tcp;
using FsCheck.Xunit;

namespace ActorNvme.Protocol.Tests.Nvme;

public class RoundTripProperties
{
    [Property]
    public bool Submission_queue_entries_round_trip(byte opcode, byte flags, ushort cid, uint nsid, ulong mptr, ulong addr, uint len, byte sglId, uint c10, uint c11, uint c12, uint c13, uint c14, uint c15)
    {
        var sqe = new SubmissionQueueEntry
        {
            Opcode = opcode, Flags = flags, CommandId = cid, NamespaceId = nsid, MetadataPointer = mptr,
            DataPointer = new SglDescriptor(addr, len, sglId), Cdw10 = c10, Cdw11 = c11, Cdw12 = c12, Cdw13 = c13, Cdw14 = c14, Cdw15 = c15,
        };
        Span<byte> bytes = stackalloc byte[64];
        sqe.WriteTo(bytes);
        return SubmissionQueueEntry.Read(bytes) == sqe;
    }

    [Property]
    public bool Completion_queue_entries_round_trip(uint dw0, uint dw1, ushort sqhd, ushort sqid, ushort cid, ushort status)
    {
        var cqe = new CompletionQueueEntry(dw0, dw1, sqhd, sqid, cid, new NvmeStatus(status));
        Span<byte> bytes = stackalloc byte[16];
        cqe.WriteTo(bytes);
        return CompletionQueueEntry.Read(bytes) == cqe;
    }

    [Property]
    public bool Connection_initialization_pdus_round_trip(ushort pfv, byte alignment, bool headerDigest, bool dataDigest, uint max)
    {
        var digests = (headerDigest ? DigestOptions.Header : 0) | (dataDigest ? DigestOptions.Data : 0);
        Span<byte> bytes = stackalloc byte[128];
        var request = new ICReq(pfv, alignment, digests, max);
        request.WriteTo(bytes);
        bool requestOk = ICReq.Read(bytes) == request && bytes[0] == 0x00 && bytes[2] == 128;
        var response = new ICResp(pfv, alignment, digests, max);
        response.WriteTo(bytes);
        return requestOk && ICResp.Read(bytes) == response && bytes[0] == 0x01;
    }

    [Property]
    public bool Data_and_r2t_headers_round_trip(ushort cid, ushort ttag, uint offset, uint length)
    {
        Span<byte> bytes = stackalloc byte[24];
        var data = new DataPduHeader(cid, ttag, offset, length);
        data.WriteSpecific(bytes);
        var r2t = new R2THeader(cid, ttag, offset, length);
        bool dataOk = DataPduHeader.Read(bytes) == data;
        r2t.WriteSpecific(bytes);
        return dataOk && R2THeader.Read(bytes) == r2t;
    }

    [Property]
    public bool Status_fields_decompose_and_recompose(byte code, bool dnr, bool more, byte crd)
    {
        var type = StatusCodeType.PathRelated;
        var status = NvmeStatus.Create(type, code, dnr, more, (byte)(crd & 3));
        return status.Code == code && status.Type == type && status.DoNotRetry == dnr && status.More == more && status.RetryDelay == (crd & 3);
    }

    [Property]
    public bool Written_data_pdus_parse_back_with_their_data(byte[] data, bool headerDigest, bool dataDigest, byte cpda)
    {
        if (data.Length == 0)
        {
            return true;
        }

        var digests = (headerDigest ? DigestOptions.Header : 0) | (dataDigest ? DigestOptions.Data : 0);
        int alignment = ((cpda % 32) + 1) * 4;
        var buffer = new byte[data.Length + 200];
        int length = PduWriter.WriteDataPdu(buffer, PduType.H2CData, new DataPduHeader(3, 9, 4096, 0), data, digests, last: true, dataAlignment: alignment);
        var status = PduFramer.TryParse(new System.Buffers.ReadOnlySequence<byte>(buffer, 0, length), PduFramerOptions.Controller().WithDigests(digests), out var frame, out _);
        return status == FrameStatus.Frame && frame.DataDigestValid && System.Buffers.BuffersExtensions.ToArray(frame.Data).AsSpan().SequenceEqual(data) && frame.Common.DataOffset % alignment == 0;
    }
}
