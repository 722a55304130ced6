using ActorNvme.Protocol.Data;
using ActorNvme.Protocol.Nvme;

namespace ActorNvme.Actors.Controller;

/// <summary>What a <see cref="NamespaceScan"/> asks for next.</summary>
internal abstract record NamespaceScanStep
{
    /// <summary>Send this admin command and feed its completion to <see cref="NamespaceScan.OnCompletion"/>.</summary>
    public sealed record Submit(SubmissionQueueEntry Command, int DataInLength, string Description) : NamespaceScanStep;

    /// <summary>The scan is over: the active namespaces as they are now, ascending by NSID.</summary>
    public sealed record Done(IReadOnlyList<NamespaceInfo> Namespaces) : NamespaceScanStep;

    /// <summary>The scan could not finish; the namespaces known before stand.</summary>
    public sealed record Failed(string Reason) : NamespaceScanStep;
}

/// <summary>
/// Re-reads a live controller's namespaces after a Namespace Attribute Changed notice: the Changed
/// Namespace List (log 04h, read without RAE so the controller may report the next change), the Active
/// Namespace ID list in pages of 1024 NSIDs (each page starts after the last NSID of the one before),
/// then Identify Namespace (and its identification descriptors) for each NSID that is new or listed as
/// changed. A pure machine: the controller actor sends the commands and feeds back the completions, so
/// the scan's commands are ordinary admin commands under the actor's timeouts.
/// </summary>
internal sealed class NamespaceScan
{
    private const int MaxPages = 64; // 65536 NSIDs: past any real subsystem, short of a hostile endless list

    private readonly Dictionary<uint, NamespaceInfo> _known;
    private readonly uint _maxNamespaceId;
    private readonly List<uint> _active = [];
    private readonly Dictionary<uint, NamespaceInfo> _found = [];
    private HashSet<uint> _changed = [];
    private bool _allChanged;
    private Phase _phase;
    private int _pages;
    private uint[] _toIdentify = [];
    private int _identifyIndex;
    private NamespaceInfo? _withoutUuid;

    /// <param name="known">The namespaces the controller knows now.</param>
    /// <param name="maxNamespaceId">NN of Identify Controller: no valid NSID is above it (0: unknown, no bound).</param>
    public NamespaceScan(IEnumerable<NamespaceInfo> known, uint maxNamespaceId)
    {
        _known = known.ToDictionary(n => n.NamespaceId);
        _maxNamespaceId = maxNamespaceId == 0 ? uint.MaxValue - 1 : maxNamespaceId;
    }

    private enum Phase
    {
        ChangedList,
        ActiveList,
        IdentifyNamespace,
        Descriptors,
        Over,
    }

    /// <summary>NSIDs the Changed Namespace List named (empty when it overflowed or could not be read).</summary>
    public IReadOnlyCollection<uint> Changed => _changed;

    public NamespaceScanStep Start()
    {
        _phase = Phase.ChangedList;
        return new NamespaceScanStep.Submit(
            AdminCommands.GetLogPage((byte)LogPageId.ChangedNamespaceList, ChangedNamespaceList.Size),
            ChangedNamespaceList.Size,
            "Get Log Page (changed namespace list)");
    }

    public NamespaceScanStep OnCompletion(CompletionQueueEntry entry, ReadOnlyMemory<byte> data, bool digestError) => _phase switch
    {
        Phase.ChangedList => OnChangedList(entry, data.Span, digestError),
        Phase.ActiveList => OnActivePage(entry, data.Span, digestError),
        Phase.IdentifyNamespace => OnIdentifyNamespace(entry, data.Span, digestError),
        Phase.Descriptors => OnDescriptors(entry, data.Span, digestError),
        _ => new NamespaceScanStep.Failed("a completion arrived after the scan was over"),
    };

    private NamespaceScanStep OnChangedList(CompletionQueueEntry entry, ReadOnlySpan<byte> data, bool digestError)
    {
        var ids = new uint[ChangedNamespaceList.MaxEntries];
        if (entry.Status.IsSuccess && !digestError && ChangedNamespaceList.TryRead(data, ids, out int count, out bool overflowed, out _))
        {
            _allChanged = overflowed;
            _changed = [.. ids.AsSpan(0, count).ToArray().Where(id => id != 0 && id <= _maxNamespaceId)];
        }
        else
        {
            // Without the list every known namespace may have changed: identify them all again.
            _allChanged = true;
        }

        return NextActivePage(0);
    }

    private NamespaceScanStep NextActivePage(uint after)
    {
        _phase = Phase.ActiveList;
        _pages++;
        return new NamespaceScanStep.Submit(
            AdminCommands.Identify((byte)IdentifyCns.ActiveNamespaceList, after),
            ActiveNamespaceList.Size,
            $"Identify active namespace list after NSID {after}");
    }

    private NamespaceScanStep OnActivePage(CompletionQueueEntry entry, ReadOnlySpan<byte> data, bool digestError)
    {
        if (!entry.Status.IsSuccess)
        {
            return Fail($"Identify active namespace list refused: {entry.Status}");
        }

        if (digestError)
        {
            return Fail("Identify active namespace list: data digest error");
        }

        var ids = new uint[ActiveNamespaceList.MaxEntries];
        if (!ActiveNamespaceList.TryRead(data, ids, out int count, out var error))
        {
            return Fail($"Identify active namespace list unusable: {error.Describe()}");
        }

        uint previous = _active.Count == 0 ? 0 : _active[^1];
        for (int i = 0; i < count; i++)
        {
            // Increasing across pages, within NN: anything else is garbage, not namespaces.
            if (ids[i] <= previous || ids[i] > _maxNamespaceId)
            {
                return Fail($"Identify active namespace list: NSID 0x{ids[i]:x8} breaks the increasing order of valid NSIDs (after 0x{previous:x8}, NN {_maxNamespaceId})");
            }

            _active.Add(ids[i]);
            previous = ids[i];
        }

        if (count == ActiveNamespaceList.MaxEntries && previous < _maxNamespaceId)
        {
            if (_pages >= MaxPages)
            {
                return Fail($"the active namespace list goes on past {MaxPages} pages");
            }

            return NextActivePage(previous);
        }

        foreach (uint nsid in _active)
        {
            if (_known.TryGetValue(nsid, out var known) && !_allChanged && !_changed.Contains(nsid))
            {
                _found[nsid] = known;
            }
        }

        _toIdentify = [.. _active.Where(nsid => !_found.ContainsKey(nsid))];
        _identifyIndex = 0;
        return NextIdentify();
    }

    private NamespaceScanStep NextIdentify()
    {
        if (_identifyIndex >= _toIdentify.Length)
        {
            _phase = Phase.Over;
            return new NamespaceScanStep.Done([.. _found.Values.OrderBy(n => n.NamespaceId)]);
        }

        _phase = Phase.IdentifyNamespace;
        uint nsid = _toIdentify[_identifyIndex];
        return new NamespaceScanStep.Submit(AdminCommands.Identify((byte)IdentifyCns.Namespace, nsid), IdentifyNamespace.Size, $"Identify Namespace {nsid}");
    }

    private NamespaceScanStep OnIdentifyNamespace(CompletionQueueEntry entry, ReadOnlySpan<byte> data, bool digestError)
    {
        uint nsid = _toIdentify[_identifyIndex];
        if (entry.Status.IsSuccess && !digestError && IdentifyNamespace.TryRead(data, out var ns, out _) && ns.IsActive && ns.TryGetBlockSize(out int blockSize, out _))
        {
            if (_known.TryGetValue(nsid, out var known) && known.BlockSize == blockSize && known.Nguid == ns.Nguid && known.Eui64 == ns.Eui64)
            {
                // The same namespace, perhaps resized: keep its UUID, skip the descriptors.
                _found[nsid] = known with { BlockCount = ns.NamespaceSize, Reservations = (Protocol.Nvme.ReservationCapabilities)ns.ReservationCapabilities };
                _identifyIndex++;
                return NextIdentify();
            }

            _withoutUuid = new NamespaceInfo(nsid, blockSize, ns.NamespaceSize, ns.Nguid, ns.Eui64, Guid.Empty, (Protocol.Nvme.ReservationCapabilities)ns.ReservationCapabilities);
            _phase = Phase.Descriptors;
            return new NamespaceScanStep.Submit(
                AdminCommands.Identify((byte)IdentifyCns.NamespaceIdentificationDescriptors, nsid),
                NamespaceIdentifiers.Size,
                $"Identify Namespace {nsid} identification descriptors");
        }

        // Refused, unusable or inactive: it is not a namespace to expose now (one bad answer does not cost the others).
        _identifyIndex++;
        return NextIdentify();
    }

    private NamespaceScanStep OnDescriptors(CompletionQueueEntry entry, ReadOnlySpan<byte> data, bool digestError)
    {
        var ns = _withoutUuid!;
        _withoutUuid = null;
        var uuid = Guid.Empty;
        if (entry.Status.IsSuccess && !digestError && NamespaceIdentifiers.TryRead(data, out var identifiers, out _))
        {
            uuid = identifiers.Uuid ?? Guid.Empty;
        }

        _found[ns.NamespaceId] = ns with { Uuid = uuid };
        _identifyIndex++;
        return NextIdentify();
    }

    private NamespaceScanStep Fail(string reason)
    {
        _phase = Phase.Over;
        return new NamespaceScanStep.Failed(reason);
    }
}
