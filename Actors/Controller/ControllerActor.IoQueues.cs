using Akka.Event;
using Akka.Actor;
using ActorNvme.Actors.Connection;
using ActorNvme.Io;
using ActorNvme.Protocol.Data;
using ActorNvme.Protocol.Nvme;
using ActorNvme.Transport;

namespace ActorNvme.Actors.Controller;

/// <summary>
/// The I/O queues of an NVM controller: granted by the bring-up's Set Features (Number of Queues),
/// connected by the <see cref="IIoQueueConnector"/> outside the actor (the result comes back as a
/// message tagged with the generation) while the controller is still Configuring, owned by the
/// association from then on and aborted when it ends. Block devices submit through the set directly;
/// nothing per command passes here.
/// </summary>
public sealed partial class ControllerActor
{
    private sealed record IoQueuesConnected(long Generation, IoQueueSet Set);

    private sealed record IoQueuesEnded(long Generation, IoQueueSet Set, ConnectionClosed Reason);

    private void ConnectIoQueues(Association association, LiveData live, int count)
    {
        var settings = _options.Settings;
        var info = live.Info;
        var request = new IoQueueConnectRequest(
            _options.Address,
            _options.SubsystemNqn,
            settings.HostNqn,
            settings.HostId,
            info.ControllerId,
            count,
            Math.Min(settings.IoQueueSize, info.Capabilities.MaxQueueSize),
            QueuePairOptions.InCapsuleDataSizeFromIoccsz(info.Identify.IoCommandCapsuleSize),
            MaxTransferSize(info),
            settings.Digests,
            settings.DisableSqFlowControl,
            settings.IoHoldLimit,
            settings.ConnectTimeout,
            Owner)
        {
            TcpUserTimeout = settings.EffectiveTcpUserTimeout,
            Authentication = settings.DhChap,
            Tls = TlsSession(settings),
        };
        long generation = association.Generation;
        ArmStepTimer(association, $"connecting {count} I/O queue(s)");
        ConnectIoAndCount(_ioConnector, request, association.Lifetime.Token, _ledger, Owner)
            .PipeTo(Self, success: set => new IoQueuesConnected(generation, set), failure: e => new ConnectAttemptFailed(generation, e));
        Become(() => ConnectingIoQueues(association, live));
    }

    /// <summary>Configuring, last part: the I/O queues are being connected.</summary>
    private void ConnectingIoQueues(Association association, LiveData live)
    {
        Receive<IoQueuesConnected>(m => m.Generation == association.Generation, m => OnIoQueuesConnected(association, live, m.Set));
        Common();
    }

    private void OnIoQueuesConnected(Association association, LiveData live, IoQueueSet set)
    {
        association.IoQueues = set;
        set.WriteResubmitDelay = WriteResubmitDelay(_options.Settings.KeepAliveTimeout, live.Info.Identify);
        if (live.Info.Identify.AnaTransitionTime != 0)
        {
            set.AnaTransitionTime = TimeSpan.FromSeconds(live.Info.Identify.AnaTransitionTime);
        }

        var identify = live.Info.Identify;
        set.CommandRetryDelays = [.. new[] { identify.CommandRetryDelayTime1, identify.CommandRetryDelayTime2, identify.CommandRetryDelayTime3 }.Select(t => TimeSpan.FromMilliseconds(t * 100.0))];
        if (_options.Settings.IoTimeout > TimeSpan.Zero)
        {
            set.TrackCommandAges();
        }

        long generation = association.Generation;
        set.Closed.PipeTo(Self, success: r => new IoQueuesEnded(generation, set, r), failure: e => new IoQueuesEnded(generation, set, new ConnectionClosed(CloseReason.InternalError, e.Message, e)));
        _log.Info(
            "{0}: {1} I/O queue(s) of {2} entries connected (SQ flow control {3})",
            _options.Name,
            set.Queues.Count,
            set.Queues.Count > 0 ? set.Queues[0].Options.QueueSize : 0,
            set.SqFlowControlDisabled ? "disabled" : "enabled");
        GoLive(association, live);
    }

    private static void AbortIoQueues(Association association, ConnectionClosed reason)
    {
        var set = association.IoQueues;
        association.IoQueues = null;
        set?.Abort(reason);
    }

    /// <summary>
    /// How long after the loss of this association a write that was in flight on it may be sent again
    /// (see README, "Writes after a path loss"): the target drops the association at most KATO after the
    /// last command it received, which was before the host saw the loss — KATO rounded up to whole seconds
    /// (Linux nvmet keeps seconds) and to the controller's keep-alive granularity (KAS), plus a quarter for
    /// the target's timer — and may then still execute its commands for its command quiesce time (CQT).
    /// </summary>
    internal static TimeSpan WriteResubmitDelay(TimeSpan keepAliveTimeout, IdentifyController identify)
    {
        long katoMs = (long)Math.Ceiling(keepAliveTimeout.TotalMilliseconds);
        long granularityMs = Math.Max(1000, identify.KeepAliveSupport * 100L);
        long roundedMs = (katoMs + granularityMs - 1) / granularityMs * granularityMs;
        return TimeSpan.FromMilliseconds(roundedMs + (katoMs / 4) + identify.CommandQuiesceTime);
    }

    /// <summary>Largest transfer of one command: MDTS (in units of CAP.MPSMIN pages; 0 = no limit), at most the queue pairs' default.</summary>
    private static int MaxTransferSize(ControllerInfo info)
    {
        int limit = QueuePairOptions.Io.MaxTransferSize;
        if (info.Identify.MaxDataTransferSize == 0)
        {
            return limit;
        }

        long pageSize = 4096L << info.Capabilities.MemoryPageSizeMinimum;
        long bytes = pageSize << Math.Min((int)info.Identify.MaxDataTransferSize, 20);
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
