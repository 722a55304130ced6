using ActorNvme.Protocol.Data;
using Xunit;

namespace ActorNvme.Protocol.Tests.Data;

public sealed class RegisterAndEventVectorTests
{
    [Fact]
    public void Register_offsets_and_sizes_match_the_spec()
    {
        Assert.Equal(0x00u, ControllerCapabilities.Offset);
        Assert.Equal(0x08u, NvmeVersion.Offset);
        Assert.Equal(0x14u, ControllerConfiguration.Offset);
        Assert.Equal(0x1Cu, ControllerStatus.Offset);
        Assert.Equal(8, ControllerRegister.SizeOf(ControllerRegister.Capabilities));
        Assert.Equal(4, ControllerRegister.SizeOf(ControllerRegister.Version));
        Assert.Equal(4, ControllerRegister.SizeOf(ControllerRegister.Configuration));
        Assert.Equal(4, ControllerRegister.SizeOf(ControllerRegister.Status));
        Assert.Equal((8, 4, 4, 4), (ControllerCapabilities.Size, NvmeVersion.Size, ControllerConfiguration.Size, ControllerStatus.Size));
    }

    [Fact]
    public void The_fabrics_CC_is_the_NVM_command_set_with_64_byte_SQEs_and_16_byte_CQEs()
    {
        // Vectors: what a host writes to enable an NVMe over Fabrics controller, and to shut it down.
        Assert.Equal(0x0046_0000u, ControllerConfiguration.ForFabrics.Value);
        Assert.Equal(0x0046_0001u, ControllerConfiguration.ForFabrics.Enabled.Value);
        Assert.Equal(0x0046_4001u, ControllerConfiguration.ForFabrics.Enabled.WithShutdown(ShutdownNotification.Normal).Value);
        Assert.Equal(0x0046_8001u, ControllerConfiguration.ForFabrics.Enabled.WithShutdown(ShutdownNotification.Abrupt).Value);
    }

    [Fact]
    public void Structure_sizes_match_the_spec()
    {
        Assert.Equal(4096, IdentifyController.Size);
        Assert.Equal(4096, IdentifyNamespace.Size);
        Assert.Equal(4096, ActiveNamespaceList.Size);
        Assert.Equal(4096, NamespaceIdentifiers.Size);
        Assert.Equal(1024, DiscoveryLogHeader.Size);
        Assert.Equal(1024, DiscoveryLogEntry.Size);
        Assert.Equal(16, AnaLogHeader.Size);
        Assert.Equal(32, AnaGroupDescriptor.HeaderSize);
        Assert.Equal(4096, ChangedNamespaceList.Size);
        Assert.Equal(64, ErrorInformationEntry.Size);
        Assert.Equal(1024, ConnectData.Size);
    }

    [Fact]
    public void Identify_controller_CQT_and_CRDT_sit_at_their_offsets()
    {
        var page = new byte[IdentifyController.Size];
        page[128] = 0x05; // CRDT1 = 5 (500 ms)
        page[131] = 0x01; // CRDT2 = 0x100
        page[132] = 0x02; // CRDT3 = 2
        page[386] = 0xE8; // CQT = 0x03E8 = 1000 ms
        page[387] = 0x03;
        var identify = IdentifyController.Read(page);
        Assert.Equal(5, identify.CommandRetryDelayTime1);
        Assert.Equal(0x100, identify.CommandRetryDelayTime2);
        Assert.Equal(2, identify.CommandRetryDelayTime3);
        Assert.Equal(1000, identify.CommandQuiesceTime);

        var written = new byte[IdentifyController.Size];
        identify.WriteTo(written);
        Assert.Equal(page.AsSpan(128, 6).ToArray(), written.AsSpan(128, 6).ToArray());
        Assert.Equal(page.AsSpan(384, 4).ToArray(), written.AsSpan(384, 4).ToArray());
    }

    [Fact]
    public void Capabilities_vector_decodes_and_encodes()
    {
        var cap = new ControllerCapabilities(0x000008200f0003ffUL);
        Assert.Equal(1023, cap.MaxQueueEntries);
        Assert.Equal(1024, cap.MaxQueueSize);
        Assert.Equal(15, cap.Timeout);
        Assert.Equal(TimeSpan.FromMilliseconds(7500), cap.ReadyTimeout);
        Assert.Equal(0x41, cap.CommandSets);
        Assert.Equal(0, cap.DoorbellStride);
        Assert.Equal(0, cap.MemoryPageSizeMinimum);
        Assert.Equal(0, cap.MemoryPageSizeMaximum);

        var built = new ControllerCapabilities { MaxQueueEntries = 1023, Timeout = 15, CommandSets = 0x41 };
        Assert.Equal(cap, built);
        var bytes = new byte[8];
        built.WriteTo(bytes);
        Assert.Equal(new byte[] { 0xff, 0x03, 0x00, 0x0f, 0x20, 0x08, 0x00, 0x00 }, bytes);
    }

    [Fact]
    public void Version_and_configuration_vectors()
    {
        var vs = NvmeVersion.Read([0x00, 0x03, 0x01, 0x00]);
        Assert.Equal((1, 3, 0), (vs.Major, vs.Minor, vs.Tertiary));
        Assert.Equal(NvmeVersion.V1_3_0, vs);

        var cc = new ControllerConfiguration(0x00460001);
        Assert.True(cc.Enable);
        Assert.Equal(6, cc.IoSubmissionQueueEntrySize);
        Assert.Equal(4, cc.IoCompletionQueueEntrySize);
        Assert.Equal(0, cc.CommandSet);
        Assert.Equal(ShutdownNotification.None, cc.ShutdownNotification);
        Assert.Equal(0x00460001u, new ControllerConfiguration { Enable = true, IoSubmissionQueueEntrySize = 6, IoCompletionQueueEntrySize = 4 }.Value);
        Assert.Equal(0x00464001u, (cc with { ShutdownNotification = ShutdownNotification.Normal }).Value);

        var csts = new ControllerStatus { Ready = true, ShutdownStatus = ShutdownStatus.Complete };
        Assert.Equal(0x9u, csts.Value);
    }

    [Fact]
    public void Register_init_refuses_a_value_that_does_not_fit_and_names_the_field()
    {
        var ex = Assert.Throws<NvmeDataException>(() => new ControllerCapabilities { DoorbellStride = 16 });
        Assert.Equal(DataErrorCode.ValueOutOfRange, ex.Error.Code);
        Assert.Contains("CAP.DSTRD=16", ex.Message, StringComparison.Ordinal);
        Assert.Throws<NvmeDataException>(() => new ControllerConfiguration { CommandSet = 8 });
        Assert.Throws<ArgumentException>(() => new ControllerCapabilities(1).WriteTo(new byte[7]));
    }

    [Fact]
    public void Discovery_log_change_notice_vector()
    {
        var aen = AsyncEventCompletion.FromDword0(0x0070f002);
        Assert.Equal(AsyncEventType.Notice, aen.Type);
        Assert.Equal(0xF0, aen.Info);
        Assert.Equal(AsyncEventNotice.DiscoveryLogPageChange, aen.Notice);
        Assert.Equal((byte)LogPageId.Discovery, aen.LogPageId);
        Assert.Equal(0x0070f002u, AsyncEventCompletion.ForNotice(AsyncEventNotice.DiscoveryLogPageChange, 0x70).ToDword0());
        Assert.Null(new AsyncEventCompletion(AsyncEventType.Error, 0, 1).Notice);
    }

    [Fact]
    public void Async_event_configuration_bits_and_notice_values()
    {
        Assert.Equal(1u << 8, (uint)AsyncEventConfiguration.NamespaceAttributeNotices);
        Assert.Equal(1u << 9, (uint)AsyncEventConfiguration.FirmwareActivationNotices);
        Assert.Equal(1u << 11, (uint)AsyncEventConfiguration.AnaChangeNotices);
        Assert.Equal(1u << 31, (uint)AsyncEventConfiguration.DiscoveryLogChangeNotices);
        Assert.Equal(0x00, (byte)AsyncEventNotice.NamespaceAttributeChanged);
        Assert.Equal(0x01, (byte)AsyncEventNotice.FirmwareActivationStarting);
        Assert.Equal(0x02, (byte)AsyncEventNotice.TelemetryLogChanged);
        Assert.Equal(0x03, (byte)AsyncEventNotice.AnaChange);
        Assert.Equal((0, 1, 2, 6, 7), ((int)AsyncEventType.Error, (int)AsyncEventType.SmartHealth, (int)AsyncEventType.Notice, (int)AsyncEventType.IoCommandSet, (int)AsyncEventType.VendorSpecific));
    }

    [Fact]
    public void Log_page_ids_and_cns_values()
    {
        Assert.Equal((0x01, 0x02, 0x04, 0x0C, 0x70), ((int)LogPageId.ErrorInformation, (int)LogPageId.SmartHealth, (int)LogPageId.ChangedNamespaceList, (int)LogPageId.AsymmetricNamespaceAccess, (int)LogPageId.Discovery));
        Assert.Equal((0, 1, 2, 3), ((int)IdentifyCns.Namespace, (int)IdentifyCns.Controller, (int)IdentifyCns.ActiveNamespaceList, (int)IdentifyCns.NamespaceIdentificationDescriptors));
        Assert.Equal((3, 1, 2, 254), ((int)TransportType.Tcp, (int)TransportType.Rdma, (int)TransportType.FibreChannel, (int)TransportType.Loop));
        Assert.Equal((1, 2, 3), ((int)SubsystemType.DiscoveryReferral, (int)SubsystemType.Nvm, (int)SubsystemType.CurrentDiscovery));
        Assert.Equal((1, 2, 3, 4, 0xF), ((int)AnaState.Optimized, (int)AnaState.NonOptimized, (int)AnaState.Inaccessible, (int)AnaState.PersistentLoss, (int)AnaState.Change));
    }

    [Fact]
    public void Identify_namespace_block_size_uses_the_high_flbas_bits_beyond_16_formats()
    {
        var formats = default(LbaFormatTable);
        formats[0] = new LbaFormat(0, 9, 0);
        formats[17] = new LbaFormat(8, 12, 1);
        var ns = new IdentifyNamespace { NamespaceSize = 1, NumberOfLbaFormats = 20, FormattedLbaSize = 0x21, LbaFormats = formats };
        Assert.Equal(17, ns.LbaFormatIndex);
        Assert.Equal(4096, ns.BlockSize);
        Assert.Equal(8, ns.InUseLbaFormat.MetadataSize);
        Assert.Equal(512, (ns with { NumberOfLbaFormats = 1, FormattedLbaSize = 0x20 }).BlockSize);
    }

    [Fact]
    public void Changed_namespace_list_overflow_marker()
    {
        var bytes = new byte[ChangedNamespaceList.Size];
        ChangedNamespaceList.WriteTo(new uint[1025].Select((_, i) => (uint)i + 1).ToArray(), bytes);
        Assert.Empty(ChangedNamespaceList.Read(bytes, out bool overflowed));
        Assert.True(overflowed);
        Assert.True(ChangedNamespaceList.TryRead(bytes, [], out int count, out overflowed, out _));
        Assert.Equal((0, true), (count, overflowed));
    }

    [Fact]
    public void Nqn_validation_accepts_real_names()
    {
        Assert.True(Nqn.TryValidate(Nqn.Discovery, out _));
        Assert.True(Nqn.TryValidate("nqn.2014-08.org.nvmexpress:uuid:6e766d65-7451-4000-8000-70726f626500", out _));
        Assert.True(Nqn.TryValidate("nqn." + new string('a', Nqn.MaxLength - 4), out _));
    }
}
