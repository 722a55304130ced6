using ActorNvme.Target.Encoding;

namespace ActorNvme.Target;

/// <summary>
/// The discovery subsystem (NQN <see cref="WellKnownNqn"/>), reachable through every listener. Its log
/// lists every NVM subsystem the host may use on every listener it is linked to (listeners of the
/// transport the host came through), referrals, and first, as nvmet does, the current discovery
/// subsystem itself.
/// </summary>
public sealed class DiscoverySubsystem : SubsystemBase
{
    public const string WellKnownNqn = "nqn.2014-08.org.nvmexpress.discovery";

    internal DiscoverySubsystem(NvmeTarget target)
        : base(target, WellKnownNqn)
    {
    }

    internal override bool IsDiscovery => true;

    internal override bool AllowsHost(string hostNqn) => true;

    /// <summary>The entries <paramref name="hostNqn"/> sees when connected through <paramref name="via"/> (reached at <paramref name="localHost"/>).</summary>
    internal List<DiscoveryEntry> Entries(string hostNqn, TargetListener via, string localHost)
    {
        var entries = new List<DiscoveryEntry>();
        var listeners = Target.Listeners.Where(l => l.IsUp && l.Transport == via.Transport).OrderBy(l => l.PortId).ToList();
        if (Target.Options.ReportCurrentDiscoverySubsystem)
        {
            entries.Add(Entry(via, LogPages.SubtypeCurrentDiscovery, WellKnownNqn, HostOf(via, localHost), LogPages.CurrentDiscoveryFlags));
        }

        foreach (var subsystem in Target.Subsystems)
        {
            if (!subsystem.AllowsHost(hostNqn))
            {
                continue;
            }

            foreach (var listener in listeners)
            {
                if (subsystem.IsLinked(listener))
                {
                    entries.Add(Entry(listener, LogPages.SubtypeNvm, subsystem.Nqn, HostOf(listener, listener == via ? localHost : null), 0));
                }
            }
        }

        foreach (var referral in Target.Referrals)
        {
            entries.Add(new DiscoveryEntry(AddressFamily(referral.Address.Host), LogPages.SubtypeReferral, referral.PortId, referral.Address.Port.ToString(System.Globalization.CultureInfo.InvariantCulture), WellKnownNqn, referral.Address.Host, 0));
        }

        return entries;
    }

    private static DiscoveryEntry Entry(TargetListener listener, byte subtype, string nqn, string host, ushort flags) =>
        new(AddressFamily(host), subtype, listener.PortId, listener.Address.Port.ToString(System.Globalization.CultureInfo.InvariantCulture), nqn, host, flags);

    // A listener bound to a wildcard address reports the address the host reached (as nvmet's disc_traddr does).
    private static string HostOf(TargetListener listener, string? localHost)
    {
        string host = listener.Address.Host;
        return host is "0.0.0.0" or "::" && localHost is not null ? localHost : host;
    }

    private static byte AddressFamily(string host) =>
        System.Net.IPAddress.TryParse(host, out var ip)
            ? ip.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6 ? LogPages.AddressFamilyIPv6 : LogPages.AddressFamilyIPv4
            : LogPages.AddressFamilyIntraHost;
}
