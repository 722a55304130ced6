using ActorNvme.Protocol.Nvme;

namespace ActorNvme.Protocol.Tests.Nvme;

public class CommandTests
{
    [Fact]
    public void Get_log_page_splits_a_zero_based_dword_count_and_the_offset()
    {
        // 4096 + 4 * 65536 bytes → NUMD 0x10400 - 1 = 0x103FF: NUMDL 0x03FF, NUMDU 0x0001.
        var sqe = AdminCommands.GetLogPage(0x70, 4096 + (4 * 65536), offset: 0x1_0000_0400, retainAsyncEvent: true);

        Assert.Equal((byte)AdminOpcode.GetLogPage, sqe.Opcode);
        Assert.Equal(0x70u, sqe.Cdw10 & 0xFF);
        Assert.Equal(1u << 15, sqe.Cdw10 & (1u << 15));
        Assert.Equal(0x03FFu, sqe.Cdw10 >> 16);
        Assert.Equal(0x0001u, sqe.Cdw11 & 0xFFFF);
        Assert.Equal(0x0000_0400u, sqe.Cdw12);
        Assert.Equal(0x1u, sqe.Cdw13);
    }

    [Theory]
    [InlineData(0u)]
    [InlineData(6u)]
    public void Get_log_page_refuses_a_length_that_is_not_whole_dwords(uint length)
    {
        var error = Assert.Throws<ArgumentOutOfRangeException>(() => AdminCommands.GetLogPage(0x70, length));
        Assert.Equal("length", error.ParamName);
    }

    [Fact]
    public void Identify_places_cns_and_controller_id()
    {
        var sqe = AdminCommands.Identify(cns: 3, namespaceId: 7, controllerId: 0x55);
        Assert.Equal(0x0055_0003u, sqe.Cdw10);
        Assert.Equal(7u, sqe.NamespaceId);
    }

    [Fact]
    public void Number_of_queues_is_sent_and_decoded_zero_based()
    {
        var sqe = AdminCommands.SetNumberOfQueues(4, 2);
        Assert.Equal((byte)FeatureId.NumberOfQueues, (byte)sqe.Cdw10);
        Assert.Equal(0x0001_0003u, sqe.Cdw11);
        Assert.Equal((4, 2), AdminCommands.DecodeNumberOfQueues(0x0001_0003));
    }

    [Fact]
    public void Connect_carries_queue_id_size_attributes_and_keep_alive()
    {
        var sqe = FabricsCommands.Connect(queueId: 3, queueSize: 128, keepAliveMilliseconds: 0, connectAttributes: FabricsCommands.DisableSqFlowControl);

        Assert.Equal(0x7F, sqe.Opcode);
        Assert.Equal(FabricsCommandType.Connect, sqe.FabricsType);
        Assert.Equal((ushort)3, FabricsCommands.ConnectQueueId(sqe));
        Assert.Equal(128, FabricsCommands.ConnectQueueSize(sqe));
        Assert.Equal(127u, sqe.Cdw11 & 0xFFFF);
        Assert.Equal(FabricsCommands.DisableSqFlowControl, FabricsCommands.ConnectAttributes(sqe));
        Assert.True(sqe.DataPointer.IsInCapsule);
        Assert.Equal(1024u, sqe.DataPointer.Length);
        Assert.Equal((ushort)1, FabricsCommands.DecodeConnectResponse(0x0000_0001).ControllerId);
    }

    [Fact]
    public void Property_get_and_set_carry_size_offset_and_value()
    {
        var get = FabricsCommands.PropertyGet(0x00, eightBytes: true);
        Assert.True(FabricsCommands.PropertyIsEightBytes(get));
        Assert.Equal(0u, FabricsCommands.PropertyOffset(get));

        var set = FabricsCommands.PropertySet(0x14, 0x0046_0001, eightBytes: false);
        Assert.False(FabricsCommands.PropertyIsEightBytes(set));
        Assert.Equal(0x14u, FabricsCommands.PropertyOffset(set));
        Assert.Equal(0x0046_0001ul, FabricsCommands.PropertyValue(set));
        Assert.Equal(FabricsCommandType.PropertySet, set.FabricsType);
    }

    [Fact]
    public void Read_and_write_carry_a_64_bit_lba_and_a_zero_based_count()
    {
        var sqe = NvmCommands.Read(1, 0x1_2345_6789, 8, forceUnitAccess: true);
        Assert.Equal(0x1_2345_6789ul, NvmCommands.StartLba(sqe));
        Assert.Equal(8, NvmCommands.BlockCount(sqe));
        Assert.Equal(7u, sqe.Cdw12 & 0xFFFF);
        Assert.True(NvmCommands.ForceUnitAccess(sqe));
        Assert.Throws<ArgumentOutOfRangeException>(() => NvmCommands.Write(1, 0, 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => NvmCommands.Write(1, 0, 65537));
    }

    [Fact]
    public void Write_zeroes_and_dataset_management_carry_their_deallocate_bits()
    {
        var zeroes = NvmCommands.WriteZeroes(1, 10, 4, deallocate: true);
        Assert.True(NvmCommands.Deallocate(zeroes));
        var dsm = NvmCommands.DatasetManagement(1, 3, deallocate: true);
        Assert.Equal(3, NvmCommands.RangeCount(dsm));
        Assert.True(NvmCommands.DeallocateAttribute(dsm));
        Span<byte> range = stackalloc byte[16];
        NvmCommands.WriteRange(range, 99, 8);
        Assert.Equal((99ul, 8u, 0u), NvmCommands.ReadRange(range));
    }

    [Fact]
    public void Abort_and_keep_alive_use_their_opcodes()
    {
        var abort = AdminCommands.Abort(2, 0x33);
        Assert.Equal((byte)AdminOpcode.Abort, abort.Opcode);
        Assert.Equal(0x0033_0002u, abort.Cdw10);
        Assert.Equal((byte)AdminOpcode.KeepAlive, AdminCommands.KeepAlive().Opcode);
        Assert.Equal((byte)AdminOpcode.AsynchronousEventRequest, AdminCommands.AsynchronousEventRequest().Opcode);
        Assert.Equal(0x8000_0000u, AdminCommands.SetAsyncEventConfiguration(0x8000_0000).Cdw11);
        Assert.Equal((byte)FeatureId.KeepAliveTimer, (byte)AdminCommands.SetKeepAliveTimer(5000).Cdw10);
    }
}
