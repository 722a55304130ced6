namespace ActorNvme.Target;

/// <summary>What stores a namespace's blocks.</summary>
public enum NamespaceBackend
{
    /// <summary>Blocks kept in memory, allocated on first write (so a large namespace costs only what is written).</summary>
    Ram,

    /// <summary>Reads return zeros, writes are discarded: for benchmarks of the transport alone.</summary>
    Null,
}

/// <summary>A namespace to add to a subsystem.</summary>
public sealed record NamespaceOptions
{
    /// <summary>Namespace ID; null picks the lowest free one.</summary>
    public uint? NamespaceId { get; init; }

    public NamespaceBackend Backend { get; init; } = NamespaceBackend.Ram;

    /// <summary>Size in bytes; rounded down to whole blocks.</summary>
    public long SizeBytes { get; init; } = 64L * 1024 * 1024;

    /// <summary>Logical block size: 512 or 4096.</summary>
    public int BlockSize { get; init; } = 512;

    /// <summary>ANA group the namespace belongs to (1..128).</summary>
    public uint AnaGroupId { get; init; } = 1;

    /// <summary>UUID reported in the namespace identification descriptors; null derives one from the subsystem NQN and NSID.</summary>
    public Guid? Uuid { get; init; }

    /// <summary>
    /// False: Identify Namespace reports no reservation capabilities (RESCAP 0), as a target without reservations
    /// does, so that hosts treat the namespace as one they cannot fence (the commands are still served).
    /// </summary>
    public bool ReportsReservations { get; init; } = true;

    public static NamespaceOptions Ram(long sizeBytes, int blockSize = 512) => new() { Backend = NamespaceBackend.Ram, SizeBytes = sizeBytes, BlockSize = blockSize };

    public static NamespaceOptions Null(long sizeBytes, int blockSize = 512) => new() { Backend = NamespaceBackend.Null, SizeBytes = sizeBytes, BlockSize = blockSize };
}

/// <summary>A namespace of an <see cref="NvmSubsystem"/>.</summary>
public abstract class TargetNamespace
{
    private protected TargetNamespace(uint namespaceId, int blockSize, long blockCount, uint anaGroupId, Guid uuid)
    {
        NamespaceId = namespaceId;
        BlockSize = blockSize;
        _blockCount = blockCount;
        AnaGroupId = anaGroupId;
        Uuid = uuid;
        BlockSizeShift = System.Numerics.BitOperations.Log2((uint)blockSize);
    }

    public uint NamespaceId { get; }

    public int BlockSize { get; }

    private long _blockCount;

    /// <summary>Blocks in the namespace (NSZE); changes when it is resized.</summary>
    public long BlockCount => Volatile.Read(ref _blockCount);

    public long SizeBytes => BlockCount * BlockSize;

    public uint AnaGroupId { get; }

    public Guid Uuid { get; }

    public abstract NamespaceBackend Backend { get; }

    /// <summary>Whether Identify Namespace reports its reservation capabilities (<see cref="NamespaceOptions.ReportsReservations"/>).</summary>
    public bool ReportsReservations { get; private init; } = true;

    /// <summary>Registrants, holder and type of this namespace's reservation (Reservation Register/Acquire/Release/Report).</summary>
    public NamespaceReservations Reservations { get; } = new();

    private readonly System.Collections.Concurrent.ConcurrentDictionary<Controller, IoTally> _ioControllers = new();
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, long> _retiredWritesByHost = new(StringComparer.Ordinal);
    private readonly System.Collections.Concurrent.ConcurrentQueue<string> _overlaps = new();
    private int _peakIoHosts;
    private int _overlapCount;

    /// <summary>Controllers (associations) that did I/O to this namespace and are neither shut down nor gone.</summary>
    public int ConcurrentIoHosts => _ioControllers.Count;

    /// <summary>The most controllers ever doing I/O to this namespace at once: above 1, two hosts wrote it at the same time.</summary>
    public int PeakConcurrentIoHosts => Volatile.Read(ref _peakIoHosts);

    /// <summary>
    /// Times a host (host NQN and host identifier) began I/O to this namespace while a controller of another host
    /// was still doing I/O to it (neither shut down nor gone): 0 is single writer.
    /// </summary>
    public int OverlappingIoHosts => Volatile.Read(ref _overlapCount);

    /// <summary>The overlaps counted by <see cref="OverlappingIoHosts"/>: "new host while old host", at most 64 kept.</summary>
    public IReadOnlyList<string> Overlaps => [.. _overlaps];

    /// <summary>Write commands (Write, Write Zeroes) this namespace executed, per host ("host NQN hostid").</summary>
    public IReadOnlyDictionary<string, long> WritesByHost
    {
        get
        {
            var writes = new Dictionary<string, long>(_retiredWritesByHost, StringComparer.Ordinal);
            foreach (var (controller, tally) in _ioControllers)
            {
                string host = HostOf(controller);
                writes[host] = writes.GetValueOrDefault(host) + Volatile.Read(ref tally.Writes);
            }

            return writes;
        }
    }

    internal static string HostOf(Controller controller) => $"{controller.HostNqn} {controller.HostId:N}";

    /// <summary>Counts <paramref name="controller"/> among the hosts doing I/O here; its tally of writes to this namespace.</summary>
    internal IoTally NoteIoFrom(Controller controller)
    {
        if (_ioControllers.TryGetValue(controller, out var known))
        {
            return known;
        }

        var tally = new IoTally(this);
        var added = _ioControllers.GetOrAdd(controller, tally);
        if (!ReferenceEquals(added, tally))
        {
            return added;
        }

        string host = HostOf(controller);
        foreach (var other in _ioControllers.Keys)
        {
            if (!ReferenceEquals(other, controller) && HostOf(other) != host)
            {
                Interlocked.Increment(ref _overlapCount);
                if (_overlaps.Count < 64)
                {
                    _overlaps.Enqueue($"{host} (controller {controller.Id}) while {HostOf(other)} (controller {other.Id})");
                }

                break;
            }
        }

        int now = _ioControllers.Count;
        int peak;
        while (now > (peak = Volatile.Read(ref _peakIoHosts)) && Interlocked.CompareExchange(ref _peakIoHosts, now, peak) != peak)
        {
        }

        return tally;
    }

    internal void ForgetIoFrom(Controller controller)
    {
        if (_ioControllers.TryRemove(controller, out var tally))
        {
            long writes = Volatile.Read(ref tally.Writes);
            _retiredWritesByHost.AddOrUpdate(HostOf(controller), writes, (_, n) => n + writes);
        }
    }

    /// <summary>One controller's writes to one namespace; incremented by its I/O queues' readers.</summary>
    internal sealed class IoTally(TargetNamespace ns)
    {
        public long Writes;

        public TargetNamespace Namespace { get; } = ns;
    }

    internal int BlockSizeShift { get; }

    /// <summary>NGUID: the UUID's 16 bytes (unique per namespace, stable for its life).</summary>
    internal byte[] Nguid => Uuid.ToByteArray(bigEndian: true);

    /// <summary>Copies <paramref name="destination"/>.Length bytes from byte <paramref name="offset"/>.</summary>
    public abstract void Read(long offset, Span<byte> destination);

    public abstract void Write(long offset, ReadOnlySpan<byte> source);

    /// <summary>Zeroes (and, for RAM, releases where whole chunks are covered) <paramref name="length"/> bytes.</summary>
    public abstract void Zero(long offset, long length);

    /// <summary>
    /// Sets the size to <paramref name="blockCount"/> blocks (grown: the new blocks read as zeros; shrunk:
    /// I/O beyond the new end is refused). I/O racing the change may see either size.
    /// </summary>
    internal void Resize(long blockCount)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(blockCount, 1);
        Grow(blockCount * BlockSize);
        Volatile.Write(ref _blockCount, blockCount);
    }

    /// <summary>Makes room for <paramref name="sizeBytes"/> bytes before the size is published.</summary>
    private protected virtual void Grow(long sizeBytes)
    {
    }

    internal static TargetNamespace Create(NamespaceOptions options, uint namespaceId, Guid uuid)
    {
        if (options.BlockSize is not (512 or 4096))
        {
            throw new ArgumentOutOfRangeException(nameof(options), options.BlockSize, "block size is 512 or 4096 bytes");
        }

        long blocks = options.SizeBytes / options.BlockSize;
        if (blocks < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(options), options.SizeBytes, "a namespace holds at least one block");
        }

        if (options.AnaGroupId is < 1 or > NvmSubsystem.MaxAnaGroups)
        {
            throw new ArgumentOutOfRangeException(nameof(options), options.AnaGroupId, $"ANA group id is 1..{NvmSubsystem.MaxAnaGroups}");
        }

        return options.Backend == NamespaceBackend.Null
            ? new NullNamespace(namespaceId, options.BlockSize, blocks, options.AnaGroupId, uuid) { ReportsReservations = options.ReportsReservations }
            : new RamNamespace(namespaceId, options.BlockSize, blocks, options.AnaGroupId, uuid) { ReportsReservations = options.ReportsReservations };
    }
}

/// <summary>Blocks in memory, in 1 MiB chunks allocated on first write; an unwritten chunk reads as zeros.</summary>
internal sealed class RamNamespace : TargetNamespace
{
    private const int ChunkShift = 20;
    private const int ChunkSize = 1 << ChunkShift;
    private readonly Lock _growing = new();
    private byte[]?[] _chunks;

    public RamNamespace(uint namespaceId, int blockSize, long blockCount, uint anaGroupId, Guid uuid)
        : base(namespaceId, blockSize, blockCount, anaGroupId, uuid)
    {
        _chunks = new byte[]?[ChunksFor(SizeBytes)];
    }

    public override NamespaceBackend Backend => NamespaceBackend.Ram;

    private protected override void Grow(long sizeBytes)
    {
        lock (_growing)
        {
            var current = Volatile.Read(ref _chunks);
            int needed = ChunksFor(sizeBytes);
            if (needed > current.Length)
            {
                // Shrinking keeps the chunks: growing back shows what was there, as a resized file would not; a test target may.
                var larger = new byte[]?[needed];
                Array.Copy(current, larger, current.Length);
                Volatile.Write(ref _chunks, larger);
            }
        }
    }

    private static int ChunksFor(long sizeBytes) => (int)((sizeBytes + ChunkSize - 1) >> ChunkShift);

    public override void Read(long offset, Span<byte> destination)
    {
        while (!destination.IsEmpty)
        {
            int index = (int)(offset >> ChunkShift);
            int within = (int)(offset & (ChunkSize - 1));
            int count = Math.Min(destination.Length, ChunkSize - within);
            var chunk = Volatile.Read(ref Volatile.Read(ref _chunks)[index]);
            if (chunk is null)
            {
                destination[..count].Clear();
            }
            else
            {
                chunk.AsSpan(within, count).CopyTo(destination);
            }

            destination = destination[count..];
            offset += count;
        }
    }

    public override void Write(long offset, ReadOnlySpan<byte> source)
    {
        while (!source.IsEmpty)
        {
            int index = (int)(offset >> ChunkShift);
            int within = (int)(offset & (ChunkSize - 1));
            int count = Math.Min(source.Length, ChunkSize - within);
            source[..count].CopyTo(Chunk(index).AsSpan(within, count));
            source = source[count..];
            offset += count;
        }
    }

    public override void Zero(long offset, long length)
    {
        while (length > 0)
        {
            int index = (int)(offset >> ChunkShift);
            int within = (int)(offset & (ChunkSize - 1));
            int count = (int)Math.Min(length, ChunkSize - within);
            if (count == ChunkSize)
            {
                Volatile.Write(ref Volatile.Read(ref _chunks)[index], null);
            }
            else
            {
                Volatile.Read(ref Volatile.Read(ref _chunks)[index])?.AsSpan(within, count).Clear();
            }

            length -= count;
            offset += count;
        }
    }

    private byte[] Chunk(int index)
    {
        var chunks = Volatile.Read(ref _chunks);
        var chunk = Volatile.Read(ref chunks[index]);
        if (chunk is not null)
        {
            return chunk;
        }

        // Allocated under the grow lock, so a chunk cannot land in a table that a resize has just copied.
        lock (_growing)
        {
            chunks = Volatile.Read(ref _chunks);
            return chunks[index] ??= new byte[ChunkSize];
        }
    }
}

/// <summary>Reads zeros, discards writes.</summary>
internal sealed class NullNamespace(uint namespaceId, int blockSize, long blockCount, uint anaGroupId, Guid uuid)
    : TargetNamespace(namespaceId, blockSize, blockCount, anaGroupId, uuid)
{
    public override NamespaceBackend Backend => NamespaceBackend.Null;

    public override void Read(long offset, Span<byte> destination) => destination.Clear();

    public override void Write(long offset, ReadOnlySpan<byte> source)
    {
    }

    public override void Zero(long offset, long length)
    {
    }
}
