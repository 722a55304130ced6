using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;

namespace ActorNvme.Protocol.Tls;

/// <summary>The TLS 1.3 cipher suites NVMe/TCP uses, each tied to the hash of its PSK.</summary>
public enum NvmeTlsCipherSuite
{
    /// <summary>TLS_AES_128_GCM_SHA256 (0x1301): identity NVMe0R01, SHA-256.</summary>
    Aes128GcmSha256 = 1,

    /// <summary>TLS_AES_256_GCM_SHA384 (0x1302): identity NVMe0R02, SHA-384.</summary>
    Aes256GcmSha384 = 2,
}

/// <summary>
/// The NVMe/TCP TLS PSK derivations (NVMe/TCP transport, secure channel). Both are HKDF (RFC 5869) with an
/// empty salt and an info of the shape of TLS 1.3's HkdfLabel: uint16 output length, a one-byte-length label
/// "tls13 " + name, a one-byte-length context. Retained PSK: name "HostNQN", context the host NQN, hash from
/// the interchange string. TLS PSK: name "nvme-tls-psk", context the PSK identity, hash of the cipher suite.
/// </summary>
public static class NvmeTlsPskDerivation
{
    /// <summary>The version-0 identity both SPDK and the Linux host send: <c>NVMe0R0h &lt;hostnqn&gt; &lt;subnqn&gt;</c>, h 1 = SHA-256, 2 = SHA-384.</summary>
    public static string Identity(NvmeTlsCipherSuite suite, string hostNqn, string subsystemNqn)
    {
        ArgumentException.ThrowIfNullOrEmpty(hostNqn);
        ArgumentException.ThrowIfNullOrEmpty(subsystemNqn);
        return $"NVMe0R{(int)Checked(suite):00} {hostNqn} {subsystemNqn}";
    }

    public static HashAlgorithmName HashOf(NvmeTlsCipherSuite suite) =>
        Checked(suite) == NvmeTlsCipherSuite.Aes256GcmSha384 ? HashAlgorithmName.SHA384 : HashAlgorithmName.SHA256;

    /// <summary>The retained PSK: HKDF-hash(configured PSK, "HostNQN", host NQN), as long as the hash's output.</summary>
    public static byte[] RetainedPsk(ReadOnlySpan<byte> configuredPsk, NvmeTlsPskHash hash, string hostNqn)
    {
        var algorithm = hash switch
        {
            NvmeTlsPskHash.Sha256 => HashAlgorithmName.SHA256,
            NvmeTlsPskHash.Sha384 => HashAlgorithmName.SHA384,
            _ => throw new ArgumentOutOfRangeException(nameof(hash), hash, "hash 00 uses the configured PSK as the retained PSK"),
        };
        ArgumentException.ThrowIfNullOrEmpty(hostNqn);
        return Derive(algorithm, configuredPsk, "HostNQN", hostNqn);
    }

    /// <summary>The PSK TLS uses: HKDF-hash of the suite(retained PSK, "nvme-tls-psk", identity).</summary>
    public static byte[] TlsPsk(ReadOnlySpan<byte> retainedPsk, string identity, NvmeTlsCipherSuite suite)
    {
        ArgumentException.ThrowIfNullOrEmpty(identity);
        return Derive(HashOf(suite), retainedPsk, "nvme-tls-psk", identity);
    }

    private static byte[] Derive(HashAlgorithmName algorithm, ReadOnlySpan<byte> key, string name, string context)
    {
        int length = algorithm == HashAlgorithmName.SHA384 ? 48 : 32;
        byte[] label = Encoding.ASCII.GetBytes("tls13 " + name);
        byte[] contextBytes = Encoding.UTF8.GetBytes(context);
        if (contextBytes.Length > byte.MaxValue)
        {
            throw new ArgumentException($"the {name} context is {contextBytes.Length} bytes long; at most 255 fit", nameof(context));
        }

        // The length field carries the input key's length (what SPDK and Linux put there); it equals the
        // output length for every key an interchange string can hold.
        var info = new byte[2 + 1 + label.Length + 1 + contextBytes.Length];
        BinaryPrimitives.WriteUInt16BigEndian(info, (ushort)key.Length);
        info[2] = (byte)label.Length;
        label.CopyTo(info, 3);
        info[3 + label.Length] = (byte)contextBytes.Length;
        contextBytes.CopyTo(info, 4 + label.Length);

        Span<byte> prk = stackalloc byte[length];
        HKDF.Extract(algorithm, key, [], prk);
        var output = new byte[length];
        HKDF.Expand(algorithm, prk, output, info);
        CryptographicOperations.ZeroMemory(prk);
        return output;
    }

    private static NvmeTlsCipherSuite Checked(NvmeTlsCipherSuite suite) =>
        suite is NvmeTlsCipherSuite.Aes128GcmSha256 or NvmeTlsCipherSuite.Aes256GcmSha384
            ? suite
            : throw new ArgumentOutOfRangeException(nameof(suite), suite, "TLS_AES_128_GCM_SHA256 or TLS_AES_256_GCM_SHA384");
}
