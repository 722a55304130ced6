using System.Buffers;
using System.Buffers.Binary;
using ActorNvme.Protocol.Nvme;
using ActorNvme.Protocol.Tcp;

namespace ActorNvme.Protocol.Tests.Tcp;

public class PduFramerTests
{
    private static readonly PduFramerOptions Host = PduFramerOptions.Host(1 << 20);
    private static readonly PduFramerOptions Controller = PduFramerOptions.Controller(1 << 20);

    private static byte[] C2HData(byte[] data, DigestOptions digests, bool last = true, bool success = false, int alignment = 4)
    {
        var buffer = new byte[data.Length + 256];
        int length = PduWriter.WriteDataPdu(buffer, PduType.C2HData, new DataPduHeader(7, 0, 0, (uint)data.Length), data, digests, last, success, alignment);
        return buffer[..length];
    }

    private static byte[] CapsuleResp(ushort cid, DigestOptions digests)
    {
        var buffer = new byte[64];
        int length = PduWriter.WriteCapsuleResponse(buffer, new CompletionQueueEntry(0x11, 0x22, 3, 0, cid, NvmeStatus.Success), digests);
        return buffer[..length];
    }

    private static FrameStatus Parse(byte[] bytes, PduFramerOptions options, out PduFrame frame, out PduFault fault) =>
        PduFramer.TryParse(new ReadOnlySequence<byte>(bytes), options, out frame, out fault);

    [Theory]
    [InlineData(DigestOptions.None)]
    [InlineData(DigestOptions.Header)]
    [InlineData(DigestOptions.Data)]
    [InlineData(DigestOptions.Both)]
    public void A_data_pdu_is_framed_with_its_data_whatever_the_digests(DigestOptions digests)
    {
        var data = Enumerable.Range(0, 4096).Select(i => (byte)i).ToArray();
        var bytes = C2HData(data, digests, success: true);

        var status = Parse(bytes, Host.WithDigests(digests), out var frame, out _);

        Assert.Equal(FrameStatus.Frame, status);
        Assert.Equal(PduType.C2HData, frame.Type);
        Assert.Equal(bytes.Length, frame.Length);
        Assert.True(frame.DataDigestValid);
        Assert.Equal(data, frame.Data.ToArray());
        Span<byte> scratch = stackalloc byte[128];
        var header = DataPduHeader.Read(frame.GetHeader(scratch));
        Assert.Equal((ushort)7, header.CommandId);
        Assert.Equal(4096u, header.DataLength);
        Assert.Equal(PduFlags.LastPdu | PduFlags.Success, frame.Common.Flags & (PduFlags.LastPdu | PduFlags.Success));
    }

    [Fact]
    public void Padding_before_the_data_is_skipped_by_honouring_PDO()
    {
        var data = new byte[] { 1, 2, 3, 4, 5, 6, 7, 8 };
        var bytes = C2HData(data, DigestOptions.Header, alignment: 64);
        Assert.Equal(64, bytes[3]);

        Assert.Equal(FrameStatus.Frame, Parse(bytes, Host.WithDigests(DigestOptions.Header), out var frame, out _));
        Assert.Equal(data, frame.Data.ToArray());
    }

    [Theory]
    [InlineData(DigestOptions.None)]
    [InlineData(DigestOptions.Header)]
    [InlineData(DigestOptions.Data)]
    [InlineData(DigestOptions.Both)]
    public void Every_split_of_a_pdu_across_segments_parses_the_same(DigestOptions digests)
    {
        var data = Enumerable.Range(0, 100).Select(i => (byte)(i * 3)).ToArray();
        var pdu = C2HData(data, digests);
        var response = CapsuleResp(9, digests);
        byte[] bytes = [.. pdu, .. response]; // cuts past the first PDU: whole in a first segment that is not the only one
        Span<byte> scratch = stackalloc byte[128];
        for (int cut = 1; cut < bytes.Length; cut++)
        {
            var sequence = SequenceFactory.Split(bytes, cut);
            Assert.Equal(FrameStatus.Frame, PduFramer.TryParse(sequence, Host.WithDigests(digests), out var frame, out _));
            Assert.Equal(pdu.Length, frame.Length);
            Assert.Equal(data, frame.Data.ToArray());
            Assert.Equal(pdu[..(int)frame.HeaderBytes.Length], frame.HeaderBytes.ToArray());
            Assert.True(frame.DataDigestValid);

            var rest = sequence.Slice(frame.Length);
            Assert.Equal(FrameStatus.Frame, PduFramer.TryParse(rest, Host.WithDigests(digests), out var next, out _));
            Assert.Equal((ushort)9, CompletionQueueEntry.Read(next.GetHeader(scratch)[CommonHeader.Size..]).CommandId);
            Assert.True(next.Data.IsEmpty);
        }

        var worst = SequenceFactory.OneBytePerSegment(bytes);
        Assert.Equal(FrameStatus.Frame, PduFramer.TryParse(worst, Host.WithDigests(digests), out var slow, out _));
        Assert.Equal((ushort)7, DataPduHeader.Read(slow.GetHeader(scratch)).CommandId);
    }

    [Fact]
    public void A_partial_pdu_asks_for_more_data_and_consumes_nothing()
    {
        var bytes = CapsuleResp(5, DigestOptions.None);
        for (int length = 0; length < bytes.Length; length++)
        {
            Assert.Equal(FrameStatus.NeedMoreData, Parse(bytes[..length], Host, out _, out _));
        }

        Assert.Equal(FrameStatus.Frame, Parse(bytes, Host, out var frame, out _));
        Assert.Equal(24, frame.Length);
    }

    [Fact]
    public void Two_pdus_back_to_back_are_found_one_after_the_other()
    {
        var bytes = CapsuleResp(1, DigestOptions.None).Concat(CapsuleResp(2, DigestOptions.None)).ToArray();
        var buffer = new ReadOnlySequence<byte>(bytes);
        var cids = new List<ushort>();
        Span<byte> scratch = stackalloc byte[128];
        while (PduFramer.TryParse(buffer, Host, out var frame, out _) == FrameStatus.Frame)
        {
            cids.Add(CompletionQueueEntry.Read(frame.GetHeader(scratch)[8..]).CommandId);
            buffer = buffer.Slice(frame.Length);
        }

        Assert.Equal([1, 2], cids);
        Assert.Equal(0, buffer.Length);
    }

    [Fact]
    public void PLEN_beyond_the_maximum_is_refused_from_the_first_eight_bytes_without_allocating()
    {
        var header = new byte[8];
        new CommonHeader(PduType.C2HData, PduFlags.LastPdu, 24, 24, 0xFFFF_FFF0).WriteTo(header);
        var sequence = new ReadOnlySequence<byte>(header);

        PduFramer.TryParse(sequence, Host, out _, out _); // warm up
        long before = GC.GetAllocatedBytesForCurrentThread();
        var status = PduFramer.TryParse(sequence, Host, out _, out var fault);
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        Assert.Equal(FrameStatus.Error, status);
        Assert.Equal(PduError.PduLengthTooLarge, fault.Error);
        Assert.Equal(4, fault.FieldOffset);
        Assert.Equal(TermReqError.DataTransferOutOfRange, fault.TermReqStatus);
        Assert.Contains("4294967280", fault.Describe(), StringComparison.Ordinal);
        Assert.Equal(0, allocated);
    }

    [Fact]
    public void HLEN_not_matching_the_type_is_refused_naming_both()
    {
        var bytes = CapsuleResp(1, DigestOptions.None);
        bytes[2] = 72;

        Assert.Equal(FrameStatus.Error, Parse(bytes, Host, out _, out var fault));
        Assert.Equal(PduError.HeaderLengthMismatch, fault.Error);
        Assert.Equal(2, fault.FieldOffset);
        Assert.Contains("HLEN 72", fault.Describe(), StringComparison.Ordinal);
        Assert.Contains("24", fault.Describe(), StringComparison.Ordinal);
    }

    [Fact]
    public void PDO_inside_the_header_is_refused()
    {
        var bytes = C2HData(new byte[16], DigestOptions.Header);
        bytes[3] = 20; // inside the 24-byte header

        Assert.Equal(FrameStatus.Error, Parse(bytes, Host.WithDigests(DigestOptions.Header), out _, out var fault));
        Assert.Equal(PduError.DataOffsetInsideHeader, fault.Error);
        Assert.Equal(3, fault.FieldOffset);

        bytes[3] = 26; // inside the header digest
        Assert.Equal(FrameStatus.Error, Parse(bytes, Host.WithDigests(DigestOptions.Header), out _, out fault));
        Assert.Equal(PduError.DataOffsetInsideHeader, fault.Error);
    }

    [Fact]
    public void PDO_past_the_end_of_the_pdu_is_refused()
    {
        var bytes = C2HData(new byte[16], DigestOptions.None);
        bytes[3] = 200;

        Assert.Equal(FrameStatus.Error, Parse(bytes, Host, out _, out var fault));
        Assert.Equal(PduError.DataOffsetBeyondPdu, fault.Error);
    }

    [Theory]
    [InlineData(0x08)]
    [InlineData(0x0A)]
    [InlineData(0x7F)]
    [InlineData(0xFF)]
    public void An_unknown_pdu_type_is_refused(byte type)
    {
        var bytes = CapsuleResp(1, DigestOptions.None);
        bytes[0] = type;

        Assert.Equal(FrameStatus.Error, Parse(bytes, Host, out _, out var fault));
        Assert.Equal(PduError.UnknownPduType, fault.Error);
        Assert.Contains($"0x{type:x2}", fault.Describe(), StringComparison.Ordinal);
    }

    [Fact]
    public void A_pdu_from_the_wrong_direction_is_refused()
    {
        var bytes = new byte[128];
        new ICReq(0, 0, DigestOptions.None, 0).WriteTo(bytes);

        Assert.Equal(FrameStatus.Error, Parse(bytes, Host, out _, out var fault));
        Assert.Equal(PduError.UnexpectedPduType, fault.Error);
        Assert.Equal(FrameStatus.Frame, Parse(bytes, Controller, out var frame, out _));
        Assert.Equal(PduType.ICReq, frame.Type);
    }

    [Fact]
    public void A_header_digest_mismatch_is_fatal()
    {
        var bytes = CapsuleResp(9, DigestOptions.Header);
        bytes[24] ^= 0xFF; // corrupt the digest

        Assert.Equal(FrameStatus.Error, Parse(bytes, Host.WithDigests(DigestOptions.Header), out _, out var fault));
        Assert.Equal(PduError.HeaderDigestMismatch, fault.Error);
        Assert.Equal(TermReqError.HeaderDigestError, fault.TermReqStatus);

        var corruptHeader = CapsuleResp(9, DigestOptions.Header);
        corruptHeader[12] ^= 0x01; // CID changed in flight
        Assert.Equal(FrameStatus.Error, Parse(corruptHeader, Host.WithDigests(DigestOptions.Header), out _, out fault));
        Assert.Equal(PduError.HeaderDigestMismatch, fault.Error);
    }

    [Fact]
    public void A_data_digest_mismatch_frames_the_pdu_but_marks_its_data_invalid()
    {
        var bytes = C2HData(new byte[64], DigestOptions.Data);
        bytes[30] ^= 0x40; // flip a data bit

        Assert.Equal(FrameStatus.Frame, Parse(bytes, Host.WithDigests(DigestOptions.Data), out var frame, out _));
        Assert.False(frame.DataDigestValid);
    }

    [Fact]
    public void Digest_flags_must_match_what_was_negotiated()
    {
        var withDigest = CapsuleResp(1, DigestOptions.Header);
        Assert.Equal(FrameStatus.Error, Parse(withDigest, Host, out _, out var fault));
        Assert.Equal(PduError.DigestFlagMismatch, fault.Error);

        var without = CapsuleResp(1, DigestOptions.None);
        Assert.Equal(FrameStatus.Error, Parse(without, Host.WithDigests(DigestOptions.Header), out _, out fault));
        Assert.Equal(PduError.DigestFlagMismatch, fault.Error);
    }

    [Fact]
    public void Flags_a_type_does_not_allow_are_refused()
    {
        var bytes = CapsuleResp(1, DigestOptions.None);
        bytes[1] = (byte)PduFlags.Success;

        Assert.Equal(FrameStatus.Error, Parse(bytes, Host, out _, out var fault));
        Assert.Equal(PduError.InvalidFlags, fault.Error);
        Assert.Equal(1, fault.FieldOffset);
    }

    [Fact]
    public void Data_on_a_pdu_type_that_carries_none_is_refused()
    {
        var bytes = new byte[40];
        CapsuleResp(1, DigestOptions.None).CopyTo(bytes, 0);
        BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(4), 40);

        Assert.Equal(FrameStatus.Error, Parse(bytes, Host, out _, out var fault));
        Assert.Equal(PduError.UnexpectedData, fault.Error);
    }

    [Fact]
    public void PLEN_smaller_than_the_header_is_refused()
    {
        var bytes = CapsuleResp(1, DigestOptions.None);
        BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(4), 12);

        Assert.Equal(FrameStatus.Error, Parse(bytes, Host, out _, out var fault));
        Assert.Equal(PduError.PduLengthTooSmall, fault.Error);
    }

    [Fact]
    public void A_termreq_carries_the_offending_header_and_is_bounded()
    {
        var offending = CapsuleResp(1, DigestOptions.None);
        var buffer = new byte[200];
        int length = new TermReq(TermReqError.InvalidHeaderField, 2).WriteTo(buffer, PduType.C2HTermReq, offending);

        Assert.Equal(FrameStatus.Frame, Parse(buffer[..length], Host, out var frame, out _));
        Span<byte> scratch = stackalloc byte[128];
        var termReq = TermReq.Read(frame.GetHeader(scratch));
        Assert.Equal(TermReqError.InvalidHeaderField, termReq.Status);
        Assert.Equal(2u, termReq.ErrorInformation);
        Assert.Equal(offending, frame.Data.ToArray());

        var tooLong = new byte[24 + 200];
        new CommonHeader(PduType.C2HTermReq, PduFlags.None, 24, 0, (uint)tooLong.Length).WriteTo(tooLong);
        Assert.Equal(FrameStatus.Error, Parse(tooLong, Host, out _, out var fault));
        Assert.Equal(PduError.PduLengthTooLarge, fault.Error);
    }

    [Fact]
    public void A_capsule_command_round_trips_through_writer_and_framer()
    {
        var sqe = FabricsCommands.Connect(0, 32, 120_000);
        sqe.CommandId = 0x1234;
        var connectData = Enumerable.Range(0, 1024).Select(i => (byte)i).ToArray();
        var buffer = new byte[2048];
        int length = PduWriter.WriteCapsuleCommand(buffer, sqe, connectData, DigestOptions.Both);

        Assert.Equal(FrameStatus.Frame, Parse(buffer[..length], Controller.WithDigests(DigestOptions.Both), out var frame, out _));
        Span<byte> scratch = stackalloc byte[128];
        var decoded = SubmissionQueueEntry.Read(frame.GetHeader(scratch)[8..]);
        Assert.Equal(sqe, decoded);
        Assert.Equal(FabricsCommandType.Connect, decoded.FabricsType);
        Assert.Equal(32, FabricsCommands.ConnectQueueSize(decoded));
        Assert.Equal(120_000u, FabricsCommands.ConnectKeepAlive(decoded));
        Assert.Equal(connectData, frame.Data.ToArray());
    }
}
