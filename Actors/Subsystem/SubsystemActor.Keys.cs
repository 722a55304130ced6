using Akka.Actor;
using ActorNvme.Actors.Host;
using ControllerMessages = ActorNvme.Actors.Controller.Controller;

namespace ActorNvme.Actors.Subsystem;

/// <summary>
/// New DH-HMAC-CHAP keys for every path of this subsystem (SPDK's bdev_nvme_set_keys): kept for the controllers started
/// from now on, and given to each path's controller, which re-authenticates all its queues at once when it is Live.
/// </summary>
public sealed partial class SubsystemActor
{
    private void OnSetKeys(Subsystem.SetKeys message)
    {
        _options = _options with { Settings = _options.Settings with { DhChap = message.Credentials } };
        var replyTo = Sender;
        var controllers = _paths.Values.Where(p => p.Controller is not null).Select(p => (p.Address, Controller: p.Controller!)).ToArray();

        var timeout = Subsystem.SetKeysBound(_options.Settings.ConnectTimeout);
        var answers = controllers.Select(async c => (c.Address, Answer: await AskOrTimeout(c.Controller, new ControllerMessages.SetKeys(message.Credentials), timeout).ConfigureAwait(false))).ToArray();
        string name = _options.Name;
        string nqn = _options.SubsystemNqn;
        Task.WhenAll(answers).PipeTo(replyTo, success: results =>
        {
            var refused = results.Where(r => r.Answer is not (ControllerMessages.Reauthenticated or ControllerMessages.KeysStored)).ToArray();
            if (refused.Length > 0)
            {
                string why = string.Join("; ", refused.Select(r => $"{r.Address}: {Describe(r.Answer)}"));
                return new NvmeHost.Failed(HostErrorKind.AuthenticationFailed, $"{name}: re-authentication with {nqn} with the new keys failed on {refused.Length} of {results.Length} path(s): {why}");
            }

            var done = results.Select(r => r.Answer).OfType<ControllerMessages.Reauthenticated>().ToArray();
            return new Subsystem.KeysSet(name, done.Length, done.Sum(d => d.IoQueues));
        });
    }

    private static async Task<object> AskOrTimeout(IActorRef controller, object message, TimeSpan timeout)
    {
        try
        {
            return await controller.Ask<object>(message, timeout).ConfigureAwait(false);
        }
        catch (AskTimeoutException)
        {
            return $"no answer within {timeout.TotalSeconds:0.#} s";
        }
    }

    private static string Describe(object answer) => answer switch
    {
        ControllerMessages.ReauthenticationFailed failed => failed.Reason,
        string text => text,
        _ => answer.GetType().Name,
    };
}
