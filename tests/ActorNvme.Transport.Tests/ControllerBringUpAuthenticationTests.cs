using ActorNvme.Protocol.Auth;
using ActorNvme.Protocol.Data;
using ActorNvme.Protocol.Nvme;
using ActorNvme.Transport.BringUp;

namespace ActorNvme.Transport.Tests;

/// <summary>The bring-up script's DH-HMAC-CHAP step, against a controller that requires it (AUTHREQ.ATR) and answers with our responder.</summary>
public sealed class ControllerBringUpAuthenticationTests
{
    private const string SubsystemNqn = "nqn.2016-06.io.actornvme:auth";
    private const string HostNqn = "nqn.2014-08.org.nvmexpress:uuid:00000000-0000-0000-0000-000000000014";

    [Fact]
    public void Atr_runs_the_exchange_on_the_admin_queue_before_any_property_access()
    {
        using var key = DhChapSecret.Parse(DhChapSecret.Generate(32, 1));
        var controller = new AuthenticatingController(new DhChapControllerExchange(key, null, HostNqn, SubsystemNqn));

        var end = Run(Options(new DhChapHostCredentials(key)), controller);

        var done = Assert.IsType<BringUpAction.Succeeded>(end);
        Assert.Equal(new DhChapStep.Authenticated(DhChapHashId.Sha512, DhChapGroupId.Ffdhe8192, false), done.Result.Authentication);
        Assert.Equal(
            [BringUpStep.FabricsConnect, BringUpStep.Authentication, BringUpStep.Authentication, BringUpStep.Authentication, BringUpStep.Authentication, BringUpStep.PropertyGetCapabilities],
            controller.Steps.Take(6));
    }

    [Fact]
    public void Bidirectional_authentication_ends_with_success2()
    {
        using var key = DhChapSecret.Parse(DhChapSecret.Generate());
        using var controllerKey = DhChapSecret.Parse(DhChapSecret.Generate(48, 2));
        var responder = new DhChapControllerExchange(key, controllerKey, HostNqn, SubsystemNqn, groups: [DhChapGroupId.Ffdhe2048]);
        var controller = new AuthenticatingController(responder);

        var end = Run(Options(new DhChapHostCredentials(key, controllerKey)), controller);

        var done = Assert.IsType<BringUpAction.Succeeded>(end);
        Assert.True(done.Result.Authentication!.ControllerAuthenticated);
        Assert.True(responder.Authenticated);
        Assert.Equal(5, controller.Steps.Count(s => s == BringUpStep.Authentication));
    }

    [Fact]
    public void Atr_without_a_key_fails_naming_the_subsystem_and_sends_nothing_more()
    {
        using var key = DhChapSecret.Parse(DhChapSecret.Generate());
        var controller = new AuthenticatingController(new DhChapControllerExchange(key, null, HostNqn, SubsystemNqn));

        var failed = Assert.IsType<BringUpAction.Failed>(Run(Options(null), controller));

        Assert.Equal(BringUpFailureKind.AuthenticationFailed, failed.Failure.Kind);
        Assert.Contains($"{SubsystemNqn} requires DH-HMAC-CHAP", failed.Failure.Detail, StringComparison.Ordinal);
        Assert.Equal([BringUpStep.FabricsConnect], controller.Steps);
    }

    [Fact]
    public void A_refused_host_key_fails_the_authentication_step()
    {
        using var key = DhChapSecret.Parse(DhChapSecret.Generate());
        using var wrong = DhChapSecret.Parse(DhChapSecret.Generate());
        var controller = new AuthenticatingController(new DhChapControllerExchange(key, null, HostNqn, SubsystemNqn));

        var failed = Assert.IsType<BringUpAction.Failed>(Run(Options(new DhChapHostCredentials(wrong)), controller));

        Assert.Equal(BringUpStep.Authentication, failed.Failure.Step);
        Assert.Equal(BringUpFailureKind.AuthenticationFailed, failed.Failure.Kind);
        Assert.Contains("AUTH_Failure1", failed.Failure.ToString(), StringComparison.Ordinal);
        Assert.DoesNotContain(BringUpStep.PropertyGetCapabilities, controller.Steps);
    }

    [Fact]
    public void A_connection_closed_instead_of_answering_the_reply_is_an_authentication_failure_naming_the_step()
    {
        using var key = DhChapSecret.Parse(DhChapSecret.Generate());
        using var wrong = DhChapSecret.Parse(DhChapSecret.Generate());
        var controller = new AuthenticatingController(new DhChapControllerExchange(key, null, HostNqn, SubsystemNqn));
        var machine = new ControllerBringUp(Options(new DhChapHostCredentials(wrong)));
        var action = machine.Start();
        int sends = 0;
        while (action is BringUpAction.Submit submit && sends < 2)
        {
            if (submit.Command.Command.FabricsType == FabricsCommandType.AuthenticationSend && submit.Command.Step == BringUpStep.Authentication)
            {
                sends++;
                if (sends == 2)
                {
                    break; // the Reply is on the wire; Linux nvmet, refusing it, tears the queue down
                }
            }

            action = machine.OnCompletion(controller.Answer(submit.Command));
        }

        Assert.Equal(2, sends);
        var failed = Assert.IsType<BringUpAction.Failed>(machine.OnConnectionLost("PeerClosed (Remote): closed the connection"));

        Assert.Equal(BringUpStep.Authentication, failed.Failure.Step);
        Assert.Equal(BringUpFailureKind.AuthenticationFailed, failed.Failure.Kind);
        Assert.Contains(SubsystemNqn, failed.Failure.ToString(), StringComparison.Ordinal);
        Assert.Contains("DH-HMAC-CHAP_Reply", failed.Failure.ToString(), StringComparison.Ordinal);
        Assert.Null(machine.OnConnectionLost("again"));
    }

    [Fact]
    public void A_connection_lost_outside_authentication_is_left_to_the_caller()
    {
        var machine = new ControllerBringUp(Options(null));
        Assert.IsType<BringUpAction.Submit>(machine.Start());
        Assert.Null(machine.OnConnectionLost("PeerClosed (Remote): closed the connection"));
    }

    [Fact]
    public void Ascr_is_refused_as_unsupported()
    {
        using var key = DhChapSecret.Parse(DhChapSecret.Generate());
        var controller = new AuthenticatingController(new DhChapControllerExchange(key, null, HostNqn, SubsystemNqn)) { AuthenticationRequirements = 0x0006 };

        var failed = Assert.IsType<BringUpAction.Failed>(Run(Options(new DhChapHostCredentials(key)), controller));

        Assert.Equal(BringUpFailureKind.AuthenticationFailed, failed.Failure.Kind);
        Assert.Contains("ASCR", failed.Failure.Detail, StringComparison.Ordinal);
    }

    private static BringUpOptions Options(DhChapHostCredentials? credentials) =>
        new(new FabricsConnectParameters(Guid.NewGuid(), SubsystemNqn, HostNqn), 32) { Goal = BringUpGoal.Ready, Authentication = credentials };

    private static BringUpAction Run(BringUpOptions options, AuthenticatingController controller)
    {
        var machine = new ControllerBringUp(options);
        var action = machine.Start();
        for (int i = 0; i < 100; i++)
        {
            switch (action)
            {
                case BringUpAction.Submit submit:
                    action = machine.OnCompletion(controller.Answer(submit.Command));
                    break;
                case BringUpAction.Wait:
                    action = machine.PollAgain();
                    break;
                default:
                    return action;
            }
        }

        throw new InvalidOperationException("the bring-up did not end");
    }

    /// <summary>Connect answers ATR; until the responder is satisfied every other command is refused with Authentication Required, as nvmet and SPDK do.</summary>
    private sealed class AuthenticatingController(DhChapControllerExchange responder)
    {
        public ushort AuthenticationRequirements { get; init; } = 0x0002;

        public List<BringUpStep> Steps { get; } = [];

        public BringUpCompletion Answer(BringUpCommand command)
        {
            Steps.Add(command.Step);
            var sqe = command.Command;
            if (command.Step == BringUpStep.FabricsConnect)
            {
                return Completion(7u | ((uint)AuthenticationRequirements << 16));
            }

            if (sqe.Opcode == FabricsCommands.Opcode && sqe.FabricsType == FabricsCommandType.AuthenticationSend)
            {
                Assert.Equal(AuthenticationCommands.Length(sqe), (uint)command.DataOut.Length);
                responder.OnSend(command.DataOut.Span);
                return Completion(0);
            }

            if (sqe.Opcode == FabricsCommands.Opcode && sqe.FabricsType == FabricsCommandType.AuthenticationReceive)
            {
                var message = responder.OnReceive();
                Assert.True(message.Length <= command.DataInLength);
                return new BringUpCompletion(new CompletionQueueEntry(0, 0, 0, 0, 1, NvmeStatus.Success), message);
            }

            if (!responder.Authenticated)
            {
                return Completion(0, NvmeStatus.Specific((byte)FabricsStatus.AuthenticationRequired, doNotRetry: true));
            }

            return command.Step switch
            {
                BringUpStep.PropertyGetCapabilities => Completion((uint)new ControllerCapabilities { MaxQueueEntries = 127, Timeout = 20, CommandSets = 1 }.Value),
                BringUpStep.PropertyGetVersion => Completion(NvmeVersion.V1_4_0.Value),
                BringUpStep.WaitForReady => Completion(1),
                _ => Completion(0),
            };
        }

        private static BringUpCompletion Completion(uint dw0, NvmeStatus status = default) =>
            new(new CompletionQueueEntry(dw0, 0, 0, 0, 1, status), ReadOnlyMemory<byte>.Empty);
    }
}
