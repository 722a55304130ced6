using ActorNvme.Protocol.Auth;
using ActorNvme.Protocol.Nvme;

namespace ActorNvme.Transport.Authentication;

/// <summary>
/// What the Connect answer's AUTHREQ (dword 0 bits 31:16) asks of a queue, and the DH-HMAC-CHAP
/// transaction that answers it, driven by awaited submissions (I/O queues; the admin queue's bring-up
/// drives the same <see cref="DhChapHostExchange"/> from its script).
/// </summary>
public static class ConnectAuthentication
{
    /// <summary>AUTHREQ.ATR (dword 0 bit 17): an authentication transaction is required before other commands.</summary>
    public const ushort TransactionRequired = 0x0002;

    /// <summary>AUTHREQ.ASCR (dword 0 bit 18): authentication with secure channel concatenation is required.</summary>
    public const ushort SecureChannelRequired = 0x0004;

    /// <summary>
    /// Decides from <paramref name="authenticationRequirements"/>: no transaction needed (true, exchange null),
    /// one to run (true, exchange set), or one that cannot be run (false, <paramref name="error"/> says why, naming the subsystem).
    /// </summary>
    public static bool TryStart(
        ushort authenticationRequirements,
        DhChapHostCredentials? credentials,
        string hostNqn,
        string subsystemNqn,
        ushort queueId,
        out DhChapHostExchange? exchange,
        out string? error)
    {
        exchange = null;
        error = null;
        if ((authenticationRequirements & SecureChannelRequired) != 0)
        {
            error = $"{subsystemNqn} requires authentication with secure channel concatenation (Connect AUTHREQ.ASCR, queue {queueId}), which this host does not support";
            return false;
        }

        if ((authenticationRequirements & TransactionRequired) == 0)
        {
            return true;
        }

        if (credentials is null)
        {
            error = $"{subsystemNqn} requires DH-HMAC-CHAP authentication (Connect AUTHREQ.ATR, queue {queueId}) but no dhchap-key is configured for host {hostNqn}";
            return false;
        }

        exchange = new DhChapHostExchange(credentials, hostNqn, subsystemNqn, queueId);
        return true;
    }

    /// <summary>
    /// Runs <paramref name="exchange"/> with <paramref name="submit"/> (a command, its data out, the room for its data in;
    /// returns the status and the data received). Throws <see cref="AuthenticationFailedException"/> when it fails.
    /// </summary>
    public static async Task<DhChapStep.Authenticated> RunAsync(
        DhChapHostExchange exchange,
        Func<SubmissionQueueEntry, ReadOnlyMemory<byte>, int, Task<(NvmeStatus Status, ReadOnlyMemory<byte> Data)>> submit)
    {
        ArgumentNullException.ThrowIfNull(exchange);
        ArgumentNullException.ThrowIfNull(submit);
        var step = exchange.Start();
        while (true)
        {
            switch (step)
            {
                case DhChapStep.Send send:
                    var (sentStatus, _) = await submit(AuthenticationCommands.Send(send.Message.Length), send.Message, 0).ConfigureAwait(false);
                    step = exchange.OnSent(sentStatus);
                    break;
                case DhChapStep.Receive receive:
                    var (status, data) = await submit(AuthenticationCommands.Receive(receive.Length), ReadOnlyMemory<byte>.Empty, receive.Length).ConfigureAwait(false);
                    step = exchange.OnReceived(status, data.Span);
                    break;
                case DhChapStep.Authenticated done:
                    return done;
                case DhChapStep.Failed failed:
                    throw new AuthenticationFailedException(failed);
                default:
                    throw new InvalidOperationException($"unknown step {step}");
            }
        }
    }
}

/// <summary>A DH-HMAC-CHAP transaction failed; the message names the subsystem, the queue and the step.</summary>
public sealed class AuthenticationFailedException : Exception
{
    public AuthenticationFailedException(DhChapStep.Failed failure)
        : base(failure?.Detail)
    {
        Failure = failure ?? throw new ArgumentNullException(nameof(failure));
    }

    public AuthenticationFailedException()
        : this(new DhChapStep.Failed(DhChapFailureKind.ProtocolError, "authentication failed"))
    {
    }

    public AuthenticationFailedException(string message)
        : this(new DhChapStep.Failed(DhChapFailureKind.ProtocolError, message))
    {
    }

    public AuthenticationFailedException(string message, Exception innerException)
        : base(message, innerException)
    {
        Failure = new DhChapStep.Failed(DhChapFailureKind.ProtocolError, message);
    }

    public DhChapStep.Failed Failure { get; }
}
