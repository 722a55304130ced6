using System.Globalization;
using ActorNvme.Protocol.Data;

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
    internal List<DiscoveryLogEntry> Entries(string hostNqn, TargetListener via, string localHost)
    {
        var entries = new List<DiscoveryLogEntry>();
        var listeners = Target.Listeners.Where(l => l.IsUp && l.Transport == via.Transport).OrderBy(l => l.PortId).ToList();
        if (Target.Options.ReportCurrentDiscoverySubsystem)
        {
            entries.Add(Entry(via, SubsystemType.CurrentDiscovery, WellKnownNqn, HostOf(via, localHost), DiscoveryEntryFlags.DuplicateReturnedInformation | DiscoveryEntryFlags.ExplicitPersistentConnection));
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
                    entries.Add(Entry(listener, SubsystemType.Nvm, subsystem.Nqn, HostOf(listener, listener == via ? localHost : null), DiscoveryEntryFlags.None));
                }
            }
        }

        foreach (var referral in Target.Referrals)
        {
            var entry = Entry(referral.PortId, referral.Address.Port, SubsystemType.DiscoveryReferral, WellKnownNqn, referral.Address.Host, DiscoveryEntryFlags.None);
            entries.Add(referral.SecureChannel ? Secure(entry) : entry);
        }

        return entries;
    }

    private DiscoveryLogEntry Entry(TargetListener listener, SubsystemType type, string nqn, string host, DiscoveryEntryFlags flags) =>
        listener.SecureChannel
            ? Secure(Entry(listener.PortId, listener.Address.Port, type, nqn, host, flags))
            : Entry(listener.PortId, listener.Address.Port, type, nqn, host, flags);

    private static DiscoveryLogEntry Secure(DiscoveryLogEntry entry) => entry with
    {
        TransportRequirements = TransportRequirements.SqFlowControlDisableSupported | TransportRequirements.SecureChannelRequired,
        SecurityType = TcpSecurityType.Tls13,
    };

    // TREQ: secure channel not specified, SQ flow control disable supported (as nvmet); dynamic controllers only.
    private DiscoveryLogEntry Entry(ushort portId, int port, SubsystemType type, string nqn, string host, DiscoveryEntryFlags flags) => new()
    {
        TransportType = TransportType.Tcp,
        AddressFamily = AddressFamily(host),
        SubsystemType = type,
        TransportRequirements = TransportRequirements.SqFlowControlDisableSupported,
        PortId = portId,
        ControllerId = DiscoveryLogEntry.DynamicControllerId,
        AdminMaxSqSize = (ushort)Target.Options.MaxAdminQueueSize,
        Flags = flags,
        TransportServiceId = port.ToString(CultureInfo.InvariantCulture),
        SubsystemNqn = nqn,
        TransportAddress = host,
        SecurityType = TcpSecurityType.None,
    };

    // A listener bound to a wildcard address reports the address the host reached (as nvmet's disc_traddr does).
    private static string HostOf(TargetListener listener, string? localHost)
    {
        string host = listener.Address.Host;
        return host is "0.0.0.0" or "::" && localHost is not null ? localHost : host;
    }

    private static NvmeAddressFamily AddressFamily(string host) =>
        System.Net.IPAddress.TryParse(host, out var ip)
            ? ip.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6 ? NvmeAddressFamily.IPv6 : NvmeAddressFamily.IPv4
            : NvmeAddressFamily.IntraHost;
}
