using Akka.Actor;
using Akka.Event;
using ActorNvme.Actors.Connection;
using ActorNvme.Io;
using ActorNvme.Protocol.Data;
using ActorNvme.Protocol.Nvme;
using ActorNvme.Transport;

namespace ActorNvme.Actors.Controller;

/// <summary>
/// The I/O queues of an NVM controller: negotiated with Set Features (Number of Queues) while
/// Configuring, connected by the <see cref="IIoQueueConnector"/> outside the actor (the result comes
/// back as a message tagged with the generation), owned by the actor from then on and aborted when the
/// association ends. Block devices submit through the set directly; nothing per command passes here.
/// </summary>
public sealed partial class ControllerActor
{
    private readonly IIoQueueConnector _ioConnector;
    private IoQueueSet? _ioQueues;

    private sealed record IoQueuesConnected(int Generation, IoQueueSet Set);

    private sealed record IoQueuesEnded(int Generation, IoQueueSet Set, ConnectionClosed Reason);

    /// <summary>Reads the namespace's UUID (Identify CNS 03h); a controller that does not answer it leaves the UUID empty.</summary>
    private void IdentifyNamespaceUuid(NamespaceInfo info, Action next)
    {
        SubmitInternal(AdminCommands.Identify((byte)IdentifyCns.NamespaceIdentificationDescriptors, info.NamespaceId), c =>
        {
            var uuid = Guid.Empty;
            if (c.Entry.Status.IsSuccess && !c.DataDigestError && NamespaceIdentifiers.TryRead(c.Data.Span, out var ids, out _))
            {
                uuid = ids.Uuid ?? Guid.Empty;
            }

            _namespaces.Add(info with { Uuid = uuid });
            next();
        }, dataInLength: NamespaceIdentifiers.Size);
    }

    private void ConfigureIoQueuesThenGoLive()
    {
        if (_options.Role != ControllerRole.Nvm)
        {
            PostAsyncEventRequestsAndGoLive();
            return;
        }

        var settings = _options.Settings;
        int wanted = Math.Clamp(settings.EffectiveIoQueues, 1, 65534);
        ArmStepTimer("Set Features (number of queues)");
        SubmitInternal(AdminCommands.SetNumberOfQueues((ushort)wanted, (ushort)wanted), c =>
        {
            if (!c.Entry.Status.IsSuccess)
            {
                // As Linux does: a controller that refuses still serves its admin queue.
                _log.Warning("{0}: Set Features (Number of Queues) refused: {1}; Live without I/O queues", _options.Name, c.Entry.Status);
                PostAsyncEventRequestsAndGoLive();
                return;
            }

            var (submissionQueues, completionQueues) = AdminCommands.DecodeNumberOfQueues(c.Entry.Dw0);
            int count = Math.Min(wanted, Math.Min(submissionQueues, completionQueues));
            var request = new IoQueueConnectRequest(
                _options.Address,
                _options.SubsystemNqn,
                settings.HostNqn,
                settings.HostId,
                _controllerId,
                count,
                Math.Min(settings.IoQueueSize, _capabilities.MaxQueueSize),
                QueuePairOptions.InCapsuleDataSizeFromIoccsz(_identify.IoCommandCapsuleSize),
                MaxTransferSize(),
                settings.Digests,
                settings.DisableSqFlowControl,
                settings.IoHoldLimit,
                settings.ConnectTimeout,
                Owner);
            int generation = _generation;
            ArmStepTimer($"connecting {count} I/O queue(s)");
            ConnectIoAndCount(_ioConnector, request, _lifetime!.Token, _ledger, Owner)
                .PipeTo(Self, success: set => new IoQueuesConnected(generation, set), failure: e => new ConnectAttemptFailed(generation, e));
        });
    }

    private void OnIoQueuesConnected(IoQueuesConnected message)
    {
        if (message.Generation != _generation || _state != ControllerState.Configuring || _lifetime is null)
        {
            // Its generation's lifetime token aborted it already; make sure.
            message.Set.Abort(new ConnectionClosed(CloseReason.LocalShutdown, "the association it belonged to has ended"));
            return;
        }

        var set = message.Set;
        _ioQueues = set;
        int generation = _generation;
        set.Closed.PipeTo(Self, success: r => new IoQueuesEnded(generation, set, r), failure: e => new IoQueuesEnded(generation, set, new ConnectionClosed(CloseReason.InternalError, e.Message, e)));
        _log.Info(
            "{0}: {1} I/O queue(s) of {2} entries connected (SQ flow control {3})",
            _options.Name,
            set.Queues.Count,
            set.Queues.Count > 0 ? set.Queues[0].Options.QueueSize : 0,
            set.SqFlowControlDisabled ? "disabled" : "enabled");
        PostAsyncEventRequestsAndGoLive();
    }

    /// <summary>An I/O queue closed: the path is lost, unless this set was ended on purpose already.</summary>
    private void OnIoQueuesEnded(IoQueuesEnded message)
    {
        if (message.Generation == _generation && ReferenceEquals(message.Set, _ioQueues))
        {
            Lose(message.Reason);
        }
    }

    private void AbortIoQueues(ConnectionClosed reason)
    {
        var set = _ioQueues;
        _ioQueues = null;
        set?.Abort(reason);
    }

    /// <summary>Largest transfer of one command: MDTS (in units of CAP.MPSMIN pages; 0 = no limit), at most the queue pairs' default.</summary>
    private int MaxTransferSize()
    {
        int limit = QueuePairOptions.Io.MaxTransferSize;
        if (_identify.MaxDataTransferSize == 0)
        {
            return limit;
        }

        long pageSize = 4096L << _capabilities.MemoryPageSizeMinimum;
        long bytes = pageSize << Math.Min((int)_identify.MaxDataTransferSize, 20);
        return (int)Math.Clamp(bytes, 4096, limit);
    }

    // Counted per queue by the connection itself, so the ledger shows an I/O socket even when no actor holds it.
    private static async Task<IoQueueSet> ConnectIoAndCount(IIoQueueConnector connector, IoQueueConnectRequest request, CancellationToken lifetime, OwnershipLedger ledger, string owner)
    {
        var set = await connector.ConnectAsync(request, lifetime).ConfigureAwait(false);
        foreach (var queue in set.Queues)
        {
            ledger.ConnectionOpened(owner);
            _ = queue.Closed.ContinueWith(_ => ledger.ConnectionClosed(owner), CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        }

        return set;
    }
}
