using ActorNvme.Protocol.Nvme;

namespace ActorNvme.Io;

/// <summary>What <see cref="BlockDevice.FenceAsync"/> found and did.</summary>
/// <param name="Preempted">The registrant (and holder) whose key was preempted and aborted, or null when nobody else held the reservation.</param>
/// <param name="AlreadyHeld">This host held the reservation already (with its key and the type asked for): nothing was preempted.</param>
public sealed record ReservationFence(ulong Key, ReservationType Type, ReservationRegistrant? Preempted, bool AlreadyHeld);

// The reservation commands of the NVM command set, sent like I/O: on the device's paths, held while no path
// serves, moved to another path when one is lost. Not a hot path: each call allocates its small buffers.
public sealed partial class BlockDevice
{
    /// <summary>Largest Reservation Report asked for: the header and 64 registrants (extended structure).</summary>
    private const int MaxReportRegistrants = 64;

    /// <summary>Reservation Register: register <paramref name="newKey"/>, unregister, or replace <paramref name="currentKey"/> with <paramref name="newKey"/>.</summary>
    /// <exception cref="BlockDeviceException">Through the task; <see cref="BlockDeviceErrorKind.ReservationConflict"/> when the key does not match.</exception>
    public ValueTask ReservationRegisterAsync(ReservationRegisterAction action, ulong currentKey, ulong newKey, bool ignoreExistingKey = false)
    {
        var keys = new byte[ReservationCommands.KeyPairSize];
        ReservationCommands.WriteKeys(keys, currentKey, newKey);
        return StartReservation(ReservationCommands.Register(NamespaceId, action, ignoreExistingKey), keys, default);
    }

    /// <summary>Reservation Acquire: acquire a reservation of <paramref name="type"/>, or preempt (and abort) the registrant(s) holding <paramref name="preemptKey"/>.</summary>
    public ValueTask ReservationAcquireAsync(ReservationAcquireAction action, ReservationType type, ulong currentKey, ulong preemptKey = 0)
    {
        var keys = new byte[ReservationCommands.KeyPairSize];
        ReservationCommands.WriteKeys(keys, currentKey, preemptKey);
        return StartReservation(ReservationCommands.Acquire(NamespaceId, action, type), keys, default);
    }

    /// <summary>Reservation Release: release the reservation this host holds (of <paramref name="type"/>), or clear every registration.</summary>
    public ValueTask ReservationReleaseAsync(ReservationReleaseAction action, ReservationType type, ulong currentKey)
    {
        var key = new byte[ReservationCommands.KeySize];
        System.Buffers.Binary.BinaryPrimitives.WriteUInt64LittleEndian(key, currentKey);
        return StartReservation(ReservationCommands.Release(NamespaceId, action, type), key, default);
    }

    /// <summary>Reservation Report (extended data structure, 128-bit host identifiers): registrants, holder, type.</summary>
    public async Task<ReservationStatus> ReservationReportAsync()
    {
        int length = ReservationStatus.GetSize(MaxReportRegistrants, extended: true);
        var buffer = new byte[length];
        await StartReservation(ReservationCommands.Report(NamespaceId, length, extended: true), default, buffer).ConfigureAwait(false);
        return ReservationStatus.Read(buffer, extended: true);
    }

    /// <summary>
    /// Makes this host the only writer of the namespace, at the target: registers <paramref name="key"/> (replacing
    /// another key this host had), then acquires a reservation of <paramref name="type"/> — or, when another
    /// registrant holds one, preempts it and aborts that host's commands (Preempt and Abort with the holder's key
    /// from a Reservation Report). From then on the target refuses that host's writes with Reservation Conflict.
    /// Idempotent: a second call with the same key finds the reservation held.
    /// </summary>
    /// <exception cref="BlockDeviceException">Through the task: a command failed (a holder that changed between the report and the preempt three times running is a conflict too).</exception>
    public async Task<ReservationFence> FenceAsync(ulong key, ReservationType type = ReservationType.WriteExclusive)
    {
        ArgumentOutOfRangeException.ThrowIfZero(key);
        if (!ReservationCommands.IsDefined(type))
        {
            throw new ArgumentOutOfRangeException(nameof(type), type, "a reservation type is 1..6");
        }

        try
        {
            await ReservationRegisterAsync(ReservationRegisterAction.Register, 0, key).ConfigureAwait(false);
        }
        catch (BlockDeviceException e) when (e.Kind == BlockDeviceErrorKind.ReservationConflict)
        {
            // Registered already under another key (an earlier incarnation of this host): take the key over.
            await ReservationRegisterAsync(ReservationRegisterAction.Replace, 0, key, ignoreExistingKey: true).ConfigureAwait(false);
        }

        const int attempts = 3;
        for (int attempt = 1; ; attempt++)
        {
            var status = await ReservationReportAsync().ConfigureAwait(false);
            var holder = status.Holder;
            bool mine = holder is { } h && h.Key == key;
            if (status.Type == type && mine)
            {
                return new ReservationFence(key, type, null, AlreadyHeld: true);
            }

            try
            {
                if (status.Type == ReservationType.None)
                {
                    await ReservationAcquireAsync(ReservationAcquireAction.Acquire, type, key).ConfigureAwait(false);
                    return new ReservationFence(key, type, null, AlreadyHeld: false);
                }

                // Held by someone else (or by this host, as another type): the holder's key is preempted.
                ulong holderKey = holder?.Key ?? 0;
                await ReservationAcquireAsync(ReservationAcquireAction.PreemptAndAbort, type, key, holderKey).ConfigureAwait(false);
                return new ReservationFence(key, type, mine ? null : holder, AlreadyHeld: false);
            }
            catch (BlockDeviceException e) when (e.Kind == BlockDeviceErrorKind.ReservationConflict && attempt < attempts)
            {
                // The reservation changed between the report and the acquire (or a resent command found it done): look again.
            }
        }
    }

    private ValueTask StartReservation(SubmissionQueueEntry command, ReadOnlyMemory<byte> source, Memory<byte> destination)
    {
        if (Volatile.Read(ref _deletedReason) is { } reason)
        {
            return ValueTask.FromException(new BlockDeviceException(BlockDeviceErrorKind.Deleted, Name, $"the device was deleted ({reason})"));
        }

        var operation = IoOperation.Rent(this, IoKind.Reservation, 0, 1, destination, source);
        operation.Command = command;
        return operation.Start();
    }
}
