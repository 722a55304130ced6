using System.Buffers.Binary;
using System.Text;
using ActorNvme.Protocol.Nvme;
using ActorNvme.Protocol.Tcp;
using ActorNvme.RealPeer.Tests.Harness;
using ActorNvme.Transport;
using ActorNvme.Transport.Tcp;
using Xunit;

namespace ActorNvme.RealPeer.Tests;

/// <summary>Our queue pairs against the Linux kernel target: admin, discovery and I/O.</summary>
public sealed class QueuePairTests
{
    private const string Subsystem0 = "nqn.2016-06.io.spdk:cnode0";
    private const string Subsystem1 = "nqn.2016-06.io.spdk:cnode1";

    // Identify Controller and discovery log offsets (NVMe base and NVMe-oF specifications).
    private const int IdentifyControllerId = 78;
    private const int IdentifyIoccsz = 1792;
    private const int IdentifySubsystemNqn = 768;
    private const int DiscoveryEntrySize = 1024;
    private const byte DiscoveryLogPage = 0x70;

    private static TransportAddress Port(int port) => new(LinuxTarget.Current.Address.ToString(), port);

    [RealPeerFact]
    public async Task Admin_queue_to_the_discovery_controller_reads_the_full_discovery_log()
    {
        await using var discovery = await AdminSession.ConnectAsync(Port(LinuxTarget.DiscoveryPort), FabricsConnectParameters.DiscoveryNqn);

        var identify = await discovery.IdentifyAsync(1);
        Assert.Equal(FabricsConnectParameters.DiscoveryNqn, Text(identify.AsSpan(IdentifySubsystemNqn, 256)));

        var log = await ReadDiscoveryLogAsync(discovery);
        ulong records = BinaryPrimitives.ReadUInt64LittleEndian(log.AsSpan(8));
        Assert.Equal((int)(1 + records) * DiscoveryEntrySize, log.Length);
        var entries = Enumerable.Range(1, (int)records).Select(i => log.AsMemory(i * DiscoveryEntrySize, DiscoveryEntrySize)).ToArray();
        // Entry: TRTYPE 0, ADRFAM 1, SUBTYPE 2, TRSVCID 32..63, SUBNQN 256..511, TRADDR 512..767.
        var nvmEntries = entries.Where(e => e.Span[2] == 2).ToArray(); // SUBTYPE 2: NVM subsystem
        Assert.Equal([Subsystem0, Subsystem1], nvmEntries.Select(e => Text(e.Span.Slice(256, 256))).Order());
        Assert.All(nvmEntries, e =>
        {
            Assert.Equal(3, e.Span[0]); // TRTYPE: TCP
            Assert.Equal(1, e.Span[1]); // ADRFAM: IPv4
            Assert.Equal(LinuxTarget.DiscoveryPort.ToString(System.Globalization.CultureInfo.InvariantCulture), Text(e.Span.Slice(32, 32)));
            Assert.Equal(LinuxTarget.Current.Address.ToString(), Text(e.Span.Slice(512, 256))); // TRADDR
        });
    }

    [RealPeerFact]
    public async Task Admin_queue_to_a_subsystem_identifies_controller_and_namespace()
    {
        await using var admin = await AdminSession.ConnectAsync(Port(LinuxTarget.IoPort), Subsystem0);

        var controller = await admin.IdentifyAsync(1);
        Assert.Equal(Subsystem0, Text(controller.AsSpan(IdentifySubsystemNqn, 256)));
        Assert.Equal(admin.ControllerId, BinaryPrimitives.ReadUInt16LittleEndian(controller.AsSpan(IdentifyControllerId)));
        Assert.True(BinaryPrimitives.ReadUInt32LittleEndian(controller.AsSpan(IdentifyIoccsz)) >= 4, "IOCCSZ must cover at least the 64-byte command");

        var (blocks, blockSize) = await NamespaceGeometryAsync(admin);
        Assert.Equal(512, blockSize);
        Assert.Equal(64L * 1024 * 1024, (long)blocks * blockSize);
    }

    [RealPeerFact]
    public Task Io_queue_writes_1_MiB_in_mixed_sizes_and_reads_it_back_identical() =>
        WriteAndReadBackAsync(NvmeTransports.ForIoQueues(), DigestOptions.None, firstLba: 0, seed: 11);

    [RealPeerFact]
    public Task Io_queue_with_header_and_data_digests_writes_1_MiB_and_reads_it_back_identical() =>
        WriteAndReadBackAsync(NvmeTransports.ForIoQueues(), DigestOptions.Both, firstLba: 8192, seed: 12);

    [RealPeerFact]
    public Task Io_queue_over_pipelines_writes_1_MiB_in_mixed_sizes_and_reads_it_back_identical() =>
        WriteAndReadBackAsync(new TcpTransport(), DigestOptions.None, firstLba: 16384, seed: 13);

    [RealPeerFact]
    public Task Io_queue_over_pipelines_with_header_and_data_digests_writes_1_MiB_and_reads_it_back_identical() =>
        WriteAndReadBackAsync(new TcpTransport(), DigestOptions.Both, firstLba: 24576, seed: 14);

    private static async Task WriteAndReadBackAsync(INvmeTransport transport, DigestOptions digests, ulong firstLba, int seed)
    {
        await using var admin = await AdminSession.ConnectAsync(Port(LinuxTarget.IoPort), Subsystem1, digests);
        Assert.Equal(digests, admin.Queue.Negotiated.Digests);
        var queues = await admin.RunAsync(AdminCommands.SetNumberOfQueues(1, 1));
        AdminSession.EnsureSuccess(queues, "Set Features (Number of Queues)", CommandSet.Admin);
        var controller = await admin.IdentifyAsync(1);
        int inCapsule = QueuePairOptions.InCapsuleDataSizeFromIoccsz(BinaryPrimitives.ReadUInt32LittleEndian(controller.AsSpan(IdentifyIoccsz)));
        var (_, blockSize) = await NamespaceGeometryAsync(admin);

        var options = QueuePairOptions.Io with { Digests = digests, QueueSize = 32, InCapsuleDataSize = inCapsule };
        var connect = new FabricsConnectParameters(AdminSession.HostId, Subsystem1, AdminSession.HostNqn) { ControllerId = admin.ControllerId };
        await using var io = await IoQueuePair.ConnectAsync(transport, Port(LinuxTarget.IoPort), 1, options, connect).WaitAsync(AdminSession.Deadline);
        Assert.Equal(digests, io.Negotiated.Digests);

        var random = new Random(seed);
        var data = new byte[1024 * 1024];
        random.NextBytes(data);

        // Writes of 512 B..128 KiB: the small ones travel in the capsule, the large ones on R2T.
        var writes = Split(random, data.Length, blockSize);
        Assert.Contains(writes, w => w.Length <= inCapsule);
        Assert.Contains(writes, w => w.Length > inCapsule);
        await RunConcurrentlyAsync(writes, 8, w =>
            io.WriteAsync(1, firstLba + (ulong)(w.Offset / blockSize), w.Length / blockSize, data.AsMemory(w.Offset, w.Length)));

        // Read back in a different split, so no read lines up with the write that wrote it.
        var readBack = new byte[data.Length];
        await RunConcurrentlyAsync(Split(random, data.Length, blockSize), 8, r =>
            io.ReadAsync(1, firstLba + (ulong)(r.Offset / blockSize), r.Length / blockSize, readBack.AsMemory(r.Offset, r.Length)));

        Assert.True(data.AsSpan().SequenceEqual(readBack), $"the data read back differs from what was written, first at byte {FirstDifference(data, readBack)}");
        Assert.False(io.IsClosed);
    }

    private static async Task RunConcurrentlyAsync(List<(int Offset, int Length)> pieces, int depth, Func<(int Offset, int Length), ValueTask<IoResult>> submit)
    {
        using var gate = new SemaphoreSlim(depth);
        var tasks = pieces.Select(async piece =>
        {
            await gate.WaitAsync();
            try
            {
                var result = await submit(piece);
                Assert.True(result.IsSuccess, $"{piece.Length} bytes at {piece.Offset}: {result}");
                Assert.Equal(piece.Length, result.BytesTransferred);
            }
            finally
            {
                gate.Release();
            }
        }).ToArray();
        await Task.WhenAll(tasks).WaitAsync(TimeSpan.FromMinutes(2));
    }

    private static List<(int Offset, int Length)> Split(Random random, int total, int blockSize)
    {
        var pieces = new List<(int, int)>();
        int offset = 0;
        while (offset < total)
        {
            int blocks = random.Next(1, (128 * 1024 / blockSize) + 1);
            int length = Math.Min(blocks * blockSize, total - offset);
            pieces.Add((offset, length));
            offset += length;
        }

        return pieces;
    }

    /// <summary>Reads the header, then the whole log; reads again while GENCTR changes in between.</summary>
    private static async Task<byte[]> ReadDiscoveryLogAsync(AdminSession discovery)
    {
        for (int attempt = 0; attempt < 10; attempt++)
        {
            var header = new byte[DiscoveryEntrySize];
            AdminSession.EnsureSuccess(await discovery.ReadAsync(AdminCommands.GetLogPage(DiscoveryLogPage, DiscoveryEntrySize, namespaceId: 0), header), "discovery log header", CommandSet.Admin);
            ulong generation = BinaryPrimitives.ReadUInt64LittleEndian(header);
            ulong records = BinaryPrimitives.ReadUInt64LittleEndian(header.AsSpan(8));
            Assert.InRange(records, 0UL, 1000UL);

            var log = new byte[(int)(1 + records) * DiscoveryEntrySize];
            AdminSession.EnsureSuccess(await discovery.ReadAsync(AdminCommands.GetLogPage(DiscoveryLogPage, (uint)log.Length, namespaceId: 0), log), "discovery log", CommandSet.Admin);
            if (BinaryPrimitives.ReadUInt64LittleEndian(log) == generation && BinaryPrimitives.ReadUInt64LittleEndian(log.AsSpan(8)) == records)
            {
                return log;
            }
        }

        throw new InvalidOperationException("the discovery log kept changing (GENCTR) across 10 reads");
    }

    private static async Task<(ulong Blocks, int BlockSize)> NamespaceGeometryAsync(AdminSession admin)
    {
        var identify = await admin.IdentifyAsync(0, namespaceId: 1);
        ulong blocks = BinaryPrimitives.ReadUInt64LittleEndian(identify);
        int format = identify[26] & 0x0F;
        int blockSize = 1 << identify[128 + (4 * format) + 2];
        return (blocks, blockSize);
    }

    private static string Text(ReadOnlySpan<byte> field) => Encoding.ASCII.GetString(field).TrimEnd('\0', ' ');

    private static int FirstDifference(byte[] a, byte[] b) => a.AsSpan().CommonPrefixLength(b);
}
