using ActorNvme.Transport;

namespace ActorNvme.Benchmarks;

/// <summary>
/// <c>QueueDepth</c> workers, each awaiting one 4 KiB read at a time: the queue depth stays constant.
/// Every worker runs its continuation on the queue pair's receive thread, as block-device users would.
/// </summary>
public sealed class ClosedLoop(IoQueuePair queuePair, int queueDepth, int blockSize = 512, int transferSize = 4096)
{
    private readonly byte[][] _buffers = Enumerable.Range(0, queueDepth).Select(_ => new byte[transferSize]).ToArray();
    private volatile bool _stop;

    /// <summary>Runs until each worker completed <paramref name="perWorker"/> reads; returns the total.</summary>
    public async Task<long> RunCountAsync(int perWorker)
    {
        _stop = false;
        var workers = new Task<long>[queueDepth];
        for (int w = 0; w < queueDepth; w++)
        {
            workers[w] = WorkerAsync(w, perWorker);
        }

        long total = 0;
        foreach (var count in await Task.WhenAll(workers).ConfigureAwait(false))
        {
            total += count;
        }

        return total;
    }

    /// <summary>Runs for <paramref name="duration"/>; returns the reads completed.</summary>
    public async Task<long> RunForAsync(TimeSpan duration)
    {
        _stop = false;
        var workers = new Task<long>[queueDepth];
        for (int w = 0; w < queueDepth; w++)
        {
            workers[w] = WorkerAsync(w, int.MaxValue);
        }

        await Task.Delay(duration).ConfigureAwait(false);
        _stop = true;
        long total = 0;
        foreach (var count in await Task.WhenAll(workers).ConfigureAwait(false))
        {
            total += count;
        }

        return total;
    }

    private async Task<long> WorkerAsync(int worker, int reads)
    {
        // Leave the caller's thread first, so every worker starts its loop the same way.
        await Task.Yield();
        var buffer = _buffers[worker];
        int blocks = transferSize / blockSize;
        ulong lba = (ulong)(worker * blocks);
        long done = 0;
        while (done < reads && !_stop)
        {
            var result = await queuePair.ReadAsync(1, lba, blocks, buffer).ConfigureAwait(false);
            if (!result.IsSuccess)
            {
                throw new InvalidOperationException($"read failed: {result}");
            }

            done++;
        }

        return done;
    }
}
