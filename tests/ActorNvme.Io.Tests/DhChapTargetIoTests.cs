using ActorNvme.Protocol.Auth;

namespace ActorNvme.Io.Tests;

/// <summary>The whole host (actors, admin and two I/O queues) authenticating against our Target, then writing and reading back.</summary>
public sealed class DhChapTargetIoTests
{
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task The_host_authenticates_every_queue_and_data_reads_back(bool bidirectional)
    {
        string hostKey = DhChapSecret.Generate(32, 1);
        string controllerKey = DhChapSecret.Generate(32, 3);
        var settings = IoRig.FastSettings() with
        {
            DhChap = new DhChapHostCredentials(DhChapSecret.Parse(hostKey), bidirectional ? DhChapSecret.Parse(controllerKey) : null) { Groups = [DhChapGroupId.Ffdhe2048] },
        };
        await using var rig = await IoRig.StartAsync(settings, configureTarget: target => target.SetDhChapKeys(IoRig.Nqn, settings.HostNqn, hostKey, controllerKey));
        // The target refuses every command of a queue that has not authenticated (0x91): I/O that reads back proves all did.
        Assert.Equal(2, rig.Device.Paths.Single().Value.Queues.Count);

        var random = new Random(bidirectional ? 2 : 1);
        var writes = Enumerable.Range(0, 8).Select(i =>
        {
            var data = new byte[(i + 1) * 512];
            random.NextBytes(data);
            return ((ulong)i * 64, data);
        }).ToList();
        await Task.WhenAll(writes.Select(w => rig.Device.WriteAsync(w.Item1, w.data).AsTask())).WaitAsync(IoRig.Deadline);
        foreach (var (lba, data) in writes)
        {
            var back = new byte[data.Length];
            await rig.Device.ReadAsync(lba, back).AsTask().WaitAsync(IoRig.Deadline);
            Assert.Equal(data, back);
        }
    }
}
