using Akka.Actor;
using Akka.Cluster.Sharding;
using Akka.Event;
using Akka.Persistence;
using ActorNvme.Actors.Connection;
using ActorNvme.Actors.Settings;
using ActorNvme.Actors.Subsystem;
using SubsystemMessages = ActorNvme.Actors.Subsystem.Subsystem;

namespace ActorNvme.Cluster;

/// <summary>
/// One sharded subsystem entity: the only holder, in the whole cluster, of the SubsystemActor (and so of
/// the controllers and block devices) for one subsystem NQN as one host NQN sees it. It reuses the
/// single-process SubsystemActor unchanged and adds ownership: on <see cref="ClusterSubsystem.HandOff"/>
/// it detaches its subsystem (every controller shuts down with CC.SHN) and stops only when the subsystem
/// has terminated, so the shard — and the next owner's first connect — comes after the last command of
/// this one.
/// Its desired state (the last <see cref="ClusterSubsystem.EnsureAttached"/> that changed it, or a detach) is
/// kept in the cluster's store: when remember-entities starts it again — on its shard's new node, or after a
/// full restart of the cluster — it attaches at once, without waiting for the coordinator to read the logs
/// (or when they cannot be read).
/// </summary>
internal sealed class SubsystemEntityActor : ReceivePersistentActor
{
    /// <summary>Prefix of the entities' persistence ids (the rest is the entity's actor name).</summary>
    public const string PersistencePrefix = "nvme-subsystem-entity|";

    private const string ChildName = "subsystem";
    private readonly NvmeHostSettings _settings;
    private readonly IAdminConnector _connector;
    private readonly string _node;
    private readonly IActorRef _nodeView;
    private readonly WriterFence? _fence;
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private ClusterSubsystem.EnsureAttached? _desired;

    // What the store holds for this entity: compared with each EnsureAttached so that only a change is written.
    private ClusterSubsystem.EnsureAttached? _stored;
    private IActorRef? _subsystem;
    private bool _detaching;
    private bool _handingOff;
    private bool _attached;
    private IReadOnlyList<string> _devices = Array.Empty<string>();

    // Paths already given to the current subsystem: the coordinator re-sends the desired state every few
    // hundred milliseconds, and only a path not seen before becomes an AddPath.
    private readonly HashSet<string> _paths = new(StringComparer.Ordinal);

    public SubsystemEntityActor(NvmeHostSettings settings, IAdminConnector connector, string node, IActorRef nodeView, TimeSpan unclaimedTimeout, WriterFence? fence = null)
    {
        _fence = fence;
        _settings = settings;
        _connector = connector;
        _node = node;
        _nodeView = nodeView;

        // Remember-entities starts every remembered entity after a restart or a move, before anyone asks for
        // it; one that the desired state no longer names is never asked for, and is forgotten after this.
        Context.SetReceiveTimeout(unclaimedTimeout);
        Recover<ClusterSubsystem.EnsureAttached>(e => _stored = e);
        Recover<ClusterSubsystem.EnsureDetached>(_ => _stored = null);
        Recover<RecoveryCompleted>(_ =>
        {
            PublishEntity(EntityStage.Recovered);
            if (_stored is { } stored)
            {
                _log.Info("{0}: remembered; attaching again", stored.SubsystemNqn);
                OnEnsureAttached(stored);
            }
        });
        Command<ReceiveTimeout>(_ =>
        {
            if (_desired is null && _subsystem is null)
            {
                _log.Info("{0}: no desired state within the unclaimed-entity timeout; forgotten", Self.Path.Name);
                Forget();
            }
        });
        Command<ClusterSubsystem.EnsureAttached>(OnDesired);
        Command<ClusterSubsystem.EnsureDetached>(OnDetachWanted);
        Command<DeleteMessagesSuccess>(_ => { });
        Command<DeleteMessagesFailure>(m => _log.Warning("{0}: older desired states not deleted: {1}", Self.Path.Name, m.Cause.Message));
        Command<ClusterSubsystem.GetOwnership>(m => Sender.Tell(new ClusterSubsystem.Ownership(m.SubsystemNqn, m.HostNqn, _node, _attached, _devices)));
        Command<ClusterSubsystem.HandOff>(_ => OnHandOff());
        Command<SubsystemMessages.Attached>(OnAttached);
        Command<SubsystemMessages.Report>(OnReport);
        Command<Terminated>(OnSubsystemTerminated);
    }

    public override string PersistenceId => PersistencePrefix + Self.Path.Name;

    /// <summary>Writes a desired state that differs from the stored one, then acts on it.</summary>
    private void OnDesired(ClusterSubsystem.EnsureAttached message)
    {
        if (_handingOff)
        {
            return; // see OnEnsureAttached
        }

        if (_stored is { } stored && SameDesire(stored, message))
        {
            OnEnsureAttached(message);
            return;
        }

        // Paths as an array: the stored event is read back by the JSON serializer.
        var normalized = message with { Paths = message.Paths.ToArray() };
        Persist(normalized, e =>
        {
            _stored = e;
            DeleteOlder();
            OnEnsureAttached(e);
        });
    }

    private void OnDetachWanted(ClusterSubsystem.EnsureDetached message)
    {
        if (_stored is null)
        {
            OnEnsureDetached(message);
            return;
        }

        Persist(message, e =>
        {
            _stored = null;
            DeleteOlder();
            OnEnsureDetached(e);
        });
    }

    // Only the latest desired state matters: the ones before it are deleted.
    private void DeleteOlder()
    {
        if (LastSequenceNr > 1)
        {
            DeleteMessages(LastSequenceNr - 1);
        }
    }

    private static bool SameDesire(ClusterSubsystem.EnsureAttached a, ClusterSubsystem.EnsureAttached b) =>
        a.SubsystemNqn == b.SubsystemNqn && a.HostNqn == b.HostNqn && a.Name == b.Name && Equals(a.Options, b.Options)
        && a.Paths.ToHashSet(StringComparer.Ordinal).SetEquals(b.Paths);

    /// <param name="fence">When set, every block device is handed to writers only after this node holds its namespace's reservation (preempting a previous owner that crashed or is cut off).</param>
    public static Props Props(NvmeHostSettings settings, IAdminConnector connector, string node, IActorRef nodeView, TimeSpan unclaimedTimeout, WriterFence? fence = null) =>
        Akka.Actor.Props.Create(() => new SubsystemEntityActor(settings, connector, node, nodeView, unclaimedTimeout, fence));

    /// <summary>
    /// Stops for good: through the shard (passivation), so that remember-entities forgets the entity; an
    /// entity that only stopped itself would be started again.
    /// </summary>
    private void Forget()
    {
        Context.SetReceiveTimeout(null);
        Context.Parent.Tell(new Passivate(PoisonPill.Instance));
    }

    protected override void PreStart()
    {
        PublishEntity(EntityStage.Started);
        base.PreStart();
    }

    private void PublishEntity(EntityStage stage) =>
        Context.System.EventStream.Publish(new ClusterSubsystem.EntityEvent(Uri.UnescapeDataString(Self.Path.Name), _node, stage, _stored is not null, DateTimeOffset.UtcNow));

    protected override void PostStop() => _nodeView.Tell(new ClusterView.LocalSubsystemChanged(Self.Path.Name, null));

    /// <summary>The subsystem's state after every change: this node's view (the cluster-wide lists) is made of these.</summary>
    private void OnReport(SubsystemMessages.Report report)
    {
        if (!report.Subsystem.Equals(_subsystem))
        {
            return; // a late report of a subsystem already replaced
        }

        var view = report.Removed is not null ? null : new ClusterView.SubsystemView(
            report.Name,
            report.SubsystemNqn,
            report.HostNqn,
            report.Paths.Select(p => new ClusterView.PathView(p.Name, p.State.ToString(), p.Reason, p.Address.Host, p.Address.Port, p.IsRefused ? p.Refusal.ToString() : null)).ToArray(),
            report.Devices.Select(d => new ClusterView.DeviceView(d.Name, d.Controller, d.SubsystemNqn, d.NamespaceId, d.BlockSize, d.BlockCount)).ToArray());
        _nodeView.Tell(new ClusterView.LocalSubsystemChanged(Self.Path.Name, view));
    }

    private void OnEnsureAttached(ClusterSubsystem.EnsureAttached message)
    {
        if (_handingOff)
        {
            return; // the shard buffers messages during a handoff; one that slipped in goes to the next owner with the next reconcile
        }

        _desired = message;
        Context.SetReceiveTimeout(null);
        if (_subsystem is not null)
        {
            if (!_detaching)
            {
                foreach (string path in message.Paths)
                {
                    if (_paths.Add(path) && TryParse(path) is { } address)
                    {
                        _subsystem.Tell(new SubsystemMessages.AddPath(address));
                    }
                }
            }

            return; // a subsystem still detaching: started again after its Terminated
        }

        StartSubsystem(message);
    }

    private void StartSubsystem(ClusterSubsystem.EnsureAttached message)
    {
        var paths = message.Paths.Select(TryParse).OfType<Transport.TransportAddress>().Distinct().ToArray();
        if (paths.Length == 0)
        {
            _log.Warning("{0}: no usable path in [{1}]; not attached", message.SubsystemNqn, string.Join(", ", message.Paths));
            return;
        }

        _paths.Clear();
        _paths.UnionWith(message.Paths);
        var settings = _settings with { HostNqn = message.HostNqn };
        try
        {
            settings = message.Options?.Apply(settings) ?? settings;
        }
        catch (InvalidNvmeSettingsException e)
        {
            _log.Warning("{0}: options not applied ({1}); the node's settings are used", message.SubsystemNqn, e.Message);
        }

        string name = message.Name is { Length: > 0 } given ? given : ClusterSubsystem.LocalName(message.SubsystemNqn);
        var options = new SubsystemOptions(name, message.SubsystemNqn, paths, settings, Origin: "cluster", Fence: _fence);
        _subsystem = Context.ActorOf(SubsystemMessages.Props(options, _connector), ChildName);
        Context.Watch(_subsystem);
        _attached = false;
        _detaching = false;
        Publish(message.SubsystemNqn, message.HostNqn, OwnershipChange.Started, $"attaching through {string.Join(", ", paths.Select(p => p.ToString()))}");
    }

    private void OnEnsureDetached(ClusterSubsystem.EnsureDetached message)
    {
        _desired = null;
        if (_subsystem is null)
        {
            Forget();
            return;
        }

        Detach(message.Reason, RemovalReason.Detached);
    }

    private void OnHandOff()
    {
        _handingOff = true;
        if (_subsystem is null)
        {
            Context.Stop(Self);
            return;
        }

        _log.Info("{0}: handing over: shutting the controllers down (CC.SHN) before the shard moves", _desired?.SubsystemNqn);
        Detach("handed over to another node", RemovalReason.Detached);
    }

    private void Detach(string reason, RemovalReason kind)
    {
        if (_subsystem is not null && !_detaching)
        {
            _detaching = true;
            _subsystem.Tell(new SubsystemMessages.Detach(reason, kind));
        }
    }

    private void OnAttached(SubsystemMessages.Attached message)
    {
        _devices = message.Devices.Select(d => d.Name).ToArray(); // an array: a collection expression's type does not deserialize on another node
        if (!_attached && _desired is { } desired)
        {
            _attached = true;
            Publish(desired.SubsystemNqn, desired.HostNqn, OwnershipChange.Attached, $"{_devices.Count} block device(s): {string.Join(", ", _devices)}");
        }
    }

    private void OnSubsystemTerminated(Terminated message)
    {
        if (!message.ActorRef.Equals(_subsystem))
        {
            return;
        }

        bool wasDetaching = _detaching;
        _nodeView.Tell(new ClusterView.LocalSubsystemChanged(Self.Path.Name, null));
        _subsystem = null;
        _attached = false;
        _detaching = false;
        _devices = Array.Empty<string>();
        if (_handingOff)
        {
            if (_desired is { } moving)
            {
                Publish(moving.SubsystemNqn, moving.HostNqn, OwnershipChange.HandedOff, "controllers shut down; the shard may move");
            }

            Context.Stop(Self);
        }
        else if (_desired is null)
        {
            Forget();
        }
        else if (wasDetaching)
        {
            StartSubsystem(_desired); // asked for again while it was detaching
        }
        else
        {
            // Stopped on its own (no path Live again within ctrlr-loss-timeout): the entity stops too, and
            // the next reconcile starts it afresh, on whichever node then owns the shard.
            Publish(_desired.SubsystemNqn, _desired.HostNqn, OwnershipChange.Lost, "the subsystem stopped (loss timeout)");
            Context.Stop(Self);
        }
    }

    private void Publish(string subsystemNqn, string hostNqn, OwnershipChange change, string detail)
    {
        _log.Info("{0} on {1}: {2} ({3})", subsystemNqn, _node, change, detail);
        Context.System.EventStream.Publish(new ClusterSubsystem.OwnershipEvent(subsystemNqn, hostNqn, _node, change, detail, DateTimeOffset.UtcNow));
    }

    private Transport.TransportAddress? TryParse(string path)
    {
        try
        {
            return ClusterSubsystem.ParsePath(path);
        }
        catch (ArgumentException e)
        {
            _log.Warning("ignoring path: {0}", e.Message);
            return null;
        }
    }
}
