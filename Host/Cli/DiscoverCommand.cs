using System.CommandLine;
using ActorNvme.Actors.Settings;
using ActorNvme.Host.Discover;
using ActorNvme.Protocol.Data;
using ActorNvme.Transport;

namespace ActorNvme.Host.Cli;

internal static class DiscoverCommand
{
    private const int MaxTimeoutSeconds = 3600;

    public static Command Create()
    {
        var transport = new Option<string>("--transport", "-t") { Description = "Transport type (only tcp)", DefaultValueFactory = _ => "tcp" };
        transport.AcceptOnlyFromAmong("tcp");
        var address = new Option<string>("--traddr", "-a") { Description = "Address of the discovery controller", Required = true };
        var service = new Option<int>("--trsvcid", "-s") { Description = "Port of the discovery controller", DefaultValueFactory = _ => 8009 };
        var hostNqn = new Option<string?>("--hostnqn", "-q") { Description = "Host NQN (default: /etc/nvme/hostnqn, else generated)" };
        var hostId = new Option<Guid?>("--hostid", "-I") { Description = "Host identifier (default: /etc/nvme/hostid, else generated)" };
        var timeout = new Option<double>("--timeout") { Description = "Seconds to wait for the whole exchange", DefaultValueFactory = _ => 5 };
        var format = new Option<string>("--output-format", "-o") { Description = "normal or json (as nvme discover)", DefaultValueFactory = _ => "normal" };
        format.AcceptOnlyFromAmong("normal", "json");
        var command = new Command("discover", "Read a discovery controller's log once and print it as nvme discover does")
        {
            transport, address, service, hostNqn, hostId, timeout, format,
        };
        command.SetAction(async (parse, cancellationToken) =>
        {
            int port = parse.GetValue(service);
            if (port is < 1 or > 65535)
            {
                await Console.Error.WriteLineAsync($"actornvme discover: --trsvcid {port} is not a TCP port (1..65535)").ConfigureAwait(false);
                return 2;
            }

            double seconds = parse.GetValue(timeout);
            if (!double.IsFinite(seconds) || seconds <= 0 || seconds > MaxTimeoutSeconds)
            {
                await Console.Error.WriteLineAsync($"actornvme discover: --timeout {seconds.ToString(System.Globalization.CultureInfo.InvariantCulture)} must be more than 0 and at most {MaxTimeoutSeconds} seconds").ConfigureAwait(false);
                return 2;
            }

            ResolvedHostIdentity identity;
            try
            {
                identity = HostIdentity.Resolve(parse.GetValue(hostNqn), parse.GetValue(hostId));
            }
            catch (InvalidNvmeSettingsException e)
            {
                await Console.Error.WriteLineAsync($"actornvme discover: {e.Message}").ConfigureAwait(false);
                return 2;
            }

            var id = identity.HostId;
            string nqn = identity.HostNqn;
            if (!Nqn.TryValidate(nqn, out var nqnError, "--hostnqn"))
            {
                await Console.Error.WriteLineAsync($"actornvme discover: {nqnError.Describe()}").ConfigureAwait(false);
                return 2;
            }

            var target = new TransportAddress(parse.GetRequiredValue(address), port);
            try
            {
                var log = await DiscoveryLogReader.ReadAsync(target, nqn, id, TimeSpan.FromSeconds(seconds), cancellationToken).ConfigureAwait(false);
                await Console.Out.WriteAsync(parse.GetValue(format) == "json" ? DiscoveryLogFormatter.FormatJson(log) : DiscoveryLogFormatter.Format(log)).ConfigureAwait(false);
                return 0;
            }
            catch (DiscoveryFailedException e)
            {
                await Console.Error.WriteLineAsync($"actornvme discover: {e.Message}").ConfigureAwait(false);
                return 1;
            }
        });
        return command;
    }
}
