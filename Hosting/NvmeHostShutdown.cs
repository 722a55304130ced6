using Akka;
using Akka.Actor;
using Akka.Event;
using ActorNvme.Actors.Host;

namespace ActorNvme.Hosting;

/// <summary>
/// Brings every controller of a host down cleanly: each subsystem is detached (its controllers get
/// CC.SHN and wait for CSTS.SHST), then the discovery services are stopped. Runs as a
/// CoordinatedShutdown task, so the ActorSystem does not stop under live controllers.
/// </summary>
public static class NvmeHostShutdown
{
    /// <summary>The task's name in the <c>service-stop</c> phase.</summary>
    public const string TaskName = "actornvme-shutdown-controllers";

    /// <summary>The default bound: under the phase's own default timeout of 5 s.</summary>
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(4);

    private static readonly TimeSpan AskTimeout = TimeSpan.FromSeconds(2);

    /// <summary>Adds the shutdown task for <paramref name="host"/> to the system's CoordinatedShutdown.</summary>
    public static void Register(ActorSystem system, IActorRef host, TimeSpan? timeout = null)
    {
        ArgumentNullException.ThrowIfNull(host);
        Register(system, () => host, timeout);
    }

    /// <summary>Adds the shutdown task for whatever host <paramref name="host"/> returns when the system stops (none: nothing to do).</summary>
    public static void Register(ActorSystem system, Func<IActorRef?> host, TimeSpan? timeout = null)
    {
        ArgumentNullException.ThrowIfNull(system);
        ArgumentNullException.ThrowIfNull(host);
        var bound = timeout ?? DefaultTimeout;
        CoordinatedShutdown.Get(system).AddTask(CoordinatedShutdown.PhaseServiceStop, TaskName, async () =>
        {
            try
            {
                if (host() is { } current)
                {
                    var remaining = await ShutdownAsync(system, current, bound).ConfigureAwait(false);
                    if (remaining.Count > 0)
                    {
                        system.Log.Warning("actornvme: controllers still present after {0}: {1}", bound, string.Join(", ", remaining));
                    }
                }
            }
            catch (Exception e)
            {
                system.Log.Warning("actornvme: clean controller shutdown did not finish: {0}", e.Message);
            }

            return Done.Instance;
        });
    }

    /// <summary>
    /// Asks the host to detach every controller (CC.SHN) and stop its discovery services, and waits for
    /// its answer, which comes once they are all gone; what was still there after
    /// <paramref name="timeout"/> was stopped at once and is named in the result (empty: all clean).
    /// </summary>
    public static async Task<IReadOnlyList<string>> ShutdownAsync(ActorSystem system, IActorRef host, TimeSpan timeout)
    {
        ArgumentNullException.ThrowIfNull(system);
        ArgumentNullException.ThrowIfNull(host);
        var done = await host.Ask<NvmeHost.ShutdownCompleted>(new NvmeHost.Shutdown(timeout), timeout + AskTimeout).ConfigureAwait(false);
        return done.Forced;
    }

    /// <summary>True for the path name of a discovery controller (<c>name/discovery</c>).</summary>
    public static bool IsDiscoveryPath(string path) => path.EndsWith("/discovery", StringComparison.Ordinal);
}
