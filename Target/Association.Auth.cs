using System.Buffers;
using System.Security.Cryptography;
using ActorNvme.Protocol.Auth;
using ActorNvme.Protocol.Nvme;

namespace ActorNvme.Target;

// In-band DH-HMAC-CHAP (Authentication Send / Receive) on any queue whose host has keys for its subsystem.
internal sealed partial class Association
{
    /// <summary>The largest message a host sends (a Reply with SHA-512 and ffdhe8192 is 1168 bytes), with room to spare.</summary>
    private const int MaxAuthenticationSend = 4096;

    /// <summary>Bounds the buffer an Authentication Receive makes the target fill (hosts ask for 4096 or less).</summary>
    private const int MaxAuthenticationReceive = 64 * 1024;

    // Owned by the read loop (set by Connect, used by its commands), disposed when the connection ends.
    private QueueAuthentication? _authentication;
    private bool _authenticationFailed;

    /// <summary>
    /// After a successful Connect: when the host has keys for the subsystem, the queue must authenticate
    /// (the answer's AUTHREQ.ATR, dword 0 bit 17). Returns the bits to add to dword 0.
    /// </summary>
    private uint StartAuthentication(SubsystemBase subsystem, string hostNqn)
    {
        if (subsystem is not NvmSubsystem || _target.FindDhChapKeys(hostNqn, subsystem.Nqn) is not { } keys)
        {
            return 0;
        }

        _authentication = new QueueAuthentication(keys, hostNqn, subsystem.Nqn);
        _ = CloseUnlessAuthenticatedAsync(_options.AuthenticationTimeout);
        return (uint)AuthenticationRequired << 16;
    }

    /// <summary>AUTHREQ.ATR in the Connect answer (as nvmet and SPDK set it).</summary>
    private const ushort AuthenticationRequired = 0x0002;

    /// <summary>A command other than authentication that must wait: the queue has keys and has not proven them yet.</summary>
    private bool AwaitsAuthentication(in SubmissionQueueEntry sqe) =>
        _authenticationFailed
        || (_authentication is { QueueAuthenticated: false }
            && !(sqe.IsFabrics && sqe.FabricsType is FabricsCommandType.PropertyGet or FabricsCommandType.PropertySet));

    private static bool IsAuthenticationCommand(in SubmissionQueueEntry sqe) =>
        sqe.IsFabrics && sqe.FabricsType is FabricsCommandType.AuthenticationSend or FabricsCommandType.AuthenticationReceive;

    /// <summary>Authentication Send or Receive. A failed transaction ends the connection shortly after (<see cref="TargetOptions.AuthenticationFailureLinger"/>).</summary>
    private async ValueTask<bool> HandleAuthenticationAsync(Controller controller, SubmissionQueueEntry sqe, ReadOnlySequence<byte> data)
    {
        var invalidField = NvmeStatus.Generic(GenericStatus.InvalidField, true);
        if (AuthenticationCommands.Protocol(sqe) != AuthenticationCommands.SecurityProtocol
            || AuthenticationCommands.SpecificFields(sqe) != (AuthenticationCommands.SpecificField, AuthenticationCommands.SpecificField))
        {
            await CompleteAsync(sqe.CommandId, invalidField).ConfigureAwait(false);
            return true;
        }

        var authentication = _authentication;
        if (authentication is null)
        {
            // The host has no keys here: there is no transaction to take part in.
            await CompleteAsync(sqe.CommandId, NvmeStatus.Generic(GenericStatus.CommandSequenceError, true)).ConfigureAwait(false);
            return true;
        }

        uint length = AuthenticationCommands.Length(sqe);
        var exchange = authentication.Exchange;
        if (sqe.FabricsType == FabricsCommandType.AuthenticationSend)
        {
            if (length is 0 or > MaxAuthenticationSend)
            {
                await CompleteAsync(sqe.CommandId, invalidField).ConfigureAwait(false);
                return true;
            }

            if (!sqe.DataPointer.IsInCapsule || sqe.DataPointer.Length != length || data.Length != length)
            {
                await CompleteAsync(sqe.CommandId, NvmeStatus.Generic(GenericStatus.DataSglLengthInvalid, true)).ConfigureAwait(false);
                return true;
            }

            var message = new byte[length];
            data.CopyTo(message);
            if (exchange.Authenticated && DhChapMessages.KindOf(message) == DhChapMessageKind.Negotiate
                && _target.FindDhChapKeys(controller.HostNqn, controller.Subsystem.Nqn) is { } current && !ReferenceEquals(current, authentication.Keys))
            {
                // A re-authentication checks the keys the host has now (set since this queue's last transaction), as
                // SPDK's nvmf_subsystem_set_keys has it: key rotation without dropping the connection.
                var renewed = new QueueAuthentication(current, controller.HostNqn, controller.Subsystem.Nqn) { QueueAuthenticated = true };
                _authentication = renewed;
                authentication.Dispose();
                authentication = renewed;
                exchange = renewed.Exchange;
            }

            exchange.OnSend(message);
            CryptographicOperations.ZeroMemory(message);
            NoteAuthenticated(controller, authentication);
            await CompleteAsync(sqe.CommandId, NvmeStatus.Success).ConfigureAwait(false);
            // A failure found in what the host sent is told by the next Receive; the linger starts now either way.
            return !exchange.HasFailed || EndAuthentication(controller, exchange.Failure!);
        }

        if (length < DhChapMessages.FailureSize || length > MaxAuthenticationReceive || sqe.DataPointer.Length < length)
        {
            await CompleteAsync(sqe.CommandId, invalidField).ConfigureAwait(false);
            return true;
        }

        if (exchange.PendingLength > length)
        {
            // Too small a buffer: the message stays due for a Receive that can hold it.
            await CompleteAsync(sqe.CommandId, invalidField).ConfigureAwait(false);
            return true;
        }

        var answer = exchange.OnReceive();
        NoteAuthenticated(controller, authentication);
        var buffer = ArrayPool<byte>.Shared.Rent((int)length);
        answer.CopyTo(buffer, 0);
        buffer.AsSpan(answer.Length, (int)length - answer.Length).Clear();
        await SendDataAsync(sqe.CommandId, buffer, (int)length).ConfigureAwait(false);
        return !exchange.HasFailed || EndAuthentication(controller, exchange.Failure!);
    }

    private void NoteAuthenticated(Controller controller, QueueAuthentication authentication)
    {
        var exchange = authentication.Exchange;
        if (exchange.Authenticated && exchange.Successes > authentication.LoggedSuccesses)
        {
            // Each success is logged, a re-authentication's too (the queue stays authenticated in between).
            authentication.LoggedSuccesses = exchange.Successes;
            authentication.QueueAuthenticated = true;
            _target.Log.HostAuthenticated(Remote, controller.HostNqn, controller.Subsystem.Nqn, _queueId, DhChapHashes.Name(exchange.Hash), DhChapGroups.Name(exchange.Group), exchange.Bidirectional ? ", bidirectional" : string.Empty);
        }
    }

    /// <summary>
    /// The transaction failed and the host knows: this connection (only this one) ends after a short linger, so that the
    /// host reads the refusal before it sees the connection close; until then nothing else runs on it.
    /// </summary>
    private bool EndAuthentication(Controller controller, string reason)
    {
        if (_authenticationFailed)
        {
            return true;
        }

        _authenticationFailed = true;
        _authentication!.QueueAuthenticated = false;
        _target.Log.AuthenticationFailed(Remote, controller.HostNqn, controller.Subsystem.Nqn, _queueId, reason);
        _ = CloseAfterAsync(_options.AuthenticationFailureLinger, $"DH-HMAC-CHAP failed: {reason}");
        return true;
    }

    /// <summary>A queue that has not authenticated in time holds a connection for nothing: it is closed.</summary>
    private async Task CloseUnlessAuthenticatedAsync(TimeSpan timeout)
    {
        try
        {
            await Task.Delay(timeout, _stop.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            return;
        }

        if (_authentication is { QueueAuthenticated: false } && Listener.Gate.IsOpen)
        {
            Close($"no DH-HMAC-CHAP transaction succeeded within {timeout.TotalSeconds:0.#} s of Connect");
        }
    }

    private async Task CloseAfterAsync(TimeSpan delay, string reason)
    {
        try
        {
            await Task.Delay(delay, _stop.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            return;
        }

        Close(reason);
    }
}
