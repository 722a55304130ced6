using System.Diagnostics;
using System.Globalization;
using ActorNvme.Io;
using ActorNvme.Transport;

namespace ActorNvme.Host.Perf;

/// <summary>The outcome for one device (or the total): completions in the measured window, their latency, errors.</summary>
internal sealed record PerfFigures(string Name, long Ios, double Seconds, int IoSize, LatencyHistogram Latency, long Errors)
{
    public double Iops => Seconds > 0 ? Ios / Seconds : 0;

    public double MibPerSecond => Iops * IoSize / (1024.0 * 1024.0);
}

/// <summary>What a whole run measured.</summary>
internal sealed record PerfResult(IReadOnlyList<PerfFigures> Devices, PerfFigures Total, double CpuPercent, string? FirstError);

/// <summary>
/// The closed loops of a run: for every device, cores × -q loops, each keeping one I/O outstanding
/// and timing it. A loop owns its buffer, random generator and histogram (no sharing, nothing
/// allocated per I/O); its continuation runs on the queue pair's receive thread that completed it,
/// as any BlockDevice user's does.
/// </summary>
internal sealed class PerfRun
{
    private readonly PerfOptions _options;
    private readonly IReadOnlyList<PerfDevice> _devices;
    private readonly List<Loop> _loops = [];
    private long _measureFrom;
    private long _measureUntil;
    private volatile bool _stop;
    private long _errorCount;
    private Action<string> _reportError = _ => { };

    public PerfRun(PerfOptions options, IReadOnlyList<PerfDevice> devices)
    {
        _options = options;
        _devices = devices;
        int index = 0;
        foreach (var device in devices)
        {
            int blockSize = device.Device.BlockSize;
            if (options.IoSize % blockSize != 0)
            {
                throw new PerfUsageException($"option -o: {options.IoSize} bytes is not a whole number of {device.Device.Name}'s {blockSize}-byte blocks");
            }

            ulong ioBlocks = (ulong)(options.IoSize / blockSize);
            if (ioBlocks > device.Device.BlockCount)
            {
                throw new PerfUsageException($"option -o: {options.IoSize} bytes is larger than {device.Device.Name} ({device.Device.SizeBytes} bytes)");
            }

            var queues = options.Bare ? device.Device.Paths.SelectMany(p => p.Value.Queues).ToArray() : [];
            if (options.Bare && queues.Length == 0)
            {
                throw new InvalidOperationException($"--bare: {device.Device.Name} has no I/O queues");
            }

            for (int core = 0; core < options.Cores; core++)
            {
                var cursor = new SequentialCursor();
                for (int k = 0; k < options.QueueDepth; k++)
                {
                    var queue = options.Bare ? queues[index % queues.Length] : null;
                    _loops.Add(new Loop(this, device.Device, queue, cursor, ioBlocks, index++));
                }
            }
        }
    }

    /// <summary>Completions so far, all loops (for the live progress line).</summary>
    public long Completed => _loops.Sum(l => Volatile.Read(ref l.Completed));

    /// <summary>
    /// -Q: whether the <paramref name="errorNumber"/>th error of the run (counted from 1) is printed.
    /// Without -Q every error is counted and the first one is kept for the summary, none is printed as it happens.
    /// </summary>
    internal static bool ShouldReportError(long errorNumber, int? interval) => interval is { } every && errorNumber % every == 0;

    /// <param name="progress">Receives a progress line about once a second.</param>
    /// <param name="reportError">Receives the errors -Q asks to see, as they happen (from the I/O loops' threads).</param>
    /// <param name="cancellationToken">Ends the run early.</param>
    public async Task<PerfResult> RunAsync(Action<string> progress, CancellationToken cancellationToken, Action<string>? reportError = null)
    {
        if (reportError is not null)
        {
            _reportError = reportError;
        }

        long frequency = Stopwatch.Frequency;
        long start = Stopwatch.GetTimestamp();
        _measureFrom = start + (long)(_options.WarmupSeconds * frequency);
        _measureUntil = _measureFrom + (long)(_options.Seconds * frequency);
        var tasks = _loops.Select(l => Task.Run(l.RunAsync, CancellationToken.None)).ToArray();

        // Progress once a second, until the window closes or the run is cancelled.
        var process = Process.GetCurrentProcess();
        TimeSpan cpuAtStart = TimeSpan.Zero;
        long cpuStartedAt = 0; // 0 until the CPU figure's first sample
        void SampleCpuStart()
        {
            process.Refresh();
            cpuAtStart = process.TotalProcessorTime;
            cpuStartedAt = Stopwatch.GetTimestamp();
        }

        long lastCount = 0;
        long lastTime = start;
        int tick = 0;
        while (Stopwatch.GetTimestamp() < _measureUntil && !cancellationToken.IsCancellationRequested)
        {
            if (cpuStartedAt == 0 && Stopwatch.GetTimestamp() >= _measureFrom)
            {
                SampleCpuStart();
            }

            // Wake at the window's start too: Task.Delay rounds to whole milliseconds and may wake just
            // before it, and a CPU sample taken a progress tick late made a busy core read as 80%.
            long next = Math.Min(start + ((tick + 1) * frequency), _measureUntil);
            if (cpuStartedAt == 0)
            {
                next = Math.Min(next, _measureFrom);
            }

            // At least a millisecond: a shorter Task.Delay completes at once, and the loop would
            // spin out progress lines over intervals of microseconds (0 IOPS or absurd rates).
            var wait = TimeSpan.FromSeconds(Math.Max(0.001, (next - Stopwatch.GetTimestamp()) / (double)frequency));
            try
            {
                await Task.Delay(wait, cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                break;
            }

            long now = Stopwatch.GetTimestamp();
            if (now < start + ((tick + 1) * frequency) - (frequency / 100) && now < _measureUntil)
            {
                continue; // woken for the window's start, between two progress ticks
            }

            tick++;
            long count = Completed;
            double seconds = (now - lastTime) / (double)frequency;
            if (seconds < 0.1)
            {
                continue; // the window's last sliver: too short for a rate worth printing
            }

            double iops = seconds > 0 ? (count - lastCount) / seconds : 0;
            bool warming = now < _measureFrom;
            progress(string.Create(CultureInfo.InvariantCulture, $"{(now - start) / (double)frequency,6:0.0} s{(warming ? " (warm-up)" : string.Empty)}: {iops,12:N0} IOPS {iops * _options.IoSize / (1024 * 1024),10:0.0} MiB/s"));
            lastCount = count;
            lastTime = now;
        }

        if (cpuStartedAt == 0)
        {
            SampleCpuStart();
        }

        long end = Math.Min(Stopwatch.GetTimestamp(), _measureUntil);
        process.Refresh();
        var cpu = process.TotalProcessorTime - cpuAtStart;
        double cpuSeconds = (Stopwatch.GetTimestamp() - cpuStartedAt) / (double)frequency;
        _stop = true;
        await Task.WhenAll(tasks).WaitAsync(TimeSpan.FromSeconds(60), CancellationToken.None).ConfigureAwait(false);

        double window = Math.Max(0, (end - _measureFrom) / (double)frequency);
        var perDevice = new List<PerfFigures>();
        var total = new LatencyHistogram();
        long totalErrors = 0;
        foreach (var device in _devices)
        {
            var histogram = new LatencyHistogram();
            long errors = 0;
            foreach (var loop in _loops.Where(l => l.Device == device.Device))
            {
                histogram.Add(loop.Latency);
                errors += loop.Errors;
            }

            total.Add(histogram);
            totalErrors += errors;
            perDevice.Add(new PerfFigures($"{device.Device.Name} ({device.Target.Address} {device.Target.SubsystemNqn})", histogram.Count, window, _options.IoSize, histogram, errors));
        }

        string? firstError = _loops.Select(l => l.FirstError).FirstOrDefault(e => e is not null);
        // CPU over the wall time between its own two samples, which are not exactly the window's ends.
        double cpuPercent = cpuSeconds > 0 ? cpu.TotalSeconds / cpuSeconds * 100 : 0;
        return new PerfResult(perDevice, new PerfFigures("Total", total.Count, window, _options.IoSize, total, totalErrors), cpuPercent, firstError);
    }

    private sealed class SequentialCursor
    {
        public long Next;
    }

    private sealed class Loop(PerfRun run, BlockDevice device, IoQueuePair? queue, SequentialCursor cursor, ulong ioBlocks, int index)
    {
        private readonly byte[] _buffer = CreateBuffer(run._options.IoSize, index);
        private ulong _random = 0x9E3779B97F4A7C15UL * (ulong)(index + 1);

        public long Completed;

        public BlockDevice Device => device;

        public LatencyHistogram Latency { get; } = new();

        public long Errors { get; private set; }

        public string? FirstError { get; private set; }

        public async Task RunAsync()
        {
            var options = run._options;
            int readPercent = options.EffectiveReadPercent;
            ulong slots = device.BlockCount / ioBlocks;
            while (!run._stop)
            {
                ulong lba = options.IsRandom
                    ? (NextRandom() % slots) * ioBlocks
                    : ((ulong)(Interlocked.Increment(ref cursor.Next) - 1) % slots) * ioBlocks;
                bool read = readPercent == 100 || (readPercent != 0 && (int)(NextRandom() % 100) < readPercent);
                long started = Stopwatch.GetTimestamp();
                try
                {
                    if (queue is not null)
                    {
                        var result = read
                            ? await queue.ReadAsync(device.NamespaceId, lba, (int)ioBlocks, _buffer).ConfigureAwait(false)
                            : await queue.WriteAsync(device.NamespaceId, lba, (int)ioBlocks, _buffer).ConfigureAwait(false);
                        if (result.Outcome == CommandOutcome.QueueFull)
                        {
                            await Task.Yield();
                            continue;
                        }

                        if (!result.IsSuccess)
                        {
                            Failed($"{(read ? "read" : "write")} at LBA {lba}: {result}");
                            continue;
                        }
                    }
                    else if (read)
                    {
                        await device.ReadAsync(lba, _buffer).ConfigureAwait(false);
                    }
                    else
                    {
                        await device.WriteAsync(lba, _buffer).ConfigureAwait(false);
                    }
                }
                catch (BlockDeviceException e)
                {
                    Failed(e.Message);
                    continue;
                }

                long ended = Stopwatch.GetTimestamp();
                Volatile.Write(ref Completed, Completed + 1);
                if (ended >= run._measureFrom && ended < run._measureUntil)
                {
                    Latency.Record(ended - started);
                }
            }
        }

        private void Failed(string error)
        {
            Errors++;
            FirstError ??= error;
            long number = Interlocked.Increment(ref run._errorCount);
            if (run._options.ErrorReportInterval is { } interval)
            {
                // -Q: the run goes on whatever fails; every Nth error is shown as it happens.
                if (ShouldReportError(number, interval))
                {
                    run._reportError(string.Create(CultureInfo.InvariantCulture, $"error {number} ({device.Name}): {error}"));
                }

                return;
            }

            if (Errors > 1000)
            {
                run._stop = true; // a device that fails everything would only spin
            }
        }

        private ulong NextRandom()
        {
            // xorshift64*
            ulong x = _random;
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            _random = x;
            return x * 0x2545F4914F6CDD1DUL;
        }

        private static byte[] CreateBuffer(int size, int index)
        {
            var buffer = GC.AllocateUninitializedArray<byte>(size, pinned: true);
            for (int i = 0; i < buffer.Length; i++)
            {
                buffer[i] = (byte)(index + i);
            }

            return buffer;
        }
    }
}
