using ActorNvme.Protocol.Nvme;
using ActorNvme.Protocol.Tcp;

namespace ActorNvme.Protocol.Tests.Tcp;

public class SizeTests
{
    [Fact]
    public void Wire_sizes_match_the_specification()
    {
        Assert.Equal(8, CommonHeader.Size);
        Assert.Equal(128, ICReq.Size);
        Assert.Equal(128, ICResp.Size);
        Assert.Equal(72, PduSizes.CapsuleCmdHeader);
        Assert.Equal(24, PduSizes.CapsuleResp);
        Assert.Equal(24, DataPduHeader.Size);
        Assert.Equal(24, R2THeader.Size);
        Assert.Equal(24, TermReq.HeaderSize);
        Assert.Equal(64, SubmissionQueueEntry.Size);
        Assert.Equal(16, CompletionQueueEntry.Size);
        Assert.Equal(16, SglDescriptor.Size);
    }

    [Theory]
    [InlineData(PduType.ICReq, 128)]
    [InlineData(PduType.ICResp, 128)]
    [InlineData(PduType.H2CTermReq, 24)]
    [InlineData(PduType.C2HTermReq, 24)]
    [InlineData(PduType.CapsuleCmd, 72)]
    [InlineData(PduType.CapsuleResp, 24)]
    [InlineData(PduType.H2CData, 24)]
    [InlineData(PduType.C2HData, 24)]
    [InlineData(PduType.R2T, 24)]
    [InlineData((PduType)0x08, 0)]
    [InlineData((PduType)0x0A, 0)]
    public void Each_type_has_its_fixed_header_length(PduType type, int length) =>
        Assert.Equal(length, PduSizes.HeaderLength(type));

    [Fact]
    public void A_capsule_command_with_in_capsule_data_is_laid_out_with_digests_and_alignment()
    {
        var sqe = NvmCommands.Write(1, 0, 1);
        sqe.DataPointer = SglDescriptor.InCapsule(512);
        var data = new byte[512];
        var buffer = new byte[1024];

        int plain = PduWriter.WriteCapsuleCommand(buffer, sqe, data, DigestOptions.None);
        Assert.Equal(72 + 512, plain);
        Assert.Equal(72, buffer[3]); // PDO right after the header

        int digested = PduWriter.WriteCapsuleCommand(buffer, sqe, data, DigestOptions.Both);
        Assert.Equal(72 + 4 + 512 + 4, digested);
        Assert.Equal(76, buffer[3]);
        Assert.Equal((byte)(PduFlags.HeaderDigest | PduFlags.DataDigest), buffer[1]);

        // CPDA 31 → data aligned to 128 bytes.
        int aligned = PduWriter.WriteCapsuleCommand(buffer, sqe, data, DigestOptions.Header, dataAlignment: 128);
        Assert.Equal(128, buffer[3]);
        Assert.Equal(128 + 512, aligned);
    }
}
