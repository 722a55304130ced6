using Akka.Actor;
using ActorNvme.Actors.Controller;
using ActorNvme.Host.JsonRpc;
using ActorNvme.Transport;

namespace ActorNvme.Host.Spdk;

/// <summary>
/// Watches the controllers of one attach or discovery, from the event stream, for a failure that no
/// retry can cure: nothing listens at the address (ECONNREFUSED), or Fabrics Connect was answered with
/// Do Not Retry (the host NQN not allowed, an unknown subsystem, ...). Such a failure is known at the
/// first attempt, so the request is answered then, with SPDK's errno, instead of after its deadline.
/// </summary>
internal sealed class ConnectFailureWatch : IDisposable
{
    private readonly ActorSystem _system;
    private readonly IActorRef _watcher;
    private readonly TaskCompletionSource<JsonRpcException> _verdict = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _live = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private ConnectFailureWatch(ActorSystem system, string subject, Func<string, bool> isWatched)
    {
        _system = system;
        _watcher = system.ActorOf(Props.Create(() => new Watcher(subject, isWatched, _verdict, _live)));
        system.EventStream.Subscribe(_watcher, typeof(Controller.StateChanged));
    }

    /// <summary>Completes with the error to answer once a watched controller fails for good; never otherwise.</summary>
    public Task<JsonRpcException> Verdict => _verdict.Task;

    /// <summary>Completes once a watched controller is Live.</summary>
    public Task Live => _live.Task;

    /// <summary>The paths of the controller attached by hand as <paramref name="name"/> (their names are "name/path-...").</summary>
    public static ConnectFailureWatch ForController(ActorSystem system, string name) =>
        new(system, $"controller {name}", path => path.StartsWith(name + "/", StringComparison.Ordinal));

    /// <summary>The discovery controller of the discovery service <paramref name="name"/>.</summary>
    public static ConnectFailureWatch ForDiscovery(ActorSystem system, string name) =>
        new(system, $"discovery {name}", path => path == name + "/discovery");

    /// <summary>
    /// The JSON-RPC error for a controller's Failed reason (a <see cref="ConnectionClosed"/> as text), when
    /// that failure is final: -ECONNREFUSED, -EPERM for a host the controller does not allow, -EINVAL for any
    /// other Connect answered with DNR. Null when a retry may succeed.
    /// </summary>
    public static JsonRpcException? Classify(string? reason, string? subject = null)
    {
        if (reason is null)
        {
            return null;
        }

        if (reason.StartsWith(nameof(CloseReason.ConnectFailed) + " ", StringComparison.Ordinal)
            && reason.Contains(nameof(System.Net.Sockets.SocketError.ConnectionRefused), StringComparison.Ordinal))
        {
            return new JsonRpcException(JsonRpcErrorCodes.ConnectionRefused, $"Connection refused: {Detail(reason, subject)}");
        }

        if (reason.StartsWith(nameof(CloseReason.ConnectRejected) + " ", StringComparison.Ordinal) && reason.Contains(", DNR", StringComparison.Ordinal))
        {
            // Fabrics command-specific status 0x84: Connect Invalid Host.
            return reason.Contains("SCT 0x1 SC 0x84", StringComparison.Ordinal)
                ? new JsonRpcException(JsonRpcErrorCodes.NotPermitted, $"Operation not permitted: {Detail(reason, subject)}")
                : new JsonRpcException(JsonRpcErrorCodes.Invalid, $"Invalid argument: {Detail(reason, subject)}");
        }

        return null;
    }

    public void Dispose()
    {
        _system.EventStream.Unsubscribe(_watcher);
        _system.Stop(_watcher);
    }

    // "ConnectFailed (Network): TCP connect to ... failed: ConnectionRefused" -> the part after the cause.
    private static string Detail(string reason, string? subject)
    {
        int colon = reason.IndexOf("): ", StringComparison.Ordinal);
        string detail = colon < 0 ? reason : reason[(colon + 3)..];
        return subject is null ? detail : $"{subject}: {detail}";
    }

    private sealed class Watcher : ReceiveActor
    {
        public Watcher(string subject, Func<string, bool> isWatched, TaskCompletionSource<JsonRpcException> verdict, TaskCompletionSource live)
        {
            Receive<Controller.StateChanged>(changed =>
            {
                if (!isWatched(changed.Name))
                {
                    return;
                }

                if (changed.State == ControllerState.Live)
                {
                    live.TrySetResult();
                }
                else if (changed.State == ControllerState.Failed && Classify(changed.Reason, subject) is { } error)
                {
                    verdict.TrySetResult(error);
                }
            });
        }
    }
}
