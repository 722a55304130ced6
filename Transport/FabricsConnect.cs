using ActorNvme.Protocol.Data;
using ActorNvme.Protocol.Nvme;

namespace ActorNvme.Transport;

/// <summary>What a Fabrics Connect command says about the host and the subsystem it wants.</summary>
/// <param name="HostId">HOSTID, sent as the 16 bytes of the UUID in network order.</param>
/// <param name="SubsystemNqn">SUBNQN (the discovery NQN for a discovery controller).</param>
/// <param name="HostNqn">HOSTNQN.</param>
public sealed record FabricsConnectParameters(Guid HostId, string SubsystemNqn, string HostNqn)
{
    /// <summary>The well-known NQN of discovery controllers.</summary>
    public const string DiscoveryNqn = Nqn.Discovery;

    /// <summary>CNTLID: 0xFFFF asks the subsystem for any controller (the dynamic model); I/O queues pass the admin queue's.</summary>
    public ushort ControllerId { get; init; } = 0xFFFF;

    /// <summary>KATO in milliseconds; meaningful on the admin queue only.</summary>
    public uint KeepAliveMilliseconds { get; init; }

    /// <summary>Set CATTR bit 2 (disable SQ flow control); measurably faster at low queue depth.</summary>
    public bool DisableSqFlowControl { get; init; }
}

/// <summary>
/// The Connect command and its 1024-byte data for a queue pair; the data layout (and the NQN checks)
/// are <see cref="ConnectData"/>'s, so host, Target and actors encode it one way.
/// </summary>
internal static class FabricsConnectData
{
    public const int Size = ConnectData.Size;

    public static void Write(Span<byte> destination, FabricsConnectParameters parameters) =>
        new ConnectData
        {
            HostId = parameters.HostId,
            ControllerId = parameters.ControllerId,
            SubsystemNqn = parameters.SubsystemNqn,
            HostNqn = parameters.HostNqn,
        }.WriteTo(destination);

    /// <summary>Builds the Connect command for queue <paramref name="queueId"/> of <paramref name="queueSize"/> entries.</summary>
    public static SubmissionQueueEntry Command(ushort queueId, int queueSize, FabricsConnectParameters parameters) =>
        FabricsCommands.Connect(
            queueId,
            queueSize,
            queueId == 0 ? parameters.KeepAliveMilliseconds : 0,
            parameters.DisableSqFlowControl ? FabricsCommands.DisableSqFlowControl : (byte)0);
}
