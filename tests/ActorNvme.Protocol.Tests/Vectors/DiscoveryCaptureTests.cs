using ActorNvme.Protocol.Data;
using Xunit;

namespace ActorNvme.Protocol.Tests.Vectors;

/// <summary>
/// Golden vectors: the session of discovery-8009.pcapng against the Linux kernel target (nvmet-tcp),
/// decoded with our decoders to the values in probe-8009.txt.
/// </summary>
public sealed class DiscoveryCaptureTests
{
    private static readonly TcpEndpoint Host = TcpEndpoint.Parse("10.0.0.1", 40732);
    private static readonly TcpEndpoint Target = TcpEndpoint.Parse("10.0.0.2", 8009);

    private static readonly Lazy<IReadOnlyList<TestPdu>> TargetPdus = new(() => Walk(Target, Host));
    private static readonly Lazy<IReadOnlyList<TestPdu>> HostPdus = new(() => Walk(Host, Target));

    private static string CapturePath => Path.Combine(AppContext.BaseDirectory, "Vectors", "discovery-8009.pcapng");

    private static IReadOnlyList<TestPdu> Walk(TcpEndpoint from, TcpEndpoint to) =>
        TestPduWalker.Walk(PcapngReader.ReadStream(CapturePath, from, to));

    private static List<TestPdu> C2HData => [.. TargetPdus.Value.Where(p => p.Type == TestPdu.C2HData)];

    private static List<TestPdu> Responses => [.. TargetPdus.Value.Where(p => p.Type == TestPdu.CapsuleResp)];

    [Fact]
    public void Capture_holds_the_pdus_the_tshark_summary_lists()
    {
        var types = TargetPdus.Value.Select(p => p.Type).ToArray();
        Assert.Equal(TestPdu.ICResp, types[0]);
        Assert.Equal(3, C2HData.Count);
        Assert.Equal(10, Responses.Count);
        Assert.All(C2HData, p => Assert.Equal(24, p.HeaderLength));
        Assert.All(Responses, p => Assert.Equal(0, p.CompletionStatus));
    }

    [Fact]
    public void Pcapng_reader_drops_retransmits_and_keeps_stream_order()
    {
        var segments = PcapngReader.ReadTcpSegments(File.ReadAllBytes(CapturePath));
        Assert.Contains(segments, s => s.Syn && s.Source == Host);
        var streams = PcapngReader.ReassembleStreams([.. segments, .. segments.Where(s => s.Payload.Length > 0)]);
        Assert.Equal(PcapngReader.ReadStream(CapturePath, Target, Host), streams[(Target, Host)]);
        Assert.Equal(PcapngReader.ReadStream(CapturePath, Host, Target), streams[(Host, Target)]);
    }

    [Fact]
    public void Property_get_completions_decode_to_CAP_VS_and_CSTS()
    {
        // Responses: Connect, Get CAP, Get VS, Get CC, Set CC, Get CSTS, Identify, Get Log x2, Keep Alive.
        var r = Responses;
        Span<byte> cap = stackalloc byte[8];
        BitConverter.TryWriteBytes(cap, r[1].CompletionDword0);
        BitConverter.TryWriteBytes(cap[4..], r[1].CompletionDword1);
        var capabilities = ControllerCapabilities.Read(cap);
        Assert.Equal(0x000008200f0003ffUL, capabilities.Value);
        Assert.Equal(1023, capabilities.MaxQueueEntries);
        Assert.False(capabilities.ContiguousQueuesRequired);
        Assert.Equal(15, capabilities.Timeout);
        Assert.Equal(0, capabilities.DoorbellStride);
        Assert.Equal(0x41, capabilities.CommandSets);
        Assert.Equal(0, capabilities.MemoryPageSizeMinimum);
        Assert.Equal(0, capabilities.MemoryPageSizeMaximum);

        var version = new NvmeVersion(r[2].CompletionDword0);
        Assert.Equal("1.3.0", version.ToString());
        Assert.Equal(0u, new ControllerConfiguration(r[3].CompletionDword0).Value);

        var status = new ControllerStatus(r[5].CompletionDword0);
        Assert.True(status.Ready);
        Assert.False(status.FatalStatus);

        Assert.Equal(1u, r[0].CompletionDword0 & 0xFFFF); // Connect: CNTLID 1
    }

    [Fact]
    public void Identify_controller_data_decodes_to_the_probe_values()
    {
        var data = C2HData[0];
        Assert.Equal(IdentifyController.Size, data.C2HDataLength);
        var id = IdentifyController.Read(data.Data);

        Assert.Equal(0, id.VendorId);
        Assert.Equal("469721664f64b613489b", id.SerialNumber);
        Assert.Equal("Linux", id.ModelNumber);
        Assert.Equal("6.1.0-56", id.FirmwareRevision);
        Assert.Equal(0, id.MaxDataTransferSize);
        Assert.Equal(1, id.ControllerId);
        Assert.Equal(0x00010300u, id.Version.Value);
        Assert.Equal(ControllerType.Discovery, id.ControllerType);
        Assert.Equal(0x80000000u, id.OptionalAsyncEvents);
        Assert.Equal(AsyncEventConfiguration.DiscoveryLogChangeNotices, (AsyncEventConfiguration)id.OptionalAsyncEvents);
        Assert.Equal(0u, id.ControllerAttributes);
        Assert.Equal(0, id.AsyncEventRequestLimit);
        Assert.Equal(0x4, id.LogPageAttributes);
        Assert.Equal(0, id.KeepAliveSupport);
        Assert.Equal(1024, id.MaxOutstandingCommands);
        Assert.Equal(0u, id.NumberOfNamespaces);
        Assert.Equal(0, id.AnaCapabilities);
        Assert.Equal(0x00100001u, id.SglSupport);
        Assert.Equal(0u, id.IoCommandCapsuleSize);
        Assert.Equal(0u, id.IoResponseCapsuleSize);
        Assert.Equal(Nqn.Discovery, id.SubsystemNqn);
    }

    [Fact]
    public void Identify_controller_reencodes_to_the_same_bytes_in_every_modelled_field()
    {
        var wire = C2HData[0].Data;
        var id = IdentifyController.Read(wire);
        var encoded = new byte[IdentifyController.Size];
        id.WriteTo(encoded);
        Assert.Equal(id, IdentifyController.Read(encoded));

        // Linux fills the fields we model; a byte that differs must lie in a field we do not model.
        int[] modelled = [0, 2, .. Enumerable.Range(4, 68), 78, 79, 80, 81, 82, 83, 111, 256, 257, 258, 259, 260, 261, 262, 263, 512, 513, 514, 515, 516, 768];
        foreach (int offset in modelled)
        {
            Assert.True(wire[offset] == encoded[offset], $"byte {offset}: wire 0x{wire[offset]:x2}, encoded 0x{encoded[offset]:x2}");
        }
    }

    [Fact]
    public void Discovery_log_header_read_decodes_GENCTR_and_NUMREC()
    {
        var data = C2HData[1];
        Assert.Equal(DiscoveryLogHeader.Size, data.C2HDataLength);
        var header = DiscoveryLogHeader.Read(data.Data);
        Assert.Equal(new DiscoveryLogHeader(6, 3, 0), header);
        Assert.True(header.TryGetPageLength(out int length, out _));
        Assert.Equal(4096, length);

        // Only the header was read: the page is truncated for the full decoder.
        Assert.False(DiscoveryLogPage.TryRead(data.Data, out _, out var error));
        Assert.Equal(DataErrorCode.DiscoveryLogTruncated, error.Code);
        Assert.Equal(3UL, error.Value);
        Assert.Equal(0UL, error.Limit);
    }

    [Fact]
    public void Discovery_log_page_decodes_to_the_probe_entries()
    {
        var data = C2HData[2];
        Assert.Equal(4096, data.C2HDataLength);
        var log = DiscoveryLogPage.Read(data.Data);
        Assert.Equal(6UL, log.Header.GenerationCounter);
        Assert.Equal(3UL, log.Header.NumberOfRecords);
        Assert.Equal(0, log.Header.RecordFormat);
        Assert.Equal(3, log.Entries.Count);

        string[] nqns = [Nqn.Discovery, "nqn.2016-06.io.spdk:cnode0", "nqn.2016-06.io.spdk:cnode1"];
        SubsystemType[] subtypes = [SubsystemType.CurrentDiscovery, SubsystemType.Nvm, SubsystemType.Nvm];
        for (int i = 0; i < 3; i++)
        {
            var e = log.Entries[i];
            Assert.Equal(TransportType.Tcp, e.TransportType);
            Assert.Equal(NvmeAddressFamily.IPv4, e.AddressFamily);
            Assert.Equal(subtypes[i], e.SubsystemType);
            Assert.Equal(TransportRequirements.SqFlowControlDisableSupported, e.TransportRequirements);
            Assert.Equal(3, e.PortId);
            Assert.Equal(0xFFFF, e.ControllerId);
            Assert.Equal(32, e.AdminMaxSqSize);
            Assert.Equal(DiscoveryEntryFlags.None, e.Flags);
            Assert.Equal("8009", e.TransportServiceId);
            Assert.Equal("10.0.0.2", e.TransportAddress);
            Assert.Equal(nqns[i], e.SubsystemNqn);
            Assert.Equal(TcpSecurityType.None, e.SecurityType);

            Assert.True(DiscoveryLogPage.TryReadEntry(data.Data, i, out var single, out _));
            Assert.Equal(e, single);
        }
    }

    [Fact]
    public void Discovery_log_page_reencodes_byte_for_byte()
    {
        var wire = C2HData[2].Data;
        var log = DiscoveryLogPage.Read(wire);
        var encoded = new byte[DiscoveryLogPage.GetSize(log.Entries.Count)];
        DiscoveryLogPage.WriteTo(log, encoded);
        Assert.Equal(wire.ToArray(), encoded);
    }

    [Fact]
    public void Host_connect_data_decodes_to_the_probe_host_identity()
    {
        var connect = HostPdus.Value.First(p => p.Type == TestPdu.CapsuleCmd && p.CommandOpcode == 0x7F && p.FabricsCommandType == 0x01);
        var data = ConnectData.Read(connect.Data);
        Assert.Equal(Guid.Parse("6e766d65-7451-4000-8000-70726f626500"), data.HostId);
        Assert.Equal(ConnectData.DynamicControllerId, data.ControllerId);
        Assert.Equal(Nqn.Discovery, data.SubsystemNqn);
        Assert.Equal("nqn.2014-08.org.nvmexpress:uuid:6e766d65-7451-4000-8000-70726f626500", data.HostNqn);

        var encoded = new byte[ConnectData.Size];
        data.WriteTo(encoded);
        Assert.Equal(connect.Data.ToArray(), encoded);
    }
}
