using ActorNvme.Protocol.Nvme;

namespace ActorNvme.Target;

/// <summary>
/// The reservation state of one namespace: its registrants (a key per host identifier, as every controller
/// of one host shares its registration), the reservation holder and type, and the generation. Every
/// command from the wire goes through here and gets a status; nothing here throws on a host's input.
/// Reservations do not persist through a power loss (RESCAP bit 0 is clear), and IEKEY is honoured only
/// where it still means something (Register's Unregister and Replace).
/// </summary>
public sealed class NamespaceReservations
{
    private readonly Lock _sync = new();

    // Registration order is kept: Report lists registrants in it.
    private readonly List<(Guid Host, ulong Key)> _registrants = [];
    private Guid? _holder;
    private ReservationType _type;
    private uint _generation;

    /// <summary>What this target supports: every type, no persistence through power loss, IEKEY.</summary>
    public const ReservationCapabilities Capabilities = ReservationCapabilities.AllTypes | ReservationCapabilities.IgnoreExistingKey;

    /// <summary>The held reservation's type, or None.</summary>
    public ReservationType Type
    {
        get
        {
            lock (_sync)
            {
                return _type;
            }
        }
    }

    /// <summary>The host holding the reservation (for the all-registrants types, the one that acquired it).</summary>
    public Guid? Holder
    {
        get
        {
            lock (_sync)
            {
                return _holder;
            }
        }
    }

    public uint Generation
    {
        get
        {
            lock (_sync)
            {
                return _generation;
            }
        }
    }

    /// <summary>Commands refused with Reservation Conflict (I/O and reservation commands), for tests and logs.</summary>
    public long Conflicts => Interlocked.Read(ref _conflicts);

    private long _conflicts;

    /// <summary>The registered key of <paramref name="host"/>, or null.</summary>
    public ulong? KeyOf(Guid host)
    {
        lock (_sync)
        {
            int index = IndexOf(host);
            return index < 0 ? null : _registrants[index].Key;
        }
    }

    /// <summary>Registered hosts and their keys, in registration order.</summary>
    public IReadOnlyList<(Guid Host, ulong Key)> Registrants()
    {
        lock (_sync)
        {
            return [.. _registrants];
        }
    }

    /// <summary>Reservation Register (RREGA): register, unregister or replace this host's key.</summary>
    public NvmeStatus Register(Guid host, byte action, bool ignoreExistingKey, byte persistChange, ulong currentKey, ulong newKey)
    {
        if (persistChange is 1 or (byte)PersistThroughPowerLossChange.Set)
        {
            return InvalidField(); // reserved value, or persistence this target does not offer
        }

        lock (_sync)
        {
            int index = IndexOf(host);
            switch ((ReservationRegisterAction)action)
            {
                case ReservationRegisterAction.Register:
                    if (newKey == 0)
                    {
                        return InvalidField();
                    }

                    if (index >= 0)
                    {
                        // Registering again with the same key is harmless; with another key it is a conflict.
                        return _registrants[index].Key == newKey ? NvmeStatus.Success : Conflict();
                    }

                    _registrants.Add((host, newKey));
                    _generation++;
                    return NvmeStatus.Success;

                case ReservationRegisterAction.Unregister:
                    if (index < 0 || (!ignoreExistingKey && _registrants[index].Key != currentKey))
                    {
                        return Conflict();
                    }

                    _registrants.RemoveAt(index);
                    _generation++;
                    ReleaseIfHolderGone(host);
                    return NvmeStatus.Success;

                case ReservationRegisterAction.Replace:
                    if (newKey == 0)
                    {
                        return InvalidField();
                    }

                    if (index < 0 || (!ignoreExistingKey && _registrants[index].Key != currentKey))
                    {
                        return Conflict();
                    }

                    _registrants[index] = (host, newKey);
                    _generation++;
                    return NvmeStatus.Success;

                default:
                    return InvalidField();
            }
        }
    }

    /// <summary>
    /// Reservation Acquire (RACQA): acquire, preempt, or preempt and abort. <paramref name="preempted"/> gets
    /// the hosts whose registrations a preempt removed (their commands are what preempt-and-abort aborts).
    /// </summary>
    public NvmeStatus Acquire(Guid host, byte action, byte type, ulong currentKey, ulong preemptKey, out IReadOnlyList<Guid> preempted)
    {
        preempted = [];
        var requested = (ReservationType)type;
        if (!ReservationCommands.IsDefined(requested) || action > (byte)ReservationAcquireAction.PreemptAndAbort)
        {
            return InvalidField();
        }

        lock (_sync)
        {
            int index = IndexOf(host);
            if (index < 0 || _registrants[index].Key != currentKey)
            {
                return Conflict();
            }

            if ((ReservationAcquireAction)action == ReservationAcquireAction.Acquire)
            {
                if (_type == ReservationType.None)
                {
                    _holder = host;
                    _type = requested;
                    return NvmeStatus.Success;
                }

                // Acquiring what one already holds succeeds; anything else is held by someone (or as something) else.
                return IsHolder(host) && _type == requested ? NvmeStatus.Success : Conflict();
            }

            var removed = new List<Guid>();
            if (_type == ReservationType.None)
            {
                if (preemptKey == 0)
                {
                    return InvalidField();
                }

                if (RemoveOthersWithKey(host, preemptKey, removed) == 0)
                {
                    return Conflict();
                }
            }
            else if (IsAllRegistrants(_type))
            {
                if (preemptKey == 0)
                {
                    // Every other registrant goes; the caller holds the reservation, of the type asked for.
                    removed.AddRange(_registrants.Where(r => r.Host != host).Select(r => r.Host));
                    _registrants.RemoveAll(r => r.Host != host);
                    _holder = host;
                    _type = requested;
                }
                else if (RemoveOthersWithKey(host, preemptKey, removed) == 0)
                {
                    return Conflict();
                }
            }
            else
            {
                ulong holderKey = _holder is { } holder && IndexOf(holder) is >= 0 and var at ? _registrants[at].Key : 0;
                if (preemptKey == holderKey)
                {
                    // The holder (possibly the caller itself, changing the type) is preempted: the caller holds it now.
                    RemoveOthersWithKey(host, preemptKey, removed);
                    _holder = host;
                    _type = requested;
                }
                else if (preemptKey == 0)
                {
                    return InvalidField();
                }
                else if (RemoveOthersWithKey(host, preemptKey, removed) == 0)
                {
                    return Conflict();
                }
            }

            _generation++;
            preempted = removed;
            return NvmeStatus.Success;
        }
    }

    /// <summary>Reservation Release (RRELA): release the held reservation, or clear every registration and the reservation.</summary>
    public NvmeStatus Release(Guid host, byte action, byte type, ulong currentKey)
    {
        if (action > (byte)ReservationReleaseAction.Clear)
        {
            return InvalidField();
        }

        lock (_sync)
        {
            int index = IndexOf(host);
            if (index < 0 || _registrants[index].Key != currentKey)
            {
                return Conflict();
            }

            if ((ReservationReleaseAction)action == ReservationReleaseAction.Clear)
            {
                _registrants.Clear();
                _holder = null;
                _type = ReservationType.None;
                _generation++;
                return NvmeStatus.Success;
            }

            if (_type == ReservationType.None || !IsHolder(host))
            {
                return NvmeStatus.Success; // nothing of this host's to release: no effect
            }

            if ((byte)_type != type)
            {
                return InvalidField();
            }

            _holder = null;
            _type = ReservationType.None;
            return NvmeStatus.Success;
        }
    }

    /// <summary>The Reservation Status data; <paramref name="controllerOf"/> names a controller of each registrant (FFFFh: none).</summary>
    public ReservationStatus Report(Func<Guid, ushort> controllerOf)
    {
        lock (_sync)
        {
            var registrants = _registrants
                .Select(r => new ReservationRegistrant(controllerOf(r.Host), _type != ReservationType.None && IsHolder(r.Host), r.Key, HostIdOf(r.Host)))
                .ToArray();
            return new ReservationStatus(_generation, _type, false, registrants);
        }
    }

    /// <summary>Whether <paramref name="host"/> may read (or, with <paramref name="write"/>, modify) the namespace now.</summary>
    public bool Allows(Guid host, bool write)
    {
        lock (_sync)
        {
            if (_type == ReservationType.None || IsHolder(host))
            {
                return true;
            }

            bool registered = IndexOf(host) >= 0;
            bool allowed = _type switch
            {
                ReservationType.WriteExclusive => !write,
                ReservationType.ExclusiveAccess => false,
                ReservationType.WriteExclusiveRegistrantsOnly or ReservationType.WriteExclusiveAllRegistrants => !write || registered,
                ReservationType.ExclusiveAccessRegistrantsOnly or ReservationType.ExclusiveAccessAllRegistrants => registered,
                _ => true,
            };
            if (!allowed)
            {
                Interlocked.Increment(ref _conflicts);
            }

            return allowed;
        }
    }

    /// <summary>The 128-bit host identifier as Report carries it (wire order, kept as a big-endian integer).</summary>
    public static UInt128 HostIdOf(Guid host) => System.Buffers.Binary.BinaryPrimitives.ReadUInt128BigEndian(host.ToByteArray(bigEndian: true));

    private static bool IsAllRegistrants(ReservationType type) =>
        type is ReservationType.WriteExclusiveAllRegistrants or ReservationType.ExclusiveAccessAllRegistrants;

    // Under _sync. For the all-registrants types every registrant holds the reservation.
    private bool IsHolder(Guid host) =>
        _type != ReservationType.None && (IsAllRegistrants(_type) ? IndexOf(host) >= 0 : _holder == host);

    private int IndexOf(Guid host) => _registrants.FindIndex(r => r.Host == host);

    private int RemoveOthersWithKey(Guid caller, ulong key, List<Guid> removed)
    {
        int before = removed.Count;
        foreach (var (registrant, registeredKey) in _registrants)
        {
            if (registrant != caller && registeredKey == key)
            {
                removed.Add(registrant);
            }
        }

        _registrants.RemoveAll(r => r.Host != caller && r.Key == key);
        foreach (var gone in removed.Skip(before))
        {
            ReleaseIfHolderGone(gone);
        }

        return removed.Count - before;
    }

    // A single holder that is no longer registered holds nothing; an all-registrants reservation ends with its last registrant.
    private void ReleaseIfHolderGone(Guid gone)
    {
        if (_type == ReservationType.None)
        {
            return;
        }

        if (IsAllRegistrants(_type) ? _registrants.Count == 0 : _holder == gone)
        {
            _holder = null;
            _type = ReservationType.None;
        }
        else if (IsAllRegistrants(_type) && _holder == gone)
        {
            _holder = _registrants[0].Host;
        }
    }

    private NvmeStatus Conflict()
    {
        Interlocked.Increment(ref _conflicts);
        return ReservationConflictStatus;
    }

    private static NvmeStatus InvalidField() => NvmeStatus.Generic(GenericStatus.InvalidField, true);

    /// <summary>Reservation Conflict (SCT 0, SC 83h), DNR: the same command from the same host fails again until the reservation changes.</summary>
    public static NvmeStatus ReservationConflictStatus => NvmeStatus.Generic(GenericStatus.ReservationConflict, true);
}
