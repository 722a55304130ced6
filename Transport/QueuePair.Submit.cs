using System.Runtime.CompilerServices;
using ActorNvme.Protocol.Nvme;

namespace ActorNvme.Transport;

public abstract partial class QueuePair
{
    /// <summary>
    /// Takes a command id, fills the command table entry and queues the capsule. Never blocks:
    /// returns QueueFull or Closed instead. Safe from any thread.
    /// </summary>
    private protected SubmitStatus TrySubmitCore(
        in SubmissionQueueEntry command,
        DataDirection direction,
        ReadOnlyMemory<byte> outgoing,
        Memory<byte> incoming,
        object? userState,
        out CommandSlot? submitted)
    {
        submitted = null;
        int length = direction switch
        {
            DataDirection.HostToController => outgoing.Length,
            DataDirection.ControllerToHost => incoming.Length,
            _ => 0,
        };
        if (length > Options.MaxTransferSize)
        {
            throw new ArgumentOutOfRangeException(nameof(command), length, $"the data of one command is at most {Options.MaxTransferSize} bytes (QueuePairOptions.MaxTransferSize)");
        }

        // Counted before the closed check, so the "drained" notice cannot pass this command by.
        Interlocked.Increment(ref _unfinished);
        if (Volatile.Read(ref _closed) != 0)
        {
            FinishWithoutCommand();
            return SubmitStatus.Closed;
        }

        if (!_freeIds.TryRent(out int index))
        {
            FinishWithoutCommand();
            return SubmitStatus.QueueFull;
        }

        var slot = _slots[index] ?? CreateSlot(index);
        bool inCapsule = direction == DataDirection.HostToController && length > 0 && length <= Options.InCapsuleDataSize;
        slot.Prepare(command, direction, outgoing, incoming, inCapsule, userState);
        slot.Command.Flags = (byte)((slot.Command.Flags & 0x3F) | SubmissionQueueEntry.SglFlag);
        slot.Command.DataPointer = inCapsule ? SglDescriptor.InCapsule((uint)length) : SglDescriptor.Transport((uint)length);

        // One reference for the answer, one for the capsule waiting in the send queue.
        slot.References = 2;
        Interlocked.Exchange(ref slot.State, CommandSlot.Outstanding);
        _sendQueue.Enqueue(SendItem.Capsule(slot));

        // The read loop fails outstanding commands when it ends; one that became outstanding after
        // that fails here instead.
        if (Volatile.Read(ref _readerExited) != 0)
        {
            Answer(slot, CommandOutcome.ConnectionClosed, ClosedCompletion(slot.CommandId));
        }

        submitted = slot;
        ScheduleSend();
        return SubmitStatus.Submitted;
    }

    private void FinishWithoutCommand()
    {
        if (Interlocked.Decrement(ref _unfinished) == 0 && Volatile.Read(ref _readerExited) != 0)
        {
            NotifyDrained();
        }
    }
}
