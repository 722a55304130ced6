using System.Security.Cryptography;
using ActorNvme.Protocol.Nvme;

namespace ActorNvme.Protocol.Auth;

/// <summary>What a host authenticates with: its secret, and the controller's when the controller is to prove itself too (bidirectional).</summary>
public sealed record DhChapHostCredentials(DhChapSecret HostSecret, DhChapSecret? ControllerSecret = null)
{
    /// <summary>Hashes offered in AUTH_Negotiate (the controller picks one).</summary>
    public IReadOnlyList<DhChapHashId> Hashes { get; init; } = DhChapHashes.All;

    /// <summary>DH groups offered in AUTH_Negotiate (the controller picks one).</summary>
    public IReadOnlyList<DhChapGroupId> Groups { get; init; } = DhChapGroups.All;

    public bool Bidirectional => ControllerSecret is not null;

    public override string ToString() => $"DH-HMAC-CHAP credentials ({(Bidirectional ? "bidirectional" : "unidirectional")})";
}

/// <summary>Why an authentication transaction failed.</summary>
public enum DhChapFailureKind
{
    /// <summary>The controller refused the host: AUTH_Failure1, or an error status on Authentication Send/Receive.</summary>
    HostRefused,

    /// <summary>The controller's response R2 did not match: the host sent AUTH_Failure2.</summary>
    ControllerNotAuthenticated,

    /// <summary>The controller's message was malformed or not the one due (the host sent AUTH_Failure2 where it could).</summary>
    ProtocolError,

    /// <summary>The controller chose a hash or group the host did not offer.</summary>
    Unsupported,
}

/// <summary>What the driver of a <see cref="DhChapHostExchange"/> does next.</summary>
public abstract record DhChapStep
{
    /// <summary>Authentication Send with <paramref name="Message"/> as data, then <see cref="DhChapHostExchange.OnSent"/>.</summary>
    public sealed record Send(byte[] Message, string Description) : DhChapStep;

    /// <summary>Authentication Receive with room for <paramref name="Length"/> bytes, then <see cref="DhChapHostExchange.OnReceived"/>.</summary>
    public sealed record Receive(int Length, string Description) : DhChapStep;

    public sealed record Authenticated(DhChapHashId Hash, DhChapGroupId Group, bool ControllerAuthenticated) : DhChapStep;

    public sealed record Failed(DhChapFailureKind Kind, string Detail) : DhChapStep;
}

/// <summary>
/// The host side of one DH-HMAC-CHAP transaction on one queue, without I/O: AUTH_Negotiate, the
/// Challenge, the Reply (with a challenge C2 of its own when bidirectional), Success1 (R2 checked in
/// constant time), Success2, or AUTH_Failure2 when the controller's answer is wrong. Each call returns
/// the next <see cref="DhChapStep"/>; the driver owns the queue and the clock. Not thread-safe: one owner.
/// </summary>
public sealed class DhChapHostExchange
{
    private readonly DhChapHostCredentials _credentials;
    private readonly string _hostNqn;
    private readonly string _subsystemNqn;
    private readonly ushort _transactionId;
    private readonly string _where;

    private State _state = State.Idle;
    private DhChapChallenge? _challenge;
    private byte[]? _controllerChallenge;
    private byte[]? _controllerSessionChallenge;
    private uint _controllerSequence;
    private DhChapStep.Failed? _afterFailure2;

    public DhChapHostExchange(DhChapHostCredentials credentials, string hostNqn, string subsystemNqn, ushort queueId, ushort? transactionId = null)
    {
        ArgumentNullException.ThrowIfNull(credentials);
        ArgumentException.ThrowIfNullOrEmpty(hostNqn);
        ArgumentException.ThrowIfNullOrEmpty(subsystemNqn);
        _credentials = credentials;
        _hostNqn = hostNqn;
        _subsystemNqn = subsystemNqn;
        _transactionId = transactionId ?? queueId;
        QueueId = queueId;
        _where = $"DH-HMAC-CHAP with {subsystemNqn} (queue {queueId})";
    }

    private enum State
    {
        Idle,
        SentNegotiate,
        AwaitChallenge,
        SentReply,
        AwaitSuccess1,
        SentSuccess2,
        SentFailure2,
        Finished,
    }

    /// <summary>The queue the transaction runs on (0: the admin queue).</summary>
    public ushort QueueId { get; }

    /// <summary>The message step under way, for errors and deadlines ("AUTH_Negotiate", "DH-HMAC-CHAP_Challenge" ...).</summary>
    public string Step => _state switch
    {
        State.Idle or State.SentNegotiate => "AUTH_Negotiate",
        State.AwaitChallenge => "DH-HMAC-CHAP_Challenge",
        State.SentReply => "DH-HMAC-CHAP_Reply",
        State.AwaitSuccess1 => "DH-HMAC-CHAP_Success1",
        State.SentSuccess2 => "DH-HMAC-CHAP_Success2",
        State.SentFailure2 => "AUTH_Failure2",
        _ => "finished",
    };

    public DhChapStep Start()
    {
        if (_state != State.Idle)
        {
            throw new InvalidOperationException("the authentication transaction has started already");
        }

        _state = State.SentNegotiate;
        return new DhChapStep.Send(DhChapMessages.Negotiate(_transactionId, _credentials.Hashes, _credentials.Groups), "AUTH_Send AUTH_Negotiate");
    }

    /// <summary>The Authentication Send of the last <see cref="DhChapStep.Send"/> completed with <paramref name="status"/>.</summary>
    public DhChapStep OnSent(NvmeStatus status)
    {
        var sent = _state;
        if (sent is not (State.SentNegotiate or State.SentReply or State.SentSuccess2 or State.SentFailure2))
        {
            throw new InvalidOperationException($"no Authentication Send is outstanding ({_state})");
        }

        if (sent == State.SentFailure2)
        {
            // The transaction has failed already; how the controller took AUTH_Failure2 changes nothing.
            return Finish(_afterFailure2!);
        }

        if (!status.IsSuccess)
        {
            return Finish(new DhChapStep.Failed(DhChapFailureKind.HostRefused, $"{_where}: Authentication Send ({Step}) refused: {status.ToString(CommandSet.Fabrics)}"));
        }

        switch (sent)
        {
            case State.SentNegotiate:
                _state = State.AwaitChallenge;
                return new DhChapStep.Receive(DhChapMessages.ReceiveLength, "AUTH_Receive DH-HMAC-CHAP_Challenge");
            case State.SentReply:
                _state = State.AwaitSuccess1;
                return new DhChapStep.Receive(DhChapMessages.ReceiveLength, "AUTH_Receive DH-HMAC-CHAP_Success1");
            default:
                return Finish(new DhChapStep.Authenticated(_challenge!.Hash, _challenge.Group, ControllerAuthenticated: true));
        }
    }

    /// <summary>The Authentication Receive of the last <see cref="DhChapStep.Receive"/> completed with <paramref name="status"/> and <paramref name="data"/> (possibly padded or short).</summary>
    public DhChapStep OnReceived(NvmeStatus status, ReadOnlySpan<byte> data)
    {
        if (_state is not (State.AwaitChallenge or State.AwaitSuccess1))
        {
            throw new InvalidOperationException($"no Authentication Receive is outstanding ({_state})");
        }

        if (!status.IsSuccess)
        {
            string meaning = status.Type == StatusCodeType.CommandSpecific && status.Code == (byte)FabricsStatus.AuthenticationRequired ? " (the controller refused the host's authentication)" : string.Empty;
            return Finish(new DhChapStep.Failed(DhChapFailureKind.HostRefused, $"{_where}: Authentication Receive ({Step}) refused: {status.ToString(CommandSet.Fabrics)}{meaning}"));
        }

        if (DhChapMessages.TryReadFailure(data, out ushort failedTransaction, out var reason) && DhChapMessages.KindOf(data) == DhChapMessageKind.Failure1)
        {
            string other = failedTransaction == _transactionId ? string.Empty : $" (for transaction 0x{failedTransaction:x4}, ours is 0x{_transactionId:x4})";
            return Finish(new DhChapStep.Failed(DhChapFailureKind.HostRefused, $"{_where}: the controller answered {Step} with AUTH_Failure1: {DhChapMessages.Describe(reason)}{other}; check the host key (dhchap-key) and that the subsystem allows this host"));
        }

        return _state == State.AwaitChallenge ? OnChallenge(data) : OnSuccess1(data);
    }

    private DhChapStep OnChallenge(ReadOnlySpan<byte> data)
    {
        if (!DhChapMessages.TryReadChallenge(data, out var challenge, out var reason, out string? error))
        {
            return SendFailure2(reason, DhChapFailureKind.ProtocolError, error!);
        }

        if (challenge!.TransactionId != _transactionId)
        {
            return SendFailure2(DhChapFailureReason.IncorrectPayload, DhChapFailureKind.ProtocolError, $"the Challenge is for transaction 0x{challenge.TransactionId:x4}, ours is 0x{_transactionId:x4}");
        }

        if (!_credentials.Hashes.Contains(challenge.Hash))
        {
            return SendFailure2(DhChapFailureReason.HashUnusable, DhChapFailureKind.Unsupported, $"the controller chose {DhChapHashes.Name(challenge.Hash)}, which the host did not offer");
        }

        if (!_credentials.Groups.Contains(challenge.Group))
        {
            return SendFailure2(DhChapFailureReason.GroupUnusable, DhChapFailureKind.Unsupported, $"the controller chose DH group {DhChapGroups.Name(challenge.Group)}, which the host did not offer");
        }

        _challenge = challenge;
        var hash = challenge.Hash;
        int hashLength = DhChapHashes.Length(hash);
        byte[] hostChallenge = challenge.Challenge;
        byte[] hostDhValue = [];
        byte[]? sharedSecret = null;
        if (challenge.Group != DhChapGroupId.Null)
        {
            var group = FfdheGroup.For(challenge.Group);
            var privateKey = group.NewPrivateKey();
            sharedSecret = group.SharedSecret(privateKey, challenge.DhValue);
            if (sharedSecret is null)
            {
                return SendFailure2(DhChapFailureReason.IncorrectPayload, DhChapFailureKind.ProtocolError, $"the controller's {DhChapGroups.Name(challenge.Group)} public value is out of range");
            }

            hostDhValue = group.PublicValue(privateKey);
            hostChallenge = DhChapResponses.Augment(hash, challenge.Challenge, sharedSecret);
        }

        byte[] hostKey = _credentials.HostSecret.TransformedKey(_hostNqn);
        byte[] response;
        try
        {
            response = DhChapResponses.Host(hash, hostKey, hostChallenge, challenge.SequenceNumber, _transactionId, 0, _hostNqn, _subsystemNqn);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(hostKey);
        }

        byte[] controllerChallenge = [];
        uint controllerSequence = 0;
        if (_credentials.Bidirectional)
        {
            controllerChallenge = RandomNumberGenerator.GetBytes(hashLength);
            do
            {
                controllerSequence = (uint)RandomNumberGenerator.GetInt32(int.MaxValue);
            }
            while (controllerSequence == 0);

            _controllerChallenge = controllerChallenge;
            _controllerSessionChallenge = sharedSecret is null ? controllerChallenge : DhChapResponses.Augment(hash, controllerChallenge, sharedSecret);
            _controllerSequence = controllerSequence;
        }

        if (sharedSecret is not null)
        {
            CryptographicOperations.ZeroMemory(sharedSecret);
        }

        _state = State.SentReply;
        return new DhChapStep.Send(DhChapMessages.Reply(_transactionId, response, controllerChallenge, controllerSequence, hostDhValue), "AUTH_Send DH-HMAC-CHAP_Reply");
    }

    private DhChapStep OnSuccess1(ReadOnlySpan<byte> data)
    {
        var challenge = _challenge!;
        int hashLength = DhChapHashes.Length(challenge.Hash);
        if (!DhChapMessages.TryReadSuccess1(data, hashLength, out ushort transactionId, out byte[]? response, out string? error))
        {
            return SendFailure2(DhChapFailureReason.IncorrectMessage, DhChapFailureKind.ProtocolError, error!);
        }

        if (transactionId != _transactionId)
        {
            return SendFailure2(DhChapFailureReason.IncorrectPayload, DhChapFailureKind.ProtocolError, $"the Success1 is for transaction 0x{transactionId:x4}, ours is 0x{_transactionId:x4}");
        }

        if (!_credentials.Bidirectional)
        {
            return Finish(new DhChapStep.Authenticated(challenge.Hash, challenge.Group, ControllerAuthenticated: false));
        }

        if (response is null)
        {
            return SendFailure2(DhChapFailureReason.Failed, DhChapFailureKind.ControllerNotAuthenticated, "controller authentication failed: the Success1 carries no response (RVALID clear) to the host's challenge");
        }

        byte[] controllerKey = _credentials.ControllerSecret!.TransformedKey(_subsystemNqn);
        byte[] expected;
        try
        {
            expected = DhChapResponses.Controller(challenge.Hash, controllerKey, _controllerSessionChallenge!, _controllerSequence, _transactionId, 0, _subsystemNqn, _hostNqn);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(controllerKey);
        }

        if (!CryptographicOperations.FixedTimeEquals(expected, response))
        {
            return SendFailure2(DhChapFailureReason.Failed, DhChapFailureKind.ControllerNotAuthenticated, "controller authentication failed: its response does not match the controller key (dhchap-ctrlr-key)");
        }

        _state = State.SentSuccess2;
        return new DhChapStep.Send(DhChapMessages.Success2(_transactionId), "AUTH_Send DH-HMAC-CHAP_Success2");
    }

    /// <summary>
    /// The connection ended with the transaction under way. After AUTH_Failure2 the failure is the host's own
    /// finding (a controller may end the connection on receiving it, as Linux nvmet does); after the Reply it is
    /// a refusal of the host's response, which Linux nvmet gives by tearing the queue down instead of AUTH_Failure1.
    /// </summary>
    public DhChapStep.Failed OnConnectionLost(string why)
    {
        if (_state == State.Finished)
        {
            throw new InvalidOperationException("the authentication transaction has ended already");
        }

        if (_state == State.SentFailure2)
        {
            return (DhChapStep.Failed)Finish(_afterFailure2!);
        }

        string detail = _state is State.SentReply or State.AwaitSuccess1
            ? $"{_where}: the controller closed the connection instead of answering the host's DH-HMAC-CHAP_Reply, so it refused the host's response (is the dhchap-key the controller's?): {why}"
            : $"{_where}: the controller closed the connection during {Step}: {why}";
        return (DhChapStep.Failed)Finish(new DhChapStep.Failed(DhChapFailureKind.HostRefused, detail));
    }

    /// <summary>Tells the controller the transaction failed (AUTH_Failure2), then fails with <paramref name="detail"/>.</summary>
    private DhChapStep SendFailure2(DhChapFailureReason reason, DhChapFailureKind kind, string detail)
    {
        _afterFailure2 = new DhChapStep.Failed(kind, $"{_where}: {detail}");
        _state = State.SentFailure2;
        return new DhChapStep.Send(DhChapMessages.Failure(fromController: false, _transactionId, reason), "AUTH_Send AUTH_Failure2");
    }

    private DhChapStep Finish(DhChapStep step)
    {
        _state = State.Finished;
        if (_controllerSessionChallenge is not null && !ReferenceEquals(_controllerSessionChallenge, _controllerChallenge))
        {
            CryptographicOperations.ZeroMemory(_controllerSessionChallenge);
        }

        return step;
    }
}
