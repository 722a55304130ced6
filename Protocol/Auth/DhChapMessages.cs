using System.Buffers.Binary;

namespace ActorNvme.Protocol.Auth;

/// <summary>AUTH_Failure reason code explanations (the reason code itself is always 01h, "authentication failure").</summary>
public enum DhChapFailureReason : byte
{
    Failed = 0x01,
    NotUsable = 0x02,
    ConcatenationMismatch = 0x03,
    HashUnusable = 0x04,
    GroupUnusable = 0x05,
    IncorrectPayload = 0x06,
    IncorrectMessage = 0x07,
}

/// <summary>Message kinds: (AUTH_Type, AUTH_Id) of the common header.</summary>
public enum DhChapMessageKind
{
    Unknown,
    Negotiate,
    Challenge,
    Reply,
    Success1,
    Success2,
    Failure2,
    Failure1,
}

/// <summary>A DH-HMAC-CHAP_Challenge as read.</summary>
public sealed record DhChapChallenge(ushort TransactionId, DhChapHashId Hash, DhChapGroupId Group, uint SequenceNumber, byte[] Challenge, byte[] DhValue);

/// <summary>A DH-HMAC-CHAP_Reply as read.</summary>
public sealed record DhChapReply(ushort TransactionId, byte[] Response, byte[]? ControllerChallenge, uint SequenceNumber, byte[] DhValue);

/// <summary>An AUTH_Negotiate as read (the DH-HMAC-CHAP descriptor's lists).</summary>
public sealed record DhChapNegotiate(ushort TransactionId, byte SecureChannel, IReadOnlyList<byte> Hashes, IReadOnlyList<byte> Groups);

/// <summary>
/// Encoders and decoders of the authentication messages carried by Authentication Send/Receive
/// (SECP E9h). Every decoder bounds each length by the bytes actually received before it reads.
/// </summary>
public static class DhChapMessages
{
    public const int NegotiateSize = 8 + DescriptorSize;
    public const int DescriptorSize = 64;
    public const int HeaderSize = 16;
    public const int Success2Size = 16;
    public const int FailureSize = 8;

    /// <summary>Room for the largest message a controller sends (a Challenge with SHA-512 and ffdhe8192), rounded up.</summary>
    public const int ReceiveLength = 4096;

    private const byte CommonType = 0x00;
    private const byte DhChapType = 0x01;
    private const byte DhChapAuthId = 0x01;
    private const int IdListSize = 60;
    private const int GroupListOffset = 30;

    public static DhChapMessageKind KindOf(ReadOnlySpan<byte> message)
    {
        if (message.Length < 2)
        {
            return DhChapMessageKind.Unknown;
        }

        return (message[0], message[1]) switch
        {
            (CommonType, 0x00) => DhChapMessageKind.Negotiate,
            (CommonType, 0xF0) => DhChapMessageKind.Failure2,
            (CommonType, 0xF1) => DhChapMessageKind.Failure1,
            (DhChapType, 0x01) => DhChapMessageKind.Challenge,
            (DhChapType, 0x02) => DhChapMessageKind.Reply,
            (DhChapType, 0x03) => DhChapMessageKind.Success1,
            (DhChapType, 0x04) => DhChapMessageKind.Success2,
            _ => DhChapMessageKind.Unknown,
        };
    }

    public static string Name(DhChapMessageKind kind) => kind switch
    {
        DhChapMessageKind.Negotiate => "AUTH_Negotiate",
        DhChapMessageKind.Challenge => "DH-HMAC-CHAP_Challenge",
        DhChapMessageKind.Reply => "DH-HMAC-CHAP_Reply",
        DhChapMessageKind.Success1 => "DH-HMAC-CHAP_Success1",
        DhChapMessageKind.Success2 => "DH-HMAC-CHAP_Success2",
        DhChapMessageKind.Failure1 => "AUTH_Failure1",
        DhChapMessageKind.Failure2 => "AUTH_Failure2",
        _ => "an unknown message",
    };

    public static string Describe(DhChapFailureReason reason) => reason switch
    {
        DhChapFailureReason.Failed => "authentication failed",
        DhChapFailureReason.NotUsable => "authentication protocol not usable",
        DhChapFailureReason.ConcatenationMismatch => "secure channel concatenation mismatch",
        DhChapFailureReason.HashUnusable => "hash function not usable",
        DhChapFailureReason.GroupUnusable => "DH group not usable",
        DhChapFailureReason.IncorrectPayload => "incorrect payload",
        DhChapFailureReason.IncorrectMessage => "incorrect protocol message",
        _ => $"reason 0x{(byte)reason:x2}",
    };

    public static byte[] Negotiate(ushort transactionId, IReadOnlyList<DhChapHashId> hashes, IReadOnlyList<DhChapGroupId> groups)
    {
        if (hashes.Count is 0 or > GroupListOffset || groups.Count is 0 or > IdListSize - GroupListOffset)
        {
            throw new ArgumentException("offer 1..30 hashes and 1..30 DH groups");
        }

        var message = new byte[NegotiateSize];
        message[0] = CommonType;
        message[1] = 0x00;
        BinaryPrimitives.WriteUInt16LittleEndian(message.AsSpan(4), transactionId);
        message[6] = 0; // SC_C: no secure channel concatenation
        message[7] = 1; // NAPD: one protocol descriptor
        message[8] = DhChapAuthId;
        message[10] = (byte)hashes.Count;
        message[11] = (byte)groups.Count;
        for (int i = 0; i < hashes.Count; i++)
        {
            message[12 + i] = (byte)hashes[i];
        }

        for (int i = 0; i < groups.Count; i++)
        {
            message[12 + GroupListOffset + i] = (byte)groups[i];
        }

        return message;
    }

    public static bool TryReadNegotiate(ReadOnlySpan<byte> message, out DhChapNegotiate? negotiate, out string? error)
    {
        negotiate = null;
        if (!Expect(message, DhChapMessageKind.Negotiate, NegotiateSize, out error))
        {
            return false;
        }

        if (message[7] < 1 || message[8] != DhChapAuthId)
        {
            error = $"AUTH_Negotiate carries no DH-HMAC-CHAP descriptor (NAPD {message[7]}, AUTHID 0x{message[8]:x2})";
            return false;
        }

        int hashCount = message[10];
        int groupCount = message[11];
        if (hashCount > GroupListOffset || groupCount > IdListSize - GroupListOffset)
        {
            error = $"AUTH_Negotiate lists {hashCount} hashes and {groupCount} groups (at most 30 each)";
            return false;
        }

        negotiate = new DhChapNegotiate(
            BinaryPrimitives.ReadUInt16LittleEndian(message[4..]),
            message[6],
            message.Slice(12, hashCount).ToArray(),
            message.Slice(12 + GroupListOffset, groupCount).ToArray());
        return true;
    }

    public static byte[] Challenge(ushort transactionId, DhChapHashId hash, DhChapGroupId group, uint sequenceNumber, ReadOnlySpan<byte> challenge, ReadOnlySpan<byte> dhValue)
    {
        var message = new byte[HeaderSize + challenge.Length + dhValue.Length];
        message[0] = DhChapType;
        message[1] = 0x01;
        BinaryPrimitives.WriteUInt16LittleEndian(message.AsSpan(4), transactionId);
        message[6] = checked((byte)challenge.Length);
        message[8] = (byte)hash;
        message[9] = (byte)group;
        BinaryPrimitives.WriteUInt16LittleEndian(message.AsSpan(10), checked((ushort)dhValue.Length));
        BinaryPrimitives.WriteUInt32LittleEndian(message.AsSpan(12), sequenceNumber);
        challenge.CopyTo(message.AsSpan(HeaderSize));
        dhValue.CopyTo(message.AsSpan(HeaderSize + challenge.Length));
        return message;
    }

    /// <summary>Reads a Challenge; HL must be the length of the hash it names, DHVLEN that of its group, and both must fit in what was received.</summary>
    public static bool TryReadChallenge(ReadOnlySpan<byte> message, out DhChapChallenge? challenge, out DhChapFailureReason reason, out string? error)
    {
        challenge = null;
        reason = DhChapFailureReason.IncorrectPayload;
        if (!Expect(message, DhChapMessageKind.Challenge, HeaderSize, out error))
        {
            reason = DhChapFailureReason.IncorrectMessage;
            return false;
        }

        int hashLength = message[6];
        byte hashId = message[8];
        byte groupId = message[9];
        int dhLength = BinaryPrimitives.ReadUInt16LittleEndian(message[10..]);
        if (!DhChapHashes.IsDefined(hashId))
        {
            reason = DhChapFailureReason.HashUnusable;
            error = $"the Challenge names hash 0x{hashId:x2}, not one of 1..3";
            return false;
        }

        if (!DhChapGroups.IsDefined(groupId))
        {
            reason = DhChapFailureReason.GroupUnusable;
            error = $"the Challenge names DH group 0x{groupId:x2}, not one of 0..5";
            return false;
        }

        var hash = (DhChapHashId)hashId;
        var group = (DhChapGroupId)groupId;
        if (hashLength != DhChapHashes.Length(hash))
        {
            error = $"the Challenge's HL is {hashLength}; {DhChapHashes.Name(hash)} needs {DhChapHashes.Length(hash)}";
            return false;
        }

        int expectedDh = FfdheGroup.ValueLength(group);
        if (dhLength != expectedDh)
        {
            error = $"the Challenge's DHVLEN is {dhLength}; {DhChapGroups.Name(group)} needs {expectedDh}";
            return false;
        }

        if (message.Length < HeaderSize + hashLength + dhLength)
        {
            error = $"the Challenge is {message.Length} bytes long; its lengths need {HeaderSize + hashLength + dhLength}";
            return false;
        }

        challenge = new DhChapChallenge(
            BinaryPrimitives.ReadUInt16LittleEndian(message[4..]),
            hash,
            group,
            BinaryPrimitives.ReadUInt32LittleEndian(message[12..]),
            message.Slice(HeaderSize, hashLength).ToArray(),
            message.Slice(HeaderSize + hashLength, dhLength).ToArray());
        return true;
    }

    /// <summary>A Reply: R1, then C2 (zeros when the host asks for no controller authentication), then the host's DH value.</summary>
    public static byte[] Reply(ushort transactionId, ReadOnlySpan<byte> response, ReadOnlySpan<byte> controllerChallenge, uint sequenceNumber, ReadOnlySpan<byte> dhValue)
    {
        int hashLength = response.Length;
        var message = new byte[HeaderSize + (2 * hashLength) + dhValue.Length];
        message[0] = DhChapType;
        message[1] = 0x02;
        BinaryPrimitives.WriteUInt16LittleEndian(message.AsSpan(4), transactionId);
        message[6] = checked((byte)hashLength);
        message[8] = controllerChallenge.IsEmpty ? (byte)0 : (byte)1; // CVALID
        BinaryPrimitives.WriteUInt16LittleEndian(message.AsSpan(10), checked((ushort)dhValue.Length));
        BinaryPrimitives.WriteUInt32LittleEndian(message.AsSpan(12), sequenceNumber);
        response.CopyTo(message.AsSpan(HeaderSize));
        if (!controllerChallenge.IsEmpty)
        {
            if (controllerChallenge.Length != hashLength)
            {
                throw new ArgumentException("C2 has the hash's length", nameof(controllerChallenge));
            }

            controllerChallenge.CopyTo(message.AsSpan(HeaderSize + hashLength));
        }

        dhValue.CopyTo(message.AsSpan(HeaderSize + (2 * hashLength)));
        return message;
    }

    public static bool TryReadReply(ReadOnlySpan<byte> message, int hashLength, int dhLength, out DhChapReply? reply, out string? error)
    {
        reply = null;
        if (!Expect(message, DhChapMessageKind.Reply, HeaderSize, out error))
        {
            return false;
        }

        if (message[6] != hashLength || BinaryPrimitives.ReadUInt16LittleEndian(message[10..]) != dhLength)
        {
            error = $"the Reply's HL {message[6]} / DHVLEN {BinaryPrimitives.ReadUInt16LittleEndian(message[10..])} differ from the Challenge's {hashLength} / {dhLength}";
            return false;
        }

        if (message.Length < HeaderSize + (2 * hashLength) + dhLength)
        {
            error = $"the Reply is {message.Length} bytes long; its lengths need {HeaderSize + (2 * hashLength) + dhLength}";
            return false;
        }

        bool controllerChallenge = (message[8] & 1) != 0;
        reply = new DhChapReply(
            BinaryPrimitives.ReadUInt16LittleEndian(message[4..]),
            message.Slice(HeaderSize, hashLength).ToArray(),
            controllerChallenge ? message.Slice(HeaderSize + hashLength, hashLength).ToArray() : null,
            BinaryPrimitives.ReadUInt32LittleEndian(message[12..]),
            message.Slice(HeaderSize + (2 * hashLength), dhLength).ToArray());
        return true;
    }

    /// <summary>A Success1; <paramref name="response"/> (R2) empty when the host asked for no controller authentication.</summary>
    public static byte[] Success1(ushort transactionId, int hashLength, ReadOnlySpan<byte> response)
    {
        var message = new byte[HeaderSize + response.Length];
        message[0] = DhChapType;
        message[1] = 0x03;
        BinaryPrimitives.WriteUInt16LittleEndian(message.AsSpan(4), transactionId);
        message[6] = checked((byte)hashLength);
        message[8] = response.IsEmpty ? (byte)0 : (byte)1; // RVALID
        response.CopyTo(message.AsSpan(HeaderSize));
        return message;
    }

    /// <summary>Reads a Success1: R2 (null when RVALID is clear); HL must be the negotiated hash's length.</summary>
    public static bool TryReadSuccess1(ReadOnlySpan<byte> message, int hashLength, out ushort transactionId, out byte[]? response, out string? error)
    {
        transactionId = 0;
        response = null;
        if (!Expect(message, DhChapMessageKind.Success1, HeaderSize, out error))
        {
            return false;
        }

        transactionId = BinaryPrimitives.ReadUInt16LittleEndian(message[4..]);
        if ((message[8] & 1) == 0)
        {
            return true;
        }

        if (message[6] != hashLength)
        {
            error = $"the Success1's HL is {message[6]}, not the negotiated {hashLength}";
            return false;
        }

        if (message.Length < HeaderSize + hashLength)
        {
            error = $"the Success1 is {message.Length} bytes long; RVALID with HL {hashLength} needs {HeaderSize + hashLength}";
            return false;
        }

        response = message.Slice(HeaderSize, hashLength).ToArray();
        return true;
    }

    public static byte[] Success2(ushort transactionId)
    {
        var message = new byte[Success2Size];
        message[0] = DhChapType;
        message[1] = 0x04;
        BinaryPrimitives.WriteUInt16LittleEndian(message.AsSpan(4), transactionId);
        return message;
    }

    /// <summary>AUTH_Failure1 (controller to host) or AUTH_Failure2 (host to controller).</summary>
    public static byte[] Failure(bool fromController, ushort transactionId, DhChapFailureReason reason)
    {
        var message = new byte[FailureSize];
        message[0] = CommonType;
        message[1] = fromController ? (byte)0xF1 : (byte)0xF0;
        BinaryPrimitives.WriteUInt16LittleEndian(message.AsSpan(4), transactionId);
        message[6] = 0x01; // reason code: authentication failure
        message[7] = (byte)reason;
        return message;
    }

    public static bool TryReadFailure(ReadOnlySpan<byte> message, out ushort transactionId, out DhChapFailureReason reason)
    {
        transactionId = 0;
        reason = 0;
        var kind = KindOf(message);
        if (kind is not (DhChapMessageKind.Failure1 or DhChapMessageKind.Failure2) || message.Length < FailureSize)
        {
            return false;
        }

        transactionId = BinaryPrimitives.ReadUInt16LittleEndian(message[4..]);
        reason = (DhChapFailureReason)message[7];
        return true;
    }

    /// <summary>The transaction id of any message long enough to carry one.</summary>
    public static ushort TransactionIdOf(ReadOnlySpan<byte> message) => message.Length >= 6 ? BinaryPrimitives.ReadUInt16LittleEndian(message[4..]) : (ushort)0;

    private static bool Expect(ReadOnlySpan<byte> message, DhChapMessageKind kind, int minimum, out string? error)
    {
        var actual = KindOf(message);
        if (actual != kind)
        {
            error = message.Length < 2
                ? $"expected {Name(kind)}, received {message.Length} bytes"
                : $"expected {Name(kind)}, received {Name(actual)} (type 0x{message[0]:x2}, id 0x{message[1]:x2})";
            return false;
        }

        if (message.Length < minimum)
        {
            error = $"{Name(kind)} is {message.Length} bytes long; at least {minimum} expected";
            return false;
        }

        error = null;
        return true;
    }
}
