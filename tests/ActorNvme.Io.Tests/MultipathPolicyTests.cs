using Akka.Actor;
using ActorNvme.Io;
using SubsystemMessages = ActorNvme.Actors.Subsystem.Subsystem;

namespace ActorNvme.Io.Tests;

/// <summary>
/// SPDK's multipath policies on a two-path device against our Target. Which path a read went to is
/// counted at the target: reads to port A are held there (slow-backend fault), so the number held is
/// the number sent to A.
/// </summary>
public sealed class MultipathPolicyTests
{
    [Fact]
    public async Task Active_active_round_robin_with_rr_min_io_1_alternates_the_paths()
    {
        await using var rig = await IoRig.StartAsync(paths: 2);
        await SetPolicyAsync(rig, new MultipathPolicy(MultipathPolicyMode.ActiveActive, MultipathSelector.RoundRobin, 1));

        rig.Faults.DelayIoExecution(rig.Listeners[0], TimeSpan.FromHours(1));
        await Task.Yield();
        var reads = Enumerable.Range(0, 100).Select(i => ReadAsync(rig.Device, (ulong)i)).ToArray();
        // Reads for A may still be on the wire when B's have answered: wait until every read is
        // either answered or held at A, then count each side.
        await IoRig.WaitUntilAsync(() => reads.Count(r => r.IsCompleted) + rig.Faults.DelayedReadsPending == 100, "every read answered or held");
        Assert.Equal(50, rig.Faults.DelayedReadsPending);
        Assert.Equal(50, reads.Count(r => r.IsCompleted));

        var paths = await GetIoPathsAsync(rig);
        Assert.Equal(2, paths.Count);
        Assert.All(paths, p => Assert.True(p.Current && p.Connected && p.Accessible));
        await ReleaseAsync(rig, reads);
    }

    [Fact]
    public async Task Active_passive_sends_everything_to_one_path_and_reports_only_it_as_current()
    {
        await using var rig = await IoRig.StartAsync(paths: 2);
        await SetPolicyAsync(rig, new MultipathPolicy(MultipathPolicyMode.ActivePassive));

        rig.Faults.DelayIoExecution(rig.Listeners[0], TimeSpan.FromHours(1));
        await Task.Yield();
        var reads = Enumerable.Range(0, 40).Select(i => ReadAsync(rig.Device, (ulong)i)).ToArray();
        await IoRig.WaitUntilAsync(() => reads.Count(r => r.IsCompleted) + rig.Faults.DelayedReadsPending == 40, "every read answered or held");
        Assert.Contains(rig.Faults.DelayedReadsPending, new[] { 0, 40 });

        var paths = await GetIoPathsAsync(rig);
        Assert.Single(paths, p => p.Current);
        bool aIsCurrent = paths.Single(p => p.Current).Address.Port == rig.Listeners[0].Address.Port;
        Assert.Equal(aIsCurrent, rig.Faults.DelayedReadsPending == 40);
        await ReleaseAsync(rig, reads);
    }

    [Fact]
    public async Task Active_active_queue_depth_avoids_the_path_with_commands_stuck_in_flight()
    {
        await using var rig = await IoRig.StartAsync(paths: 2);
        await SetPolicyAsync(rig, new MultipathPolicy(MultipathPolicyMode.ActiveActive, MultipathSelector.QueueDepth));

        rig.Faults.DelayIoExecution(rig.Listeners[0], TimeSpan.FromHours(1));
        var stuck = new List<Task<byte[]>>();
        for (int i = 0; i < 20; i++)
        {
            await Task.Yield();
            int heldBefore = rig.Faults.DelayedReadsPending;
            var read = ReadAsync(rig.Device, (ulong)i);

            // Answered by B, or held at A: whichever, however slowly this machine runs it.
            await IoRig.WaitUntilAsync(() => read.IsCompleted || rig.Faults.DelayedReadsPending > heldBefore, $"read {i} answered or held");
            if (!read.IsCompleted)
            {
                stuck.Add(read);
            }
        }

        // Once A holds one read, B (with nothing in flight between reads) takes every other one.
        Assert.True(rig.Faults.DelayedReadsPending <= 1, $"{rig.Faults.DelayedReadsPending} reads went to the path with a command stuck in flight");
        await ReleaseAsync(rig, stuck.ToArray());
    }

    [Fact]
    public async Task An_ANA_change_notice_makes_the_host_read_the_ANA_log_and_send_nothing_to_the_inaccessible_path_until_it_is_optimized_again()
    {
        var targetOptions = new ActorNvme.Target.TargetOptions { AnaTransitionTime = TimeSpan.FromSeconds(60) };
        await using var rig = await IoRig.StartAsync(targetOptions: targetOptions, paths: 2);
        var pathA = rig.Listeners[0];
        await SetPolicyAsync(rig, new MultipathPolicy(MultipathPolicyMode.ActiveActive, MultipathSelector.RoundRobin, 1));

        rig.Faults.SetAnaState(IoRig.Nqn, 1, Protocol.Data.AnaState.Inaccessible, pathA);
        await WaitForAccessibleAsync(rig, pathA, accessible: false);
        long refusedBefore = rig.Device.Statistics.Snapshot().AnaRefusals;

        // Reads to A would be held there: none is, and the target refuses none with an ANA state.
        rig.Faults.DelayIoExecution(pathA, TimeSpan.FromHours(1));
        await Task.Yield();
        var reads = Enumerable.Range(0, 50).Select(i => ReadAsync(rig.Device, (ulong)i)).ToArray();
        await Task.WhenAll(reads).WaitAsync(IoRig.Deadline);
        Assert.Equal(0, rig.Faults.DelayedReadsPending);
        Assert.Equal(refusedBefore, rig.Device.Statistics.Snapshot().AnaRefusals);

        rig.Faults.SetAnaState(IoRig.Nqn, 1, Protocol.Data.AnaState.Optimized, pathA);
        await WaitForAccessibleAsync(rig, pathA, accessible: true);
        await Task.Yield();
        var spread = Enumerable.Range(0, 10).Select(i => ReadAsync(rig.Device, (ulong)i)).ToArray();
        await IoRig.WaitUntilAsync(() => rig.Faults.DelayedReadsPending == 5, "half of the reads on A again");
        await ReleaseAsync(rig, spread);

        // A command refused with an ANA status is counted: the target saw it on a path it would not serve.
        rig.Faults.FailNextIo(Protocol.Nvme.NvmOpcode.Read, 1, Protocol.Nvme.NvmeStatus.Create(Protocol.Nvme.StatusCodeType.PathRelated, (byte)Protocol.Nvme.PathStatus.AsymmetricAccessTransition));
        await ReadAsync(rig.Device, 0).WaitAsync(IoRig.Deadline);
        Assert.Equal(refusedBefore + 1, rig.Device.Statistics.Snapshot().AnaRefusals);
    }

    private static async Task WaitForAccessibleAsync(IoRig rig, ActorNvme.Target.TargetListener listener, bool accessible)
    {
        var until = DateTime.UtcNow + IoRig.Deadline;
        while (true)
        {
            var paths = await GetIoPathsAsync(rig);
            var path = paths.SingleOrDefault(p => p.Address.Port == listener.Address.Port);
            if (path is not null && path.Connected && path.Accessible == accessible)
            {
                return;
            }

            Assert.True(DateTime.UtcNow < until, $"path {listener} never became {(accessible ? "accessible" : "inaccessible")}");
            await Task.Delay(20);
        }
    }

    private static async Task SetPolicyAsync(IoRig rig, MultipathPolicy policy)
    {
        var set = await rig.Subsystem.Ask<SubsystemMessages.MultipathPolicySet>(new SubsystemMessages.SetMultipathPolicy(policy), IoRig.Deadline);
        Assert.Equal(policy, set.Policy);
        Assert.Equal(policy, rig.Device.Policy);
    }

    private static async Task<IReadOnlyList<SubsystemMessages.IoPathInfo>> GetIoPathsAsync(IoRig rig)
    {
        var answer = await rig.Subsystem.Ask<SubsystemMessages.IoPaths>(new SubsystemMessages.GetIoPaths("nvme0n1"), IoRig.Deadline);
        Assert.All(answer.Paths, p => Assert.Equal("nvme0n1", p.BlockDevice));
        return answer.Paths;
    }

    /// <summary>Reads held on A move to B once A's connections are reset (reads are not fenced).</summary>
    private static async Task ReleaseAsync(IoRig rig, Task<byte[]>[] reads)
    {
        rig.Faults.DelayIoExecution(rig.Listeners[0], TimeSpan.Zero);
        rig.Faults.ResetConnections(rig.Listeners[0]);
        await Task.WhenAll(reads).WaitAsync(IoRig.Deadline);
    }

    private static async Task<byte[]> ReadAsync(BlockDevice device, ulong lba)
    {
        var buffer = new byte[512];
        await device.ReadAsync(lba, buffer);
        return buffer;
    }
}
