using ActorNvme.Protocol.Auth;
using ActorNvme.Protocol.Nvme;
using ActorNvme.Transport;
using ActorNvme.Transport.Authentication;
using ActorNvme.Transport.BringUp;
using ActorNvme.Transport.InMemory;

namespace ActorNvme.Target.Tests;

/// <summary>
/// DH-HMAC-CHAP on our Target's controller side, proven with our host's own code: the bring-up script over
/// <see cref="AdminClient"/> for the admin queue, <see cref="ConnectAuthentication"/> for an I/O queue.
/// </summary>
public sealed class DhChapTargetTests
{
    private const string HostNqn = RawClient.HostNqn;
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(30);

    public static TheoryData<DhChapHashId, DhChapGroupId, bool> EveryHashNullAndFfdhe2048
    {
        get
        {
            var data = new TheoryData<DhChapHashId, DhChapGroupId, bool>();
            foreach (var hash in DhChapHashes.All)
            {
                foreach (var group in new[] { DhChapGroupId.Null, DhChapGroupId.Ffdhe2048 })
                {
                    data.Add(hash, group, false);
                    data.Add(hash, group, true);
                }
            }

            return data;
        }
    }

    [Theory]
    [MemberData(nameof(EveryHashNullAndFfdhe2048))]
    public async Task Our_host_authenticates_the_admin_and_an_io_queue_and_data_reads_back(DhChapHashId hash, DhChapGroupId group, bool bidirectional)
    {
        await using var t = TestTarget.Create();
        string hostKey = DhChapSecret.Generate(48, 2);
        string controllerKey = DhChapSecret.Generate(64, 3);
        t.Target.SetDhChapKeys(TestTarget.Nqn, HostNqn, hostKey, controllerKey);
        using var credentials = new Credentials(hostKey, bidirectional ? controllerKey : null, [hash], [group]);

        await using var admin = await ConnectAdminAsync(t);
        var result = await BringUpAsync(admin, credentials.Value);
        Assert.Equal(new DhChapStep.Authenticated(hash, group, bidirectional), result.Authentication);
        Assert.NotNull(result.Identify);

        await using var io = await t.ConnectAsync();
        await io.InitializeAsync();
        var connect = await io.ConnectAsync(TestTarget.Nqn, queueId: 1, controllerId: result.ControllerId);
        Assert.True(connect.Status.IsSuccess, connect.Status.ToString());
        ushort authenticationRequirements = (ushort)(connect.Completion.Dw0 >> 16);
        Assert.Equal(ConnectAuthentication.TransactionRequired, authenticationRequirements);
        var done = await AuthenticateAsync(io, authenticationRequirements, credentials.Value, queueId: 1);
        Assert.Equal(new DhChapStep.Authenticated(hash, group, bidirectional), done);

        var data = new byte[8 * 512];
        new Random((int)hash * 10 + (int)group).NextBytes(data);
        var write = await io.WriteAsync(1, 16, data, 512, inCapsule: true);
        Assert.True(write.Status.IsSuccess, write.Status.ToString());
        var read = await io.ReadAsync(1, 16, 8, 512);
        Assert.True(read.Status.IsSuccess, read.Status.ToString());
        Assert.Equal(data, read.Data);
    }

    [Fact]
    public async Task A_host_without_keys_is_not_asked_to_authenticate()
    {
        await using var t = TestTarget.Create();
        t.Target.SetDhChapKeys(TestTarget.Nqn, "nqn.2014-08.org.nvmexpress:uuid:00000000-0000-0000-0000-0000000000ff", DhChapSecret.Generate());
        await using var admin = await ConnectAdminAsync(t);
        var result = await BringUpAsync(admin, null);
        Assert.Null(result.Authentication);
    }

    [Fact]
    public async Task A_wrong_host_key_is_refused_with_failure1_and_the_target_closes_that_connection_only()
    {
        await using var t = TestTarget.Create();
        string hostKey = DhChapSecret.Generate();
        t.Target.SetDhChapKeys(TestTarget.Nqn, HostNqn, hostKey);
        await using var good = await ConnectAdminAsync(t);
        using var right = new Credentials(hostKey, null, null, null);
        await BringUpAsync(good, right.Value);

        await using var bad = await ConnectAdminAsync(t);
        using var wrong = new Credentials(DhChapSecret.Generate(), null, null, [DhChapGroupId.Ffdhe2048]);
        var error = await Assert.ThrowsAsync<ControllerBringUpException>(() => BringUpAsync(bad, wrong.Value));
        Assert.Equal(BringUpFailureKind.AuthenticationFailed, error.Failure.Kind);
        Assert.Contains("AUTH_Failure1", error.Message, StringComparison.Ordinal);
        Assert.Contains("authentication failed", error.Message, StringComparison.Ordinal);
        Assert.Contains(TestTarget.Nqn, error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(hostKey.Split(':')[2], error.Message, StringComparison.Ordinal);
        await bad.Closed.WaitAsync(Deadline);

        // The sibling controller is untouched.
        await WaitUntilAsync(() => t.Subsystem.ControllerCount == 1);
        Assert.False(good.Closed.IsCompleted);
    }

    [Fact]
    public async Task A_wrong_controller_key_is_detected_by_the_host_and_the_target_closes_the_connection()
    {
        await using var t = TestTarget.Create();
        string hostKey = DhChapSecret.Generate();
        t.Target.SetDhChapKeys(TestTarget.Nqn, HostNqn, hostKey, DhChapSecret.Generate());
        await using var admin = await ConnectAdminAsync(t);
        using var credentials = new Credentials(hostKey, DhChapSecret.Generate(), null, [DhChapGroupId.Ffdhe2048]);
        var error = await Assert.ThrowsAsync<ControllerBringUpException>(() => BringUpAsync(admin, credentials.Value));
        Assert.Equal(BringUpFailureKind.AuthenticationFailed, error.Failure.Kind);
        Assert.Contains("controller authentication failed", error.Message, StringComparison.Ordinal);
        await admin.Closed.WaitAsync(Deadline);
    }

    [Fact]
    public async Task A_host_that_asks_for_controller_authentication_without_a_controller_key_set_is_refused()
    {
        await using var t = TestTarget.Create();
        string hostKey = DhChapSecret.Generate();
        t.Target.SetDhChapKeys(TestTarget.Nqn, HostNqn, hostKey);
        await using var admin = await ConnectAdminAsync(t);
        using var credentials = new Credentials(hostKey, DhChapSecret.Generate(), null, null);
        var error = await Assert.ThrowsAsync<ControllerBringUpException>(() => BringUpAsync(admin, credentials.Value));
        Assert.Contains("AUTH_Failure1", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(DhChapHashId.Sha256, DhChapGroupId.Null, "hash function not usable")]
    [InlineData(DhChapHashId.Sha512, DhChapGroupId.Ffdhe3072, "DH group not usable")]
    public async Task An_offer_without_an_allowed_hash_or_group_is_refused_with_the_reason(DhChapHashId offeredHash, DhChapGroupId offeredGroup, string reason)
    {
        await using var t = TestTarget.Create();
        string hostKey = DhChapSecret.Generate();
        t.Target.SetDhChapKeys(TestTarget.Nqn, HostNqn, new DhChapHostKeys(hostKey) { Hashes = [DhChapHashId.Sha512], Groups = [DhChapGroupId.Null, DhChapGroupId.Ffdhe2048] });
        await using var admin = await ConnectAdminAsync(t);
        using var credentials = new Credentials(hostKey, null, [offeredHash], [offeredGroup]);
        var error = await Assert.ThrowsAsync<ControllerBringUpException>(() => BringUpAsync(admin, credentials.Value));
        Assert.Contains(reason, error.Message, StringComparison.Ordinal);
        await admin.Closed.WaitAsync(Deadline);
    }

    [Fact]
    public async Task Commands_before_authentication_are_refused_with_authentication_required_on_admin_and_io_queues()
    {
        await using var t = TestTarget.Create();
        string hostKey = DhChapSecret.Generate();
        t.Target.SetDhChapKeys(TestTarget.Nqn, HostNqn, hostKey);
        var required = NvmeStatus.Specific((byte)FabricsStatus.AuthenticationRequired, doNotRetry: true);

        await using var admin = await t.ConnectAsync();
        await admin.InitializeAsync();
        var connect = await admin.ConnectAsync(TestTarget.Nqn);
        Assert.True(connect.Status.IsSuccess);
        Assert.Equal(0x0002u, connect.Completion.Dw0 >> 16);
        ushort controllerId = (ushort)connect.Completion.Dw0;
        var identify = await admin.IdentifyAsync(1);
        Assert.Equal(required, identify.Status.WithoutPhase);
        Assert.Equal(StatusCodeType.CommandSpecific, identify.Status.Type);
        Assert.Equal(0x91, identify.Status.Code);
        Assert.True(identify.Status.DoNotRetry);

        // As nvmet: Property Get/Set are fabrics commands and still answered, so the host can enable after authenticating.
        var cap = await admin.CommandAsync(FabricsCommands.PropertyGet(0, true));
        Assert.True(cap.Status.IsSuccess, cap.Status.ToString());

        using var credentials = new Credentials(hostKey, null, null, null);
        await AuthenticateAsync(admin, ConnectAuthentication.TransactionRequired, credentials.Value, queueId: 0);
        await admin.EnableAsync();
        Assert.True((await admin.IdentifyAsync(1)).Status.IsSuccess);

        // Every queue authenticates on its own: the I/O queue is refused until it has.
        await using var io = await t.ConnectAsync();
        await io.InitializeAsync();
        Assert.True((await io.ConnectAsync(TestTarget.Nqn, queueId: 1, controllerId: controllerId)).Status.IsSuccess);
        var read = await io.ReadAsync(1, 0, 1, 512);
        Assert.Equal(required, read.Status.WithoutPhase);
        await AuthenticateAsync(io, ConnectAuthentication.TransactionRequired, credentials.Value, queueId: 1);
        Assert.True((await io.ReadAsync(1, 0, 1, 512)).Status.IsSuccess);
    }

    [Fact]
    public async Task Messages_out_of_order_get_failure1_and_close_only_that_connection()
    {
        await using var t = TestTarget.Create();
        string hostKey = DhChapSecret.Generate();
        t.Target.SetDhChapKeys(TestTarget.Nqn, HostNqn, hostKey);
        await using var sibling = await ConnectAdminAsync(t);
        using var credentials = new Credentials(hostKey, null, null, null);
        await BringUpAsync(sibling, credentials.Value);

        // A Reply before any Negotiate.
        await using var raw = await t.ConnectAsync();
        await raw.InitializeAsync();
        Assert.True((await raw.ConnectAsync(TestTarget.Nqn)).Status.IsSuccess);
        var reply = DhChapMessages.Reply(7, new byte[32], [], 0, []);
        var send = await raw.CommandAsync(AuthenticationCommands.Send(reply.Length), inCapsule: reply);
        Assert.True(send.Status.IsSuccess, send.Status.ToString());
        var receive = AuthenticationCommands.Receive(DhChapMessages.ReceiveLength);
        receive.DataPointer = Protocol.Nvme.SglDescriptor.Transport(DhChapMessages.ReceiveLength);
        var answer = await raw.CommandAsync(receive);
        Assert.True(answer.Status.IsSuccess, answer.Status.ToString());
        Assert.True(DhChapMessages.TryReadFailure(answer.Data, out _, out var reason));
        Assert.Equal(DhChapMessageKind.Failure1, DhChapMessages.KindOf(answer.Data));
        Assert.Equal(DhChapFailureReason.IncorrectMessage, reason);

        // Until the target closes it (after a linger that lets the host read the refusal), nothing else runs on it.
        var cap = await raw.CommandAsync(FabricsCommands.PropertyGet(0, true));
        Assert.Equal(NvmeStatus.Specific((byte)FabricsStatus.AuthenticationRequired, doNotRetry: true), cap.Status.WithoutPhase);
        var (end, _) = await raw.ReceiveUntilClosedAsync(Deadline);
        Assert.NotEqual(ReceiveKind.Timeout, end);

        await WaitUntilAsync(() => t.Subsystem.ControllerCount == 1);
        Assert.False(sibling.Closed.IsCompleted);
    }

    [Fact]
    public async Task Authentication_commands_with_hostile_lengths_or_fields_are_refused_without_ending_the_transaction()
    {
        await using var t = TestTarget.Create();
        string hostKey = DhChapSecret.Generate();
        t.Target.SetDhChapKeys(TestTarget.Nqn, HostNqn, hostKey);
        await using var raw = await t.ConnectAsync();
        await raw.InitializeAsync();
        Assert.True((await raw.ConnectAsync(TestTarget.Nqn)).Status.IsSuccess);
        var invalidField = NvmeStatus.Generic(GenericStatus.InvalidField, true);

        // TL far beyond any message.
        var huge = AuthenticationCommands.Send(1 << 20);
        Assert.Equal(invalidField, (await raw.CommandAsync(huge, inCapsule: new byte[16])).Status.WithoutPhase);

        // TL that disagrees with the data carried.
        var negotiate = DhChapMessages.Negotiate(1, DhChapHashes.All, DhChapGroups.All);
        var mismatch = AuthenticationCommands.Send(negotiate.Length + 8);
        var status = (await raw.CommandAsync(mismatch, inCapsule: negotiate)).Status;
        Assert.Equal(NvmeStatus.Generic(GenericStatus.DataSglLengthInvalid, true), status.WithoutPhase);

        // Another security protocol.
        var other = AuthenticationCommands.Send(negotiate.Length);
        other.Cdw10 = (other.Cdw10 & 0x00FFFFFF) | (0xEAu << 24);
        Assert.Equal(invalidField, (await raw.CommandAsync(other, inCapsule: negotiate)).Status.WithoutPhase);

        // AL too small for the Challenge that is due: refused, and the Challenge stays due.
        Assert.True((await raw.CommandAsync(AuthenticationCommands.Send(negotiate.Length), inCapsule: negotiate)).Status.IsSuccess);
        var small = AuthenticationCommands.Receive(16);
        small.DataPointer = Protocol.Nvme.SglDescriptor.Transport(16);
        Assert.Equal(invalidField, (await raw.CommandAsync(small)).Status.WithoutPhase);
        var receive = AuthenticationCommands.Receive(DhChapMessages.ReceiveLength);
        receive.DataPointer = Protocol.Nvme.SglDescriptor.Transport(DhChapMessages.ReceiveLength);
        var challenge = await raw.CommandAsync(receive);
        Assert.Equal(DhChapMessageKind.Challenge, DhChapMessages.KindOf(challenge.Data));
        Assert.True(DhChapMessages.TryReadChallenge(challenge.Data, out var read, out _, out string? error), error);
        Assert.Equal(DhChapHashId.Sha512, read!.Hash);
        Assert.Equal(DhChapGroupId.Ffdhe8192, read.Group);
    }

    [Fact]
    public async Task A_queue_that_does_not_authenticate_in_time_is_closed_and_its_sibling_stays()
    {
        await using var t = TestTarget.Create(options: new TargetOptions { AuthenticationTimeout = TimeSpan.FromSeconds(1) });
        string hostKey = DhChapSecret.Generate();
        t.Target.SetDhChapKeys(TestTarget.Nqn, HostNqn, hostKey);
        // The sibling is another host, one without keys: no clock runs for it.
        await using var sibling = await ConnectAdminAsync(t);
        await BringUpAsync(sibling, null, "nqn.2014-08.org.nvmexpress:uuid:00000000-0000-0000-0000-000000000002");

        await using var idle = await t.ConnectAsync();
        await idle.InitializeAsync();
        Assert.True((await idle.ConnectAsync(TestTarget.Nqn)).Status.IsSuccess);
        var (end, _) = await idle.ReceiveUntilClosedAsync(Deadline);
        Assert.NotEqual(ReceiveKind.Timeout, end);
        await WaitUntilAsync(() => t.Subsystem.ControllerCount == 1);
        Assert.False(sibling.Closed.IsCompleted);
    }

    [Fact]
    public async Task Keys_that_do_not_parse_are_refused_without_echoing_them()
    {
        await using var target = new NvmeTarget();
        var error = Assert.Throws<FormatException>(() => target.SetDhChapKeys(TestTarget.Nqn, HostNqn, "DHHC-1:01:bm90IGEga2V5:"));
        Assert.DoesNotContain("bm90IGEga2V5", error.Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentException>(() => target.SetDhChapKeys(TestTarget.Nqn, HostNqn, new DhChapHostKeys(DhChapSecret.Generate()) { Hashes = [] }));
        Assert.Throws<ArgumentException>(() => target.SetDhChapKeys(DiscoverySubsystem.WellKnownNqn, HostNqn, DhChapSecret.Generate()));
        Assert.DoesNotContain("DHHC", new DhChapHostKeys(DhChapSecret.Generate()).ToString(), StringComparison.Ordinal);
    }

    private static async Task WaitUntilAsync(Func<bool> condition)
    {
        var deadline = DateTime.UtcNow + Deadline;
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "the condition did not hold within the deadline");
            await Task.Delay(20);
        }
    }

    private static Task<AdminClient> ConnectAdminAsync(TestTarget t) =>
        AdminClient.ConnectAsync(new InMemoryTransport(t.Network), t.Listener.Address, QueuePairOptions.Admin).WaitAsync(Deadline);

    private static Task<ControllerBringUpResult> BringUpAsync(AdminClient client, DhChapHostCredentials? credentials, string hostNqn = HostNqn)
    {
        var parameters = new FabricsConnectParameters(RawClient.HostId, TestTarget.Nqn, hostNqn);
        var options = new BringUpOptions(parameters, QueuePairOptions.Admin.QueueSize) { Goal = BringUpGoal.Identified, Authentication = credentials };
        return client.BringUpAsync(options).WaitAsync(Deadline);
    }

    /// <summary>Our host's queue authentication (as its I/O queues run it) over a raw client's commands.</summary>
    private static async Task<DhChapStep.Authenticated> AuthenticateAsync(RawClient client, ushort authenticationRequirements, DhChapHostCredentials credentials, ushort queueId)
    {
        Assert.True(ConnectAuthentication.TryStart(authenticationRequirements, credentials, HostNqn, TestTarget.Nqn, queueId, out var exchange, out string? error), error);
        return await ConnectAuthentication.RunAsync(exchange!, async (sqe, dataOut, dataInLength) =>
        {
            CommandResult result;
            if (dataInLength > 0)
            {
                sqe.DataPointer = Protocol.Nvme.SglDescriptor.Transport((uint)dataInLength);
                result = await client.CommandAsync(sqe);
            }
            else
            {
                result = await client.CommandAsync(sqe, inCapsule: dataOut.ToArray());
            }

            return (result.Status, result.Data);
        }).WaitAsync(Deadline);
    }

    /// <summary>Host credentials whose secrets are zeroed at the end of the test.</summary>
    private sealed class Credentials : IDisposable
    {
        public Credentials(string hostKey, string? controllerKey, IReadOnlyList<DhChapHashId>? hashes, IReadOnlyList<DhChapGroupId>? groups)
        {
            Value = new DhChapHostCredentials(DhChapSecret.Parse(hostKey), controllerKey is null ? null : DhChapSecret.Parse(controllerKey))
            {
                Hashes = hashes ?? DhChapHashes.All,
                Groups = groups ?? DhChapGroups.All,
            };
        }

        public DhChapHostCredentials Value { get; }

        public void Dispose()
        {
            Value.HostSecret.Dispose();
            Value.ControllerSecret?.Dispose();
        }
    }
}
