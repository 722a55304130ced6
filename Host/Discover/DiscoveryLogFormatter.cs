using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using ActorNvme.Protocol.Data;

namespace ActorNvme.Host.Discover;

/// <summary>Writes a discovery log the way <c>nvme discover</c> (nvme-cli) prints it, so eyes and scripts used to that carry over.</summary>
public static class DiscoveryLogFormatter
{
    public static string Format(DiscoveryLog log)
    {
        ArgumentNullException.ThrowIfNull(log);
        var text = new StringBuilder();
        text.Append(CultureInfo.InvariantCulture, $"\nDiscovery Log Number of Records {log.Entries.Count}, Generation counter {log.Header.GenerationCounter}\n");
        for (int i = 0; i < log.Entries.Count; i++)
        {
            var e = log.Entries[i];
            text.Append(CultureInfo.InvariantCulture, $"=====Discovery Log Entry {i}======\n");
            text.Append(CultureInfo.InvariantCulture, $"trtype:  {TransportType(e.TransportType)}\n");
            text.Append(CultureInfo.InvariantCulture, $"adrfam:  {AddressFamily(e.AddressFamily)}\n");
            text.Append(CultureInfo.InvariantCulture, $"subtype: {SubsystemType(e.SubsystemType)}\n");
            text.Append(CultureInfo.InvariantCulture, $"treq:    {Requirements(e.TransportRequirements)}\n");
            text.Append(CultureInfo.InvariantCulture, $"portid:  {e.PortId}\n");
            text.Append(CultureInfo.InvariantCulture, $"trsvcid: {e.TransportServiceId}\n");
            text.Append(CultureInfo.InvariantCulture, $"subnqn:  {e.SubsystemNqn}\n");
            text.Append(CultureInfo.InvariantCulture, $"traddr:  {e.TransportAddress}\n");
            text.Append(CultureInfo.InvariantCulture, $"eflags:  {Flags(e.Flags)}\n");
            text.Append(CultureInfo.InvariantCulture, $"sectype: {SecurityType(e.SecurityType)}\n");
        }

        return text.ToString();
    }

    /// <summary>The log as <c>nvme discover -o json</c> writes it: genctr and one record per entry.</summary>
    public static string FormatJson(DiscoveryLog log)
    {
        ArgumentNullException.ThrowIfNull(log);
        var records = new JsonArray();
        foreach (var e in log.Entries)
        {
            records.Add(new JsonObject
            {
                ["trtype"] = TransportType(e.TransportType),
                ["adrfam"] = AddressFamily(e.AddressFamily),
                ["subtype"] = SubsystemType(e.SubsystemType),
                ["treq"] = Requirements(e.TransportRequirements),
                ["portid"] = e.PortId,
                ["trsvcid"] = e.TransportServiceId,
                ["subnqn"] = e.SubsystemNqn,
                ["traddr"] = e.TransportAddress,
                ["eflags"] = Flags(e.Flags),
                ["sectype"] = SecurityType(e.SecurityType),
            });
        }

        var root = new JsonObject { ["genctr"] = log.Header.GenerationCounter, ["records"] = records };
        return root.ToJsonString(new JsonSerializerOptions { WriteIndented = true, IndentSize = 2 }) + "\n";
    }

    public static string TransportType(TransportType value) => value switch
    {
        Protocol.Data.TransportType.Rdma => "rdma",
        Protocol.Data.TransportType.FibreChannel => "fc",
        Protocol.Data.TransportType.Tcp => "tcp",
        Protocol.Data.TransportType.Loop => "loop",
        _ => "unrecognized",
    };

    public static string AddressFamily(NvmeAddressFamily value) => value switch
    {
        NvmeAddressFamily.IPv4 => "ipv4",
        NvmeAddressFamily.IPv6 => "ipv6",
        NvmeAddressFamily.InfiniBand => "infiniband",
        NvmeAddressFamily.FibreChannel => "fibre-channel",
        NvmeAddressFamily.IntraHost => "intra-host",
        _ => "unrecognized",
    };

    public static string SubsystemType(SubsystemType value) => value switch
    {
        Protocol.Data.SubsystemType.DiscoveryReferral => "discovery subsystem referral",
        Protocol.Data.SubsystemType.Nvm => "nvme subsystem",
        Protocol.Data.SubsystemType.CurrentDiscovery => "current discovery subsystem",
        _ => "unrecognized",
    };

    public static string Requirements(TransportRequirements value)
    {
        string secure = ((byte)value & 0x3) switch
        {
            1 => "required",
            2 => "not required",
            _ => "not specified",
        };
        return value.HasFlag(TransportRequirements.SqFlowControlDisableSupported) ? $"{secure}, sq flow control disable supported" : secure;
    }

    public static string Flags(DiscoveryEntryFlags value)
    {
        if (value == DiscoveryEntryFlags.None)
        {
            return "none";
        }

        var names = new List<string>();
        if (value.HasFlag(DiscoveryEntryFlags.DuplicateReturnedInformation))
        {
            names.Add("duplicate discovery information");
        }

        if (value.HasFlag(DiscoveryEntryFlags.ExplicitPersistentConnection))
        {
            names.Add("explicit discovery connections");
        }

        if (value.HasFlag(DiscoveryEntryFlags.NoCdcConnectivity))
        {
            names.Add("no cdc connectivity");
        }

        return string.Join(", ", names);
    }

    public static string SecurityType(TcpSecurityType value) => value switch
    {
        TcpSecurityType.None => "none",
        TcpSecurityType.Tls12 => "tls 1.2",
        TcpSecurityType.Tls13 => "tls 1.3",
        _ => "unrecognized",
    };
}
