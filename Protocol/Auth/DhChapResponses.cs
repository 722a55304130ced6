using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;
using ActorNvme.Protocol.Nvme;

namespace ActorNvme.Protocol.Auth;

/// <summary>The response values of DH-HMAC-CHAP (R1 from the host, R2 from the controller) and the DH-augmented challenge.</summary>
public static class DhChapResponses
{
    private static readonly byte[] HostRole = Encoding.ASCII.GetBytes("HostHost");
    private static readonly byte[] ControllerRole = Encoding.ASCII.GetBytes("Controller");

    /// <summary>R1 = HMAC(Kh', C1' || le32(SEQNUM) || le16(T_ID) || SC_C || "HostHost" || hostNQN || 00h || subsysNQN).</summary>
    public static byte[] Host(DhChapHashId hash, ReadOnlySpan<byte> hostKey, ReadOnlySpan<byte> challenge, uint sequenceNumber, ushort transactionId, byte secureChannel, string hostNqn, string subsystemNqn) =>
        Compute(hash, hostKey, challenge, sequenceNumber, transactionId, secureChannel, HostRole, hostNqn, subsystemNqn);

    /// <summary>R2 = HMAC(Kc', C2' || le32(S2) || le16(T_ID) || SC_C || "Controller" || subsysNQN || 00h || hostNQN).</summary>
    public static byte[] Controller(DhChapHashId hash, ReadOnlySpan<byte> controllerKey, ReadOnlySpan<byte> challenge, uint sequenceNumber, ushort transactionId, byte secureChannel, string subsystemNqn, string hostNqn) =>
        Compute(hash, controllerKey, challenge, sequenceNumber, transactionId, secureChannel, ControllerRole, subsystemNqn, hostNqn);

    /// <summary>With a DH group the challenge is augmented: C' = HMAC(H(Ks), C), Ks the shared secret.</summary>
    public static byte[] Augment(DhChapHashId hash, ReadOnlySpan<byte> challenge, ReadOnlySpan<byte> sharedSecret)
    {
        var hashedKey = DhChapHashes.Hash(hash, sharedSecret);
        try
        {
            return DhChapHashes.Hmac(hash, hashedKey, challenge);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(hashedKey);
        }
    }

    private static byte[] Compute(DhChapHashId hash, ReadOnlySpan<byte> key, ReadOnlySpan<byte> challenge, uint sequenceNumber, ushort transactionId, byte secureChannel, byte[] role, string firstNqn, string secondNqn)
    {
        using var hmac = IncrementalHash.CreateHMAC(DhChapHashes.Algorithm(hash), key);
        Span<byte> scalars = stackalloc byte[7];
        BinaryPrimitives.WriteUInt32LittleEndian(scalars, sequenceNumber);
        BinaryPrimitives.WriteUInt16LittleEndian(scalars[4..], transactionId);
        scalars[6] = secureChannel;
        hmac.AppendData(challenge);
        hmac.AppendData(scalars);
        hmac.AppendData(role);
        hmac.AppendData(Encoding.UTF8.GetBytes(firstNqn));
        hmac.AppendData([0]);
        hmac.AppendData(Encoding.UTF8.GetBytes(secondNqn));
        return hmac.GetHashAndReset();
    }
}

/// <summary>Authentication Send / Receive (fabrics command types 05h / 06h) for the DH-HMAC-CHAP protocol.</summary>
public static class AuthenticationCommands
{
    /// <summary>SECP: the NVMe in-band authentication protocol.</summary>
    public const byte SecurityProtocol = 0xE9;

    /// <summary>SPSP0 and SPSP1 for DH-HMAC-CHAP.</summary>
    public const byte SpecificField = 0x01;

    /// <summary>Authentication Send of <paramref name="length"/> bytes (TL); the data pointer is the transport's to fill.</summary>
    public static SubmissionQueueEntry Send(int length) => Command(FabricsCommandType.AuthenticationSend, length);

    /// <summary>Authentication Receive with room for <paramref name="length"/> bytes (AL).</summary>
    public static SubmissionQueueEntry Receive(int length) => Command(FabricsCommandType.AuthenticationReceive, length);

    public static byte Protocol(in SubmissionQueueEntry sqe) => (byte)(sqe.Cdw10 >> 24);

    public static (byte Spsp0, byte Spsp1) SpecificFields(in SubmissionQueueEntry sqe) => ((byte)(sqe.Cdw10 >> 8), (byte)(sqe.Cdw10 >> 16));

    /// <summary>TL of a Send, AL of a Receive.</summary>
    public static uint Length(in SubmissionQueueEntry sqe) => sqe.Cdw11;

    private static SubmissionQueueEntry Command(FabricsCommandType type, int length)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(length);
        return new SubmissionQueueEntry
        {
            Opcode = FabricsCommands.Opcode,
            NamespaceId = (byte)type,
            Cdw10 = ((uint)SecurityProtocol << 24) | ((uint)SpecificField << 16) | ((uint)SpecificField << 8),
            Cdw11 = (uint)length,
        };
    }
}
