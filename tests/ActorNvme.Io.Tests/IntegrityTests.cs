using ActorNvme.Io;
using ActorNvme.Actors.Subsystem;
using ActorNvme.Target;
using Akka.Actor;

namespace ActorNvme.Io.Tests;

/// <summary>
/// Write, then read back and compare, through <see cref="BlockDevice"/> against our Target over TCP:
/// sizes from one block to 1 MiB, so writes go in the capsule (up to 8 KiB here), on R2T in one and
/// in several H2CData PDUs (MAXH2CDATA 16 KiB here), reads arrive in several C2HData PDUs, and I/O
/// larger than MDTS (256 KiB here) is split into several commands; from many threads over several
/// queues at once.
/// </summary>
public sealed class IntegrityTests
{
    private static readonly TargetOptions Limits = new()
    {
        InCapsuleDataSize = 8 * 1024,
        MaxH2CData = 16 * 1024,
        MaxC2HData = 32 * 1024,
        MaxDataTransferSize = 256 * 1024,
        MaxIoQueueSize = 32,
        MaxIoQueues = 4,
    };

    [Theory]
    [InlineData(512, "none")]
    [InlineData(4096, "both")]
    public async Task Writes_of_512_B_to_1_MiB_from_many_threads_over_three_queues_read_back_identical(int blockSize, string digests)
    {
        var settings = IoRig.FastSettings() with { IoQueues = 3, Digests = ActorNvme.Actors.Settings.NvmeHostSettings.ParseDigests(digests) };
        await using var rig = await IoRig.StartAsync(settings, Limits, blockSize);
        var device = rig.Device;
        Assert.Equal(blockSize, device.BlockSize);
        Assert.Equal(3, rig.TargetSubsystem.GetControllers().Single().IoQueues);

        var sizes = new[] { 512, 4096, 8192, 8192 + 512, 16 * 1024, (16 * 1024) + 512, 40 * 1024, 128 * 1024, 256 * 1024, (256 * 1024) + 4096, 700 * 1024, 1024 * 1024 }
            .Where(s => s % blockSize == 0)
            .ToArray();

        // Each piece its own region; three rounds of every size, written concurrently.
        var pieces = new List<(ulong Lba, byte[] Data)>();
        var random = new Random(blockSize);
        ulong lba = 0;
        for (int round = 0; round < 3; round++)
        {
            foreach (int size in sizes)
            {
                var data = new byte[size];
                random.NextBytes(data);
                pieces.Add((lba, data));
                lba += (ulong)(size / blockSize);
            }
        }

        Assert.True(lba < device.BlockCount);
        await Task.WhenAll(pieces.Select(p => Task.Run(async () => await device.WriteAsync(p.Lba, p.Data)))).WaitAsync(IoRig.Deadline);
        await device.FlushAsync().AsTask().WaitAsync(IoRig.Deadline);

        // Read back the same pieces concurrently, then the whole area in a different split.
        await Task.WhenAll(pieces.Select(p => Task.Run(async () =>
        {
            var back = new byte[p.Data.Length];
            await device.ReadAsync(p.Lba, back);
            AssertSame(p.Data, back, $"{p.Data.Length} bytes at LBA {p.Lba}");
        }))).WaitAsync(IoRig.Deadline);

        var expected = pieces.SelectMany(p => p.Data).ToArray();
        var whole = new byte[expected.Length];
        int offset = 0;
        var reads = new List<Task>();
        while (offset < whole.Length)
        {
            int length = Math.Min(random.Next(1, 600) * blockSize, whole.Length - offset);
            int at = offset;
            reads.Add(Task.Run(async () => await device.ReadAsync((ulong)(at / blockSize), whole.AsMemory(at, length))));
            offset += length;
        }

        await Task.WhenAll(reads).WaitAsync(IoRig.Deadline);
        AssertSame(expected, whole, "the whole area read back in another split");
    }

    [Fact]
    public async Task Write_zeroes_and_deallocate_leave_zeroes_and_the_neighbours_intact()
    {
        await using var rig = await IoRig.StartAsync(targetOptions: Limits);
        var device = rig.Device;
        var data = new byte[256 * 1024];
        new Random(7).NextBytes(data);
        await device.WriteAsync(1000, data);

        // 64..127 zeroed, 200..299 deallocated (a RAM namespace reads deallocated blocks as zeroes).
        await device.WriteZeroesAsync(1064, 64);
        await device.DeallocateAsync(1200, 100);

        var back = new byte[data.Length];
        await device.ReadAsync(1000, back);
        var expected = (byte[])data.Clone();
        Array.Clear(expected, 64 * 512, 64 * 512);
        Array.Clear(expected, 200 * 512, 100 * 512);
        AssertSame(expected, back, "after write zeroes and deallocate");
    }

    [Fact]
    public async Task More_io_than_the_queues_hold_waits_for_free_entries_and_completes()
    {
        // Two queues of 4 entries (3 commands each) and 200 concurrent writes.
        var settings = IoRig.FastSettings() with { IoQueues = 2, IoQueueSize = 4 };
        await using var rig = await IoRig.StartAsync(settings, Limits);
        var device = rig.Device;
        var data = Enumerable.Range(0, 200).Select(i => Enumerable.Repeat((byte)i, 4096).ToArray()).ToArray();
        await Task.WhenAll(data.Select((d, i) => device.WriteAsync((ulong)(i * 8), d).AsTask())).WaitAsync(IoRig.Deadline);
        var back = new byte[4096];
        for (int i = 0; i < data.Length; i += 37)
        {
            await device.ReadAsync((ulong)(i * 8), back);
            AssertSame(data[i], back, $"write {i}");
        }

        Assert.Equal(0, device.HeldCount);
    }

    [Fact]
    public async Task The_device_is_obtainable_by_name_from_the_subsystem_with_its_identifiers()
    {
        await using var rig = await IoRig.StartAsync();
        var answer = await rig.Subsystem.Ask<Subsystem.BlockDeviceResult>(new Subsystem.GetBlockDevice("nvme0n1"), IoRig.Deadline);
        Assert.Same(rig.Device, answer.Device);
        Assert.Equal("nvme0n1", rig.Device.Name);
        Assert.Equal(IoRig.Nqn, rig.Device.SubsystemNqn);
        Assert.Equal(rig.TargetSubsystem.Namespaces.Single().Uuid, rig.Device.Uuid);
        Assert.NotEqual(UInt128.Zero, rig.Device.Nguid);
        Assert.Equal((ulong)(32 * 1024 * 1024 / 512), rig.Device.BlockCount);

        var missing = await rig.Subsystem.Ask<Subsystem.BlockDeviceResult>(new Subsystem.GetBlockDevice("nvme0n9"), IoRig.Deadline);
        Assert.Null(missing.Device);
        Assert.Contains("nvme0n1", missing.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Buffers_that_are_not_whole_blocks_or_leave_the_namespace_are_refused_naming_the_value()
    {
        await using var rig = await IoRig.StartAsync();
        var device = rig.Device;
        var partial = Assert.Throws<ArgumentException>(() => { _ = device.ReadAsync(0, new byte[1000]); });
        Assert.Equal("destination", partial.ParamName);
        Assert.Contains("1000 bytes", partial.Message, StringComparison.Ordinal);

        var empty = Assert.Throws<ArgumentException>(() => { _ = device.WriteAsync(0, ReadOnlyMemory<byte>.Empty); });
        Assert.Equal("source", empty.ParamName);

        var beyond = Assert.Throws<ArgumentOutOfRangeException>(() => { _ = device.ReadAsync(device.BlockCount, new byte[512]); });
        Assert.Equal("lba", beyond.ParamName);
        Assert.Contains("beyond the end of nvme0n1", beyond.Message, StringComparison.Ordinal);

        var straddling = Assert.Throws<ArgumentOutOfRangeException>(() => { _ = device.WriteAsync(device.BlockCount - 1, new byte[1024]); });
        Assert.Equal("source", straddling.ParamName);

        var zero = Assert.Throws<ArgumentOutOfRangeException>(() => { _ = device.WriteZeroesAsync(0, 0); });
        Assert.Equal("blocks", zero.ParamName);
    }

    internal static void AssertSame(byte[] expected, byte[] actual, string what)
    {
        if (!expected.AsSpan().SequenceEqual(actual))
        {
            int at = 0;
            while (at < expected.Length && expected[at] == actual[at])
            {
                at++;
            }

            Assert.Fail($"{what}: the data read back differs from what was written, first at byte {at}");
        }
    }
}
