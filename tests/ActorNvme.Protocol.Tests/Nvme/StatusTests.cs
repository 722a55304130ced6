using ActorNvme.Protocol.Nvme;

namespace ActorNvme.Protocol.Tests.Nvme;

public class StatusTests
{
    [Fact]
    public void Status_bits_decode_into_code_type_retry_delay_more_and_dnr()
    {
        // SC 0x82, SCT 1, CRD 2, More, DNR.
        var status = new NvmeStatus((ushort)((0x82 << 1) | (1 << 9) | (2 << 12) | (1 << 14) | (1 << 15) | 1));

        Assert.Equal(0x82, status.Code);
        Assert.Equal(StatusCodeType.CommandSpecific, status.Type);
        Assert.Equal(2, status.RetryDelay);
        Assert.True(status.More);
        Assert.True(status.DoNotRetry);
        Assert.False(status.IsSuccess);
        Assert.Equal(status.Raw & ~1, status.WithoutPhase.Raw);
    }

    [Fact]
    public void Command_specific_codes_are_named_for_their_command_set()
    {
        var status = NvmeStatus.Specific(0x82);
        Assert.Equal("connect invalid parameters", status.Name(CommandSet.Fabrics));
        Assert.Equal("attempted write to read only range", status.Name(CommandSet.Nvm));
        Assert.Equal("invalid queue size", NvmeStatus.Specific(0x02).Name(CommandSet.Admin));
    }

    [Theory]
    [InlineData(0x00, "success")]
    [InlineData(0x01, "invalid opcode")]
    [InlineData(0x02, "invalid field")]
    [InlineData(0x0C, "command sequence error")]
    [InlineData(0x19, "keep alive timer expired")]
    [InlineData(0x80, "lba out of range")]
    [InlineData(0x0B, "invalid namespace or format")]
    public void Generic_codes_have_names(byte code, string name) =>
        Assert.Equal(name, NvmeStatus.Generic((GenericStatus)code).Name());

    [Fact]
    public void The_string_form_names_the_status_and_its_numbers()
    {
        var text = NvmeStatus.Generic(GenericStatus.InvalidField, doNotRetry: true).ToString();
        Assert.Equal("invalid field (SCT 0x0 SC 0x02, DNR)", text);
        Assert.Equal("asymmetric access inaccessible", NvmeStatus.Create(StatusCodeType.PathRelated, 0x02).Name());
        Assert.Equal("unrecovered read error", NvmeStatus.Create(StatusCodeType.MediaAndDataIntegrity, 0x81).Name());
        Assert.StartsWith("reserved generic status", NvmeStatus.Create(StatusCodeType.Generic, 0x7F).Name(), StringComparison.Ordinal);
    }
}
