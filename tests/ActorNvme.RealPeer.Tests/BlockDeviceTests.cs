using System.Collections.Concurrent;
using Akka.Actor;
using Akka.Configuration;
using ActorNvme.Actors.Connection;
using ActorNvme.Io;
using ActorNvme.Actors.Settings;
using ActorNvme.Actors.Subsystem;
using ActorNvme.Protocol.Tcp;
using ActorNvme.RealPeer.Tests.Harness;
using ActorNvme.Transport;
using Xunit;

namespace ActorNvme.RealPeer.Tests;

/// <summary>
/// The runtime's block device against the Linux kernel target: the subsystem and controller actors
/// bring up the admin queue and two I/O queues, and the test writes 512 B..1 MiB pieces from many
/// threads through <see cref="BlockDevice"/>, then reads them back (also in another split) and compares.
/// </summary>
public sealed class BlockDeviceTests
{
    private const string Subsystem0 = "nqn.2016-06.io.spdk:cnode0";
    private static readonly TimeSpan Deadline = TimeSpan.FromMinutes(2);

    [RealPeerFact]
    public Task Block_device_over_two_queues_writes_512_B_to_1_MiB_and_reads_it_back_identical() =>
        WriteAndReadBackAsync(DigestOptions.None, firstLba: 32768, seed: 21);

    [RealPeerFact]
    public Task Block_device_with_header_and_data_digests_writes_512_B_to_1_MiB_and_reads_it_back_identical() =>
        WriteAndReadBackAsync(DigestOptions.Both, firstLba: 65536, seed: 22);

    private static async Task WriteAndReadBackAsync(DigestOptions digests, ulong firstLba, int seed)
    {
        var settings = NvmeHostSettings.Default with { IoQueues = 2, Digests = digests };
        using var system = ActorSystem.Create($"realpeer-{seed}", ConfigurationFactory.ParseString("akka.loglevel = WARNING"));
        try
        {
            var device = await AttachAsync(system, settings);
            Assert.Equal(512, device.BlockSize);
            Assert.Equal(64UL * 1024 * 1024 / 512, device.BlockCount);
            var path = Assert.Single(device.Paths);
            Assert.Equal(2, path.Value.Queues.Count);
            Assert.All(path.Value.Queues, q => Assert.Equal(digests, q.Negotiated.Digests));

            var random = new Random(seed);
            int[] sizes = [512, 4096, 8192, 8704, 16384, 16896, 40960, 131072, 262144, 266240, 716800, 1048576];
            var pieces = new List<(ulong Lba, byte[] Data)>();
            ulong lba = firstLba;
            foreach (int size in sizes.Concat(sizes.Reverse()))
            {
                var data = new byte[size];
                random.NextBytes(data);
                pieces.Add((lba, data));
                lba += (ulong)(size / 512);
            }

            Assert.True(lba < device.BlockCount);
            await Task.WhenAll(pieces.Select(p => Task.Run(async () => await device.WriteAsync(p.Lba, p.Data)))).WaitAsync(Deadline);
            await device.FlushAsync().AsTask().WaitAsync(Deadline);

            await Task.WhenAll(pieces.Select(p => Task.Run(async () =>
            {
                var back = new byte[p.Data.Length];
                await device.ReadAsync(p.Lba, back);
                Assert.True(p.Data.AsSpan().SequenceEqual(back), $"{p.Data.Length} bytes at LBA {p.Lba} read back differently");
            }))).WaitAsync(Deadline);

            // The whole area again, in a split that lines up with no write.
            var expected = pieces.SelectMany(p => p.Data).ToArray();
            var whole = new byte[expected.Length];
            var reads = new List<Task>();
            int offset = 0;
            while (offset < whole.Length)
            {
                int length = Math.Min(random.Next(1, 700) * 512, whole.Length - offset);
                int at = offset;
                reads.Add(Task.Run(async () => await device.ReadAsync(firstLba + (ulong)(at / 512), whole.AsMemory(at, length))));
                offset += length;
            }

            await Task.WhenAll(reads).WaitAsync(Deadline);
            Assert.True(expected.AsSpan().SequenceEqual(whole), "the area read back in another split differs from what was written");
        }
        finally
        {
            await system.Terminate().WaitAsync(Deadline);
        }
    }

    private static async Task<BlockDevice> AttachAsync(ActorSystem system, NvmeHostSettings settings)
    {
        var added = new TaskCompletionSource<BlockDevice>(TaskCreationOptions.RunContinuationsAsynchronously);
        var failures = new ConcurrentQueue<string>();
        var listener = system.ActorOf(Props.Create(() => new Listener(added, failures)));
        system.EventStream.Subscribe(listener, typeof(BlockDeviceAdded));
        system.EventStream.Subscribe(listener, typeof(ActorNvme.Actors.Controller.Controller.StateChanged));
        var address = new TransportAddress(LinuxTarget.Current.Address.ToString(), LinuxTarget.IoPort);
        system.ActorOf(Subsystem.Props(new SubsystemOptions("nvme0", Subsystem0, [address], settings), TransportAdminConnector.Tcp(), TransportIoQueueConnector.Tcp()), "nvme0");
        try
        {
            return await added.Task.WaitAsync(Deadline);
        }
        catch (TimeoutException)
        {
            throw new TimeoutException($"no block device from {address} {Subsystem0}; controller failures: {string.Join(" | ", failures)}");
        }
    }

    private sealed class Listener : ReceiveActor
    {
        public Listener(TaskCompletionSource<BlockDevice> added, ConcurrentQueue<string> failures)
        {
            Receive<BlockDeviceAdded>(m => added.TrySetResult(m.BlockDevice!));
            Receive<ActorNvme.Actors.Controller.Controller.StateChanged>(m =>
            {
                if (m.State == ActorNvme.Actors.Controller.ControllerState.Failed)
                {
                    failures.Enqueue(m.Reason ?? "failed");
                }
            });
        }
    }
}
