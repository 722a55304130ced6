namespace ActorNvme.Io;

/// <summary>
/// The one handle that manages a <see cref="BlockDevice"/>: which paths carry its I/O, whether held
/// I/O fails fast, and its deletion. Created together with the device; the creator (a subsystem
/// actor) keeps this and hands out only <see cref="Device"/>, so users do I/O and nothing else.
/// </summary>
/// <remarks>
/// Meant to be called from one owner at a time (an actor's message handler). Path changes release
/// held I/O on the thread pool, never on the caller's thread, so callers' continuations do not run
/// inside the owner.
/// </remarks>
public sealed class BlockDeviceOwner
{
    /// <param name="name">The device's name, e.g. nvme0n1.</param>
    /// <param name="subsystemNqn">The NVM subsystem the namespace belongs to.</param>
    /// <param name="namespaceId">NSID.</param>
    /// <param name="blockSize">Bytes per logical block: a power of two of at least 512.</param>
    /// <param name="blockCount">Logical blocks in the namespace (NSZE), at least 1.</param>
    /// <param name="options">Retries and hold limit; <see cref="BlockDeviceOptions.Default"/> when null.</param>
    /// <param name="nguid">NGUID, 0 when the namespace reports none.</param>
    /// <param name="eui64">EUI-64, 0 when the namespace reports none.</param>
    /// <param name="uuid">Namespace UUID, empty when the namespace reports none.</param>
    /// <param name="reservationCapabilities">RESCAP of the namespace (None: no reservations).</param>
    public BlockDeviceOwner(
        string name,
        string subsystemNqn,
        uint namespaceId,
        int blockSize,
        ulong blockCount,
        BlockDeviceOptions? options = null,
        UInt128 nguid = default,
        ulong eui64 = 0,
        Guid uuid = default,
        Protocol.Nvme.ReservationCapabilities reservationCapabilities = Protocol.Nvme.ReservationCapabilities.None)
    {
        Device = new BlockDevice(name, subsystemNqn, namespaceId, blockSize, blockCount, options)
        {
            Nguid = nguid,
            Eui64 = eui64,
            Uuid = uuid,
            ReservationCapabilities = reservationCapabilities,
        };
    }

    /// <summary>The device's public I/O surface: what may be handed to users.</summary>
    public BlockDevice Device { get; }

    /// <summary>The attached paths by key, with their I/O queues (a snapshot).</summary>
    public IReadOnlyList<KeyValuePair<string, IoQueueSet>> Paths => Device.Paths;

    /// <summary>
    /// Routes I/O through <paramref name="queues"/> under <paramref name="pathKey"/> (replacing what
    /// that key held), and resubmits held I/O.
    /// </summary>
    public void AttachPath(string pathKey, IoQueueSet queues) => Device.AttachPath(pathKey, queues);

    /// <summary>
    /// Stops routing new I/O through <paramref name="pathKey"/>. Commands in flight there finish there;
    /// those the path's loss fails (its owner aborts the queues) are retried on another path or held.
    /// </summary>
    public void DetachPath(string pathKey) => Device.DetachPath(pathKey);

    /// <summary>Records a path's ANA state for this namespace (from the ANA log page); see <see cref="BlockDevice"/> for its effect on path choice.</summary>
    public void SetPathAnaState(string pathKey, Protocol.Data.AnaState state) => Device.SetPathAnaState(pathKey, state);

    /// <summary>The ANA state recorded for a path, or null when no such path is attached.</summary>
    public Protocol.Data.AnaState? PathAnaState(string pathKey) => Device.PathAnaState(pathKey);

    /// <summary>Sets the multipath policy (null: the default round robin); applies to the next I/O.</summary>
    public void SetPolicy(MultipathPolicy? policy) => Device.SetPolicy(policy);

    /// <summary>Whether new I/O goes to <paramref name="queues"/> now: the preferred path under active_passive, any usable path otherwise.</summary>
    public bool IsCurrentPath(IoQueueSet queues) =>
        queues.IsUsable && !queues.IsAnaUnavailable && (Device.PreferredPath() is not { } preferred ? Device.Policy?.Mode != MultipathPolicyMode.ActivePassive : preferred == queues);

    /// <summary>While true and no path is usable, held and new I/O fails at once (fast-io-fail-timeout passed).</summary>
    public void SetFailFast(bool failFast) => Device.SetFailFast(failFast);

    /// <summary>The namespace now holds <paramref name="blockCount"/> blocks (it was resized at the target).</summary>
    public void Resize(ulong blockCount) => Device.Resize(blockCount);

    /// <summary>The device is gone: held and new I/O fails with <see cref="BlockDeviceErrorKind.Deleted"/>, naming <paramref name="reason"/>. Only the first reason counts.</summary>
    public void Delete(string reason) => Device.Delete(reason);

    public override string ToString() => $"owner of {Device}";
}
