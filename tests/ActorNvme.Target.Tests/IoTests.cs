using ActorNvme.Protocol.Nvme;
using ActorNvme.Protocol.Tcp;

namespace ActorNvme.Target.Tests;

public sealed class IoTests
{
    private static byte[] Pattern(int length, int seed)
    {
        var data = new byte[length];
        new Random(seed).NextBytes(data);
        return data;
    }

    [Theory]
    [InlineData("memory", 512)]
    [InlineData("memory", 4096)]
    [InlineData("tcp", 512)]
    [InlineData("tcp", 4096)]
    public async Task In_capsule_write_reads_back_identical(string transport, int blockSize)
    {
        await using var t = TestTarget.Create(transport, blockSize: blockSize);
        var (admin, io, _) = await t.ConnectIoAsync();
        await using var _a = admin;
        await using var _i = io;
        var data = Pattern(4 * blockSize, blockSize);
        var write = await io.WriteAsync(1, 3, data, blockSize, inCapsule: true);
        Assert.True(write.Status.IsSuccess, write.Status.ToString());
        Assert.Empty(write.R2Ts);
        var read = await io.ReadAsync(1, 3, 4, blockSize);
        Assert.True(read.Status.IsSuccess);
        Assert.Equal(data, read.Data);
        var before = await io.ReadAsync(1, 2, 1, blockSize);
        Assert.All(before.Data, b => Assert.Equal(0, b));
    }

    [Theory]
    [MemberData(nameof(Transports.Both), MemberType = typeof(Transports))]
    public async Task R2T_write_is_solicited_in_windows_of_MAXH2CDATA_and_read_back_split_at_MaxC2HData(string transport)
    {
        var options = new TargetOptions { MaxH2CData = 64 * 1024, MaxC2HData = 16 * 1024 };
        await using var t = TestTarget.Create(transport, options);
        var (admin, io, _) = await t.ConnectIoAsync(DigestOptions.Both);
        await using var _a = admin;
        await using var _i = io;
        var data = Pattern(200 * 1024, 7);
        var write = await io.WriteAsync(1, 0, data, 512, inCapsule: false);
        Assert.True(write.Status.IsSuccess, write.Status.ToString());
        Assert.Equal(4, write.R2Ts.Count);
        Assert.All(write.R2Ts, r => Assert.True(r.R2T.Length <= 64 * 1024));
        Assert.Equal(data.Length, write.R2Ts.Sum(r => (long)r.R2T.Length));

        var read = await io.ReadAsync(1, 0, data.Length / 512, 512);
        Assert.True(read.Status.IsSuccess);
        Assert.False(read.SuccessFlag);
        Assert.Equal(data, read.Data);
        Assert.Equal(13, read.DataPdus.Count);
        Assert.All(read.DataPdus.SkipLast(1), p => Assert.Equal(PduFlags.None, p.Flags & (PduFlags.LastPdu | PduFlags.Success)));
        Assert.Equal(PduFlags.LastPdu, read.DataPdus[^1].Flags & (PduFlags.LastPdu | PduFlags.Success));
        Assert.True(read.AllDigestsValid);
    }

    [Fact]
    public async Task With_SQ_flow_control_disabled_the_last_C2HData_carries_SUCCESS_and_no_CapsuleResp_follows()
    {
        await using var t = TestTarget.Create(options: new TargetOptions { MaxC2HData = 4096 });
        var (admin, io, _) = await t.ConnectIoAsync(disableSqFlow: true);
        await using var _a = admin;
        await using var _i = io;
        var read = await io.ReadAsync(1, 0, 16, 512);
        Assert.True(read.SuccessFlag);
        Assert.Equal(2, read.DataPdus.Count);
        Assert.Equal(PduFlags.LastPdu | PduFlags.Success, read.DataPdus[^1].Flags & (PduFlags.LastPdu | PduFlags.Success));
        Assert.True((await io.CommandAsync(NvmCommands.Flush(1))).Status.IsSuccess); // next PDU is the Flush completion, not a stray CapsuleResp
    }

    [Fact]
    public async Task Flush_write_zeroes_and_deallocate()
    {
        await using var t = TestTarget.Create();
        var (admin, io, _) = await t.ConnectIoAsync();
        await using var _a = admin;
        await using var _i = io;
        var data = Pattern(16 * 512, 3);
        Assert.True((await io.WriteAsync(1, 0, data, 512, inCapsule: false)).Status.IsSuccess);
        Assert.True((await io.CommandAsync(NvmCommands.Flush(1))).Status.IsSuccess);
        Assert.True((await io.CommandAsync(NvmCommands.Flush(0xFFFFFFFF))).Status.IsSuccess);

        Assert.True((await io.CommandAsync(NvmCommands.WriteZeroes(1, 2, 2))).Status.IsSuccess);
        var ranges = new byte[32];
        NvmCommands.WriteRange(ranges, 8, 2);
        NvmCommands.WriteRange(ranges.AsSpan(16), 12, 1);
        Assert.True((await io.CommandAsync(NvmCommands.DatasetManagement(1, 2, deallocate: true), inCapsule: ranges)).Status.IsSuccess);

        var read = await io.ReadAsync(1, 0, 16, 512);
        var expected = (byte[])data.Clone();
        Array.Clear(expected, 2 * 512, 2 * 512);
        Array.Clear(expected, 8 * 512, 2 * 512);
        Array.Clear(expected, 12 * 512, 512);
        Assert.Equal(expected, read.Data);

        // Dataset Management through R2T as well.
        var more = new byte[16];
        NvmCommands.WriteRange(more, 0, 1);
        Assert.True((await io.CommandAsync(NvmCommands.DatasetManagement(1, 1, deallocate: true), h2cData: more)).Status.IsSuccess);
        Assert.All((await io.ReadAsync(1, 0, 1, 512)).Data, b => Assert.Equal(0, b));

        var outOfRange = new byte[16];
        NvmCommands.WriteRange(outOfRange, (ulong)(TestTarget.NamespaceSize / 512) - 1, 2);
        Assert.Equal(NvmeStatus.Generic(GenericStatus.LbaOutOfRange, true), (await io.CommandAsync(NvmCommands.DatasetManagement(1, 1, deallocate: true), inCapsule: outOfRange)).Status);
    }

    [Fact]
    public async Task Invalid_namespace_LBA_range_opcode_and_SGL_are_refused()
    {
        await using var t = TestTarget.Create();
        var (admin, io, _) = await t.ConnectIoAsync();
        await using var _a = admin;
        await using var _i = io;
        long blocks = TestTarget.NamespaceSize / 512;
        Assert.Equal(NvmeStatus.Generic(GenericStatus.InvalidNamespaceOrFormat, true), (await io.ReadAsync(9, 0, 1, 512)).Status);
        Assert.Equal(NvmeStatus.Generic(GenericStatus.LbaOutOfRange, true), (await io.ReadAsync(1, (ulong)blocks - 1, 2, 512)).Status);
        Assert.Equal(NvmeStatus.Generic(GenericStatus.LbaOutOfRange, true), (await io.CommandAsync(NvmCommands.WriteZeroes(1, (ulong)blocks, 1))).Status);
        Assert.Equal(NvmeStatus.Generic(GenericStatus.InvalidOpcode, true), (await io.CommandAsync(new SubmissionQueueEntry { Opcode = 0x05, NamespaceId = 1 })).Status);
        Assert.Equal(NvmeStatus.Generic(GenericStatus.InvalidOpcode, true), (await io.CommandAsync(FabricsCommands.PropertyGet(0, true))).Status);

        var shortSgl = NvmCommands.Read(1, 0, 2);
        shortSgl.DataPointer = SglDescriptor.Transport(512);
        Assert.Equal(NvmeStatus.Generic(GenericStatus.DataSglLengthInvalid, true), (await io.CommandAsync(shortSgl)).Status);

        var tooBig = NvmCommands.Read(1, 0, 4096);
        tooBig.DataPointer = SglDescriptor.Transport(4096 * 512);
        Assert.Equal(NvmeStatus.Generic(GenericStatus.InvalidField, true), (await io.CommandAsync(tooBig)).Status);

        var inCapsuleRead = NvmCommands.Read(1, 0, 1);
        Assert.Equal(NvmeStatus.Generic(GenericStatus.SglDescriptorTypeInvalid, true), (await io.CommandAsync(inCapsuleRead, inCapsule: new byte[512])).Status);
    }

    [Fact]
    public async Task Null_namespace_reads_zeros_and_discards_writes()
    {
        await using var t = TestTarget.Create(backend: NamespaceBackend.Null);
        var (admin, io, _) = await t.ConnectIoAsync();
        await using var _a = admin;
        await using var _i = io;
        Assert.True((await io.WriteAsync(1, 0, Pattern(64 * 1024, 1), 512, inCapsule: false)).Status.IsSuccess);
        Assert.True((await io.WriteAsync(1, 0, Pattern(4096, 2), 512, inCapsule: true)).Status.IsSuccess);
        var read = await io.ReadAsync(1, 0, 128, 512);
        Assert.All(read.Data, b => Assert.Equal(0, b));
    }

    [Fact]
    public async Task Host_data_digest_errors_fail_the_command_with_transient_transport_error_and_keep_the_connection()
    {
        await using var t = TestTarget.Create();
        var (admin, io, _) = await t.ConnectIoAsync(DigestOptions.Both);
        await using var _a = admin;
        await using var _i = io;
        var data = Pattern(8192, 5);
        var r2t = await io.WriteAsync(1, 0, data, 512, inCapsule: false, corruptDigest: true);
        Assert.Equal(NvmeStatus.Generic(GenericStatus.TransientTransportError), r2t.Status);
        Assert.All((await io.ReadAsync(1, 0, 16, 512)).Data, b => Assert.Equal(0, b));

        // In-capsule data with a bad digest.
        var sqe = NvmCommands.Write(1, 0, 1);
        sqe.CommandId = io.NextCommandId();
        sqe.DataPointer = SglDescriptor.InCapsule(512);
        var pdu = new byte[1024];
        int length = PduWriter.WriteCapsuleCommand(pdu, sqe, data.AsSpan(0, 512), io.Digests);
        pdu[length - 1] ^= 0xFF;
        await io.SendAsync(pdu.AsMemory(0, length));
        var result = await io.ReceiveCompletionAsync(sqe.CommandId);
        Assert.Equal(NvmeStatus.Generic(GenericStatus.TransientTransportError), result.Status);
        Assert.True((await io.CommandAsync(NvmCommands.Flush(1))).Status.IsSuccess);
    }

    [Fact]
    public async Task Writes_beyond_the_data_in_flight_bound_wait_for_their_R2T()
    {
        var options = new TargetOptions { MaxDataTransferSize = 64 * 1024, MaxDataInFlightPerConnection = 64 * 1024, MaxH2CData = 64 * 1024 };
        await using var t = TestTarget.Create(options: options);
        var (admin, io, _) = await t.ConnectIoAsync();
        await using var _a = admin;
        await using var _i = io;
        var first = Pattern(64 * 1024, 1);
        var second = Pattern(64 * 1024, 2);
        var a = await io.SendCommandAsync(NvmCommands.Write(1, 0, 128), h2cData: first);
        var b = await io.SendCommandAsync(NvmCommands.Write(1, 128, 128), h2cData: second);
        var r2t = await io.ReceiveAsync();
        Assert.Equal(PduType.R2T, r2t.Type);
        Assert.Equal(a.CommandId, r2t.R2T.CommandId);
        Assert.Equal(ReceiveKind.Timeout, (await io.ReceiveAsync(TimeSpan.FromMilliseconds(300))).Kind);
        await io.SendH2CDataAsync(r2t.R2T, first);
        Assert.True((await io.ReceiveCompletionAsync(a.CommandId, first)).Status.IsSuccess);
        var rest = await io.ReceiveCompletionAsync(b.CommandId, second);
        Assert.True(rest.Status.IsSuccess);
        Assert.Single(rest.R2Ts);
        Assert.Equal(first, (await io.ReadAsync(1, 0, 128, 512)).Data);
        Assert.Equal(second, (await io.ReadAsync(1, 128, 128, 512)).Data);
    }

    [Fact]
    public async Task More_commands_than_the_queue_holds_end_the_connection_with_a_TermReq()
    {
        await using var t = TestTarget.Create();
        var (admin, io, _) = await t.ConnectIoAsync(queueSize: 2);
        await using var _a = admin;
        await using var _i = io;
        for (int i = 0; i < 3; i++)
        {
            await io.SendCommandAsync(NvmCommands.Write(1, 0, 1), h2cData: new byte[512]);
        }

        var (end, pdus) = await io.ReceiveUntilClosedAsync();
        Assert.NotEqual(ReceiveKind.Timeout, end);
        var term = Assert.Single(pdus, p => p.Type == PduType.C2HTermReq);
        Assert.Equal(TermReqError.PduSequenceError, term.TermReq.Status);
        Assert.True((await admin.CommandAsync(AdminCommands.KeepAlive())).Status.IsSuccess);
    }

    [Fact]
    public async Task Sqhd_advances_with_each_command()
    {
        await using var t = TestTarget.Create();
        var (admin, io, _) = await t.ConnectIoAsync(queueSize: 4);
        await using var _a = admin;
        await using var _i = io;
        var heads = new List<int>();
        for (int i = 0; i < 4; i++)
        {
            heads.Add((await io.CommandAsync(NvmCommands.Flush(1))).Completion.SqHead);
        }

        Assert.Equal([2, 3, 0, 1], heads);

    }
}
