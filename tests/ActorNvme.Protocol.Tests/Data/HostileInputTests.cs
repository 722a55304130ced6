using System.Buffers.Binary;
using ActorNvme.Protocol.Data;
using FsCheck.Xunit;
using Xunit;

namespace ActorNvme.Protocol.Tests.Data;

/// <summary>Every decoder refuses bad input with its specific, documented error and nothing else.</summary>
public sealed class HostileInputTests
{
    private delegate bool Decoder(ReadOnlySpan<byte> source, out DataError error);

    private static readonly (string Name, int Size, Decoder Decode)[] FixedSize =
    [
        ("CAP", 8, (ReadOnlySpan<byte> s, out DataError e) => ControllerCapabilities.TryRead(s, out _, out e)),
        ("VS", 4, (ReadOnlySpan<byte> s, out DataError e) => NvmeVersion.TryRead(s, out _, out e)),
        ("CC", 4, (ReadOnlySpan<byte> s, out DataError e) => ControllerConfiguration.TryRead(s, out _, out e)),
        ("CSTS", 4, (ReadOnlySpan<byte> s, out DataError e) => ControllerStatus.TryRead(s, out _, out e)),
        ("Identify Controller", 4096, (ReadOnlySpan<byte> s, out DataError e) => IdentifyController.TryRead(s, out _, out e)),
        ("Identify Namespace", 4096, (ReadOnlySpan<byte> s, out DataError e) => IdentifyNamespace.TryRead(s, out _, out e)),
        ("Active Namespace List", 4096, (ReadOnlySpan<byte> s, out DataError e) => ActiveNamespaceList.TryRead(s, new uint[1024], out _, out e)),
        ("Changed Namespace List", 4096, (ReadOnlySpan<byte> s, out DataError e) => ChangedNamespaceList.TryRead(s, new uint[1024], out _, out _, out e)),
        ("discovery log header", 1024, (ReadOnlySpan<byte> s, out DataError e) => DiscoveryLogHeader.TryRead(s, out _, out e)),
        ("discovery log entry", 1024, (ReadOnlySpan<byte> s, out DataError e) => DiscoveryLogEntry.TryRead(s, out _, out e)),
        ("ANA log header", 16, (ReadOnlySpan<byte> s, out DataError e) => AnaLogHeader.TryRead(s, out _, out e)),
        ("ANA group descriptor", 32, (ReadOnlySpan<byte> s, out DataError e) => AnaGroupDescriptor.TryRead(s, out _, out e)),
        ("error information entry", 64, (ReadOnlySpan<byte> s, out DataError e) => ErrorInformationEntry.TryRead(s, out _, out e)),
        ("Connect data", 1024, (ReadOnlySpan<byte> s, out DataError e) => ConnectData.TryRead(s, out _, out e)),
    ];

    public static TheoryData<string> FixedSizeNames => [.. FixedSize.Select(d => d.Name)];

    [Theory]
    [MemberData(nameof(FixedSizeNames))]
    public void Short_buffers_are_rejected_naming_both_lengths(string name)
    {
        var (_, size, decode) = FixedSize.Single(d => d.Name == name);
        foreach (int length in new[] { 0, 1, size - 1 })
        {
            Assert.False(decode(new byte[length], out var error));
            Assert.Equal(DataErrorCode.SourceTooShort, error.Code);
            Assert.Equal(name, error.Field);
            Assert.Equal(((ulong)length, (ulong)size), (error.Value, error.Limit));
            Assert.Contains($"{length} bytes present, {size} needed", error.Describe(), StringComparison.Ordinal);
        }

        // All zeros of the right size decode (empty NQNs are NUL terminated, an all-zero namespace is inactive).
        Assert.True(decode(new byte[size], out var none));
        Assert.False(none.IsError);
    }

    [Fact]
    public void Discovery_log_with_NUMREC_beyond_the_data_is_truncated_naming_both_counts()
    {
        var page = new byte[DiscoveryLogPage.GetSize(3)];
        DiscoveryLogPage.WriteTo(6, [default, default, default], page);
        BinaryPrimitives.WriteUInt64LittleEndian(page.AsSpan(8), 5);

        Assert.False(DiscoveryLogPage.TryRead(page, out var log, out var error));
        Assert.Null(log);
        Assert.Equal(DataErrorCode.DiscoveryLogTruncated, error.Code);
        Assert.Equal((5UL, 3UL), (error.Value, error.Limit));
        Assert.Equal("discovery log NUMREC=5 but only 3 records fit in the data", error.Describe());
        var ex = Assert.Throws<NvmeDataException>(() => DiscoveryLogPage.Read(page));
        Assert.Equal(error, ex.Error);

        Assert.False(DiscoveryLogPage.TryReadEntry(page, 0, out _, out error));
        Assert.Equal(DataErrorCode.DiscoveryLogTruncated, error.Code);
    }

    [Fact]
    public void Discovery_log_claiming_2_to_the_40_records_allocates_nothing()
    {
        var header = new byte[DiscoveryLogHeader.Size + DiscoveryLogEntry.Size];
        new DiscoveryLogHeader(1, 1UL << 40).WriteTo(header);
        DiscoveryLogPage.TryRead(header, out _, out _); // warm up (JIT)

        long before = GC.GetAllocatedBytesForCurrentThread();
        bool ok = DiscoveryLogPage.TryRead(header, out var log, out var error);
        bool entryOk = DiscoveryLogPage.TryReadEntry(header, 0, out _, out _);
        bool lengthOk = DiscoveryLogHeader.Read(header).TryGetPageLength(out int length, out var lengthError);
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        Assert.False(ok);
        Assert.False(entryOk);
        Assert.Null(log);
        Assert.True(allocated < 1024, $"allocated {allocated} bytes");
        Assert.Equal(DataErrorCode.DiscoveryLogTruncated, error.Code);
        Assert.Equal((1UL << 40, 1UL), (error.Value, error.Limit));
        Assert.False(lengthOk);
        Assert.Equal(0, length);
        Assert.Equal(DataErrorCode.DiscoveryLogTooManyRecords, lengthError.Code);
        Assert.Contains("NUMREC=1099511627776", lengthError.Describe(), StringComparison.Ordinal);
    }

    [Fact]
    public void Discovery_entry_index_outside_the_records_is_refused()
    {
        var page = new byte[DiscoveryLogPage.GetSize(2)];
        DiscoveryLogPage.WriteTo(1, [default, default], page);
        Assert.False(DiscoveryLogPage.TryReadEntry(page, 2, out _, out var error));
        Assert.Equal(DataErrorCode.RecordIndexOutOfRange, error.Code);
        Assert.False(DiscoveryLogPage.TryReadEntry(page, -1, out _, out error));
        Assert.Equal(DataErrorCode.RecordIndexOutOfRange, error.Code);
    }

    [Theory]
    [InlineData(NamespaceIdType.Eui64, 16, 8)]
    [InlineData(NamespaceIdType.Nguid, 8, 16)]
    [InlineData(NamespaceIdType.Uuid, 0, 16)]
    [InlineData(NamespaceIdType.CommandSet, 4, 1)]
    public void Descriptor_with_a_NIDL_not_matching_its_type_is_refused(NamespaceIdType type, int nidl, int expected)
    {
        var data = new byte[NamespaceIdentifiers.Size];
        data[0] = 0x80; // a vendor type, skipped by its NIDL of 4: the next descriptor starts at 8
        data[1] = 4;
        data[8] = (byte)type;
        data[9] = (byte)nidl;

        Assert.False(NamespaceIdentifiers.TryRead(data, out _, out var error));
        Assert.Equal(DataErrorCode.DescriptorLengthMismatch, error.Code);
        Assert.Equal(((ulong)nidl, (ulong)expected), (error.Value, error.Limit));
        Assert.Contains($"NIDT {(int)type}", error.Field, StringComparison.Ordinal);
        Assert.Contains($"={nidl} at offset 8, expected {expected}", error.Describe(), StringComparison.Ordinal);
    }

    [Fact]
    public void Descriptor_running_past_4096_bytes_is_refused()
    {
        var data = new byte[NamespaceIdentifiers.Size];
        int offset = 0;
        while (offset < 4072)
        {
            data[offset] = 0x80; // unknown type: skipped by its NIDL
            data[offset + 1] = 20;
            offset += 24;
        }

        data[offset] = (byte)NamespaceIdType.Nguid;
        data[offset + 1] = 16;
        Assert.False(NamespaceIdentifiers.TryRead(data, out _, out var error));
        Assert.Equal(DataErrorCode.DescriptorOverrun, error.Code);
        Assert.Equal(offset, error.Offset);
        Assert.Equal(16UL, error.Value);

        data[offset] = 0x90;
        data[offset + 1] = 255;
        Assert.False(NamespaceIdentifiers.TryRead(data, out _, out error));
        Assert.Equal(DataErrorCode.DescriptorOverrun, error.Code);
        Assert.Equal(255UL, error.Value);
    }

    [Fact]
    public void Duplicate_descriptor_is_refused_and_a_clean_list_decodes()
    {
        var ids = new NamespaceIdentifiers { Eui64 = 0x0011223344556677, CommandSet = 0 };
        var data = new byte[NamespaceIdentifiers.Size];
        ids.WriteTo(data);
        Assert.Equal(new byte[] { 1, 8, 0, 0, 0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 4, 1, 0, 0, 0 }, data[..17]);
        Assert.Equal(ids, NamespaceIdentifiers.Read(data));

        data[12] = 1;
        data[13] = 8;
        Assert.False(NamespaceIdentifiers.TryRead(data, out _, out var error));
        Assert.Equal(DataErrorCode.DuplicateDescriptor, error.Code);
        Assert.Equal(12, error.Offset);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(8)]
    [InlineData(17)]
    [InlineData(255)]
    public void Active_namespace_with_LBADS_outside_9_to_16_is_refused_naming_it(byte lbads)
    {
        var data = ActiveNamespace(nlbaf: 1, flbas: 1);
        data[IdentifyNamespace.LbaFormatsOffset + 4 + 2] = lbads;
        Assert.False(IdentifyNamespace.TryRead(data, out _, out var error));
        Assert.Equal(DataErrorCode.LbaDataSizeOutOfRange, error.Code);
        Assert.Equal(((ulong)lbads, 1UL), (error.Value, error.Limit));
        Assert.Equal($"LBADS={lbads} of LBA format 1 is out of range 9..16", error.Describe());
        Assert.Throws<NvmeDataException>(() => IdentifyNamespace.Read(data));
    }

    [Fact]
    public void Identify_namespace_with_bad_NLBAF_or_FLBAS_is_refused()
    {
        Assert.False(IdentifyNamespace.TryRead(ActiveNamespace(nlbaf: 64, flbas: 0), out _, out var error));
        Assert.Equal(DataErrorCode.LbaFormatCountOutOfRange, error.Code);
        Assert.Equal(64UL, error.Value);

        Assert.False(IdentifyNamespace.TryRead(ActiveNamespace(nlbaf: 2, flbas: 5), out _, out error));
        Assert.Equal(DataErrorCode.LbaFormatIndexOutOfRange, error.Code);
        Assert.Equal((5UL, 2UL), (error.Value, error.Limit));
    }

    [Fact]
    public void Inactive_namespace_decodes_but_has_no_block_size()
    {
        var ns = IdentifyNamespace.Read(new byte[IdentifyNamespace.Size]);
        Assert.False(ns.IsActive);
        Assert.False(ns.TryGetBlockSize(out _, out var error));
        Assert.Equal(DataErrorCode.LbaDataSizeOutOfRange, error.Code);
        Assert.Throws<NvmeDataException>(() => ns.BlockSize);
    }

    [Fact]
    public void Ana_log_with_more_groups_or_nsids_than_the_data_holds_is_truncated_without_allocating()
    {
        var page = new byte[AnaLogHeader.Size + AnaGroupDescriptor.HeaderSize + 8];
        new AnaLogHeader(1, ushort.MaxValue).WriteTo(page);
        Assert.False(AnaLogPage.TryRead(page, out _, out var error));
        Assert.Equal(DataErrorCode.AnaLogTruncated, error.Code);
        Assert.Equal("NGRPS", error.Field);
        Assert.Equal(65535UL, error.Value);

        new AnaLogHeader(1, 1).WriteTo(page);
        new AnaGroupDescriptor(1, uint.MaxValue, 1, AnaState.Optimized).WriteTo(page.AsSpan(AnaLogHeader.Size));
        AnaLogPage.TryRead(page, out _, out _);
        long before = GC.GetAllocatedBytesForCurrentThread();
        bool ok = AnaLogPage.TryRead(page, out _, out error);
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.False(ok);
        Assert.True(allocated < 1024, $"allocated {allocated} bytes");
        Assert.Equal(DataErrorCode.AnaLogTruncated, error.Code);
        Assert.Equal(("NNSID", (ulong)uint.MaxValue), (error.Field, error.Value));

        BinaryPrimitives.WriteUInt32LittleEndian(page.AsSpan(AnaLogHeader.Size + 4), 2);
        var log = AnaLogPage.Read(page);
        Assert.Equal([0u, 0u], log.Groups[0].NamespaceIds);
    }

    [Fact]
    public void Namespace_list_larger_than_the_callers_span_is_refused()
    {
        var data = new byte[ActiveNamespaceList.Size];
        ActiveNamespaceList.WriteTo([1, 2, 3], data);
        Assert.False(ActiveNamespaceList.TryRead(data, new uint[2], out int count, out var error));
        Assert.Equal(0, count);
        Assert.Equal(DataErrorCode.DestinationTooShort, error.Code);
        Assert.Equal((2UL, 3UL), (error.Value, error.Limit));
        Assert.Throws<NvmeDataException>(() => ActiveNamespaceList.WriteTo([1, 0], data));
        Assert.Throws<NvmeDataException>(() => ActiveNamespaceList.WriteTo(new uint[1025], data));
    }

    [Fact]
    public void Connect_data_with_an_unterminated_NQN_is_refused_naming_the_field()
    {
        var data = new byte[ConnectData.Size];
        data.AsSpan(512, 256).Fill((byte)'a');
        Assert.False(ConnectData.TryRead(data, out _, out var error));
        Assert.Equal(DataErrorCode.NqnNotTerminated, error.Code);
        Assert.Equal("HOSTNQN", error.Field);
        data.AsSpan(256, 256).Fill((byte)'a');
        Assert.False(ConnectData.TryRead(data, out _, out error));
        Assert.Equal("SUBNQN", error.Field);
    }

    [Theory]
    [InlineData("", DataErrorCode.NqnEmpty)]
    [InlineData("nqn.bad\u0001name", DataErrorCode.NqnNotPrintable)]
    [InlineData("iqn.2014-08.org.example", DataErrorCode.NqnBadPrefix)]
    public void Bad_nqns_are_refused_with_a_named_error(string nqn, DataErrorCode code)
    {
        Assert.False(Nqn.TryValidate(nqn, out var error, "HOSTNQN"));
        Assert.Equal(code, error.Code);
        Assert.StartsWith("HOSTNQN", error.Describe(), StringComparison.Ordinal);
    }

    [Fact]
    public void Nqn_longer_than_223_bytes_is_refused()
    {
        Assert.False(Nqn.TryValidate("nqn." + new string('a', 220), out var error));
        Assert.Equal(DataErrorCode.NqnTooLong, error.Code);
        Assert.Equal((224UL, 223UL), (error.Value, error.Limit));
        Assert.False(Nqn.TryValidate("nqn." + new string('é', 110), out error));
        Assert.Equal(224UL, error.Value);
        Assert.Throws<NvmeDataException>(() => new ConnectData { SubsystemNqn = "nqn." + new string('a', 220), HostNqn = Nqn.Discovery }.WriteTo(new byte[1024]));
    }

    [Fact]
    public void Encoders_refuse_text_that_does_not_fit()
    {
        var buffer = new byte[4096];
        var ex = Assert.Throws<NvmeDataException>(() => new IdentifyController { SerialNumber = new string('x', 21) }.WriteTo(buffer));
        Assert.Equal(DataErrorCode.TextTooLong, ex.Error.Code);
        Assert.Equal("SN is 21 characters long, the field holds 20", ex.Message);
        ex = Assert.Throws<NvmeDataException>(() => new IdentifyController { ModelNumber = "caf\u00e9" }.WriteTo(buffer));
        Assert.Equal(DataErrorCode.TextNotPrintable, ex.Error.Code);
        Assert.Throws<NvmeDataException>(() => new IdentifyController { IeeeOui = 0x1000000 }.WriteTo(buffer));
        Assert.Throws<NvmeDataException>(() => new DiscoveryLogEntry { TransportServiceId = new string('1', 33) }.WriteTo(buffer));
        Assert.Throws<ArgumentException>(() => new IdentifyController().WriteTo(new byte[4095]));
        Assert.Throws<ArgumentException>(() => DiscoveryLogPage.WriteTo(1, [default], new byte[2047]));
    }

    [Property(MaxTest = 300)]
    public bool Decoders_never_throw_on_random_bytes(byte[] data, int index)
    {
        var page = data.Length >= 1024 ? data : [.. data, .. new byte[1024 + (data.Length * 7 % 3000)]];
        foreach (var (_, _, decode) in FixedSize)
        {
            decode(data, out _);
            decode(page, out _);
        }

        NamespaceIdentifiers.TryRead(data, out _, out _);
        NamespaceIdentifiers.TryRead(page, out _, out _);
        DiscoveryLogPage.TryRead(page, out _, out _);
        DiscoveryLogPage.TryReadEntry(page, index, out _, out _);
        AnaLogPage.TryRead(data, out _, out _);
        ErrorInformationLog.TryReadEntry(data, index, out _, out _);
        if (AnaLogReader.TryCreate(data, out var reader, out _))
        {
            while (reader.TryReadNext(out _, out _, out _))
            {
            }
        }

        return true;
    }

    private static byte[] ActiveNamespace(byte nlbaf, byte flbas)
    {
        var data = new byte[IdentifyNamespace.Size];
        BinaryPrimitives.WriteUInt64LittleEndian(data, 1000);
        data[25] = nlbaf;
        data[26] = flbas;
        for (int i = 0; i < 64; i++)
        {
            data[IdentifyNamespace.LbaFormatsOffset + (i * 4) + 2] = 9;
        }

        return data;
    }
}
