using Akka.Actor;
using ActorNvme.Actors.Controller;
using ActorNvme.Actors.Subsystem;
using ActorNvme.Host.JsonRpc;
using ActorNvme.Protocol.Nvme;
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
    /// The JSON-RPC error for a controller's Failed state, from its refusal as the controller classified it
    /// (<see cref="PathRefusals.Of"/>), when that failure is final: -ECONNREFUSED, -EPERM for a host the
    /// controller does not allow (Connect Invalid Host), -EINVAL for any other Connect answered with DNR.
    /// Null when a retry may succeed, and for refusals the host root already answers (keys, PSK).
    /// </summary>
    public static JsonRpcException? Classify(PathRefusal refusal, ConnectionClosed? loss, string? subject = null)
    {
        string detail = loss is null ? refusal.ToString() : loss.Detail;
        detail = subject is null ? detail : $"{subject}: {detail}";
        return refusal switch
        {
            PathRefusal.ConnectionRefused => new JsonRpcException(JsonRpcErrorCodes.ConnectionRefused, $"Connection refused: {detail}"),
            PathRefusal.ConnectRejected when IsInvalidHost(loss?.RefusalStatus) => new JsonRpcException(JsonRpcErrorCodes.NotPermitted, $"Operation not permitted: {detail}"),
            PathRefusal.ConnectRejected => new JsonRpcException(JsonRpcErrorCodes.Invalid, $"Invalid argument: {detail}"),
            _ => null,
        };
    }

    public void Dispose()
    {
        _system.EventStream.Unsubscribe(_watcher);
        _system.Stop(_watcher);
    }

    // Fabrics command-specific status 0x84: Connect Invalid Host.
    private static bool IsInvalidHost(NvmeStatus? status) =>
        status is { } s && s.Type == StatusCodeType.CommandSpecific && s.Code == 0x84;

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
                else if (changed.State == ControllerState.Failed && Classify(changed.Refusal, changed.Loss, subject) is { } error)
                {
                    verdict.TrySetResult(error);
                }
            });
        }
    }
}
