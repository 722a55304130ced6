using ActorNvme.Actors.Settings;
using ActorNvme.Protocol.Data;

namespace ActorNvme.Cluster;

/// <summary>
/// The cluster's desired state beyond its configuration: discovery controllers started and subsystems
/// attached by hand at run time, each with its options. The discovery coordinator (a cluster singleton)
/// owns it and keeps it in the journal (<c>actornvme.cluster.store</c>), so that after a full restart of
/// the cluster it reads the same logs and attaches the same subsystems. Send the commands to
/// <see cref="NvmeCluster.Coordinator"/> (or use <see cref="NvmeCluster"/>'s methods); each is answered with a
/// <see cref="Result"/> once it is in the journal. Everything here is stored and crosses nodes, so it is
/// made of strings and numbers, and its lists are arrays.
/// </summary>
public static class DesiredState
{
    /// <summary>Longest name of an attach (it names the local controller and its block devices).</summary>
    public const int MaxNameLength = 64;

    /// <summary>More discoveries or attaches than this are refused: the state is read whole on every recovery.</summary>
    public const int MaxEntries = 4096;

    /// <summary>
    /// Loss-timeout options of the subsystems attached through a discovery or an attach, with SPDK's meanings
    /// (ctrlr_loss_timeout_sec: -1 reconnect forever, 0 never); a null field takes the node's setting.
    /// </summary>
    public sealed record AttachOptions(long? CtrlrLossTimeoutSeconds = null, long? ReconnectDelaySeconds = null, long? FastIoFailTimeoutSeconds = null)
    {
        /// <summary>The node's settings with these options applied; throws naming the rule when the combination is invalid.</summary>
        public NvmeHostSettings Apply(NvmeHostSettings settings)
        {
            ArgumentNullException.ThrowIfNull(settings);
            var resiliency = settings.Resiliency;
            return settings with
            {
                Resiliency = new ResiliencySettings(
                    CtrlrLossTimeoutSeconds is { } loss ? TimeSpan.FromSeconds(loss) : resiliency.CtrlrLossTimeout,
                    ReconnectDelaySeconds is { } delay ? TimeSpan.FromSeconds(delay) : resiliency.ReconnectDelay,
                    FastIoFailTimeoutSeconds is { } fail ? TimeSpan.FromSeconds(fail) : resiliency.FastIoFailTimeout).Validated(),
            };
        }
    }

    /// <summary>
    /// Read this discovery controller's log (<c>traddr:trsvcid</c>) and attach what it lists, with these options;
    /// <paramref name="Name"/> (SPDK's discovery name, unique in the cluster) lets it be stopped by name.
    /// </summary>
    public sealed record StartDiscovery(string Path, AttachOptions? Options = null, string? Name = null);

    /// <summary>Stop reading this discovery controller's log; what only it listed is detached after the next successful read.</summary>
    public sealed record StopDiscovery(string Path);

    /// <summary>Stop the discovery started under this name (as <see cref="StopDiscovery"/>).</summary>
    public sealed record StopDiscoveryByName(string Name);

    /// <summary>Asks the coordinator for every discovery it reads and how its last read went. Reply: <see cref="DiscoveryInfoList"/>.</summary>
    public sealed record GetDiscoveryInfo
    {
        public static GetDiscoveryInfo Instance { get; } = new();
    }

    /// <summary>
    /// One discovery controller the coordinator reads, on <paramref name="Node"/> (the node holding the coordinator):
    /// its name (null for one from the configuration), how many reads were tried, the last read's error (null: it
    /// succeeded, or none was tried yet) and the NVM subsystems the last successful read listed.
    /// </summary>
    public sealed record DiscoveryInfo(string Path, string? Name, bool Configured, string Node, string HostNqn, long Reads, string? LastError, DiscoveredSubsystem[] Entries);

    /// <summary>The answer to <see cref="GetDiscoveryInfo"/>.</summary>
    public sealed record DiscoveryInfoList(DiscoveryInfo[] Discoveries);

    /// <summary>Attach this subsystem through these paths under this name, whether or not a discovery log lists it (paths as an array: it crosses nodes).</summary>
    public sealed record Attach(string Name, string SubsystemNqn, IReadOnlyList<string> Paths, AttachOptions? Options = null);

    /// <summary>Detach the subsystem attached under this name (unless a discovery log still lists it).</summary>
    public sealed record Detach(string Name);

    /// <summary>Asks for the desired state. Reply: <see cref="Snapshot"/>.</summary>
    public sealed record GetDesiredState
    {
        public static GetDesiredState Instance { get; } = new();
    }

    /// <summary>The answer to a command: done (in the journal) or refused, saying why and what kind of refusal it is.</summary>
    public sealed record Result(bool Accepted, string Message, RefusalKind Refused = RefusalKind.None);

    /// <summary>A discovery controller whose log the cluster reads; <paramref name="Name"/>: the name it was started under, if any.</summary>
    public sealed record Discovery(string Path, AttachOptions? Options, string? Name = null);

    /// <summary>A subsystem attached by hand.</summary>
    public sealed record ExplicitAttach(string Name, string SubsystemNqn, string[] Paths, AttachOptions? Options);

    /// <summary>The whole desired state (the snapshot in the store, and the answer to <see cref="GetDesiredState"/>).</summary>
    /// <remarks>
    /// <paramref name="Discovered"/>: the subsystems a discovery log had the cluster attach. It survives a full restart,
    /// so that a discovery stopped (or a subsystem no longer listed) before the first read after the restart still
    /// detaches what remember-entities started again.
    /// </remarks>
    public sealed record Snapshot(Discovery[] Discoveries, ExplicitAttach[] Attaches, string[]? Discovered = null);

    // The journal's events.
    public sealed record DiscoveryStarted(Discovery Discovery);

    public sealed record DiscoveryStopped(string Path);

    public sealed record AttachAdded(ExplicitAttach Attach);

    public sealed record AttachRemoved(string Name);

    /// <summary>A discovery log had the cluster attach this subsystem.</summary>
    public sealed record DiscoveredAttached(string SubsystemNqn);

    /// <summary>No discovery log lists this subsystem any more; it was detached unless attached by hand.</summary>
    public sealed record DiscoveredDetached(string SubsystemNqn);

    /// <summary>Why <paramref name="command"/> cannot be taken, or null when it can.</summary>
    internal static string? Refusal(Attach command, NvmeHostSettings settings)
    {
        if (NameRefusal(command.Name) is { } badName)
        {
            return badName;
        }

        if (!Nqn.TryValidate(command.SubsystemNqn, out var error, "subnqn"))
        {
            return error.Describe();
        }

        if (command.Paths is null || command.Paths.Count is 0 or > 16)
        {
            return "paths: 1..16 traddr:trsvcid";
        }

        return PathRefusal(command.Paths) ?? OptionsRefusal(command.Options, settings);
    }

    internal static string? Refusal(StartDiscovery command, NvmeHostSettings settings) =>
        (command.Name is null ? null : NameRefusal(command.Name)) ?? PathRefusal([command.Path]) ?? OptionsRefusal(command.Options, settings);

    private static string? NameRefusal(string? name) =>
        string.IsNullOrEmpty(name) || name.Length > MaxNameLength || !name.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_')
            ? $"name '{name}' is not 1..{MaxNameLength} letters, digits, '-' or '_'"
            : null;

    private static string? PathRefusal(IEnumerable<string> paths)
    {
        foreach (string path in paths)
        {
            try
            {
                ClusterSubsystem.ParsePath(path);
            }
            catch (ArgumentException e)
            {
                return e.Message;
            }
        }

        return null;
    }

    private static string? OptionsRefusal(AttachOptions? options, NvmeHostSettings settings)
    {
        try
        {
            options?.Apply(settings);
            return null;
        }
        catch (InvalidNvmeSettingsException e)
        {
            return e.Message;
        }
    }
}

/// <summary>Why a <see cref="DesiredState"/> command was refused (SPDK answers each kind with its own errno).</summary>
public enum RefusalKind
{
    /// <summary>Not refused.</summary>
    None,

    /// <summary>A value is wrong; the message names it.</summary>
    InvalidArgument,

    /// <summary>The name (or the subsystem, or the discovery address) is taken.</summary>
    Exists,

    /// <summary>Nothing by that name.</summary>
    NotFound,

    /// <summary>It comes from the configuration, not from a command, and is not changed by one.</summary>
    Configured,

    /// <summary>The desired state holds as many entries as it may.</summary>
    Full,
}
