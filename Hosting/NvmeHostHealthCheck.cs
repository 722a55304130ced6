using Akka.Actor;
using Akka.Hosting;
using ActorNvme.Actors.Controller;
using ActorNvme.Actors.Host;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace ActorNvme.Hosting;

/// <summary>
/// Reports the host's controllers: Healthy when every path is Live or coming up; Degraded when some
/// path has failed but each controller still has another; Unhealthy when a controller has no path
/// left that is not Failed. Answers from the host's registry, so it never waits on a reconnect.
/// </summary>
public sealed class NvmeHostHealthCheck : IAkkaHealthCheck
{
    private static readonly TimeSpan AskTimeout = TimeSpan.FromSeconds(2);

    public async Task<HealthCheckResult> CheckHealthAsync(AkkaHealthCheckContext context, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(context);
        if (!context.ActorRegistry.TryGet<NvmeHostActor>(out var host))
        {
            return HealthCheckResult.Unhealthy("the ActorNvme host actor is not registered (WithNvmeHost not started yet)");
        }

        NvmeHost.ControllerList list;
        try
        {
            list = await host.Ask<NvmeHost.ControllerList>(NvmeHost.ListControllers.Instance, AskTimeout, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is AskTimeoutException or TaskCanceledException)
        {
            return HealthCheckResult.Unhealthy("the ActorNvme host did not answer", e);
        }

        return Evaluate(list);
    }

    /// <summary>The verdict for a controller list (public so that hosts without Akka.Hosting can use it).</summary>
    public static HealthCheckResult Evaluate(NvmeHost.ControllerList list)
    {
        ArgumentNullException.ThrowIfNull(list);
        var nvm = list.Controllers
            .Select(c => c with { Paths = [.. c.Paths.Where(p => !NvmeHostShutdown.IsDiscoveryPath(p.Path))] })
            .Where(c => c.Paths.Count > 0)
            .ToArray();
        var failedPaths = nvm.SelectMany(c => c.Paths).Where(p => p.State == ControllerState.Failed).ToArray();
        var down = nvm.Where(c => c.Paths.All(p => p.State == ControllerState.Failed)).Select(c => c.Name).ToArray();
        var data = new Dictionary<string, object>
        {
            ["controllers"] = nvm.Length,
            ["paths"] = nvm.Sum(c => c.Paths.Count),
            ["failed_paths"] = failedPaths.Length,
            ["live_paths"] = nvm.SelectMany(c => c.Paths).Count(p => p.State == ControllerState.Live),
        };

        string Describe() => string.Join("; ", failedPaths.Select(p => $"{p.Path} failed: {p.Reason}"));
        if (down.Length > 0)
        {
            return HealthCheckResult.Unhealthy($"no usable path for {string.Join(", ", down)}: {Describe()}", data: data);
        }

        return failedPaths.Length > 0
            ? HealthCheckResult.Degraded(Describe(), data: data)
            : HealthCheckResult.Healthy($"{nvm.Length} controller(s), every path Live or connecting", data);
    }
}
