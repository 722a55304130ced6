using System.Collections.Concurrent;
using System.Net;
using ActorNvme.Protocol.Tls;
using ActorNvme.Transport;
using ActorNvme.Transport.InMemory;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace ActorNvme.Target;

/// <summary>
/// An in-process NVMe/TCP target: a discovery subsystem, NVM subsystems with RAM or null namespaces,
/// listeners on TCP or on an <see cref="InMemoryNetwork"/>, and <see cref="Faults"/> to make it fail.
/// It runs from construction: listeners accept as soon as they are added. Dispose (or
/// <see cref="StopAsync"/>) closes every listener and connection.
/// </summary>
/// <example>
/// <code>
/// await using var target = new NvmeTarget();
/// var subsystem = target.AddSubsystem("nqn.2024-01.io.example:disk1");
/// subsystem.AddNamespace(NamespaceOptions.Ram(64 * 1024 * 1024));
/// var listener = target.ListenTcp("127.0.0.1", 0); // listener.Address.Port is the bound port
/// target.Faults.Blackhole(listener);
/// </code>
/// </example>
public sealed class NvmeTarget : IAsyncDisposable
{
    private static readonly TimeSpan StopTimeout = TimeSpan.FromSeconds(10);

    private readonly object _sync = new();
    private readonly List<TargetListener> _listeners = [];
    private readonly List<NvmSubsystem> _subsystems = [];
    private readonly List<DiscoveryReferral> _referrals = [];
    private readonly ConcurrentDictionary<(string Host, string Subsystem), string> _tlsPsks = new();
    private readonly ConcurrentDictionary<(string Host, string Subsystem), DhChapHostKeys> _dhChapKeys = new();
    private readonly Dictionary<Association, Task> _associations = [];
    private ushort _nextPortId = 1;
    private long _generation;
    private bool _stopped;

    public NvmeTarget(TargetOptions? options = null, ILogger? logger = null)
    {
        Options = options ?? TargetOptions.Default;
        Options.Validate();
        Log = logger ?? NullLogger.Instance;
        Faults = new TargetFaults(this);
        Discovery = new DiscoverySubsystem(this);
    }

    public TargetOptions Options { get; }

    public TargetFaults Faults { get; }

    public DiscoverySubsystem Discovery { get; }

    /// <summary>GENCTR of the discovery log: incremented on every change of what it lists.</summary>
    public ulong DiscoveryGeneration => (ulong)Interlocked.Read(ref _generation);

    public IReadOnlyList<TargetListener> Listeners
    {
        get
        {
            lock (_sync)
            {
                return [.. _listeners];
            }
        }
    }

    public IReadOnlyList<NvmSubsystem> Subsystems
    {
        get
        {
            lock (_sync)
            {
                return [.. _subsystems];
            }
        }
    }

    public IReadOnlyList<DiscoveryReferral> Referrals
    {
        get
        {
            lock (_sync)
            {
                return [.. _referrals];
            }
        }
    }

    /// <summary>Open connections (queues) across all listeners.</summary>
    public int ConnectionCount
    {
        get
        {
            lock (_sync)
            {
                return _associations.Count;
            }
        }
    }

    internal ILogger Log { get; }

    /// <summary>Listens on TCP <paramref name="host"/>:<paramref name="port"/>; port 0 lets the system pick (see <see cref="TargetListener.Address"/>).</summary>
    public TargetListener ListenTcp(string host = "127.0.0.1", int port = 0) => ListenTcp(host, port, secureChannel: false);

    /// <summary>As <see cref="ListenTcp(string, int)"/>; with <paramref name="secureChannel"/>, only TLS 1.3 with a PSK (<see cref="SetTlsPsk"/>), as SPDK's listener -k.</summary>
    public TargetListener ListenTcp(string host, int port, bool secureChannel)
    {
        var ip = IPAddress.Parse(host);
        ArgumentOutOfRangeException.ThrowIfNegative(port);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(port, 65535);
        return AddListener(id => new TcpTargetListener(this, id, ip, port) { SecureChannel = secureChannel });
    }

    /// <summary>
    /// The TLS PSK (an interchange string, NVMeTLSkey-1:hh:...:) <paramref name="hostNqn"/> uses with
    /// <paramref name="subsystemNqn"/> on secure-channel listeners; null removes it. Refused (FormatException) when it does not parse.
    /// </summary>
    public void SetTlsPsk(string subsystemNqn, string hostNqn, string? interchange)
    {
        ArgumentException.ThrowIfNullOrEmpty(subsystemNqn);
        ArgumentException.ThrowIfNullOrEmpty(hostNqn);
        if (interchange is null)
        {
            _tlsPsks.TryRemove((hostNqn, subsystemNqn), out _);
            return;
        }

        NvmeTlsPsk.Parse(interchange, $"TLS PSK of {hostNqn} for {subsystemNqn}").Dispose();
        _tlsPsks[(hostNqn, subsystemNqn)] = interchange.Trim();
    }

    /// <summary>The PSK for a handshake's identity; null when none was set.</summary>
    internal NvmeTlsPsk? FindTlsPsk(string hostNqn, string subsystemNqn) =>
        _tlsPsks.TryGetValue((hostNqn, subsystemNqn), out var interchange) ? NvmeTlsPsk.Parse(interchange) : null;

    /// <summary>
    /// Requires DH-HMAC-CHAP of <paramref name="hostNqn"/> on every queue (admin and I/O) it connects to
    /// <paramref name="subsystemNqn"/>: its Connect answer carries AUTHREQ.ATR and every command but Authentication
    /// Send/Receive and Property Get/Set is refused with Authentication Required until the host has proven its key.
    /// Null removes the requirement. Refused (FormatException, ArgumentException) when a key does not parse or a list is empty.
    /// Controllers already connected keep what they authenticated with; new queues use the new keys.
    /// </summary>
    public void SetDhChapKeys(string subsystemNqn, string hostNqn, DhChapHostKeys? keys)
    {
        ArgumentException.ThrowIfNullOrEmpty(subsystemNqn);
        ArgumentException.ThrowIfNullOrEmpty(hostNqn);
        if (subsystemNqn == DiscoverySubsystem.WellKnownNqn)
        {
            throw new ArgumentException("the discovery subsystem does not authenticate hosts (as nvmet and SPDK)", nameof(subsystemNqn));
        }

        if (keys is null)
        {
            _dhChapKeys.TryRemove((hostNqn, subsystemNqn), out _);
            return;
        }

        keys.Validate($"DH-HMAC-CHAP keys of {hostNqn} for {subsystemNqn}");
        _dhChapKeys[(hostNqn, subsystemNqn)] = keys with { HostKey = keys.HostKey.Trim(), ControllerKey = keys.ControllerKey?.Trim() };
    }

    /// <summary>As <see cref="SetDhChapKeys(string, string, DhChapHostKeys?)"/> with DHHC-1 strings and every hash and group allowed.</summary>
    public void SetDhChapKeys(string subsystemNqn, string hostNqn, string hostKey, string? controllerKey = null) =>
        SetDhChapKeys(subsystemNqn, hostNqn, new DhChapHostKeys(hostKey, controllerKey));

    /// <summary>The keys a host must prove for a subsystem; null when it need not authenticate.</summary>
    internal DhChapHostKeys? FindDhChapKeys(string hostNqn, string subsystemNqn) =>
        _dhChapKeys.TryGetValue((hostNqn, subsystemNqn), out var keys) ? keys : null;

    /// <summary>Listens on <paramref name="address"/> of an in-memory network.</summary>
    public TargetListener ListenInMemory(InMemoryNetwork network, TransportAddress address, bool secureChannel = false)
    {
        ArgumentNullException.ThrowIfNull(network);
        ArgumentNullException.ThrowIfNull(address);
        return AddListener(id => new InMemoryTargetListener(this, id, network, address) { SecureChannel = secureChannel });
    }

    /// <summary>Stops a listener for good, closing its connections. A discovery log change.</summary>
    public async Task RemoveListenerAsync(TargetListener listener)
    {
        ArgumentNullException.ThrowIfNull(listener);
        lock (_sync)
        {
            if (!_listeners.Remove(listener))
            {
                return;
            }
        }

        await TakeDownCoreAsync(listener, "listener removed").ConfigureAwait(false);
        foreach (var subsystem in Subsystems)
        {
            subsystem.ForgetListener(listener);
        }

        DiscoveryChanged();
    }

    public NvmSubsystem AddSubsystem(string nqn) => AddSubsystem(new NvmSubsystemOptions(nqn));

    /// <summary>Adds an NVM subsystem (no namespaces yet). A discovery log change.</summary>
    public NvmSubsystem AddSubsystem(NvmSubsystemOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.Nqn == DiscoverySubsystem.WellKnownNqn)
        {
            throw new ArgumentException("the discovery NQN is reserved", nameof(options));
        }

        var subsystem = new NvmSubsystem(this, options);
        lock (_sync)
        {
            ThrowIfStopped();
            if (_subsystems.Any(s => s.Nqn == options.Nqn))
            {
                throw new InvalidOperationException($"subsystem {options.Nqn} already exists");
            }

            _subsystems.Add(subsystem);
        }

        Log.SubsystemAdded(options.Nqn);
        DiscoveryChanged();
        return subsystem;
    }

    /// <summary>Removes an NVM subsystem and drops its controllers. A discovery log change.</summary>
    public bool RemoveSubsystem(string nqn)
    {
        NvmSubsystem? subsystem;
        lock (_sync)
        {
            subsystem = _subsystems.Find(s => s.Nqn == nqn);
            if (subsystem is null)
            {
                return false;
            }

            _subsystems.Remove(subsystem);
        }

        subsystem.Detach("subsystem removed");
        DiscoveryChanged();
        return true;
    }

    public NvmSubsystem? FindSubsystem(string nqn)
    {
        lock (_sync)
        {
            return _subsystems.Find(s => s.Nqn == nqn);
        }
    }

    /// <summary>
    /// Adds a referral to another discovery service to the discovery log; <paramref name="secureChannel"/>: its entry
    /// says that service's port requires TLS (TREQ secure channel required, SECTYPE TLS 1.3).
    /// </summary>
    public DiscoveryReferral AddReferral(TransportAddress address, ushort? portId = null, bool secureChannel = false)
    {
        ArgumentNullException.ThrowIfNull(address);
        DiscoveryReferral referral;
        lock (_sync)
        {
            referral = new DiscoveryReferral(address, portId ?? _nextPortId++, secureChannel);
            _referrals.Add(referral);
        }

        DiscoveryChanged();
        return referral;
    }

    public bool RemoveReferral(DiscoveryReferral referral)
    {
        lock (_sync)
        {
            if (!_referrals.Remove(referral))
            {
                return false;
            }
        }

        DiscoveryChanged();
        return true;
    }

    /// <summary>Closes every listener and connection. The target cannot be used afterwards.</summary>
    public async Task StopAsync()
    {
        List<TargetListener> listeners;
        lock (_sync)
        {
            if (_stopped)
            {
                return;
            }

            _stopped = true;
            listeners = [.. _listeners];
        }

        foreach (var listener in listeners)
        {
            listener.Stop();
        }

        Task[] running;
        Association[] open;
        lock (_sync)
        {
            running = [.. _associations.Values];
            open = [.. _associations.Keys];
        }

        // Closed outside the lock: a close may run the association's read loop to its end inline (pipe
        // readers resume on the closing thread), and that end takes the lock to unregister itself.
        foreach (var association in open)
        {
            association.Close("target stopped", force: true);
        }

        await Task.WhenAll(running).WaitAsync(StopTimeout).ConfigureAwait(false);
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            await StopAsync().ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
        }
    }

    internal SubsystemBase? FindAnySubsystem(string nqn) =>
        nqn == DiscoverySubsystem.WellKnownNqn ? Discovery : FindSubsystem(nqn);

    /// <summary>The discovery log changed: GENCTR moves on, and discovery controllers that asked for it get the AEN.</summary>
    internal void DiscoveryChanged()
    {
        ulong generation = (ulong)Interlocked.Increment(ref _generation);
        Log.DiscoveryChanged(generation);
        foreach (var controller in Discovery.Controllers())
        {
            controller.RaiseEvent(AsyncEvents.DiscoveryLogChange);
        }
    }

    internal async Task TakeDownListenerAsync(TargetListener listener)
    {
        await TakeDownCoreAsync(listener, "listener taken down").ConfigureAwait(false);
        DiscoveryChanged();
    }

    internal void BringUpListener(TargetListener listener)
    {
        lock (_sync)
        {
            ThrowIfStopped();
            if (!_listeners.Contains(listener))
            {
                throw new InvalidOperationException($"{listener} was removed from this target");
            }
        }

        if (!listener.IsUp)
        {
            listener.Start();
            Log.ListenerStarted(listener.ToString());
            DiscoveryChanged();
        }
    }

    internal async Task ServeAsync(TargetListener listener, TargetConnection connection)
    {
        var association = new Association(this, listener, connection);
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var run = RunWhenRegisteredAsync(association, started.Task);
        lock (_sync)
        {
            if (_stopped || !listener.IsUp || _associations.Count >= Options.MaxConnections)
            {
                Log.ConnectionRefused(connection.Remote, listener.ToString(), _associations.Count);
                connection.Close();
                return;
            }

            _associations.Add(association, run);
        }

        Log.ConnectionAccepted(connection.Remote, listener.ToString());
        started.SetResult();
        await run.ConfigureAwait(false);
    }

    internal void Unregister(Association association)
    {
        lock (_sync)
        {
            _associations.Remove(association);
        }
    }

    internal List<Association> Associations(TargetListener? listener = null, string? subsystemNqn = null)
    {
        lock (_sync)
        {
            return [.. _associations.Keys.Where(a => (listener is null || a.Listener == listener) && (subsystemNqn is null || a.SubsystemNqn == subsystemNqn))];
        }
    }

    private static async Task RunWhenRegisteredAsync(Association association, Task registered)
    {
        await registered.ConfigureAwait(false);
        await association.RunAsync().ConfigureAwait(false);
    }

    private TargetListener AddListener(Func<ushort, TargetListener> create)
    {
        TargetListener listener;
        lock (_sync)
        {
            ThrowIfStopped();
            listener = create(_nextPortId++);
            listener.Start();
            _listeners.Add(listener);
        }

        Log.ListenerStarted(listener.ToString());
        DiscoveryChanged();
        return listener;
    }

    private async Task TakeDownCoreAsync(TargetListener listener, string reason)
    {
        listener.Stop();
        List<KeyValuePair<Association, Task>> affected;
        lock (_sync)
        {
            affected = [.. _associations.Where(a => a.Key.Listener == listener)];
        }

        var running = affected.Select(a => a.Value).ToArray();
        foreach (var (association, _) in affected)
        {
            association.Close(reason, force: true); // outside the lock, as in StopAsync
        }

        Log.ListenerStopped(listener.ToString(), reason);
        try
        {
            await Task.WhenAll(running).WaitAsync(StopTimeout).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
        }
    }

    private void ThrowIfStopped() => ObjectDisposedException.ThrowIf(_stopped, this);
}
