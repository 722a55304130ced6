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

    /// <summary>
    /// The version-1 identity (NVMe/TCP TP 8018): <c>NVMe1R0h &lt;hostnqn&gt; &lt;subnqn&gt; &lt;PSK digest&gt;</c>, the digest
    /// binding the retained PSK to both NQNs (<see cref="PskDigest"/>).
    /// </summary>
    public static string IdentityV1(NvmeTlsCipherSuite suite, string hostNqn, string subsystemNqn, string pskDigest)
    {
        ArgumentException.ThrowIfNullOrEmpty(hostNqn);
        ArgumentException.ThrowIfNullOrEmpty(subsystemNqn);
        ArgumentException.ThrowIfNullOrEmpty(pskDigest);
        return $"NVMe1R{(int)Checked(suite):00} {hostNqn} {subsystemNqn} {pskDigest}";
    }

    /// <summary>
    /// The PSK digest of a version-1 identity: Base64 (with padding) of HMAC-hash of the suite keyed with the retained
    /// PSK over "hostnqn subnqn NVMe-over-Fabrics" (ASCII, single spaces); 44 characters for SHA-256, 64 for SHA-384.
    /// </summary>
    public static string PskDigest(ReadOnlySpan<byte> retainedPsk, NvmeTlsCipherSuite suite, string hostNqn, string subsystemNqn)
    {
        ArgumentException.ThrowIfNullOrEmpty(hostNqn);
        ArgumentException.ThrowIfNullOrEmpty(subsystemNqn);
        byte[] message = Encoding.UTF8.GetBytes($"{hostNqn} {subsystemNqn} NVMe-over-Fabrics");
        byte[] mac = HashOf(suite) == HashAlgorithmName.SHA384 ? HMACSHA384.HashData(retainedPsk, message) : HMACSHA256.HashData(retainedPsk, message);
        return Convert.ToBase64String(mac);
    }

    /// <summary>
    /// The PSK TLS uses for a version-1 identity: HKDF-hash of the suite(retained PSK, "nvme-tls-psk", "0h &lt;PSK digest&gt;"),
    /// h the suite's hash number, instead of the whole identity version 0 takes as context.
    /// </summary>
    public static byte[] TlsPskV1(ReadOnlySpan<byte> retainedPsk, string pskDigest, NvmeTlsCipherSuite suite)
    {
        ArgumentException.ThrowIfNullOrEmpty(pskDigest);
        return Derive(HashOf(suite), retainedPsk, "nvme-tls-psk", $"{(int)Checked(suite):00} {pskDigest}");
    }

    /// <summary>The PSK TLS uses for <paramref name="identity"/>, whichever version it is.</summary>
    public static byte[] TlsPsk(ReadOnlySpan<byte> retainedPsk, NvmeTlsPskIdentity identity)
    {
        ArgumentNullException.ThrowIfNull(identity);
        return identity.Version == 1
            ? TlsPskV1(retainedPsk, identity.PskDigest!, identity.Suite)
            : TlsPsk(retainedPsk, identity.ToString(), identity.Suite);
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

/// <summary>
/// A PSK identity as NVMe/TCP sends it: version 0 <c>NVMe0R0h hostnqn subnqn</c>, or version 1
/// <c>NVMe1R0h hostnqn subnqn digest</c> (TP 8018). <see cref="ToString"/> gives the wire form back.
/// </summary>
public sealed record NvmeTlsPskIdentity(int Version, NvmeTlsCipherSuite Suite, string HostNqn, string SubsystemNqn, string? PskDigest = null)
{
    private const int MaxNqnLength = 223;

    /// <summary>Parses either form; false for anything else (unknown version or hash, empty or overlong parts, a digest of the wrong length).</summary>
    public static bool TryParse(string? text, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out NvmeTlsPskIdentity? identity)
    {
        identity = null;
        if (text is null || text.Length > 600)
        {
            return false;
        }

        var parts = text.Split(' ');
        if (parts.Length is not (3 or 4) || parts[0].Length != 8 || !parts[0].StartsWith("NVMe", StringComparison.Ordinal) || parts[0][5] != 'R')
        {
            return false;
        }

        int version = parts[0][4] switch { '0' => 0, '1' => 1, _ => -1 };
        NvmeTlsCipherSuite? suite = parts[0][6..] switch
        {
            "01" => NvmeTlsCipherSuite.Aes128GcmSha256,
            "02" => NvmeTlsCipherSuite.Aes256GcmSha384,
            _ => null,
        };
        if (version < 0 || suite is not { } chosen || parts.Length != 3 + version)
        {
            return false;
        }

        if (parts[1].Length is 0 or > MaxNqnLength || parts[2].Length is 0 or > MaxNqnLength)
        {
            return false;
        }

        string? digest = version == 1 ? parts[3] : null;
        if (digest is not null && digest.Length != (chosen == NvmeTlsCipherSuite.Aes256GcmSha384 ? 64 : 44))
        {
            return false;
        }

        identity = new NvmeTlsPskIdentity(version, chosen, parts[1], parts[2], digest);
        return true;
    }

    public override string ToString() => Version == 1
        ? NvmeTlsPskDerivation.IdentityV1(Suite, HostNqn, SubsystemNqn, PskDigest!)
        : NvmeTlsPskDerivation.Identity(Suite, HostNqn, SubsystemNqn);
}
