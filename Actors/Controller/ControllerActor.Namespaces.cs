using Akka.Actor;
using Akka.Event;
using ActorNvme.Protocol.Data;

namespace ActorNvme.Actors.Controller;

/// <summary>Live: namespaces that come and go, re-read on every Namespace Attribute Changed notice.</summary>
public sealed partial class ControllerActor
{
    private static bool IsNamespaceChange(AsyncEventCompletion asyncEvent) =>
        asyncEvent.Notice == AsyncEventNotice.NamespaceAttributeChanged || (asyncEvent.Type == AsyncEventType.Notice && asyncEvent.LogPageId == (byte)LogPageId.ChangedNamespaceList);

    /// <summary>
    /// Starts a scan of the namespaces, or, when one runs, marks that another must follow it: a change
    /// reported while a scan reads may have come after the page it read.
    /// </summary>
    private void StartNamespaceScan(LiveData live)
    {
        if (live.NamespaceScan is not null)
        {
            live.NamespaceRescanWanted = true;
            return;
        }

        live.NamespaceRescanWanted = false;
        var scan = new NamespaceScan(live.Info.Namespaces, live.Info.Identify.NumberOfNamespaces);
        live.NamespaceScan = scan;
        ContinueNamespaceScan(live, scan, scan.Start());
    }

    private void ContinueNamespaceScan(LiveData live, NamespaceScan scan, NamespaceScanStep step)
    {
        if (!ReferenceEquals(live.NamespaceScan, scan))
        {
            return;
        }

        if (_state != ControllerState.Live)
        {
            live.NamespaceScan = null; // being deleted: the namespaces no longer matter
            return;
        }

        switch (step)
        {
            case NamespaceScanStep.Submit submit:
                SubmitInternal(submit.Command, c => ContinueNamespaceScan(live, scan, scan.OnCompletion(c.Entry, c.Data, c.DataDigestError)), dataInLength: submit.DataInLength);
                return;
            case NamespaceScanStep.Done done:
                live.NamespaceScan = null;
                OnNamespacesScanned(live, done.Namespaces, scan.Changed);
                break;
            case NamespaceScanStep.Failed failed:
                live.NamespaceScan = null;
                _log.Warning("{0}: re-reading the namespaces failed ({1}); the {2} known stand", _options.Name, failed.Reason, live.Info.Namespaces.Count);
                break;
        }

        if (live.NamespaceRescanWanted && _state == ControllerState.Live)
        {
            StartNamespaceScan(live);
        }
    }

    private void OnNamespacesScanned(LiveData live, IReadOnlyList<NamespaceInfo> namespaces, IReadOnlyCollection<uint> changed)
    {
        var before = live.Info.Namespaces.ToDictionary(n => n.NamespaceId);
        int added = namespaces.Count(n => !before.ContainsKey(n.NamespaceId));
        int removed = before.Count - (namespaces.Count - added);
        int resized = namespaces.Count(n => before.TryGetValue(n.NamespaceId, out var old) && old.BlockCount != n.BlockCount);
        live.Info = live.Info with { Namespaces = namespaces };
        _log.Info("{0}: namespaces re-read: {1} active ({2} added, {3} removed, {4} resized; {5} listed as changed)", _options.Name, namespaces.Count, added, removed, resized, changed.Count);
        Context.Parent.Tell(new Controller.NamespacesChanged(Self, _options.Name, live.Info));
    }
}
