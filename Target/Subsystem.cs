using System.Collections.Immutable;
using ActorNvme.Protocol.Data;

namespace ActorNvme.Target;

/// <summary>An NVM subsystem to add to a target.</summary>
public sealed record NvmSubsystemOptions
{
    public NvmSubsystemOptions(string nqn)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(nqn);
        if (System.Text.Encoding.UTF8.GetByteCount(nqn) > 223)
        {
            throw new ArgumentException("an NQN is at most 223 bytes", nameof(nqn));
        }

        Nqn = nqn;
    }

    public string Nqn { get; }

    /// <summary>Serial number (SN, up to 20 ASCII characters); null derives one from the NQN.</summary>
    public string? SerialNumber { get; init; }

    /// <summary>Model number (MN, up to 40 ASCII characters).</summary>
    public string ModelNumber { get; init; } = "ActorNvme Target";

    /// <summary>Whether any host may connect; when false, only <see cref="AllowedHosts"/>.</summary>
    public bool AllowAnyHost { get; init; } = true;

    public IReadOnlyCollection<string> AllowedHosts { get; init; } = [];

    /// <summary>
    /// Whether it is reachable through every listener, including ones added later (unless unlinked from one);
    /// when false, only through listeners it is explicitly linked to.
    /// </summary>
    public bool LinkToAllListeners { get; init; } = true;

    /// <summary>NN: the highest namespace ID it may hold.</summary>
    public uint MaxNamespaces { get; init; } = 1024;
}

/// <summary>What the discovery subsystem and the NVM subsystems have in common: an NQN and controllers.</summary>
public abstract class SubsystemBase
{
    private readonly object _sync = new();
    private readonly Dictionary<ushort, Controller> _controllers = [];
    private ushort _nextControllerId = 1;

    private protected SubsystemBase(NvmeTarget target, string nqn)
    {
        Target = target;
        Nqn = nqn;
    }

    public string Nqn { get; }

    /// <summary>Live controllers (associations) of this subsystem.</summary>
    public int ControllerCount
    {
        get
        {
            lock (_sync)
            {
                return _controllers.Count;
            }
        }
    }

    /// <summary>How many times a host asked one of this subsystem's controllers for a normal shutdown (CC.SHN).</summary>
    public int ShutdownsRequested => Volatile.Read(ref _shutdownsRequested);

    private int _shutdownsRequested;

    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, int> _shutdownsByHost = new(StringComparer.Ordinal);

    /// <summary>How many normal shutdowns (CC.SHN) each host NQN asked this subsystem's controllers for.</summary>
    public IReadOnlyDictionary<string, int> ShutdownsByHost => new Dictionary<string, int>(_shutdownsByHost, StringComparer.Ordinal);

    internal void CountShutdownRequest(string hostNqn)
    {
        Interlocked.Increment(ref _shutdownsRequested);
        _shutdownsByHost.AddOrUpdate(hostNqn, 1, static (_, n) => n + 1);
    }

    /// <summary>How many Keep Alive commands this subsystem's controllers received.</summary>
    public long KeepAlivesReceived => Interlocked.Read(ref _keepAlivesReceived);

    private long _keepAlivesReceived;

    internal void CountKeepAlive() => Interlocked.Increment(ref _keepAlivesReceived);

    internal NvmeTarget Target { get; }

    internal abstract bool IsDiscovery { get; }

    /// <summary>A snapshot of the live controllers: who connected, through where, and what they enabled.</summary>
    public IReadOnlyList<TargetControllerInfo> GetControllers() => [.. Controllers().Select(c => c.Describe())];

    internal Controller[] Controllers()
    {
        lock (_sync)
        {
            return [.. _controllers.Values];
        }
    }

    internal Controller? FindController(ushort id)
    {
        lock (_sync)
        {
            return _controllers.GetValueOrDefault(id);
        }
    }

    /// <summary>Allocates a controller ID (1..FFEFh, as nvmet) and registers the controller; null when all are in use.</summary>
    internal Controller? CreateController(Func<ushort, Controller> create)
    {
        lock (_sync)
        {
            for (int i = 0; i < 0xFFEF; i++)
            {
                ushort id = _nextControllerId;
                _nextControllerId = (ushort)(id >= 0xFFEF ? 1 : id + 1);
                if (!_controllers.ContainsKey(id))
                {
                    var controller = create(id);
                    _controllers.Add(id, controller);
                    return controller;
                }
            }

            return null;
        }
    }

    internal void RemoveController(Controller controller)
    {
        lock (_sync)
        {
            if (_controllers.TryGetValue(controller.Id, out var found) && ReferenceEquals(found, controller))
            {
                _controllers.Remove(controller.Id);
            }
        }
    }

    internal abstract bool AllowsHost(string hostNqn);
}

/// <summary>
/// An NVM subsystem of an <see cref="NvmeTarget"/>: namespaces (RAM or null), allowed hosts, the
/// listeners it is linked to and its ANA groups. Changes take effect at once and raise the events a
/// host expects (namespace attribute changed, ANA change, discovery log change).
/// </summary>
public sealed class NvmSubsystem : SubsystemBase
{
    /// <summary>ANAGRPMAX and NANAGRPID reported in Identify Controller.</summary>
    public const uint MaxAnaGroups = 128;

    private readonly object _sync = new();
    private readonly HashSet<string> _allowedHosts;
    private readonly HashSet<TargetListener> _linked = [];
    private readonly HashSet<TargetListener> _unlinked = [];
    private readonly Dictionary<uint, AnaState> _anaStates = [];
    private readonly Dictionary<(TargetListener Listener, uint Group), AnaState> _anaStatesByListener = [];
    private ImmutableSortedDictionary<uint, TargetNamespace> _namespaces = ImmutableSortedDictionary<uint, TargetNamespace>.Empty;
    private bool _allowAnyHost;
    private long _anaChangeCount;

    internal NvmSubsystem(NvmeTarget target, NvmSubsystemOptions options)
        : base(target, options.Nqn)
    {
        Options = options;
        SerialNumber = options.SerialNumber ?? DeriveSerial(options.Nqn);
        if (SerialNumber.Length > IdentifyController.SerialNumberLength || !System.Text.Ascii.IsValid(SerialNumber))
        {
            throw new ArgumentException($"serial number is at most {IdentifyController.SerialNumberLength} ASCII characters", nameof(options));
        }

        if (options.ModelNumber.Length > IdentifyController.ModelNumberLength || !System.Text.Ascii.IsValid(options.ModelNumber))
        {
            throw new ArgumentException($"model number is at most {IdentifyController.ModelNumberLength} ASCII characters", nameof(options));
        }
        _allowAnyHost = options.AllowAnyHost;
        _allowedHosts = new HashSet<string>(options.AllowedHosts, StringComparer.Ordinal);
    }

    public NvmSubsystemOptions Options { get; }

    public string SerialNumber { get; }

    public string ModelNumber => Options.ModelNumber;

    public bool AllowAnyHost
    {
        get
        {
            lock (_sync)
            {
                return _allowAnyHost;
            }
        }
    }

    /// <summary>Namespaces by ID, ascending. A snapshot: the I/O path reads it without locking.</summary>
    public IReadOnlyList<TargetNamespace> Namespaces => [.. _namespaces.Values];

    internal override bool IsDiscovery => false;

    internal ImmutableSortedDictionary<uint, TargetNamespace> NamespaceMap => Volatile.Read(ref _namespaces);

    internal ulong AnaChangeCount => (ulong)Interlocked.Read(ref _anaChangeCount);

    public TargetNamespace? FindNamespace(uint namespaceId) => NamespaceMap.GetValueOrDefault(namespaceId);

    /// <summary>Adds a namespace; every controller gets it in its changed-namespace log and the namespace-attribute-changed AEN.</summary>
    public TargetNamespace AddNamespace(NamespaceOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        TargetNamespace ns;
        lock (_sync)
        {
            var map = _namespaces;
            uint nsid = options.NamespaceId ?? LowestFreeId(map);
            if (nsid == 0 || nsid > Options.MaxNamespaces)
            {
                throw new ArgumentOutOfRangeException(nameof(options), nsid, $"namespace ID is 1..{Options.MaxNamespaces}");
            }

            if (map.ContainsKey(nsid))
            {
                throw new InvalidOperationException($"namespace {nsid} already exists in {Nqn}");
            }

            ns = TargetNamespace.Create(options, nsid, options.Uuid ?? DeriveUuid(Nqn, nsid));
            Volatile.Write(ref _namespaces, map.Add(nsid, ns));
        }

        Target.Log.NamespaceAdded(Nqn, ns.NamespaceId, ns.Backend.ToString(), ns.SizeBytes);
        NotifyNamespaceChanged(ns.NamespaceId);
        return ns;
    }

    /// <summary>Removes a namespace (same events as adding one). I/O to it fails with Invalid Namespace from now on.</summary>
    public bool RemoveNamespace(uint namespaceId)
    {
        lock (_sync)
        {
            var map = _namespaces;
            if (!map.ContainsKey(namespaceId))
            {
                return false;
            }

            Volatile.Write(ref _namespaces, map.Remove(namespaceId));
        }

        Target.Log.NamespaceRemoved(Nqn, namespaceId);
        NotifyNamespaceChanged(namespaceId);
        return true;
    }

    /// <summary>
    /// Resizes a namespace to <paramref name="sizeBytes"/> (rounded down to whole blocks); every controller
    /// gets it in its changed-namespace log and the namespace-attribute-changed AEN. False when there is no such namespace.
    /// </summary>
    public bool ResizeNamespace(uint namespaceId, long sizeBytes)
    {
        var ns = FindNamespace(namespaceId);
        if (ns is null)
        {
            return false;
        }

        long blocks = sizeBytes / ns.BlockSize;
        if (blocks < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(sizeBytes), sizeBytes, "a namespace holds at least one block");
        }

        ns.Resize(blocks);
        Target.Log.NamespaceResized(Nqn, namespaceId, ns.SizeBytes);
        NotifyNamespaceChanged(namespaceId);
        return true;
    }

    /// <summary>Lets <paramref name="hostNqn"/> connect (and see this subsystem in the discovery log).</summary>
    public void AllowHost(string hostNqn)
    {
        lock (_sync)
        {
            if (!_allowedHosts.Add(hostNqn))
            {
                return;
            }
        }

        Target.DiscoveryChanged();
    }

    public void DisallowHost(string hostNqn)
    {
        lock (_sync)
        {
            if (!_allowedHosts.Remove(hostNqn))
            {
                return;
            }
        }

        Target.DiscoveryChanged();
    }

    public void SetAllowAnyHost(bool allow)
    {
        lock (_sync)
        {
            if (_allowAnyHost == allow)
            {
                return;
            }

            _allowAnyHost = allow;
        }

        Target.DiscoveryChanged();
    }

    /// <summary>Makes the subsystem reachable through <paramref name="listener"/> (a discovery log change).</summary>
    public void Link(TargetListener listener)
    {
        ArgumentNullException.ThrowIfNull(listener);
        lock (_sync)
        {
            bool changed = _unlinked.Remove(listener) | _linked.Add(listener);
            if (!changed)
            {
                return;
            }
        }

        Target.DiscoveryChanged();
    }

    /// <summary>
    /// Makes the subsystem unreachable through <paramref name="listener"/>: its controllers connected through it
    /// are dropped (as nvmet does when a subsystem is unlinked from a port), and the discovery log changes.
    /// </summary>
    public void Unlink(TargetListener listener)
    {
        ArgumentNullException.ThrowIfNull(listener);
        lock (_sync)
        {
            bool changed = _linked.Remove(listener) | _unlinked.Add(listener);
            if (!changed)
            {
                return;
            }
        }

        foreach (var controller in Controllers())
        {
            if (controller.Listener == listener)
            {
                controller.Teardown("subsystem unlinked from the listener");
            }
        }

        Target.DiscoveryChanged();
    }

    public bool IsLinked(TargetListener listener)
    {
        lock (_sync)
        {
            return Options.LinkToAllListeners ? !_unlinked.Contains(listener) : _linked.Contains(listener);
        }
    }

    /// <summary>
    /// Sets the ANA state of <paramref name="groupId"/>, through one listener or (null) all of them. Controllers
    /// on the affected listeners get the ANA change AEN; I/O to the group's namespaces through an inaccessible,
    /// persistently lost or changing path fails with the matching path status.
    /// </summary>
    public void SetAnaState(uint groupId, AnaState state, TargetListener? listener = null)
    {
        if (groupId is < 1 or > MaxAnaGroups)
        {
            throw new ArgumentOutOfRangeException(nameof(groupId), groupId, $"ANA group id is 1..{MaxAnaGroups}");
        }

        lock (_sync)
        {
            if (listener is null)
            {
                _anaStates[groupId] = state;
                foreach (var key in _anaStatesByListener.Keys.Where(k => k.Group == groupId).ToList())
                {
                    _anaStatesByListener.Remove(key);
                }
            }
            else
            {
                _anaStatesByListener[(listener, groupId)] = state;
            }

            Interlocked.Increment(ref _anaChangeCount);
        }

        Target.Log.AnaStateChanged(Nqn, groupId, state.ToString(), listener?.ToString() ?? "all listeners");
        foreach (var controller in Controllers())
        {
            if (listener is null || controller.Listener == listener)
            {
                controller.RaiseEvent(AsyncEvents.AnaChange);
            }
        }
    }

    public AnaState GetAnaState(uint groupId, TargetListener listener)
    {
        lock (_sync)
        {
            if (_anaStatesByListener.TryGetValue((listener, groupId), out var state))
            {
                return state;
            }

            return _anaStates.GetValueOrDefault(groupId, AnaState.Optimized);
        }
    }

    internal override bool AllowsHost(string hostNqn)
    {
        lock (_sync)
        {
            return _allowAnyHost || _allowedHosts.Contains(hostNqn);
        }
    }

    /// <summary>ANA groups as seen through <paramref name="listener"/>: group 1, every group with a namespace, every group with a set state.</summary>
    internal AnaLog AnaLog(TargetListener listener, bool groupsOnly)
    {
        var map = NamespaceMap;
        var groups = new SortedSet<uint> { 1 };
        lock (_sync)
        {
            groups.UnionWith(_anaStates.Keys);
            groups.UnionWith(_anaStatesByListener.Keys.Where(k => k.Listener == listener).Select(k => k.Group));
        }

        foreach (var ns in map.Values)
        {
            groups.Add(ns.AnaGroupId);
        }

        ulong changeCount = AnaChangeCount;
        var result = new List<AnaGroup>(groups.Count);
        foreach (uint group in groups)
        {
            uint[] members = groupsOnly ? [] : [.. map.Values.Where(ns => ns.AnaGroupId == group).Select(ns => ns.NamespaceId)];
            result.Add(new AnaGroup(group, changeCount, GetAnaState(group, listener), members));
        }

        return new AnaLog(changeCount, result);
    }

    internal void Detach(string reason)
    {
        foreach (var controller in Controllers())
        {
            controller.Teardown(reason);
        }
    }

    internal void ForgetListener(TargetListener listener)
    {
        lock (_sync)
        {
            _linked.Remove(listener);
            _unlinked.Remove(listener);
            foreach (var key in _anaStatesByListener.Keys.Where(k => k.Listener == listener).ToList())
            {
                _anaStatesByListener.Remove(key);
            }
        }
    }

    private void NotifyNamespaceChanged(uint namespaceId)
    {
        foreach (var controller in Controllers())
        {
            controller.NamespaceChanged(namespaceId);
        }
    }

    private static uint LowestFreeId(ImmutableSortedDictionary<uint, TargetNamespace> map)
    {
        uint id = 1;
        foreach (uint used in map.Keys)
        {
            if (used != id)
            {
                break;
            }

            id++;
        }

        return id;
    }

    private static string DeriveSerial(string nqn)
    {
        uint hash = ActorNvme.Protocol.Crc32C.Compute(System.Text.Encoding.UTF8.GetBytes(nqn));
        return $"AN{hash:x8}";
    }

    private static Guid DeriveUuid(string nqn, uint nsid)
    {
        var bytes = System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes($"{nqn}/{nsid}"));
        bytes[6] = (byte)((bytes[6] & 0x0F) | 0x80); // version 8 (name-based, custom)
        bytes[8] = (byte)((bytes[8] & 0x3F) | 0x80); // RFC 4122 variant
        return new Guid(bytes.AsSpan(0, 16), bigEndian: true);
    }
}
