using System.Security.Cryptography;

namespace ActorNvme.Protocol.Auth;

/// <summary>
/// The controller side of DH-HMAC-CHAP on one queue, without I/O: fed each Authentication Send's data,
/// asked for each Authentication Receive's. Picks the strongest offered hash and group of its own lists,
/// checks R1, answers R2 when the host asks, and reports AUTH_Failure1 on a mismatch or on a message out
/// of order. A target (ours, or a test's responder) runs one per queue; a later AUTH_Negotiate after
/// success starts a re-authentication.
/// </summary>
public sealed class DhChapControllerExchange
{
    private readonly DhChapSecret _hostSecret;
    private readonly DhChapSecret? _controllerSecret;
    private readonly string _hostNqn;
    private readonly string _subsystemNqn;
    private readonly IReadOnlyList<DhChapHashId> _hashes;
    private readonly IReadOnlyList<DhChapGroupId> _groups;

    private State _state = State.AwaitNegotiate;
    private byte[]? _pending;
    private ushort _transactionId;
    private DhChapHashId _hash;
    private DhChapGroupId _group;
    private byte[] _challenge = [];
    private uint _sequence;
    private System.Numerics.BigInteger _privateKey;

    public DhChapControllerExchange(DhChapSecret hostSecret, DhChapSecret? controllerSecret, string hostNqn, string subsystemNqn, IReadOnlyList<DhChapHashId>? hashes = null, IReadOnlyList<DhChapGroupId>? groups = null)
    {
        ArgumentNullException.ThrowIfNull(hostSecret);
        _hostSecret = hostSecret;
        _controllerSecret = controllerSecret;
        _hostNqn = hostNqn;
        _subsystemNqn = subsystemNqn;
        _hashes = hashes is { Count: > 0 } ? hashes : DhChapHashes.All;
        _groups = groups is { Count: > 0 } ? groups : DhChapGroups.All;
    }

    private enum State
    {
        AwaitNegotiate,
        ChallengeDue,
        AwaitReply,
        Success1Due,
        AwaitSuccess2,
        Done,
        Failed,
    }

    /// <summary>The host proved itself (and, when it asked, was answered and accepted the answer).</summary>
    public bool Authenticated { get; private set; }

    /// <summary>How many transactions on this queue have succeeded (the first, then each re-authentication).</summary>
    public int Successes { get; private set; }

    /// <summary>The transaction ended in a failure (either side's); the reason in words. Nothing secret.</summary>
    public string? Failure { get; private set; }

    /// <summary>The transaction failed: once its AUTH_Failure1 is delivered (or the host sent AUTH_Failure2) the queue is done.</summary>
    public bool HasFailed => _state == State.Failed;

    /// <summary>The host has sent AUTH_Failure2: there is nothing more to tell it.</summary>
    public bool HostGaveUp { get; private set; }

    /// <summary>The host asked the controller to authenticate itself (CVALID) in the last transaction.</summary>
    public bool Bidirectional { get; private set; }

    public DhChapHashId Hash => _hash;

    public DhChapGroupId Group => _group;

    /// <summary>The length of the message the next Authentication Receive returns.</summary>
    public int PendingLength => _pending?.Length ?? DhChapMessages.FailureSize;

    /// <summary>The data of an Authentication Send.</summary>
    public void OnSend(ReadOnlySpan<byte> message)
    {
        var kind = DhChapMessages.KindOf(message);
        switch (kind)
        {
            case DhChapMessageKind.Negotiate when _state is State.AwaitNegotiate or State.Done:
                OnNegotiate(message);
                break;
            case DhChapMessageKind.Reply when _state == State.AwaitReply:
                OnReply(message);
                break;
            case DhChapMessageKind.Success2 when _state == State.AwaitSuccess2:
                if (message.Length < DhChapMessages.Success2Size || DhChapMessages.TransactionIdOf(message) != _transactionId)
                {
                    Fail(DhChapFailureReason.IncorrectPayload, "the host's Success2 is short or names another transaction");
                    break;
                }

                _state = State.Done;
                Authenticated = true;
                Successes++;
                break;
            case DhChapMessageKind.Failure2:
                DhChapMessages.TryReadFailure(message, out _, out var reason);
                _pending = null;
                _state = State.Failed;
                HostGaveUp = true;
                Authenticated = false;
                Failure = $"the host sent AUTH_Failure2: {DhChapMessages.Describe(reason)}";
                break;
            default:
                Fail(DhChapFailureReason.IncorrectMessage, $"unexpected {DhChapMessages.Name(kind)} while {Expecting()}");
                break;
        }
    }

    /// <summary>The data for an Authentication Receive: the message due, or AUTH_Failure1 when nothing is due (a receive out of order fails the transaction).</summary>
    public byte[] OnReceive()
    {
        switch (_state)
        {
            case State.ChallengeDue:
                _state = State.AwaitReply;
                break;
            case State.Success1Due:
                _state = Bidirectional ? State.AwaitSuccess2 : State.Done;
                break;
            case State.Failed when _pending is not null:
                break;
            default:
                Fail(DhChapFailureReason.IncorrectMessage, $"an Authentication Receive while {Expecting()}");
                break;
        }

        var message = _pending ?? DhChapMessages.Failure(fromController: true, _transactionId, DhChapFailureReason.IncorrectMessage);
        _pending = null;
        return message;
    }

    private string Expecting() => _state switch
    {
        State.AwaitNegotiate => "waiting for AUTH_Negotiate",
        State.ChallengeDue => "the Challenge is due",
        State.AwaitReply => "waiting for DH-HMAC-CHAP_Reply",
        State.Success1Due => "Success1 is due",
        State.AwaitSuccess2 => "waiting for DH-HMAC-CHAP_Success2",
        State.Done => "authenticated",
        _ => "failed",
    };

    private void OnNegotiate(ReadOnlySpan<byte> message)
    {
        if (!DhChapMessages.TryReadNegotiate(message, out var negotiate, out string? error))
        {
            Fail(DhChapFailureReason.IncorrectPayload, error!);
            return;
        }

        _transactionId = negotiate!.TransactionId;
        if (negotiate.SecureChannel != 0)
        {
            Fail(DhChapFailureReason.ConcatenationMismatch, $"the host asks for secure channel concatenation (SC_C {negotiate.SecureChannel}), which is not offered");
            return;
        }

        var hash = _hashes.Where(h => negotiate.Hashes.Contains((byte)h)).Select(h => (DhChapHashId?)h).LastOrDefault();
        if (hash is null)
        {
            Fail(DhChapFailureReason.HashUnusable, "no hash the host offers is allowed");
            return;
        }

        var group = _groups.Where(g => negotiate.Groups.Contains((byte)g)).Select(g => (DhChapGroupId?)g).LastOrDefault();
        if (group is null)
        {
            Fail(DhChapFailureReason.GroupUnusable, "no DH group the host offers is allowed");
            return;
        }

        _hash = hash.Value;
        _group = group.Value;
        _challenge = RandomNumberGenerator.GetBytes(DhChapHashes.Length(_hash));
        _sequence = (uint)RandomNumberGenerator.GetInt32(1, int.MaxValue);
        byte[] dhValue = [];
        if (_group != DhChapGroupId.Null)
        {
            var ffdhe = FfdheGroup.For(_group);
            _privateKey = ffdhe.NewPrivateKey();
            dhValue = ffdhe.PublicValue(_privateKey);
        }

        Bidirectional = false;
        _pending = DhChapMessages.Challenge(_transactionId, _hash, _group, _sequence, _challenge, dhValue);
        _state = State.ChallengeDue;
    }

    private void OnReply(ReadOnlySpan<byte> message)
    {
        int hashLength = DhChapHashes.Length(_hash);
        if (!DhChapMessages.TryReadReply(message, hashLength, FfdheGroup.ValueLength(_group), out var reply, out string? error))
        {
            Fail(DhChapFailureReason.IncorrectPayload, error!);
            return;
        }

        if (reply!.TransactionId != _transactionId)
        {
            Fail(DhChapFailureReason.IncorrectPayload, $"the Reply names transaction {reply.TransactionId:x4}, not {_transactionId:x4}");
            return;
        }

        byte[] hostChallenge = _challenge;
        byte[]? sharedSecret = null;
        try
        {
            if (_group != DhChapGroupId.Null)
            {
                sharedSecret = FfdheGroup.For(_group).SharedSecret(_privateKey, reply.DhValue);
                if (sharedSecret is null)
                {
                    Fail(DhChapFailureReason.IncorrectPayload, "the host's DH value is out of range");
                    return;
                }

                hostChallenge = DhChapResponses.Augment(_hash, _challenge, sharedSecret);
            }

            byte[] hostKey = _hostSecret.TransformedKey(_hostNqn);
            byte[] expected = DhChapResponses.Host(_hash, hostKey, hostChallenge, _sequence, _transactionId, 0, _hostNqn, _subsystemNqn);
            CryptographicOperations.ZeroMemory(hostKey);
            if (!CryptographicOperations.FixedTimeEquals(expected, reply.Response))
            {
                Fail(DhChapFailureReason.Failed, "the host's response does not match its key");
                return;
            }

            if (reply.ControllerChallenge is null)
            {
                Authenticated = true;
                Successes++;
                _pending = DhChapMessages.Success1(_transactionId, hashLength, []);
                _state = State.Success1Due;
                return;
            }

            if (_controllerSecret is null || reply.SequenceNumber == 0)
            {
                Fail(DhChapFailureReason.Failed, _controllerSecret is null ? "the host asks the controller to authenticate, but no controller key is set" : "the host's sequence number S2 is 0");
                return;
            }

            byte[] controllerChallenge = sharedSecret is null ? reply.ControllerChallenge : DhChapResponses.Augment(_hash, reply.ControllerChallenge, sharedSecret);
            byte[] controllerKey = _controllerSecret.TransformedKey(_subsystemNqn);
            byte[] response = DhChapResponses.Controller(_hash, controllerKey, controllerChallenge, reply.SequenceNumber, _transactionId, 0, _subsystemNqn, _hostNqn);
            CryptographicOperations.ZeroMemory(controllerKey);
            Bidirectional = true;
            _pending = DhChapMessages.Success1(_transactionId, hashLength, response);
            _state = State.Success1Due;
        }
        finally
        {
            if (sharedSecret is not null)
            {
                CryptographicOperations.ZeroMemory(sharedSecret);
            }

            if (!ReferenceEquals(hostChallenge, _challenge))
            {
                CryptographicOperations.ZeroMemory(hostChallenge);
            }
        }
    }

    private void Fail(DhChapFailureReason reason, string detail)
    {
        Authenticated = false;
        Failure = detail;
        _state = State.Failed;
        _pending = DhChapMessages.Failure(fromController: true, _transactionId, reason);
    }
}
