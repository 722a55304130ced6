using Akka.Actor;
using Akka.Event;
using ActorNvme.Io;

namespace ActorNvme.Actors.Subsystem;

// Single writer at the target: with SubsystemOptions.Fence, a block device that supports reservations is
// handed out (BlockDeviceAdded, GetBlockDevice) only after this host holds its reservation, preempting and
// aborting a previous holder — so no write of this host can precede the fence.
public sealed partial class SubsystemActor
{
    private static readonly TimeSpan FenceRetryDelay = TimeSpan.FromSeconds(1);

    // Namespaces whose devices wait for their fence before anyone may have them.
    private readonly HashSet<uint> _fencing = [];

    // Fence attempts per namespace still fencing (the first is 1), for the WriterFencing event.
    private readonly Dictionary<uint, int> _fenceAttempts = [];

    private void PublishOrFence(uint namespaceId, BlockDeviceOwner owner)
    {
        if (_options.Fence is not { } fence || !owner.Device.SupportsReservations)
        {
            if (_options.Fence is { UnfencedHoldback: var holdback })
            {
                _log.Warning(
                    "{0}: {1} reports no reservation support (RESCAP 0x{2:x2}): writers are not fenced at the target{3}",
                    _options.Name, owner.Device.Name, (byte)owner.Device.ReservationCapabilities, holdback > TimeSpan.Zero ? $"; handed out in {holdback}, when a previous owner that may still run has stopped" : string.Empty);
                if (holdback > TimeSpan.Zero)
                {
                    _fencing.Add(namespaceId);
                    Timers.StartSingleTimer($"fence-{namespaceId}", new UnfencedHoldbackOver(namespaceId, owner), holdback);
                    return;
                }
            }

            Context.System.EventStream.Publish(new BlockDeviceAdded(_devices[namespaceId], owner.Device));
            return;
        }

        _fencing.Add(namespaceId);
        _fenceAttempts[namespaceId] = 0;
        StartFence(namespaceId, owner, fence);
    }

    private void StartFence(uint namespaceId, BlockDeviceOwner owner, WriterFence fence)
    {
        int attempt = _fenceAttempts[namespaceId] = _fenceAttempts.GetValueOrDefault(namespaceId) + 1;
        _log.Info("{0}: fencing {1}: registering key 0x{2:x16} and taking a {3} reservation before the first write", _options.Name, owner.Device.Name, fence.Key, fence.Type);
        Context.System.EventStream.Publish(new WriterFencing(_options.SubsystemNqn, owner.Device.Name, namespaceId, fence.Key, attempt));
        owner.Device.FenceAsync(fence.Key, fence.Type).PipeTo(
            Self,
            success: result => new DeviceFenced(namespaceId, owner, result, null),
            failure: e => new DeviceFenced(namespaceId, owner, null, e.GetBaseException().Message));
    }

    private void OnDeviceFenced(DeviceFenced message)
    {
        if (!_blockDevices.TryGetValue(message.NamespaceId, out var current) || !ReferenceEquals(current, message.Owner) || !_fencing.Contains(message.NamespaceId))
        {
            return; // the device went away (or was replaced) meanwhile
        }

        var device = current.Device;
        if (message.Result is not { } result)
        {
            _log.Error("{0}: fencing {1} failed: {2}; it is not handed out, trying again in {3}", _options.Name, device.Name, message.Error, FenceRetryDelay);
            Timers.StartSingleTimer($"fence-{message.NamespaceId}", new RetryFence(message.NamespaceId, current), FenceRetryDelay);
            return;
        }

        _fencing.Remove(message.NamespaceId);
        _fenceAttempts.Remove(message.NamespaceId);
        if (result.Preempted is { } previous)
        {
            _log.Warning(
                "{0}: {1}: preempted and aborted the previous holder (host id {2:x32}, key 0x{3:x16}, controller {4}); its writes now fail with Reservation Conflict",
                _options.Name, device.Name, previous.HostId, previous.Key, previous.ControllerId);
        }
        else
        {
            _log.Info("{0}: {1}: {2} reservation {3}", _options.Name, device.Name, result.Type, result.AlreadyHeld ? "already held" : "acquired");
        }

        Context.System.EventStream.Publish(new WriterFenced(_options.SubsystemNqn, device.Name, device.NamespaceId, result));
        Context.System.EventStream.Publish(new BlockDeviceAdded(_devices[message.NamespaceId], device));
    }

    private void OnUnfencedHoldbackOver(UnfencedHoldbackOver message)
    {
        if (_blockDevices.TryGetValue(message.NamespaceId, out var current) && ReferenceEquals(current, message.Owner) && _fencing.Remove(message.NamespaceId))
        {
            Context.System.EventStream.Publish(new BlockDeviceAdded(_devices[message.NamespaceId], current.Device));
        }
    }

    private void OnRetryFence(RetryFence message)
    {
        if (_options.Fence is { } fence && _blockDevices.TryGetValue(message.NamespaceId, out var current) && ReferenceEquals(current, message.Owner) && _fencing.Contains(message.NamespaceId))
        {
            StartFence(message.NamespaceId, current, fence);
        }
    }

    /// <summary>
    /// A graceful detach (a handover) gives up this host's reservations before the controllers shut down, so the
    /// next owner acquires without preempting anyone: preemption is kept for owners that crashed or are cut off.
    /// True when the release was started (the detach continues on <see cref="ReservationsReleased"/>).
    /// </summary>
    private bool ReleaseReservationsFirst(Subsystem.Detach message)
    {
        if (_releasingReservations)
        {
            return true;
        }

        if (_options.Fence is not { } fence || message.Kind != RemovalReason.Detached)
        {
            return false;
        }

        var held = _blockDevices.Where(d => !_fencing.Contains(d.Key) && d.Value.Device.SupportsReservations && d.Value.Device.HasUsablePath)
            .Select(d => d.Value.Device)
            .ToArray();
        if (held.Length == 0)
        {
            return false;
        }

        _releasingReservations = true;
        var log = _log;
        string name = _options.Name;
        Task.WhenAll(held.Select(async device =>
        {
            try
            {
                await device.ReservationRegisterAsync(Protocol.Nvme.ReservationRegisterAction.Unregister, fence.Key, 0).AsTask().WaitAsync(ReleaseTimeout).ConfigureAwait(false);
                log.Info("{0}: {1}: unregistered key 0x{2:x16} (reservation released) before the handover", name, device.Name, fence.Key);
            }
            catch (Exception e) when (e is BlockDeviceException or TimeoutException)
            {
                // The next owner then preempts the leftover registration: still safe, as this host is shutting down.
                log.Warning("{0}: {1}: could not give up the reservation before the handover: {2}", name, device.Name, e.Message);
            }
        })).PipeTo(Self, success: () => ReservationsReleased.Instance, failure: _ => ReservationsReleased.Instance);
        return true;
    }

    private static readonly TimeSpan ReleaseTimeout = TimeSpan.FromSeconds(5);

    private bool _releasingReservations;

    private sealed record ReservationsReleased
    {
        public static ReservationsReleased Instance { get; } = new();
    }

    private sealed record DeviceFenced(uint NamespaceId, BlockDeviceOwner Owner, ReservationFence? Result, string? Error);

    private sealed record RetryFence(uint NamespaceId, BlockDeviceOwner Owner);

    private sealed record UnfencedHoldbackOver(uint NamespaceId, BlockDeviceOwner Owner);
}
