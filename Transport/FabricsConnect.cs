using System.Text;
using ActorNvme.Protocol.Nvme;

namespace ActorNvme.Transport;

/// <summary>What a Fabrics Connect command says about the host and the subsystem it wants.</summary>
/// <param name="HostId">HOSTID, sent as the 16 bytes of the UUID in network order.</param>
/// <param name="SubsystemNqn">SUBNQN (the discovery NQN for a discovery controller).</param>
/// <param name="HostNqn">HOSTNQN.</param>
public sealed record FabricsConnectParameters(Guid HostId, string SubsystemNqn, string HostNqn)
{
    /// <summary>The well-known NQN of discovery controllers.</summary>
    public const string DiscoveryNqn = "nqn.2014-08.org.nvmexpress.discovery";

    /// <summary>CNTLID: 0xFFFF asks the subsystem for any controller (the dynamic model); I/O queues pass the admin queue's.</summary>
    public ushort ControllerId { get; init; } = 0xFFFF;

    /// <summary>KATO in milliseconds; meaningful on the admin queue only.</summary>
    public uint KeepAliveMilliseconds { get; init; }

    /// <summary>Set CATTR bit 2 (disable SQ flow control); measurably faster at low queue depth.</summary>
    public bool DisableSqFlowControl { get; init; }
}

/// <summary>
/// The 1024-byte Connect data: HOSTID (16 bytes at 0), CNTLID (u16 at 16), SUBNQN (256 bytes at
/// 256), HOSTNQN (256 bytes at 512). Kept here until Protocol/Data offers the same.
/// </summary>
internal static class FabricsConnectData
{
    public const int Size = FabricsCommands.ConnectDataSize;
    private const int NqnFieldSize = 256;

    public static void Write(Span<byte> destination, FabricsConnectParameters parameters)
    {
        var data = destination[..Size];
        data.Clear();
        parameters.HostId.TryWriteBytes(data[..16], bigEndian: true, out _);
        System.Buffers.Binary.BinaryPrimitives.WriteUInt16LittleEndian(data[16..], parameters.ControllerId);
        WriteNqn(data.Slice(256, NqnFieldSize), parameters.SubsystemNqn, nameof(parameters.SubsystemNqn));
        WriteNqn(data.Slice(512, NqnFieldSize), parameters.HostNqn, nameof(parameters.HostNqn));
    }

    /// <summary>Builds the Connect command for queue <paramref name="queueId"/> of <paramref name="queueSize"/> entries.</summary>
    public static SubmissionQueueEntry Command(ushort queueId, int queueSize, FabricsConnectParameters parameters) =>
        FabricsCommands.Connect(
            queueId,
            queueSize,
            queueId == 0 ? parameters.KeepAliveMilliseconds : 0,
            parameters.DisableSqFlowControl ? FabricsCommands.DisableSqFlowControl : (byte)0);

    private static void WriteNqn(Span<byte> field, string nqn, string name)
    {
        ArgumentException.ThrowIfNullOrEmpty(nqn, name);

        // The field is NUL-terminated, so at most 255 bytes of name fit.
        if (Encoding.UTF8.GetByteCount(nqn) >= field.Length)
        {
            throw new ArgumentException($"{name} '{nqn}' is longer than {field.Length - 1} bytes", name);
        }

        Encoding.UTF8.GetBytes(nqn, field);
    }
}
