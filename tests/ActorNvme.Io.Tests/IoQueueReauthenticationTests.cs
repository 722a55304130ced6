using ActorNvme.Protocol.Auth;
using ActorNvme.Transport;

namespace ActorNvme.Io.Tests;

/// <summary>
/// Re-authentication of the I/O queues of a Live path against our Target (which refuses every command of a queue that has not
/// authenticated): a new DH-HMAC-CHAP transaction on each queue while writes keep every queue entry busy; a refused one ends
/// that path only, and the host connects it again.
/// </summary>
public sealed class IoQueueReauthenticationTests
{
    private static readonly TimeSpan StepTimeout = TimeSpan.FromSeconds(20);

    private static (NvmeHostSettingsAndKey, Action<ActorNvme.Target.NvmeTarget>) Keys(bool bidirectional)
    {
        string hostKey = DhChapSecret.Generate(32, 1);
        string controllerKey = DhChapSecret.Generate(32, 2);
        var credentials = new DhChapHostCredentials(DhChapSecret.Parse(hostKey), bidirectional ? DhChapSecret.Parse(controllerKey) : null) { Groups = [DhChapGroupId.Ffdhe2048] };
        var settings = IoRig.FastSettings() with { DhChap = credentials, IoQueueSize = 4 };
        return (new(settings, credentials), target => target.SetDhChapKeys(IoRig.Nqn, settings.HostNqn, hostKey, bidirectional ? controllerKey : null));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Every_io_queue_re_authenticates_while_writes_fill_its_entries_and_nothing_is_lost(bool bidirectional)
    {
        var (keys, configure) = Keys(bidirectional);
        await using var rig = await IoRig.StartAsync(keys.Settings, configureTarget: configure);
        var set = Assert.Single(rig.Device.Paths).Value;
        Assert.Equal(2, set.Queues.Count);

        // 16 writers on 2 queues of 3 usable entries: the authentication commands find the queues full and wait their turn.
        using var stop = new CancellationTokenSource();
        var writers = Enumerable.Range(0, 16).Select(w => Task.Run(async () =>
        {
            var random = new Random(w);
            int verified = 0;
            while (!stop.IsCancellationRequested || verified == 0)
            {
                var data = new byte[512 * random.Next(1, 9)];
                random.NextBytes(data);
                ulong lba = (ulong)w * 64;
                await rig.Device.WriteAsync(lba, data).AsTask().WaitAsync(IoRig.Deadline);
                var back = new byte[data.Length];
                await rig.Device.ReadAsync(lba, back).AsTask().WaitAsync(IoRig.Deadline);
                Assert.True(data.AsSpan().SequenceEqual(back), $"writer {w}: {data.Length} bytes at LBA {lba} read back differently");
                verified++;
            }

            return verified;
        })).ToArray();

        for (int round = 0; round < 3; round++)
        {
            int done = await set.ReauthenticateAsync(keys.Credentials, keys.Settings.HostNqn, IoRig.Nqn, StepTimeout, CancellationToken.None).WaitAsync(IoRig.Deadline);
            Assert.Equal(2, done);
        }

        stop.Cancel();
        int[] verifiedPerWriter = await Task.WhenAll(writers).WaitAsync(IoRig.Deadline);
        Assert.All(verifiedPerWriter, v => Assert.True(v > 0));
        Assert.False(set.IsClosed, "the queues were closed by a re-authentication that succeeded");
        Assert.Same(set, Assert.Single(rig.Device.Paths).Value);
    }

    [Fact]
    public async Task A_refused_re_authentication_ends_that_path_naming_the_subsystem_and_the_host_connects_it_again()
    {
        var (keys, configure) = Keys(bidirectional: false);
        await using var rig = await IoRig.StartAsync(keys.Settings, configureTarget: configure);
        var set = Assert.Single(rig.Device.Paths).Value;
        var wrong = new DhChapHostCredentials(DhChapSecret.Parse(DhChapSecret.Generate(32, 1))) { Groups = [DhChapGroupId.Ffdhe2048] };

        var refused = await Assert.ThrowsAsync<ConnectionClosedException>(() => set.ReauthenticateAsync(wrong, keys.Settings.HostNqn, IoRig.Nqn, StepTimeout, CancellationToken.None).WaitAsync(IoRig.Deadline));
        Assert.Equal(CloseReason.AuthenticationFailed, refused.Closed.Reason);
        Assert.Contains(IoRig.Nqn, refused.Closed.Detail, StringComparison.Ordinal);
        Assert.True(set.IsClosed);

        // The controller saw its path lost and connected it again (authenticating each queue with the right key).
        await IoRig.WaitUntilAsync(() => rig.Device.Paths.Any(p => !ReferenceEquals(p.Value, set) && !p.Value.IsClosed), "a new path after the refusal");
        var data = new byte[4096];
        new Random(3).NextBytes(data);
        await rig.Device.WriteAsync(8, data).AsTask().WaitAsync(IoRig.Deadline);
        var back = new byte[data.Length];
        await rig.Device.ReadAsync(8, back).AsTask().WaitAsync(IoRig.Deadline);
        Assert.Equal(data, back);
    }

    private sealed record NvmeHostSettingsAndKey(ActorNvme.Actors.Settings.NvmeHostSettings Settings, DhChapHostCredentials Credentials);
}
