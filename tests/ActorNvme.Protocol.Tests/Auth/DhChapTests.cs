using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;
using ActorNvme.Protocol.Auth;
using ActorNvme.Protocol.Nvme;

namespace ActorNvme.Protocol.Tests.Auth;

public class DhChapSecretTests
{
    private const string HostNqn = "nqn.2014-08.org.nvmexpress:uuid:11111111-2222-3333-4444-555555555555";

    [Theory]
    [InlineData(32, 0)]
    [InlineData(48, 2)]
    [InlineData(64, 3)]
    public void A_formatted_secret_parses_back_to_the_same_key(int length, byte transform)
    {
        var key = RandomNumberGenerator.GetBytes(length);
        string text = DhChapSecret.Format(key, transform);

        Assert.StartsWith($"DHHC-1:0{transform}:", text, StringComparison.Ordinal);
        Assert.EndsWith(":", text, StringComparison.Ordinal);
        using var secret = DhChapSecret.Parse(text + "\n");
        Assert.Equal(length, secret.KeyLength);
        Assert.Equal(transform, secret.TransformHash);
        Assert.DoesNotContain(text.Split(':')[2], secret.ToString(), StringComparison.Ordinal);
        if (transform == 0)
        {
            Assert.Equal(key, secret.TransformedKey(HostNqn));
        }
    }

    [Fact]
    public void The_crc_is_crc32_of_the_key_little_endian()
    {
        // zlib's crc32("123456789") is the classic check value 0xCBF43926; as a key it must be 32+ bytes, so pad the check with a known prefix.
        var key = Encoding.ASCII.GetBytes("0123456789abcdef0123456789abcdef");
        string text = DhChapSecret.Format(key);
        var decoded = Convert.FromBase64String(text.Split(':')[2]);
        Assert.Equal(key, decoded[..32]);
        Assert.Equal(Crc32Ieee.Compute(key), BinaryPrimitives.ReadUInt32LittleEndian(decoded.AsSpan(32)));
        Assert.Equal(0xCBF43926u, Crc32Ieee.Compute("123456789"u8));
    }

    [Fact]
    public void A_transformed_key_is_the_hmac_of_the_nqn_and_the_fabrics_suffix()
    {
        var key = RandomNumberGenerator.GetBytes(32);
        using var secret = DhChapSecret.Parse(DhChapSecret.Format(key, 1));

        var expected = HMACSHA256.HashData(key, Encoding.ASCII.GetBytes(HostNqn + "NVMe-over-Fabrics"));
        Assert.Equal(expected, secret.TransformedKey(HostNqn));
        Assert.NotEqual(expected, secret.TransformedKey(HostNqn + "x"));
    }

    [Fact]
    public void A_corrupted_secret_is_refused_by_its_crc_without_echoing_it()
    {
        string text = DhChapSecret.Generate();
        var payload = Convert.FromBase64String(text.Split(':')[2]);
        payload[3] ^= 0x40;
        string corrupted = $"DHHC-1:00:{Convert.ToBase64String(payload)}:";

        var error = Assert.Throws<FormatException>(() => DhChapSecret.Parse(corrupted, "dhchap-key"));
        Assert.Contains("dhchap-key", error.Message, StringComparison.Ordinal);
        Assert.Contains("CRC", error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(Convert.ToBase64String(payload), error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("", "empty")]
    [InlineData("DHHC-2:00:AAAA:", "DHHC-1")]
    [InlineData("DHHC-1:04:AAAA:", "00, 01, 02 or 03")]
    [InlineData("DHHC-1:00:not*base64:", "base64")]
    [InlineData("DHHC-1:00:AAAAAAAAAAAAAAAAAAAAAA==:", "expected 36, 52 or 68")]
    [InlineData("DHHC-1:00", "form")]
    public void Malformed_secrets_are_refused_naming_the_problem(string text, string expected)
    {
        Assert.False(DhChapSecret.TryParse(text, out var secret, out string? error));
        Assert.Null(secret);
        Assert.Contains(expected, error, StringComparison.Ordinal);
    }
}

public class FfdheGroupTests
{
    // SHA-256 of each prime's big-endian bytes, from the values OpenSSL 3 ships for these named groups.
    [Theory]
    [InlineData(DhChapGroupId.Ffdhe2048, 2048, "9cd3b7f336872f46c09428d1bbc19877a4d440512cda8d1c1cf0cd6e33698966")]
    [InlineData(DhChapGroupId.Ffdhe3072, 3072, "0eaf67db3a839156d5013494a5318a772b5697d270d721f37f092efc69ea5a17")]
    [InlineData(DhChapGroupId.Ffdhe4096, 4096, "4648414224ac881b3d0dc59b466f96d06a558278776807797ecf1f66ff397b3e")]
    [InlineData(DhChapGroupId.Ffdhe6144, 6144, "227ac9066b3ddd9e193670cda2388fa884f65ba0cf98b742d1fe77a6687c79c7")]
    [InlineData(DhChapGroupId.Ffdhe8192, 8192, "770b14efaf6f049929c523113b3fa99a8d11dab1b18af3609590122075d19833")]
    public void The_computed_primes_are_rfc_7919s(DhChapGroupId id, int bits, string sha256)
    {
        var group = FfdheGroup.For(id);
        Assert.Equal(bits, group.Bits);
        var bytes = group.Prime.ToByteArray(isUnsigned: true, isBigEndian: true);
        Assert.Equal(bits / 8, bytes.Length);
        Assert.Equal(sha256, Convert.ToHexStringLower(SHA256.HashData(bytes)));
    }

    [Fact]
    public void Both_sides_derive_the_same_secret_and_degenerate_peer_values_are_refused()
    {
        var group = FfdheGroup.For(DhChapGroupId.Ffdhe2048);
        var a = group.NewPrivateKey();
        var b = group.NewPrivateKey();
        var sa = group.SharedSecret(a, group.PublicValue(b));
        var sb = group.SharedSecret(b, group.PublicValue(a));
        Assert.NotNull(sa);
        Assert.Equal(256, sa!.Length);
        Assert.Equal(sa, sb);

        var one = new byte[256];
        one[^1] = 1;
        Assert.Null(group.SharedSecret(a, one));
        Assert.Null(group.SharedSecret(a, group.Prime.ToByteArray(isUnsigned: true, isBigEndian: true)));
        Assert.Null(group.SharedSecret(a, new byte[255]));
    }
}

public class DhChapExchangeTests
{
    private const string HostNqn = "nqn.2014-08.org.nvmexpress:uuid:11111111-2222-3333-4444-555555555555";
    private const string SubsystemNqn = "nqn.2016-06.io.spdk:cnode1";

    [Fact]
    public void Authentication_commands_carry_secp_e9_spsp_0101_and_the_length()
    {
        var send = AuthenticationCommands.Send(72);
        var receive = AuthenticationCommands.Receive(4096);
        Assert.Equal(FabricsCommands.Opcode, send.Opcode);
        Assert.Equal(FabricsCommandType.AuthenticationSend, send.FabricsType);
        Assert.Equal(FabricsCommandType.AuthenticationReceive, receive.FabricsType);
        Assert.Equal(0xE9010100u, send.Cdw10);
        Assert.Equal(72u, send.Cdw11);
        Assert.Equal(4096u, receive.Cdw11);
    }

    [Fact]
    public void Negotiate_is_72_bytes_with_hashes_at_0_and_groups_at_30()
    {
        var message = DhChapMessages.Negotiate(0x1000, DhChapHashes.All, DhChapGroups.All);
        Assert.Equal(72, message.Length);
        Assert.Equal(new byte[] { 0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x01, 0x01, 0x00, 3, 6 }, message[..12]);
        Assert.Equal(new byte[] { 1, 2, 3 }, message[12..15]);
        Assert.Equal(new byte[] { 0, 1, 2, 3, 4, 5 }, message[42..48]);
    }

    [Fact]
    public void Unidirectional_sha256_null_sends_an_80_byte_reply_and_authenticates()
    {
        using var hostKey = DhChapSecret.Parse(DhChapSecret.Generate(32, 1));
        var controller = new DhChapControllerExchange(hostKey, null, HostNqn, SubsystemNqn, [DhChapHashId.Sha256], [DhChapGroupId.Null]);
        var host = new DhChapHostExchange(new DhChapHostCredentials(hostKey), HostNqn, SubsystemNqn, queueId: 0, transactionId: 0x1000);

        var (result, sent) = Run(host, controller);

        var done = Assert.IsType<DhChapStep.Authenticated>(result);
        Assert.Equal(DhChapHashId.Sha256, done.Hash);
        Assert.Equal(DhChapGroupId.Null, done.Group);
        Assert.False(done.ControllerAuthenticated);
        Assert.True(controller.Authenticated);
        Assert.Equal([72, 80], sent.Select(m => m.Length));
    }

    [Theory]
    [InlineData(DhChapHashId.Sha384, DhChapGroupId.Ffdhe2048, 368)]
    [InlineData(DhChapHashId.Sha512, DhChapGroupId.Ffdhe3072, 16 + 128 + 384)]
    [InlineData(DhChapHashId.Sha256, DhChapGroupId.Ffdhe8192, 16 + 64 + 1024)]
    public void Bidirectional_with_a_dh_group_verifies_the_controller_and_sends_success2(DhChapHashId hash, DhChapGroupId group, int replySize)
    {
        using var hostKey = DhChapSecret.Parse(DhChapSecret.Generate(48, 2));
        using var controllerKey = DhChapSecret.Parse(DhChapSecret.Generate(64, 3));
        var controller = new DhChapControllerExchange(hostKey, controllerKey, HostNqn, SubsystemNqn, [hash], [group]);
        var host = new DhChapHostExchange(new DhChapHostCredentials(hostKey, controllerKey), HostNqn, SubsystemNqn, queueId: 1);

        var (result, sent) = Run(host, controller);

        var done = Assert.IsType<DhChapStep.Authenticated>(result);
        Assert.Equal(hash, done.Hash);
        Assert.Equal(group, done.Group);
        Assert.True(done.ControllerAuthenticated);
        Assert.True(controller.Authenticated);
        Assert.Equal([72, replySize, 16], sent.Select(m => m.Length));
        Assert.Equal(1, sent[1][8]); // CVALID
    }

    [Fact]
    public void A_wrong_host_key_is_refused_with_failure1()
    {
        using var hostKey = DhChapSecret.Parse(DhChapSecret.Generate());
        using var otherKey = DhChapSecret.Parse(DhChapSecret.Generate());
        var controller = new DhChapControllerExchange(hostKey, null, HostNqn, SubsystemNqn);
        var host = new DhChapHostExchange(new DhChapHostCredentials(otherKey), HostNqn, SubsystemNqn, queueId: 0);

        var (result, _) = Run(host, controller);

        var failed = Assert.IsType<DhChapStep.Failed>(result);
        Assert.Equal(DhChapFailureKind.HostRefused, failed.Kind);
        Assert.Contains("AUTH_Failure1", failed.Detail, StringComparison.Ordinal);
        Assert.Contains(SubsystemNqn, failed.Detail, StringComparison.Ordinal);
        Assert.False(controller.Authenticated);
    }

    [Fact]
    public void A_wrong_controller_key_fails_controller_authentication_and_sends_failure2()
    {
        using var hostKey = DhChapSecret.Parse(DhChapSecret.Generate());
        using var controllerKey = DhChapSecret.Parse(DhChapSecret.Generate());
        using var expectedKey = DhChapSecret.Parse(DhChapSecret.Generate());
        var controller = new DhChapControllerExchange(hostKey, controllerKey, HostNqn, SubsystemNqn, groups: [DhChapGroupId.Ffdhe2048]);
        var host = new DhChapHostExchange(new DhChapHostCredentials(hostKey, expectedKey), HostNqn, SubsystemNqn, queueId: 0);

        var (result, sent) = Run(host, controller);

        var failed = Assert.IsType<DhChapStep.Failed>(result);
        Assert.Equal(DhChapFailureKind.ControllerNotAuthenticated, failed.Kind);
        Assert.Contains("controller authentication failed", failed.Detail, StringComparison.Ordinal);
        Assert.Contains(SubsystemNqn, failed.Detail, StringComparison.Ordinal);
        Assert.Equal(DhChapMessageKind.Failure2, DhChapMessages.KindOf(sent[^1]));
        Assert.False(controller.Authenticated);
    }

    [Fact]
    public void A_connection_closed_after_the_reply_is_a_refusal_of_the_hosts_response_naming_subsystem_and_step()
    {
        using var hostKey = DhChapSecret.Parse(DhChapSecret.Generate());
        using var otherKey = DhChapSecret.Parse(DhChapSecret.Generate());
        var controller = new DhChapControllerExchange(hostKey, null, HostNqn, SubsystemNqn);
        var host = new DhChapHostExchange(new DhChapHostCredentials(otherKey), HostNqn, SubsystemNqn, queueId: 0);
        controller.OnSend(Assert.IsType<DhChapStep.Send>(host.Start()).Message);
        host.OnSent(NvmeStatus.Success);
        var reply = Assert.IsType<DhChapStep.Send>(host.OnReceived(NvmeStatus.Success, controller.OnReceive()));
        Assert.Equal(DhChapMessageKind.Reply, DhChapMessages.KindOf(reply.Message));

        // Linux nvmet tears the queue down instead of answering with AUTH_Failure1.
        var failed = host.OnConnectionLost("PeerClosed (Remote): closed the connection");

        Assert.Equal(DhChapFailureKind.HostRefused, failed.Kind);
        Assert.Contains(SubsystemNqn, failed.Detail, StringComparison.Ordinal);
        Assert.Contains("DH-HMAC-CHAP_Reply", failed.Detail, StringComparison.Ordinal);
        Assert.Contains("dhchap-key", failed.Detail, StringComparison.Ordinal);
        Assert.Throws<InvalidOperationException>(() => host.OnConnectionLost("again"));
    }

    [Fact]
    public void A_connection_closed_after_failure2_keeps_the_hosts_own_finding()
    {
        using var hostKey = DhChapSecret.Parse(DhChapSecret.Generate());
        using var controllerKey = DhChapSecret.Parse(DhChapSecret.Generate());
        using var expectedKey = DhChapSecret.Parse(DhChapSecret.Generate());
        var controller = new DhChapControllerExchange(hostKey, controllerKey, HostNqn, SubsystemNqn);
        var host = new DhChapHostExchange(new DhChapHostCredentials(hostKey, expectedKey), HostNqn, SubsystemNqn, queueId: 0);
        var step = host.Start();
        while (step is not DhChapStep.Send { Description: "AUTH_Send AUTH_Failure2" })
        {
            step = step switch
            {
                DhChapStep.Send send => Sent(send),
                DhChapStep.Receive => host.OnReceived(NvmeStatus.Success, controller.OnReceive()),
                _ => throw new InvalidOperationException($"no AUTH_Failure2 was sent: {step}"),
            };
        }

        var failed = host.OnConnectionLost("PeerClosed (Remote): closed the connection");

        Assert.Equal(DhChapFailureKind.ControllerNotAuthenticated, failed.Kind);
        Assert.Contains("controller authentication failed", failed.Detail, StringComparison.Ordinal);

        DhChapStep Sent(DhChapStep.Send send)
        {
            controller.OnSend(send.Message);
            return host.OnSent(NvmeStatus.Success);
        }
    }

    [Fact]
    public void A_status_error_on_receive_is_a_refusal_naming_the_step()
    {
        using var hostKey = DhChapSecret.Parse(DhChapSecret.Generate());
        var host = new DhChapHostExchange(new DhChapHostCredentials(hostKey), HostNqn, SubsystemNqn, queueId: 0);
        host.Start();
        host.OnSent(NvmeStatus.Success);

        var failed = Assert.IsType<DhChapStep.Failed>(host.OnReceived(NvmeStatus.Specific((byte)FabricsStatus.AuthenticationRequired, doNotRetry: true), []));
        Assert.Equal(DhChapFailureKind.HostRefused, failed.Kind);
        Assert.Contains("Challenge", failed.Detail, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(15)]
    [InlineData(40)]
    public void A_truncated_challenge_is_answered_with_failure2(int length)
    {
        var challenge = DhChapMessages.Challenge(0, DhChapHashId.Sha256, DhChapGroupId.Ffdhe2048, 7, new byte[32], FfdheGroup.For(DhChapGroupId.Ffdhe2048).PublicValue(5));
        var failed = HostFailureAfter(challenge[..length]);
        Assert.Equal(DhChapFailureKind.ProtocolError, failed.Kind);
    }

    [Fact]
    public void A_challenge_whose_lengths_disagree_with_its_hash_or_group_is_refused()
    {
        var wrongHl = DhChapMessages.Challenge(0, DhChapHashId.Sha256, DhChapGroupId.Null, 7, new byte[48], []);
        Assert.Contains("HL", HostFailureAfter(wrongHl).Detail, StringComparison.Ordinal);

        var hugeDh = DhChapMessages.Challenge(0, DhChapHashId.Sha256, DhChapGroupId.Null, 7, new byte[32], []);
        BinaryPrimitives.WriteUInt16LittleEndian(hugeDh.AsSpan(10), 0xFFFF);
        Assert.Contains("DHVLEN", HostFailureAfter(hugeDh).Detail, StringComparison.Ordinal);

        var degenerate = new byte[256];
        degenerate[^1] = 1;
        var weak = DhChapMessages.Challenge(0, DhChapHashId.Sha256, DhChapGroupId.Ffdhe2048, 7, new byte[32], degenerate);
        Assert.Contains("out of range", HostFailureAfter(weak).Detail, StringComparison.Ordinal);
    }

    [Fact]
    public void Random_bytes_as_challenge_or_success1_never_throw()
    {
        var random = new Random(14);
        using var hostKey = DhChapSecret.Parse(DhChapSecret.Generate());
        for (int i = 0; i < 500; i++)
        {
            var garbage = new byte[random.Next(0, 300)];
            random.NextBytes(garbage);
            if (garbage.Length > 1 && i % 2 == 0)
            {
                garbage[0] = 0x01;
                garbage[1] = (byte)(i % 4 == 0 ? 0x01 : 0x03);
            }

            var host = new DhChapHostExchange(new DhChapHostCredentials(hostKey, hostKey), HostNqn, SubsystemNqn, queueId: 0, transactionId: 0);
            host.Start();
            host.OnSent(NvmeStatus.Success);
            var step = host.OnReceived(NvmeStatus.Success, garbage);
            Assert.True(step is DhChapStep.Send or DhChapStep.Failed, $"{step}");
        }
    }

    [Fact]
    public void The_controller_answers_messages_out_of_order_with_failure1_incorrect_message_and_never_throws()
    {
        using var hostKey = DhChapSecret.Parse(DhChapSecret.Generate());
        var negotiate = DhChapMessages.Negotiate(3, DhChapHashes.All, DhChapGroups.All);
        var outOfOrder = new List<Action<DhChapControllerExchange>>
        {
            c => c.OnSend(DhChapMessages.Reply(3, new byte[32], [], 0, [])),
            c => c.OnSend(DhChapMessages.Success2(3)),
            c => c.OnReceive(),
            c => { c.OnSend(negotiate); c.OnSend(negotiate); },
            c => { c.OnSend(negotiate); c.OnReceive(); c.OnReceive(); },
            c => c.OnSend([]),
        };
        foreach (var wrong in outOfOrder)
        {
            var controller = new DhChapControllerExchange(hostKey, null, HostNqn, SubsystemNqn);
            wrong(controller);
            Assert.True(controller.HasFailed);
            Assert.False(controller.Authenticated);
            var answer = controller.OnReceive();
            Assert.Equal(DhChapMessageKind.Failure1, DhChapMessages.KindOf(answer));
            Assert.True(DhChapMessages.TryReadFailure(answer, out _, out var reason));
            Assert.Equal(DhChapFailureReason.IncorrectMessage, reason);
        }
    }

    [Fact]
    public void The_controller_refuses_secure_channel_concatenation_and_a_reply_for_another_transaction()
    {
        using var hostKey = DhChapSecret.Parse(DhChapSecret.Generate());
        var concatenation = DhChapMessages.Negotiate(3, DhChapHashes.All, DhChapGroups.All);
        concatenation[6] = 1;
        var controller = new DhChapControllerExchange(hostKey, null, HostNqn, SubsystemNqn);
        controller.OnSend(concatenation);
        Assert.True(DhChapMessages.TryReadFailure(controller.OnReceive(), out _, out var reason));
        Assert.Equal(DhChapFailureReason.ConcatenationMismatch, reason);

        controller = new DhChapControllerExchange(hostKey, null, HostNqn, SubsystemNqn, [DhChapHashId.Sha256], [DhChapGroupId.Null]);
        controller.OnSend(DhChapMessages.Negotiate(3, DhChapHashes.All, DhChapGroups.All));
        Assert.True(DhChapMessages.TryReadChallenge(controller.OnReceive(), out var challenge, out _, out _));
        byte[] key = hostKey.TransformedKey(HostNqn);
        var response = DhChapResponses.Host(DhChapHashId.Sha256, key, challenge!.Challenge, challenge.SequenceNumber, 4, 0, HostNqn, SubsystemNqn);
        controller.OnSend(DhChapMessages.Reply(4, response, [], 0, []));
        Assert.True(DhChapMessages.TryReadFailure(controller.OnReceive(), out _, out reason));
        Assert.Equal(DhChapFailureReason.IncorrectPayload, reason);
        Assert.Contains("transaction", controller.Failure, StringComparison.Ordinal);
    }

    [Fact]
    public void Random_bytes_sent_to_the_controller_never_throw()
    {
        var random = new Random(41);
        using var hostKey = DhChapSecret.Parse(DhChapSecret.Generate());
        for (int i = 0; i < 500; i++)
        {
            var controller = new DhChapControllerExchange(hostKey, hostKey, HostNqn, SubsystemNqn, groups: [DhChapGroupId.Null]);
            if (i % 2 == 0)
            {
                controller.OnSend(DhChapMessages.Negotiate(1, DhChapHashes.All, DhChapGroups.All));
                controller.OnReceive();
            }

            var garbage = new byte[random.Next(0, 300)];
            random.NextBytes(garbage);
            if (garbage.Length > 1 && i % 3 == 0)
            {
                garbage[0] = 0x01;
                garbage[1] = 0x02;
            }

            controller.OnSend(garbage);
            Assert.False(controller.Authenticated);
            Assert.True(DhChapMessages.KindOf(controller.OnReceive()) is DhChapMessageKind.Failure1);
        }
    }

    private static DhChapStep.Failed HostFailureAfter(byte[] challenge)
    {
        using var hostKey = DhChapSecret.Parse(DhChapSecret.Generate());
        var host = new DhChapHostExchange(new DhChapHostCredentials(hostKey), HostNqn, SubsystemNqn, queueId: 0, transactionId: 0);
        host.Start();
        host.OnSent(NvmeStatus.Success);
        var failure2 = Assert.IsType<DhChapStep.Send>(host.OnReceived(NvmeStatus.Success, challenge));
        Assert.Equal(DhChapMessageKind.Failure2, DhChapMessages.KindOf(failure2.Message));
        return Assert.IsType<DhChapStep.Failed>(host.OnSent(NvmeStatus.Success));
    }

    /// <summary>Drives the host against the responder as Authentication Send/Receive would; returns the end and every message the host sent.</summary>
    private static (DhChapStep Result, List<byte[]> Sent) Run(DhChapHostExchange host, DhChapControllerExchange controller)
    {
        var sent = new List<byte[]>();
        var step = host.Start();
        for (int i = 0; i < 10; i++)
        {
            switch (step)
            {
                case DhChapStep.Send send:
                    sent.Add(send.Message);
                    controller.OnSend(send.Message);
                    step = host.OnSent(NvmeStatus.Success);
                    break;
                case DhChapStep.Receive receive:
                    var answer = controller.OnReceive();
                    Assert.True(answer.Length <= receive.Length);
                    step = host.OnReceived(NvmeStatus.Success, answer);
                    break;
                default:
                    return (step, sent);
            }
        }

        throw new InvalidOperationException("the exchange did not end");
    }
}
