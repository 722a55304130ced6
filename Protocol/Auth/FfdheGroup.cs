using System.Collections.Concurrent;
using System.Numerics;
using System.Security.Cryptography;

namespace ActorNvme.Protocol.Auth;

/// <summary>
/// An RFC 7919 finite-field Diffie-Hellman group (generator 2). The primes are computed from their
/// definition, p = 2^b - 2^(b-64) + (floor(2^(b-130) e) + X) 2^64 - 1, once per group and cached;
/// the unit tests pin them against independently produced values.
/// </summary>
public sealed class FfdheGroup
{
    private static readonly ConcurrentDictionary<DhChapGroupId, FfdheGroup> Groups = new();

    private FfdheGroup(DhChapGroupId id, int bits, BigInteger prime)
    {
        Id = id;
        Bits = bits;
        Prime = prime;
    }

    public DhChapGroupId Id { get; }

    public int Bits { get; }

    /// <summary>Length in bytes of p and of every public value and shared secret (DHVLEN).</summary>
    public int Length => Bits / 8;

    public BigInteger Prime { get; }

    public static BigInteger Generator => 2;

    /// <summary>The group for <paramref name="id"/> (not <see cref="DhChapGroupId.Null"/>).</summary>
    public static FfdheGroup For(DhChapGroupId id) => Groups.GetOrAdd(id, static i => Create(i));

    /// <summary>DHVLEN for the group: 0 for null, the prime's length otherwise.</summary>
    public static int ValueLength(DhChapGroupId id) => id == DhChapGroupId.Null ? 0 : For(id).Length;

    /// <summary>A fresh private exponent (512 random bits: at least twice the strength of the largest group).</summary>
    public BigInteger NewPrivateKey()
    {
        Span<byte> random = stackalloc byte[64];
        RandomNumberGenerator.Fill(random);
        var x = new BigInteger(random, isUnsigned: true, isBigEndian: true);
        CryptographicOperations.ZeroMemory(random);
        return x < 2 ? x + 2 : x;
    }

    /// <summary>g^x mod p as big-endian bytes of the prime's length.</summary>
    public byte[] PublicValue(BigInteger privateKey) => ToFixedBytes(BigInteger.ModPow(Generator, privateKey, Prime));

    /// <summary>
    /// The shared secret (peer^x mod p, big-endian, prime's length), or null when the peer's value is
    /// not in 2..p-2 (0, 1 and p-1 would force a known secret) or has the wrong length.
    /// </summary>
    public byte[]? SharedSecret(BigInteger privateKey, ReadOnlySpan<byte> peerValue)
    {
        if (peerValue.Length != Length)
        {
            return null;
        }

        var y = new BigInteger(peerValue, isUnsigned: true, isBigEndian: true);
        if (y < 2 || y > Prime - 2)
        {
            return null;
        }

        return ToFixedBytes(BigInteger.ModPow(y, privateKey, Prime));
    }

    private byte[] ToFixedBytes(BigInteger value)
    {
        var bytes = new byte[Length];
        int written = value.GetByteCount(isUnsigned: true);
        value.TryWriteBytes(bytes.AsSpan(Length - written), out _, isUnsigned: true, isBigEndian: true);
        return bytes;
    }

    private static FfdheGroup Create(DhChapGroupId id)
    {
        var (bits, x) = id switch
        {
            DhChapGroupId.Ffdhe2048 => (2048, 560316),
            DhChapGroupId.Ffdhe3072 => (3072, 2625351),
            DhChapGroupId.Ffdhe4096 => (4096, 5736041),
            DhChapGroupId.Ffdhe6144 => (6144, 15705020),
            DhChapGroupId.Ffdhe8192 => (8192, 10965728),
            _ => throw new ArgumentOutOfRangeException(nameof(id), id, "not an ffdhe group (1..5)"),
        };
        var p = BigInteger.Pow(2, bits) - BigInteger.Pow(2, bits - 64) + ((FloorOfTwoPowerTimesE(bits - 130) + x) << 64) - 1;
        return new FfdheGroup(id, bits, p);
    }

    /// <summary>floor(2^k e), from e = sum 1/n! with 64 guard bits (each truncated term loses less than one unit).</summary>
    private static BigInteger FloorOfTwoPowerTimesE(int k)
    {
        const int guard = 64;
        var term = BigInteger.One << (k + guard);
        var sum = BigInteger.Zero;
        for (int n = 1; !term.IsZero; n++)
        {
            sum += term;
            term /= n;
        }

        return sum >> guard;
    }
}
