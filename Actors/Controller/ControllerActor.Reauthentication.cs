using Akka.Actor;
using Akka.Event;
using ActorNvme.Protocol.Auth;
using ActorNvme.Transport;

namespace ActorNvme.Actors.Controller;

/// <summary>
/// Host-initiated re-authentication of a Live controller: a new DH-HMAC-CHAP transaction (Negotiate, Challenge, Reply,
/// Success1[, Success2]) over Authentication Send/Receive on the admin queue, then one on each I/O queue, all while the
/// queues keep working. A refusal on any queue ends the association as an authentication failure (the controller will
/// not take commands from a host that failed to prove itself); the loss-timeout rules then apply as to any refusal.
/// </summary>
public sealed partial class ControllerActor
{
    private void OnReauthenticate(Association association)
    {
        var replyTo = Sender;
        if (_options.Settings.DhChap is not { } credentials)
        {
            replyTo.Tell(new Controller.ReauthenticationFailed(_options.Name, $"no dhchap-key is configured for host {_options.Settings.HostNqn}: {_options.SubsystemNqn} cannot be re-authenticated"));
            return;
        }

        if (association.Reauthenticating)
        {
            replyTo.Tell(new Controller.ReauthenticationFailed(_options.Name, $"a re-authentication with {_options.SubsystemNqn} is already under way"));
            return;
        }

        association.Reauthenticating = true;
        _log.Info("{0}: re-authenticating the admin queue with {1}", _options.Name, _options.SubsystemNqn);
        var exchange = new DhChapHostExchange(credentials, _options.Settings.HostNqn, _options.SubsystemNqn, 0);
        ContinueReauthentication(association, exchange, exchange.Start(), replyTo);
    }

    private void ContinueReauthentication(Association association, DhChapHostExchange exchange, DhChapStep step, IActorRef replyTo)
    {
        if (!IsCurrent(association.Generation))
        {
            replyTo.Tell(new Controller.ReauthenticationFailed(_options.Name, $"the association with {_options.SubsystemNqn} ended during re-authentication"));
            return;
        }

        switch (step)
        {
            case DhChapStep.Send send:
                SubmitInternal(AuthenticationCommands.Send(send.Message.Length), c => ContinueReauthentication(association, exchange, exchange.OnSent(c.Entry.Status), replyTo), send.Message);
                break;
            case DhChapStep.Receive receive:
                SubmitInternal(
                    AuthenticationCommands.Receive(receive.Length),
                    c => ContinueReauthentication(association, exchange, c.DataDigestError ? exchange.OnConnectionLost("data digest error in the controller's authentication message") : exchange.OnReceived(c.Entry.Status, c.Data.Span), replyTo),
                    dataInLength: receive.Length);
                break;
            case DhChapStep.Authenticated done:
                _log.Info("{0}: admin queue re-authenticated with {1} ({2}/{3}{4})", _options.Name, _options.SubsystemNqn, done.Hash, done.Group, done.ControllerAuthenticated ? ", bidirectional" : string.Empty);
                if (association.IoQueues is not { IsClosed: false } set || set.Queues.Count == 0)
                {
                    association.Reauthenticating = false;
                    replyTo.Tell(new Controller.Reauthenticated(_options.Name, done.Hash, done.Group, done.ControllerAuthenticated));
                    break;
                }

                // Then each I/O queue, while its I/O goes on (the queues run apart from this mailbox).
                long generation = association.Generation;
                var credentials = _options.Settings.DhChap!;
                set.ReauthenticateAsync(credentials, _options.Settings.HostNqn, _options.SubsystemNqn, _options.Settings.ConnectTimeout, association.Lifetime.Token)
                    .PipeTo(Self, success: queues => new IoQueuesReauthenticated(generation, done, queues, replyTo), failure: e => new IoQueuesReauthenticationFailed(generation, e, replyTo));
                break;
            case DhChapStep.Failed failed:
                association.Reauthenticating = false;
                replyTo.Tell(new Controller.ReauthenticationFailed(_options.Name, $"re-authentication: {failed.Detail}"));
                Lose(new ConnectionClosed(CloseReason.AuthenticationFailed, $"re-authentication: {failed.Detail}"));
                break;
        }
    }

    /// <summary>New keys (null: none) for the queues from now on, re-authentication and every later association included.</summary>
    private void StoreKeys(DhChapHostCredentials? credentials)
    {
        _options = _options with { Settings = _options.Settings with { DhChap = credentials } };
        _log.Info("{0}: DH-HMAC-CHAP keys for {1} {2}", _options.Name, _options.SubsystemNqn, credentials is null ? "cleared" : credentials.ControllerSecret is null ? "replaced (host key)" : "replaced (host and controller keys)");
    }

    private void OnIoQueuesReauthenticated(IoQueuesReauthenticated done)
    {
        var association = _association!;
        association.Reauthenticating = false;
        var admin = done.Admin;
        _log.Info("{0}: {1} I/O queue(s) re-authenticated with {2}", _options.Name, done.Queues, _options.SubsystemNqn);
        done.ReplyTo.Tell(new Controller.Reauthenticated(_options.Name, admin.Hash, admin.Group, admin.ControllerAuthenticated) { IoQueues = done.Queues });
    }

    private void OnIoQueuesReauthenticationFailed(IoQueuesReauthenticationFailed failed)
    {
        _association!.Reauthenticating = false;
        var reason = IoQueueReauthenticationLoss(failed.Error);
        failed.ReplyTo.Tell(new Controller.ReauthenticationFailed(_options.Name, $"re-authentication of an I/O queue: {reason}"));

        // The set has ended already (the path is lost); this makes the loss this controller's at once.
        Lose(reason);
    }

    /// <summary>Why re-authenticating the I/O queues failed (their set has closed with that reason), also when the association has ended since.</summary>
    private ConnectionClosed IoQueueReauthenticationLoss(Exception error) => error is ConnectionClosedException closed
        ? closed.Closed
        : new ConnectionClosed(CloseReason.AuthenticationFailed, $"re-authentication of the I/O queues of {_options.SubsystemNqn}: {error.Message}");

    private sealed record IoQueuesReauthenticated(long Generation, DhChapStep.Authenticated Admin, int Queues, IActorRef ReplyTo) : IDeadLetterSuppression;

    private sealed record IoQueuesReauthenticationFailed(long Generation, Exception Error, IActorRef ReplyTo) : IDeadLetterSuppression;
}
