using System.Buffers.Binary;
using ActorNvme.Protocol.Data;
using ActorNvme.Protocol.Nvme;

namespace ActorNvme.Target.Tests;

public sealed class AdminTests
{
    private static string Ascii(byte[] data, int offset, int length) => System.Text.Encoding.ASCII.GetString(data, offset, length).TrimEnd(' ', '\0');

    [Fact]
    public async Task Identify_controller_describes_the_NVM_controller()
    {
        await using var t = TestTarget.Create();
        await using var client = await t.ConnectAsync();
        ushort id = await client.SetUpAdminAsync(TestTarget.Nqn);
        var result = await client.IdentifyAsync(1);
        Assert.True(result.Status.IsSuccess);
        var d = result.Data;
        Assert.Equal(4096, d.Length);
        Assert.Equal(t.Subsystem.SerialNumber, Ascii(d, 4, 20));
        Assert.Equal("ActorNvme Target", Ascii(d, 24, 40));
        Assert.Equal(id, BinaryPrimitives.ReadUInt16LittleEndian(d.AsSpan(78)));
        Assert.Equal(0x00010300u, BinaryPrimitives.ReadUInt32LittleEndian(d.AsSpan(80)));
        Assert.Equal(1, d[111]); // I/O controller
        Assert.Equal(8, d[77]); // MDTS: 1 MiB in 4 KiB pages
        Assert.Equal(0x0B, d[76]); // CMIC with ANA reporting
        Assert.Equal(3, d[259]); // AERL
        Assert.Equal(0x1F, d[343]); // ANACAP

        // The shared decoder reads the same structure back.
        var decoded = IdentifyController.Read(d);
        Assert.Equal(ControllerType.Io, decoded.ControllerType);
        Assert.Equal(NvmSubsystem.MaxAnaGroups, decoded.AnaGroupIdMax);
        Assert.Equal(TestTarget.Nqn, decoded.SubsystemNqn);
        Assert.Equal(0x66, decoded.SubmissionQueueEntrySize);
        Assert.Equal(decoded.NumberOfNamespaces, decoded.MaxAllowedNamespaces); // MNAN, required by Linux with ANA
        Assert.Equal(1024u, BinaryPrimitives.ReadUInt32LittleEndian(d.AsSpan(516))); // NN
        Assert.Equal(0x2Cu, BinaryPrimitives.ReadUInt16LittleEndian(d.AsSpan(520))); // ONCS: DSM, Write Zeroes, Reservations
        Assert.Equal(0x00100001u, BinaryPrimitives.ReadUInt32LittleEndian(d.AsSpan(536))); // SGLS
        Assert.Equal(TestTarget.Nqn, Ascii(d, 768, 256));
        Assert.Equal((64u + 16384) / 16, BinaryPrimitives.ReadUInt32LittleEndian(d.AsSpan(1792))); // IOCCSZ
    }

    [Fact]
    public async Task Identify_namespace_list_and_descriptors()
    {
        await using var t = TestTarget.Create(blockSize: 4096);
        t.Subsystem.AddNamespace(new NamespaceOptions { NamespaceId = 5, SizeBytes = 1 << 20, BlockSize = 512, AnaGroupId = 2 });
        await using var client = await t.ConnectAsync();
        await client.SetUpAdminAsync(TestTarget.Nqn);

        var ns = await client.IdentifyAsync(0, 1);
        Assert.Equal((ulong)TestTarget.NamespaceSize / 4096, BinaryPrimitives.ReadUInt64LittleEndian(ns.Data));
        Assert.Equal(4096, IdentifyNamespace.Read(ns.Data).BlockSize);
        Assert.Equal(12, ns.Data[128 + 2]); // LBADS: 4096
        Assert.Equal(1u, BinaryPrimitives.ReadUInt32LittleEndian(ns.Data.AsSpan(92))); // ANAGRPID

        var ns5 = await client.IdentifyAsync(0, 5);
        Assert.Equal(9, ns5.Data[128 + 2]);
        Assert.Equal(2u, BinaryPrimitives.ReadUInt32LittleEndian(ns5.Data.AsSpan(92)));

        var inactive = await client.IdentifyAsync(0, 3);
        Assert.True(inactive.Status.IsSuccess);
        Assert.All(inactive.Data, b => Assert.Equal(0, b));

        var invalid = await client.IdentifyAsync(0, 0);
        Assert.Equal(NvmeStatus.Generic(GenericStatus.InvalidNamespaceOrFormat, true), invalid.Status);

        var list = await client.IdentifyAsync(2, 0);
        Assert.Equal(1u, BinaryPrimitives.ReadUInt32LittleEndian(list.Data));
        Assert.Equal(5u, BinaryPrimitives.ReadUInt32LittleEndian(list.Data.AsSpan(4)));
        Assert.Equal(0u, BinaryPrimitives.ReadUInt32LittleEndian(list.Data.AsSpan(8)));
        var after1 = await client.IdentifyAsync(2, 1);
        Assert.Equal(5u, BinaryPrimitives.ReadUInt32LittleEndian(after1.Data));

        var descriptors = await client.IdentifyAsync(3, 1);
        Assert.Equal(2, descriptors.Data[0]); // NGUID
        Assert.Equal(16, descriptors.Data[1]);
        Assert.Equal(ns.Data.AsSpan(104, 16).ToArray(), descriptors.Data.AsSpan(4, 16).ToArray());
        Assert.Equal(3, descriptors.Data[20]); // UUID
        Assert.Equal(t.Subsystem.FindNamespace(1)!.Uuid, new Guid(descriptors.Data.AsSpan(24, 16), bigEndian: true));

        var unknownCns = await client.IdentifyAsync(0x1F, 1);
        Assert.Equal(NvmeStatus.Generic(GenericStatus.InvalidField, true), unknownCns.Status);
    }

    [Fact]
    public async Task Identify_with_a_short_buffer_is_refused()
    {
        await using var t = TestTarget.Create();
        await using var client = await t.ConnectAsync();
        await client.SetUpAdminAsync(TestTarget.Nqn);
        var sqe = AdminCommands.Identify(1);
        sqe.DataPointer = SglDescriptor.Transport(512);
        var result = await client.CommandAsync(sqe);
        Assert.Equal(NvmeStatus.Generic(GenericStatus.DataSglLengthInvalid, true), result.Status);
    }

    [Fact]
    public async Task Get_log_page_error_changed_namespaces_and_ANA_honour_length_and_offset()
    {
        await using var t = TestTarget.Create();
        await using var client = await t.ConnectAsync();
        await client.SetUpAdminAsync(TestTarget.Nqn);

        var error = await client.GetLogPageAsync(0x01, 64);
        Assert.True(error.Status.IsSuccess);
        Assert.Equal(64, error.Data.Length);

        var changed = await client.GetLogPageAsync(0x04, 4096);
        Assert.True(changed.Status.IsSuccess);
        Assert.Equal(0u, BinaryPrimitives.ReadUInt32LittleEndian(changed.Data));

        var ana = await client.GetLogPageAsync(0x0C, 4096);
        Assert.True(ana.Status.IsSuccess);
        Assert.Equal(1, BinaryPrimitives.ReadUInt16LittleEndian(ana.Data.AsSpan(8))); // one group
        Assert.Equal(1u, BinaryPrimitives.ReadUInt32LittleEndian(ana.Data.AsSpan(16))); // ANAGRPID 1
        Assert.Equal(1u, BinaryPrimitives.ReadUInt32LittleEndian(ana.Data.AsSpan(20))); // one NSID
        Assert.Equal((byte)AnaState.Optimized, ana.Data[32]);
        Assert.Equal(1u, BinaryPrimitives.ReadUInt32LittleEndian(ana.Data.AsSpan(48)));

        var groupsOnly = await client.GetLogPageAsync(0x0C, 48, logSpecific: 1);
        Assert.Equal(0u, BinaryPrimitives.ReadUInt32LittleEndian(groupsOnly.Data.AsSpan(20)));

        var tail = await client.GetLogPageAsync(0x0C, 8, offset: 16);
        Assert.Equal(ana.Data.AsSpan(16, 8).ToArray(), tail.Data);

        var beyond = await client.GetLogPageAsync(0x0C, 8, offset: 4096);
        Assert.Equal(NvmeStatus.Generic(GenericStatus.InvalidField, true), beyond.Status);

        var unaligned = AdminCommands.GetLogPage(0x0C, 8);
        unaligned.Cdw12 = 2;
        unaligned.DataPointer = SglDescriptor.Transport(8);
        Assert.Equal(NvmeStatus.Generic(GenericStatus.InvalidField, true), (await client.CommandAsync(unaligned)).Status);

        var discoveryOnNvm = await client.GetLogPageAsync(0x70, 1024);
        Assert.Equal(NvmeStatus.Generic(GenericStatus.InvalidField, true), discoveryOnNvm.Status);

        Assert.True((await client.GetLogPageAsync(0x02, 512)).Status.IsSuccess); // SMART / health

        var unsupported = await client.GetLogPageAsync(0x03, 512);
        Assert.Equal(NvmeStatus.Generic(GenericStatus.InvalidField, true), unsupported.Status);
    }

    [Fact]
    public async Task Features_number_of_queues_keep_alive_and_async_event_configuration()
    {
        await using var t = TestTarget.Create();
        await using var client = await t.ConnectAsync();
        await client.SetUpAdminAsync(TestTarget.Nqn, kato: 5000);

        var queues = await client.CommandAsync(AdminCommands.SetNumberOfQueues(4, 4));
        Assert.True(queues.Status.IsSuccess);
        Assert.Equal((8, 8), AdminCommands.DecodeNumberOfQueues(queues.Completion.Dw0));
        var bad = await client.CommandAsync(AdminCommands.SetFeatures(FeatureId.NumberOfQueues, 0xFFFF));
        Assert.Equal(NvmeStatus.Generic(GenericStatus.InvalidField, true), bad.Status);

        Assert.Equal(5000u, (await client.CommandAsync(AdminCommands.GetFeatures(FeatureId.KeepAliveTimer))).Completion.Dw0);
        Assert.True((await client.CommandAsync(AdminCommands.SetKeepAliveTimer(7000))).Status.IsSuccess);
        Assert.Equal(7000u, (await client.CommandAsync(AdminCommands.GetFeatures(FeatureId.KeepAliveTimer))).Completion.Dw0);

        Assert.True((await client.CommandAsync(AdminCommands.SetAsyncEventConfiguration(0x900))).Status.IsSuccess);
        Assert.Equal(0x900u, (await client.CommandAsync(AdminCommands.GetFeatures(FeatureId.AsynchronousEventConfiguration))).Completion.Dw0);
        var discoveryBit = await client.CommandAsync(AdminCommands.SetAsyncEventConfiguration(1u << 31));
        Assert.Equal(NvmeStatus.Generic(GenericStatus.InvalidField, true), discoveryBit.Status);

        var save = await client.CommandAsync(AdminCommands.SetFeatures(FeatureId.KeepAliveTimer, 1000, save: true));
        Assert.Equal(NvmeStatus.Specific((byte)AdminSpecificStatus.FeatureIdentifierNotSaveable, true), save.Status);

        var unknown = await client.CommandAsync(AdminCommands.GetFeatures((FeatureId)0x02));
        Assert.Equal(NvmeStatus.Generic(GenericStatus.InvalidField, true), unknown.Status);
    }

    [Fact]
    public async Task Keep_alive_succeeds_and_unknown_opcodes_are_invalid()
    {
        await using var t = TestTarget.Create();
        await using var client = await t.ConnectAsync();
        await client.SetUpAdminAsync(TestTarget.Nqn);
        Assert.True((await client.CommandAsync(AdminCommands.KeepAlive())).Status.IsSuccess);
        var unknown = await client.CommandAsync(new SubmissionQueueEntry { Opcode = 0x80 });
        Assert.Equal(NvmeStatus.Generic(GenericStatus.InvalidOpcode, true), unknown.Status);
        var createSq = await client.CommandAsync(new SubmissionQueueEntry { Opcode = (byte)AdminOpcode.CreateIoSubmissionQueue });
        Assert.Equal(NvmeStatus.Generic(GenericStatus.InvalidOpcode, true), createSq.Status);
    }

    [Fact]
    public async Task AERs_beyond_AERL_are_refused()
    {
        await using var t = TestTarget.Create();
        await using var client = await t.ConnectAsync();
        await client.SetUpAdminAsync(TestTarget.Nqn);
        for (int i = 0; i < 4; i++)
        {
            await client.SendCommandAsync(AdminCommands.AsynchronousEventRequest());
        }

        var fifth = await client.CommandAsync(AdminCommands.AsynchronousEventRequest());
        Assert.Equal(NvmeStatus.Specific((byte)AdminSpecificStatus.AsyncEventRequestLimitExceeded, true), fifth.Status);
        Assert.Empty(client.Unsolicited);
    }

    [Fact]
    public async Task Discovery_controller_identifies_as_such_and_defaults_KATO_0_to_120_s()
    {
        await using var t = TestTarget.Create();
        await using var client = await t.ConnectAsync();
        await client.SetUpAdminAsync(TestTarget.DiscoveryNqn, kato: 0);
        var id = await client.IdentifyAsync(1);
        Assert.Equal(2, id.Data[111]);
        Assert.Equal(1u << 31, BinaryPrimitives.ReadUInt32LittleEndian(id.Data.AsSpan(92)));
        Assert.Equal(TestTarget.DiscoveryNqn, Ascii(id.Data, 768, 256));
        Assert.Equal(120_000u, (await client.CommandAsync(AdminCommands.GetFeatures(FeatureId.KeepAliveTimer))).Completion.Dw0);

        var ns = await client.IdentifyAsync(0, 1);
        Assert.Equal(NvmeStatus.Generic(GenericStatus.InvalidField, true), ns.Status);
        var queues = await client.CommandAsync(AdminCommands.SetNumberOfQueues(1, 1));
        Assert.Equal(NvmeStatus.Generic(GenericStatus.InvalidField, true), queues.Status);
        var ana = await client.GetLogPageAsync(0x0C, 4096);
        Assert.Equal(NvmeStatus.Generic(GenericStatus.InvalidField, true), ana.Status);

        await using var io = await t.ConnectAsync();
        await io.InitializeAsync();
        var ioConnect = await io.ConnectAsync(TestTarget.DiscoveryNqn, 1, 32, 0, 1);
        ConnectionTests.AssertFabricsStatus(ioConnect, FabricsStatus.ConnectInvalidParameters);
    }
}
