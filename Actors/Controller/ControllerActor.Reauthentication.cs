using Akka.Actor;
using Akka.Event;
using ActorNvme.Protocol.Auth;
using ActorNvme.Transport;

namespace ActorNvme.Actors.Controller;

/// <summary>
/// Host-initiated re-authentication of a Live controller's admin queue: a new DH-HMAC-CHAP transaction (Negotiate,
/// Challenge, Reply, Success1[, Success2]) over Authentication Send/Receive while the queue keeps working. A refused
/// re-authentication ends the association as an authentication failure (the controller will not take commands from
/// a host that failed to prove itself); the loss-timeout rules then apply as to any refusal.
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
                association.Reauthenticating = false;
                _log.Info("{0}: admin queue re-authenticated with {1} ({2}/{3}{4})", _options.Name, _options.SubsystemNqn, done.Hash, done.Group, done.ControllerAuthenticated ? ", bidirectional" : string.Empty);
                replyTo.Tell(new Controller.Reauthenticated(_options.Name, done.Hash, done.Group, done.ControllerAuthenticated));
                break;
            case DhChapStep.Failed failed:
                association.Reauthenticating = false;
                replyTo.Tell(new Controller.ReauthenticationFailed(_options.Name, $"re-authentication: {failed.Detail}"));
                Lose(new ConnectionClosed(CloseReason.AuthenticationFailed, $"re-authentication: {failed.Detail}"));
                break;
        }
    }
}
