namespace ActorNvme.Transport.RawSocket;

/// <summary>
/// One I/O thread's counters, as SPDK's bdev_nvme_get_transport_statistics shows a TCP poll group: epoll waits
/// (polls), waits that found nothing while spinning (idle polls), socket readiness events handled (socket
/// completions), NVMe completions received and commands submitted by the queue pairs it serves, and the
/// commands outstanding now (queued).
/// </summary>
public sealed record PollGroupStatistics(
    string Thread,
    long Polls,
    long IdlePolls,
    long SocketCompletions,
    long NvmeCompletions,
    long SubmittedRequests,
    long QueuedRequests,
    int QueuePairs);

/// <summary>The process's raw-socket I/O threads and their counters.</summary>
public static class TransportStatistics
{
    /// <summary>
    /// A snapshot of every I/O thread started in this process, each read on its own thread. Queue pairs on
    /// dedicated receive threads or on the pipelines transport (TLS) are not in any poll group.
    /// </summary>
    public static async Task<IReadOnlyList<PollGroupStatistics>> GetAsync(CancellationToken cancellationToken = default)
    {
        var snapshots = IoThreadGroup.Started().SelectMany(g => g.Threads).Distinct().Select(t => t.SnapshotAsync()).ToArray();
        var all = await Task.WhenAll(snapshots).WaitAsync(cancellationToken).ConfigureAwait(false);
        return all;
    }
}
