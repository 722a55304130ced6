using System.Globalization;

namespace ActorNvme.Transport;

/// <summary>Where a controller listens: TRADDR and TRSVCID of a discovery log entry.</summary>
public sealed record TransportAddress(string Host, int Port)
{
    public static TransportAddress Parse(string traddr, string trsvcid)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(traddr);
        if (!int.TryParse(trsvcid, NumberStyles.None, CultureInfo.InvariantCulture, out int port) || port is < 1 or > 65535)
        {
            throw new ArgumentException($"trsvcid '{trsvcid}' is not a TCP port (1..65535)", nameof(trsvcid));
        }

        return new TransportAddress(traddr.Trim(), port);
    }

    public override string ToString() => Host.Contains(':', StringComparison.Ordinal) ? $"[{Host}]:{Port}" : $"{Host}:{Port}";
}
