using System.Globalization;
using System.Text.Json.Nodes;
using ActorNvme.Actors.Controller;
using ActorNvme.Transport;

namespace ActorNvme.Host.Spdk;

/// <summary>SPDK's JSON shapes: transport ids, controller states, error texts.</summary>
internal static class SpdkJson
{
    public const string DiscoveryNqn = "nqn.2014-08.org.nvmexpress.discovery";

    /// <summary>SPDK's nvme_bdev_dump_trid_json: trtype, adrfam, traddr, trsvcid, subnqn.</summary>
    public static JsonObject Trid(TransportAddress address, string? subnqn) => new()
    {
        ["trtype"] = "TCP",
        ["adrfam"] = address.Host.Contains(':', StringComparison.Ordinal) ? "IPv6" : "IPv4",
        ["traddr"] = address.Host,
        ["trsvcid"] = address.Port.ToString(CultureInfo.InvariantCulture),
        ["subnqn"] = subnqn ?? string.Empty,
    };

    /// <summary>SPDK's controller state strings (bdev_nvme_get_controllers).</summary>
    public static string State(ControllerState state) => state switch
    {
        ControllerState.Live => "enabled",
        ControllerState.Failed => "failed",
        ControllerState.Deleting => "deleting",
        _ => "resetting",
    };
}
