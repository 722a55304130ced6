using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;

namespace ActorNvme.Cluster;

/// <summary>
/// A node's identity at the target, for reservations: a reservation key and a host identifier, both derived
/// from the node's name, so that a node restarted under the same name is the same registrant and two nodes
/// are never one (a target keys registrants by host identifier).
/// </summary>
public static class NodeFence
{
    /// <summary>The node's reservation key: the first 8 bytes of SHA-256 of its name (never 0, which no key may be).</summary>
    public static ulong KeyOf(string node)
    {
        ArgumentException.ThrowIfNullOrEmpty(node);
        var hash = SHA256.HashData(Encoding.UTF8.GetBytes("actornvme-reservation-key:" + node));
        ulong key = BinaryPrimitives.ReadUInt64LittleEndian(hash);
        return key == 0 ? 1 : key;
    }

    /// <summary>The node's host identifier (HOSTID in Connect): a name-based UUID of the host NQN and the node name.</summary>
    public static Guid HostIdOf(string hostNqn, string node)
    {
        ArgumentException.ThrowIfNullOrEmpty(node);
        var hash = SHA256.HashData(Encoding.UTF8.GetBytes($"actornvme-host-id:{hostNqn}:{node}"));
        var bytes = hash.AsSpan(0, 16).ToArray();
        bytes[6] = (byte)((bytes[6] & 0x0F) | 0x80); // version 8: custom, name-based
        bytes[8] = (byte)((bytes[8] & 0x3F) | 0x80); // RFC 9562 variant
        return new Guid(bytes, bigEndian: true);
    }
}
