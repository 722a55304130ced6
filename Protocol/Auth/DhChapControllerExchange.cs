using System.Security.Cryptography;

namespace ActorNvme.Protocol.Auth;

/// <summary>
/// The controller side of one DH-HMAC-CHAP transaction, without I/O: fed each Authentication Send's
/// data, asked for each Authentication Receive's. Picks the strongest offered hash and group of its
/// own lists, checks R1, answers R2 when the host asks, and reports AUTH_Failure1 on a mismatch.
/// A target (ours, or a test's responder) runs one per queue.
/// </summary>
public sealed class DhChapControllerExchange
{
    private readonly DhChapSecret _hostSecret;
    private readonly DhChapSecret? _controllerSecret;
    private readonly string _hostNqn;
    private readonly string _subsystemNqn;
    private readonly IReadOnlyList<DhChapHashId> _hashes;
    private readonly IReadOnlyList<DhChapGroupId> _groups;

    private byte[]? _pending;
    private ushort _transactionId;
    private DhChapHashId _hash;
    private DhChapGroupId _group;
    private byte[] _challenge = [];
    private uint _sequence;
    private System.Numerics.BigInteger _privateKey;
    private bool _awaitSuccess2;

    public DhChapControllerExchange(DhChapSecret hostSecret, DhChapSecret? controllerSecret, string hostNqn, string subsystemNqn, IReadOnlyList<DhChapHashId>? hashes = null, IReadOnlyList<DhChapGroupId>? groups = null)
    {
        _hostSecret = hostSecret;
        _controllerSecret = controllerSecret;
        _hostNqn = hostNqn;
        _subsystemNqn = subsystemNqn;
        _hashes = hashes ?? DhChapHashes.All;
        _groups = groups ?? DhChapGroups.All;
    }

    /// <summary>The host proved itself (and, when it asked, was answered and accepted the answer).</summary>
    public bool Authenticated { get; private set; }

    /// <summary>The transaction ended in a failure (either side's); the reason in words.</summary>
    public string? Failure { get; private set; }

    public DhChapHashId Hash => _hash;

    public DhChapGroupId Group => _group;

    /// <summary>The data of an Authentication Send.</summary>
    public void OnSend(ReadOnlySpan<byte> message)
    {
        switch (DhChapMessages.KindOf(message))
        {
            case DhChapMessageKind.Negotiate:
                OnNegotiate(message);
                break;
            case DhChapMessageKind.Reply:
                OnReply(message);
                break;
            case DhChapMessageKind.Success2 when _awaitSuccess2:
                _awaitSuccess2 = false;
                Authenticated = true;
                break;
            case DhChapMessageKind.Failure2:
                DhChapMessages.TryReadFailure(message, out _, out var reason);
                Authenticated = false;
                Failure = $"the host sent AUTH_Failure2: {DhChapMessages.Describe(reason)}";
                break;
            default:
                Fail(DhChapFailureReason.IncorrectMessage, $"unexpected {DhChapMessages.Name(DhChapMessages.KindOf(message))}");
                break;
        }
    }

    /// <summary>The data for an Authentication Receive (AUTH_Failure1 when nothing is due).</summary>
    public byte[] OnReceive()
    {
        var message = _pending ?? DhChapMessages.Failure(fromController: true, _transactionId, DhChapFailureReason.IncorrectMessage);
        _pending = null;
        return message;
    }

    private void OnNegotiate(ReadOnlySpan<byte> message)
    {
        if (!DhChapMessages.TryReadNegotiate(message, out var negotiate, out string? error))
        {
            Fail(DhChapFailureReason.IncorrectPayload, error!);
            return;
        }

        _transactionId = negotiate!.TransactionId;
        var hash = _hashes.Where(h => negotiate.Hashes.Contains((byte)h)).Select(h => (DhChapHashId?)h).LastOrDefault();
        var group = _groups.Where(g => negotiate.Groups.Contains((byte)g)).Select(g => (DhChapGroupId?)g).LastOrDefault();
        if (hash is null || group is null)
        {
            Fail(hash is null ? DhChapFailureReason.HashUnusable : DhChapFailureReason.GroupUnusable, "no common hash or DH group");
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

        _pending = DhChapMessages.Challenge(_transactionId, _hash, _group, _sequence, _challenge, dhValue);
    }

    private void OnReply(ReadOnlySpan<byte> message)
    {
        int hashLength = DhChapHashes.Length(_hash);
        if (!DhChapMessages.TryReadReply(message, hashLength, FfdheGroup.ValueLength(_group), out var reply, out string? error))
        {
            Fail(DhChapFailureReason.IncorrectPayload, error!);
            return;
        }

        byte[] hostChallenge = _challenge;
        byte[]? sharedSecret = null;
        if (_group != DhChapGroupId.Null)
        {
            sharedSecret = FfdheGroup.For(_group).SharedSecret(_privateKey, reply!.DhValue);
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
        if (!CryptographicOperations.FixedTimeEquals(expected, reply!.Response))
        {
            Fail(DhChapFailureReason.Failed, "the host's response does not match its key");
            return;
        }

        if (reply.ControllerChallenge is null)
        {
            Authenticated = true;
            _pending = DhChapMessages.Success1(_transactionId, hashLength, []);
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
        _awaitSuccess2 = true;
        _pending = DhChapMessages.Success1(_transactionId, hashLength, response);
    }

    private void Fail(DhChapFailureReason reason, string detail)
    {
        Authenticated = false;
        Failure = detail;
        _pending = DhChapMessages.Failure(fromController: true, _transactionId, reason);
    }
}
