using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text.Json.Nodes;
using Akka.Actor;
using Akka.Configuration;
using ActorNvme.Actors.Connection;
using ActorNvme.Actors.Host;
using ActorNvme.Actors.Settings;
using ActorNvme.Actors.Subsystem;
using ActorNvme.Io;
using ActorNvme.Transport;

namespace ActorNvme.Host.Soak;

/// <summary>What <c>actornvme soak</c> runs against: one subsystem over one or more paths.</summary>
internal sealed record SoakOptions(
    IReadOnlyList<TransportAddress> Paths,
    string SubsystemNqn,
    string? HostNqn,
    TimeSpan Duration,
    int Writers,
    int BlocksPerWriter,
    TimeSpan CheckpointEvery,
    TimeSpan KeepAliveTimeout,
    MultipathPolicy Policy,
    TimeSpan StallThreshold,
    string LogLevel = "WARNING",
    int Readers = 0,
    int ReadBlocks = 256);

/// <summary>
/// Write-then-verify over a multipath block device while someone else breaks its paths: every writer owns
/// its own blocks, writes a block stamped with (LBA, generation) and reads it back; at each checkpoint all
/// writers pause and every block is read and compared with the last acknowledged generation. A block older
/// than its acknowledged write is a lost acknowledged write; a block whose stamp or pattern is wrong is a
/// bad read. A write that failed is "uncertain": it may or may not have landed, so either outcome is
/// accepted as long as it is newer than what was acknowledged. Stalls (no I/O completed for longer than the
/// threshold) are recorded with their time, so a fault script can match them to what it broke.
/// </summary>
internal sealed class SoakRun
{
    private const ulong Magic = 0x4B414F53_4D564E41; // "ANVMSOAK" read little-endian
    private const int PatternStart = 32; // magic, LBA, generation, writer, run

    // Stamped in every block, so blocks an earlier soak left on the same namespace count as unwritten, not
    // as a generation this run never wrote (nor as one it did).
    private readonly int _run = Random.Shared.Next(1, int.MaxValue);

    private readonly SoakOptions _options;
    private readonly BlockDevice _device;
    private readonly Block[] _blocks;
    private readonly ConcurrentQueue<(long AtUnixMs, double Ms)> _stalls = new();
    private readonly ConcurrentQueue<(long AtUnixMs, double Ms)> _readStalls = new();
    private readonly ConcurrentQueue<string> _problems = new();
    private long _completions;
    private long _readerCompletions;
    private long _readerReads;
    private long _readerErrors;
    private long _writes;
    private long _reads;
    private long _writeErrors;
    private long _readErrors;
    private long _lostWrites;
    private long _badReads;
    private long _checkpoints;
    private TimeSpan _writeResubmitDelay;
    private volatile TaskCompletionSource? _pause;
    private int _paused;

    private SoakRun(SoakOptions options, BlockDevice device)
    {
        _options = options;
        _device = device;
        _blocks = new Block[options.Writers * options.BlocksPerWriter];
        for (int i = 0; i < _blocks.Length; i++)
        {
            _blocks[i] = new Block();
        }
    }

    /// <summary>Attaches every path under one name (multipath), runs the soak, detaches, and returns the summary.</summary>
    public static async Task<JsonObject> RunAsync(SoakOptions options, TextWriter log, CancellationToken cancellationToken)
    {
        var settings = NvmeHostSettings.Default with
        {
            KeepAliveTimeout = options.KeepAliveTimeout,
            ConnectTimeout = TimeSpan.FromSeconds(3),
            Resiliency = new ResiliencySettings(ResiliencySettings.Forever, TimeSpan.FromSeconds(1), TimeSpan.Zero).Validated(),
        };
        var identity = Cli.HostIdentity.Resolve(options.HostNqn);
        settings = settings with { HostNqn = identity.HostNqn, HostId = identity.HostId };

        using var system = ActorSystem.Create("actornvme-soak", ConfigurationFactory.ParseString($$"""
            akka.loglevel = {{options.LogLevel}}
            akka.log-dead-letters = off
            akka.log-dead-letters-during-shutdown = off
            """));
        SchedulerStart.Ensure(system);
        var added = new TaskCompletionSource<BlockDevice>(TaskCreationOptions.RunContinuationsAsynchronously);
        var watcher = system.ActorOf(Props.Create(() => new DeviceWatcher(added)));
        system.EventStream.Subscribe(watcher, typeof(BlockDeviceAdded));
        var host = system.ActorOf(NvmeHost.Props(settings.Validated(), TransportAdminConnector.Tcp()), NvmeHost.ActorName);
        var attachTimeout = TimeSpan.FromSeconds(30);
        foreach (var path in options.Paths)
        {
            var answer = await host.Ask<object>(new NvmeHost.AttachController("soak", path, options.SubsystemNqn, AttachTimeout: attachTimeout, Multipath: MultipathMode.Multipath), attachTimeout + TimeSpan.FromSeconds(5), cancellationToken).ConfigureAwait(false);
            if (answer is NvmeHost.Failed failed)
            {
                throw new InvalidOperationException($"attaching {options.SubsystemNqn} at {path}: {failed.Message}");
            }
        }

        var device = await added.Task.WaitAsync(attachTimeout, cancellationToken).ConfigureAwait(false);
        var until = DateTime.UtcNow + attachTimeout;
        while (device.PathCount < options.Paths.Count && DateTime.UtcNow < until)
        {
            await Task.Delay(50, cancellationToken).ConfigureAwait(false);
        }

        await host.Ask<object>(new NvmeHost.ToSubsystem("soak", new Subsystem.SetMultipathPolicy(options.Policy)), TimeSpan.FromSeconds(10), cancellationToken).ConfigureAwait(false);
        long needed = ((long)options.Writers * options.BlocksPerWriter) + (options.Readers > 0 ? options.ReadBlocks : 0);
        if ((ulong)needed > device.BlockCount)
        {
            throw new InvalidOperationException($"{device.Name} has {device.BlockCount} blocks; {options.Writers} writers x {options.BlocksPerWriter} blocks need {needed}");
        }

        log.WriteLine($"soak: {device.Name} ({device.BlockSize}-byte blocks) over {device.PathCount} path(s): {string.Join(", ", options.Paths)}; {options.Writers} writers x {options.BlocksPerWriter} blocks, {options.Duration.TotalSeconds:0} s, checkpoint every {options.CheckpointEvery.TotalSeconds:0} s, policy {options.Policy.Mode}");
        var run = new SoakRun(options, device);
        var summary = await run.RunAsync(log, cancellationToken).ConfigureAwait(false);
        await host.Ask<object>(new NvmeHost.DetachController("soak"), TimeSpan.FromSeconds(30), CancellationToken.None).ConfigureAwait(false);
        await system.Terminate().ConfigureAwait(false);
        return summary;
    }

    private async Task<JsonObject> RunAsync(TextWriter log, CancellationToken cancellationToken)
    {
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var started = Stopwatch.StartNew();
        NoteWriteResubmitDelay();
        await PrepareReadRegionAsync(cancellationToken).ConfigureAwait(false);
        var stallWatch = Task.Run(() => WatchStallsAsync(() => Interlocked.Read(ref _completions), _stalls, pausable: true, stop.Token), CancellationToken.None);
        var readStallWatch = _options.Readers == 0
            ? Task.CompletedTask
            : Task.Run(() => WatchStallsAsync(() => Interlocked.Read(ref _readerCompletions), _readStalls, pausable: false, stop.Token), CancellationToken.None);
        var readers = Enumerable.Range(0, _options.Readers).Select(r => Task.Run(() => ReaderAsync(r, stop.Token), CancellationToken.None)).ToArray();
        var writers = Enumerable.Range(0, _options.Writers).Select(w => Task.Run(() => WriterAsync(w, stop.Token), CancellationToken.None)).ToArray();
        var nextCheckpoint = _options.CheckpointEvery;
        while (started.Elapsed < _options.Duration && !cancellationToken.IsCancellationRequested)
        {
            await Task.Delay(TimeSpan.FromMilliseconds(200), CancellationToken.None).ConfigureAwait(false);
            if (started.Elapsed >= nextCheckpoint && started.Elapsed < _options.Duration)
            {
                await CheckpointAsync(log, started.Elapsed, settle: TimeSpan.Zero, writersRunning: true).ConfigureAwait(false);
                nextCheckpoint += _options.CheckpointEvery;
            }
        }

        await stop.CancelAsync().ConfigureAwait(false);
        await Task.WhenAll(writers).ConfigureAwait(false);
        await Task.WhenAll(readers).ConfigureAwait(false);
        await stallWatch.ConfigureAwait(false);
        await readStallWatch.ConfigureAwait(false);

        // The last check waits out the longest a stale copy could still land (the write fence), then reads all.
        var settle = _options.KeepAliveTimeout + (_options.KeepAliveTimeout / 4) + TimeSpan.FromSeconds(1);
        await CheckpointAsync(log, started.Elapsed, settle, writersRunning: false).ConfigureAwait(false);

        NoteWriteResubmitDelay();
        var stalls = _stalls.ToArray();
        var durations = stalls.Select(s => s.Ms).Order().ToArray();
        var readDurations = _readStalls.Select(s => s.Ms).Order().ToArray();
        return new JsonObject
        {
            ["device"] = _device.Name,
            ["paths"] = _options.Paths.Count,
            ["seconds"] = Math.Round(started.Elapsed.TotalSeconds, 1),
            ["writes"] = _writes,
            ["reads"] = _reads,
            ["write_errors"] = _writeErrors,
            ["read_errors"] = _readErrors,
            ["lost_acknowledged_writes"] = _lostWrites,
            ["bad_reads"] = _badReads,
            ["checkpoints"] = _checkpoints,
            ["stalls_over_ms"] = _options.StallThreshold.TotalMilliseconds,
            ["stall_count"] = durations.Length,
            ["stall_p50_ms"] = Percentile(durations, 0.50),
            ["stall_p99_ms"] = Percentile(durations, 0.99),
            ["stall_max_ms"] = durations.Length == 0 ? 0 : Math.Round(durations[^1], 1),
            ["write_resubmit_delay_ms"] = Math.Round(_writeResubmitDelay.TotalMilliseconds, 1),
            ["stalls"] = new JsonArray([.. stalls.Select(s => (JsonNode?)new JsonObject { ["at_unix_ms"] = s.AtUnixMs, ["ms"] = Math.Round(s.Ms, 1) })]),
            ["ana_refusals"] = _device.Statistics.Snapshot().AnaRefusals,
            ["policy"] = $"{_options.Policy.Mode}/{_options.Policy.Selector}",
            ["commands_per_path"] = new JsonObject([.. _device.CompletedPerPath.OrderBy(kv => kv.Key, StringComparer.Ordinal).Select(kv => KeyValuePair.Create(kv.Key, (JsonNode?)kv.Value))]),
            ["readers"] = _options.Readers,
            ["reader_reads"] = Interlocked.Read(ref _readerReads),
            ["reader_errors"] = Interlocked.Read(ref _readerErrors),
            ["read_stall_count"] = readDurations.Length,
            ["read_stall_p50_ms"] = Percentile(readDurations, 0.50),
            ["read_stall_p99_ms"] = Percentile(readDurations, 0.99),
            ["read_stall_max_ms"] = readDurations.Length == 0 ? 0 : Math.Round(readDurations[^1], 1),
            ["read_stalls"] = new JsonArray([.. _readStalls.Select(s => (JsonNode?)new JsonObject { ["at_unix_ms"] = s.AtUnixMs, ["ms"] = Math.Round(s.Ms, 1) })]),
            ["problems"] = new JsonArray([.. _problems.Take(20).Select(p => (JsonNode?)p)]),
        };
    }

    /// <summary>The longest any path makes a lost path's writes wait (KATO as the target rounds it, plus CQT): what bounds the writers' stalls.</summary>
    private void NoteWriteResubmitDelay()
    {
        foreach (var path in _device.Paths)
        {
            if (path.Value.WriteResubmitDelay > _writeResubmitDelay)
            {
                _writeResubmitDelay = path.Value.WriteResubmitDelay;
            }
        }
    }

    private static double Percentile(double[] sorted, double p) =>
        sorted.Length == 0 ? 0 : Math.Round(sorted[Math.Min(sorted.Length - 1, (int)Math.Ceiling(p * sorted.Length) - 1)], 1);

    private async Task WriterAsync(int writer, CancellationToken stop)
    {
        int size = _device.BlockSize;
        var data = new byte[size];
        var back = new byte[size];
        var random = new Random(writer * 7919 + 1);
        while (!stop.IsCancellationRequested)
        {
            if (_pause is { } pause)
            {
                Interlocked.Increment(ref _paused);
                await pause.Task.ConfigureAwait(false);
                Interlocked.Decrement(ref _paused);
                continue;
            }

            int index = writer + (_options.Writers * random.Next(_options.BlocksPerWriter));
            var block = _blocks[index];
            long generation = ++block.Highest;
            Stamp(data, (ulong)index, generation, writer);
            try
            {
                await _device.WriteAsync((ulong)index, data).ConfigureAwait(false);
                block.Acknowledged = generation;
                block.Uncertain.Clear();
                Interlocked.Increment(ref _writes);
                Interlocked.Increment(ref _completions);
            }
            catch (Exception e) when (e is BlockDeviceException or OperationCanceledException or TimeoutException)
            {
                // Unknown whether it landed: either outcome is fine, as long as nothing older than the acknowledged one shows.
                block.Uncertain.Add(generation);
                Interlocked.Increment(ref _writeErrors);
                Note($"write of block {index} gen {generation} failed: {e.Message}");
                continue;
            }

            await VerifyAsync(index, back, "write-then-verify").ConfigureAwait(false);
        }
    }

    /// <summary>The readers' region (after the writers' blocks): written once, before any reader or fault, then only read.</summary>
    private ulong ReadRegionStart => (ulong)_blocks.Length;

    private async Task PrepareReadRegionAsync(CancellationToken cancellationToken)
    {
        if (_options.Readers == 0)
        {
            return;
        }

        var data = new byte[_device.BlockSize];
        for (int i = 0; i < _options.ReadBlocks; i++)
        {
            ulong lba = ReadRegionStart + (ulong)i;
            Stamp(data, lba, 1, -1);
            await _device.WriteAsync(lba, data).AsTask().WaitAsync(TimeSpan.FromSeconds(60), cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Reads only, never gated by a write: the gaps in their completions are how long reads take to move to
    /// another path when one is lost (reads need no fence).
    /// </summary>
    private async Task ReaderAsync(int reader, CancellationToken stop)
    {
        var buffer = new byte[_device.BlockSize];
        var random = new Random((reader * 104_729) + 3);
        while (!stop.IsCancellationRequested)
        {
            ulong lba = ReadRegionStart + (ulong)random.Next(_options.ReadBlocks);
            try
            {
                await _device.ReadAsync(lba, buffer).ConfigureAwait(false);
            }
            catch (Exception e) when (e is BlockDeviceException or OperationCanceledException or TimeoutException)
            {
                Interlocked.Increment(ref _readerErrors);
                Note($"reader {reader}: read of block {lba} failed: {e.Message}");
                continue;
            }

            Interlocked.Increment(ref _readerReads);
            Interlocked.Increment(ref _readerCompletions);
            if (!TryReadStamp(buffer, lba, out long generation) || generation != 1)
            {
                Interlocked.Increment(ref _badReads);
                Note($"reader {reader}: block {lba} of the read-only region does not hold its stamp");
            }
        }
    }

    /// <summary>Reads one block and checks it against what was acknowledged for it.</summary>
    private async Task VerifyAsync(int index, byte[] buffer, string when)
    {
        try
        {
            await _device.ReadAsync((ulong)index, buffer).ConfigureAwait(false);
            Interlocked.Increment(ref _reads);
            Interlocked.Increment(ref _completions);
        }
        catch (Exception e) when (e is BlockDeviceException or OperationCanceledException or TimeoutException)
        {
            Interlocked.Increment(ref _readErrors);
            Note($"{when}: read of block {index} failed: {e.Message}");
            return;
        }

        var block = _blocks[index];
        long acknowledged = block.Acknowledged;
        if (!TryReadStamp(buffer, (ulong)index, out long generation))
        {
            if (acknowledged == 0 && block.Uncertain.Count == 0 && IsUnwritten(buffer))
            {
                return; // never written yet
            }

            Interlocked.Increment(ref _badReads);
            Note($"{when}: block {index} holds no valid stamp (acknowledged gen {acknowledged})");
            return;
        }

        if (generation == acknowledged)
        {
            return;
        }

        if (generation > acknowledged && block.Uncertain.Contains(generation))
        {
            block.Acknowledged = generation; // a failed write that did land: it is the content now
            block.Uncertain.Clear();
            return;
        }

        if (generation < acknowledged)
        {
            Interlocked.Increment(ref _lostWrites);
            Note($"{when}: block {index} holds gen {generation}, older than the acknowledged gen {acknowledged}: an acknowledged write was lost or overwritten by a stale copy");
        }
        else
        {
            Interlocked.Increment(ref _badReads);
            Note($"{when}: block {index} holds gen {generation}, never written (acknowledged gen {acknowledged})");
        }
    }

    private async Task CheckpointAsync(TextWriter log, TimeSpan at, TimeSpan settle, bool writersRunning)
    {
        var pause = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        _pause = pause;
        var clock = Stopwatch.StartNew();
        var until = DateTime.UtcNow + TimeSpan.FromMinutes(2);
        while (writersRunning && Volatile.Read(ref _paused) < _options.Writers && DateTime.UtcNow < until)
        {
            await Task.Delay(10).ConfigureAwait(false);
        }

        if (settle > TimeSpan.Zero)
        {
            await Task.Delay(settle).ConfigureAwait(false);
        }

        var pausedIn = clock.Elapsed;
        long lostBefore = Interlocked.Read(ref _lostWrites);
        long badBefore = Interlocked.Read(ref _badReads);
        var buffer = new byte[_device.BlockSize];
        for (int i = 0; i < _blocks.Length; i++)
        {
            await VerifyAsync(i, buffer, $"checkpoint at {at.TotalSeconds:0} s").ConfigureAwait(false);
        }

        Interlocked.Increment(ref _checkpoints);
        log.WriteLine($"soak: checkpoint at {at.TotalSeconds:0} s (writers paused in {pausedIn.TotalSeconds:0.0} s, blocks read in {(clock.Elapsed - pausedIn).TotalSeconds:0.0} s): {Interlocked.Read(ref _writes)} writes and {Interlocked.Read(ref _reads)} reads so far; {_blocks.Length} blocks read, {Interlocked.Read(ref _lostWrites) - lostBefore} lost acknowledged writes, {Interlocked.Read(ref _badReads) - badBefore} bad reads");
        _pause = null;
        pause.TrySetResult();
    }

    /// <summary>
    /// Records every gap longer than the threshold in which <paramref name="completions"/> did not move.
    /// The writers' gaps ignore checkpoints (<paramref name="pausable"/>); the readers never pause.
    /// </summary>
    private async Task WatchStallsAsync(Func<long> completions, ConcurrentQueue<(long AtUnixMs, double Ms)> stalls, bool pausable, CancellationToken stop)
    {
        long last = completions();
        long lastChange = Stopwatch.GetTimestamp();
        bool inStall = false;
        while (!stop.IsCancellationRequested)
        {
            try
            {
                await Task.Delay(10, stop).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                break;
            }

            long now = completions();
            long timestamp = Stopwatch.GetTimestamp();
            bool paused = pausable && _pause is not null;
            if (now != last)
            {
                if (inStall)
                {
                    var duration = Stopwatch.GetElapsedTime(lastChange, timestamp);
                    stalls.Enqueue((DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() - (long)duration.TotalMilliseconds, duration.TotalMilliseconds));
                    inStall = false;
                }

                last = now;
                lastChange = timestamp;
            }
            else if (!inStall && !paused && Stopwatch.GetElapsedTime(lastChange, timestamp) > _options.StallThreshold)
            {
                inStall = true;
            }
            else if (paused)
            {
                inStall = false;
                lastChange = timestamp; // a checkpoint's pause is not a stall
            }
        }
    }

    private void Note(string problem)
    {
        if (_problems.Count < 1000)
        {
            _problems.Enqueue($"{DateTimeOffset.UtcNow:HH:mm:ss.fff} {problem}");
        }
    }

    private void Stamp(Span<byte> data, ulong lba, long generation, int writer)
    {
        BinaryPrimitives.WriteUInt64LittleEndian(data, Magic);
        BinaryPrimitives.WriteUInt64LittleEndian(data[8..], lba);
        BinaryPrimitives.WriteInt64LittleEndian(data[16..], generation);
        BinaryPrimitives.WriteInt32LittleEndian(data[24..], writer);
        BinaryPrimitives.WriteInt32LittleEndian(data[28..], _run);
        for (int i = PatternStart; i < data.Length; i++)
        {
            data[i] = Pattern(lba, generation, i);
        }
    }

    private bool TryReadStamp(ReadOnlySpan<byte> data, ulong lba, out long generation)
    {
        generation = 0;
        if (BinaryPrimitives.ReadUInt64LittleEndian(data) != Magic || BinaryPrimitives.ReadUInt64LittleEndian(data[8..]) != lba || BinaryPrimitives.ReadInt32LittleEndian(data[28..]) != _run)
        {
            return false;
        }

        generation = BinaryPrimitives.ReadInt64LittleEndian(data[16..]);
        for (int i = PatternStart; i < data.Length; i++)
        {
            if (data[i] != Pattern(lba, generation, i))
            {
                return false;
            }
        }

        return generation > 0;
    }

    /// <summary>Not written by this run: no stamp at all, or an earlier run's.</summary>
    private bool IsUnwritten(ReadOnlySpan<byte> data) => BinaryPrimitives.ReadUInt64LittleEndian(data) != Magic || BinaryPrimitives.ReadInt32LittleEndian(data[28..]) != _run;

    private static byte Pattern(ulong lba, long generation, int offset) => (byte)((lba * 31) + ((ulong)generation * 17) + (ulong)offset);

    /// <summary>One block's history: written by one writer only, so no locking.</summary>
    private sealed class Block
    {
        public long Highest { get; set; }

        public long Acknowledged { get; set; }

        public HashSet<long> Uncertain { get; } = [];
    }

    private sealed class DeviceWatcher : ReceiveActor
    {
        public DeviceWatcher(TaskCompletionSource<BlockDevice> added)
        {
            Receive<BlockDeviceAdded>(m =>
            {
                if (m.BlockDevice is { } device)
                {
                    added.TrySetResult(device);
                }
            });
        }
    }
}
