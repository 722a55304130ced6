using ActorNvme.Protocol.Auth;
using ActorNvme.Protocol.Nvme;
using ActorNvme.Transport;
using ActorNvme.Transport.Authentication;

namespace ActorNvme.Io;

/// <summary>
/// One DH-HMAC-CHAP transaction on an I/O queue: after its Connect (AUTHREQ.ATR), or again on request while the
/// queue carries I/O (re-authentication). Authentication Send/Receive take an entry of the queue like any command.
/// </summary>
internal static class IoQueueAuthentication
{
    /// <summary>How long an authentication command waits for a free entry of a queue full of I/O before it tries again.</summary>
    private static readonly TimeSpan FullQueuePause = TimeSpan.FromMilliseconds(1);

    /// <summary>
    /// Runs <paramref name="exchange"/> on <paramref name="queue"/>; each message gets <paramref name="stepTimeout"/> (with a large
    /// DH group one transaction is several slow steps). Fails with <see cref="ConnectionClosedException"/>: AuthenticationFailed when
    /// refused, <paramref name="timeoutReason"/> when a message is not answered in time, the queue's own reason when it closed.
    /// <paramref name="holdQueue"/> (true) asks the queue's owner to send no new I/O to it while a command waits for an entry;
    /// (false) lets I/O in again, and tells that an entry came free.
    /// </summary>
    public static async Task<DhChapStep.Authenticated> RunAsync(
        IoQueuePair queue,
        DhChapHostExchange exchange,
        TransportAddress address,
        string subsystemNqn,
        TimeSpan stepTimeout,
        CloseReason timeoutReason,
        Action<bool>? holdQueue,
        CancellationToken cancel)
    {
        async Task<(NvmeStatus, ReadOnlyMemory<byte>)> SubmitAsync(SubmissionQueueEntry command, ReadOnlyMemory<byte> dataOut, int dataInLength)
        {
            byte[] buffer = dataInLength > 0 ? new byte[dataInLength] : [];
            var deadline = DateTime.UtcNow + stepTimeout;
            ValueTask<IoResult> submitted;
            try
            {
                while (true)
                {
                    submitted = dataInLength > 0 ? queue.SubmitReadAsync(command, buffer) : queue.SubmitWriteAsync(command, dataOut);
                    if (!submitted.IsCompleted || submitted.Result.Outcome != CommandOutcome.QueueFull)
                    {
                        break;
                    }

                    // Every entry holds I/O (re-authentication of a busy queue): new I/O goes elsewhere until this
                    // command has taken the next entry to come free, or it would never get one.
                    holdQueue?.Invoke(true);
                    if (DateTime.UtcNow >= deadline)
                    {
                        throw new TimeoutException();
                    }

                    await Task.Delay(FullQueuePause, cancel).ConfigureAwait(false);
                }
            }
            finally
            {
                holdQueue?.Invoke(false);
            }

            var result = await submitted.AsTask().WaitAsync(stepTimeout, cancel).ConfigureAwait(false);
            // Its entry is free again: for I/O that may have waited for it.
            holdQueue?.Invoke(false);

            // Resumed on the queue's receive thread: the hashing and DH of the next step run elsewhere.
            await Task.Yield();
            if (result.Outcome != CommandOutcome.Completed)
            {
                throw new ConnectionClosedException(result.Outcome == CommandOutcome.ConnectionClosed
                    ? await queue.Closed.ConfigureAwait(false)
                    : new ConnectionClosed(CloseReason.AuthenticationFailed, $"{address}: DH-HMAC-CHAP with {subsystemNqn} (queue {exchange.QueueId}): Authentication Send/Receive ended with {result.Outcome}"));
            }

            return (result.Status, buffer.AsMemory(0, Math.Clamp(result.BytesTransferred, 0, buffer.Length)));
        }

        try
        {
            return await ConnectAuthentication.RunAsync(exchange, SubmitAsync).ConfigureAwait(false);
        }
        catch (AuthenticationFailedException e)
        {
            throw new ConnectionClosedException(new ConnectionClosed(CloseReason.AuthenticationFailed, $"{address}: {e.Message}"));
        }
        catch (TimeoutException)
        {
            throw new ConnectionClosedException(new ConnectionClosed(
                timeoutReason,
                $"DH-HMAC-CHAP with {subsystemNqn} (I/O queue {exchange.QueueId}) at {address}: no answer to {exchange.Step} within {stepTimeout.TotalSeconds:0.###} s"));
        }
    }
}
