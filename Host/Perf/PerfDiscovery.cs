using System.Globalization;
using ActorNvme.Host.Discover;
using ActorNvme.Protocol.Data;
using ActorNvme.Transport;

namespace ActorNvme.Host.Perf;

/// <summary>
/// -r with the discovery NQN: reads that discovery controller's log once and drives every NVM
/// subsystem it lists (TCP entries only), with the -r's hostnqn and ns, as SPDK's perf does.
/// </summary>
internal static class PerfDiscovery
{
    /// <summary>Replaces every discovery -r of <paramref name="options"/> by the NVM subsystems of its log; other -r stay as they are.</summary>
    public static async Task<(PerfOptions Options, IReadOnlyList<string> Notes)> ExpandAsync(
        PerfOptions options, string defaultHostNqn, Guid hostId, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var targets = new List<PerfTarget>();
        var notes = new List<string>();
        foreach (var target in options.Targets)
        {
            if (!target.IsDiscovery)
            {
                targets.Add(target);
                continue;
            }

            var log = await DiscoveryLogReader.ReadAsync(target.Address, target.HostNqn ?? defaultHostNqn, hostId, timeout, cancellationToken).ConfigureAwait(false);
            var (found, skipped) = Expand(target, log);
            notes.Add(string.Create(CultureInfo.InvariantCulture, $"discovery {target.Address}: {found.Count} NVM subsystem(s) to drive{(found.Count > 0 ? ": " + string.Join(", ", found.Select(f => $"{f.SubsystemNqn} at {f.Address}")) : string.Empty)}"));
            notes.AddRange(skipped);
            targets.AddRange(found);
        }

        // The same subsystem path listed twice (two discovery -r, or also named by hand) is driven once.
        var distinct = targets.DistinctBy(t => (t.Address.ToString(), t.SubsystemNqn, t.HostNqn, t.NamespaceId)).ToList();
        if (distinct.Count == 0)
        {
            throw new InvalidOperationException("the discovery log lists no NVM subsystem reachable over TCP: nothing to drive");
        }

        return (options with { Targets = distinct }, notes);
    }

    /// <summary>The NVM subsystems of <paramref name="log"/> as -r arguments (hostnqn and ns from <paramref name="discovery"/>), and why any entry was left out.</summary>
    public static (IReadOnlyList<PerfTarget> Targets, IReadOnlyList<string> Skipped) Expand(PerfTarget discovery, DiscoveryLog log)
    {
        var targets = new List<PerfTarget>();
        var skipped = new List<string>();
        foreach (var entry in log.Entries)
        {
            if (entry.SubsystemType != SubsystemType.Nvm)
            {
                continue; // referrals and the discovery subsystem itself: nothing to read or write
            }

            if (entry.TransportType != TransportType.Tcp)
            {
                skipped.Add($"skipped {entry.SubsystemNqn}: transport {entry.TransportType}, this host speaks TCP");
                continue;
            }

            if (!Nqn.TryValidate(entry.SubsystemNqn, out var nqnError, "subnqn"))
            {
                skipped.Add($"skipped an entry with an invalid subnqn: {nqnError.Describe()}");
                continue;
            }

            TransportAddress address;
            try
            {
                address = TransportAddress.Parse(entry.TransportAddress, entry.TransportServiceId);
            }
            catch (ArgumentException e)
            {
                skipped.Add($"skipped {entry.SubsystemNqn}: {e.Message}");
                continue;
            }

            string text = string.Create(CultureInfo.InvariantCulture, $"trtype:TCP traddr:{entry.TransportAddress} trsvcid:{entry.TransportServiceId} subnqn:{entry.SubsystemNqn}{(discovery.HostNqn is { } h ? " hostnqn:" + h : string.Empty)}{(discovery.NamespaceId is { } n ? $" ns:{n}" : string.Empty)}");
            targets.Add(new PerfTarget(address, entry.SubsystemNqn, discovery.HostNqn, discovery.NamespaceId, text));
        }

        return (targets, skipped);
    }
}
