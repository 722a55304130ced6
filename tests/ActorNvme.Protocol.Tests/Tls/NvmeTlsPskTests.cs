using ActorNvme.Protocol.Tls;
using Xunit;

namespace ActorNvme.Protocol.Tests.Tls;

public sealed class NvmeTlsPskTests
{
    // A published example interchange string (32-byte key, hash 01); its CRC-32 was made by nvme-cli, not by us.
    private const string PublishedSha256Key = "NVMeTLSkey-1:01:VRLbtnN9AQb2WXW3c9+wEf/DRLz0QuLdbYvEhwtdWwNf9LrZ:";

    // Bytes 0..47 with zlib's CRC-32, hash 02.
    private const string CountingSha384Key = "NVMeTLSkey-1:02:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vcSEgBQ==:";

    private const string HostNqn = "nqn.2014-08.org.nvmexpress:uuid:f1d9c1a4-7e2b-4c9d-9b0e-3a5f6c7d8e90";
    private const string SubsystemNqn = "nqn.2016-06.io.spdk:cnode2";

    [Fact]
    public void A_published_sha256_key_parses_with_its_crc_and_picks_aes_128()
    {
        using var psk = NvmeTlsPsk.Parse(PublishedSha256Key);
        Assert.Equal(NvmeTlsPskHash.Sha256, psk.Hash);
        Assert.Equal(32, psk.KeyLength);
        Assert.Equal(NvmeTlsCipherSuite.Aes128GcmSha256, psk.CipherSuite);
    }

    [Fact]
    public void A_sha384_key_is_48_bytes_and_picks_aes_256()
    {
        using var psk = NvmeTlsPsk.Parse(CountingSha384Key + "\n");
        Assert.Equal(NvmeTlsPskHash.Sha384, psk.Hash);
        Assert.Equal(48, psk.KeyLength);
        Assert.Equal(NvmeTlsCipherSuite.Aes256GcmSha384, psk.CipherSuite);
    }

    [Fact]
    public void Format_and_parse_round_trip()
    {
        string text = NvmeTlsPsk.Generate(NvmeTlsPskHash.Sha384);
        Assert.StartsWith("NVMeTLSkey-1:02:", text, StringComparison.Ordinal);
        using var psk = NvmeTlsPsk.Parse(text);
        Assert.Equal(48, psk.KeyLength);
    }

    [Theory]
    [InlineData("", "empty")]
    [InlineData("DHHC-1:01:VRLbtnN9AQb2WXW3c9+wEf/DRLz0QuLdbYvEhwtdWwNf9LrZ:", "does not start with NVMeTLSkey-1")]
    [InlineData("NVMeTLSkey-1:01:VRLbtnN9AQb2WXW3c9+wEf/DRLz0QuLdbYvEhwtdWwNf9LrZ", "closing ':' is missing")]
    [InlineData("NVMeTLSkey-1:03:VRLbtnN9AQb2WXW3c9+wEf/DRLz0QuLdbYvEhwtdWwNf9LrZ:", "hash field must be 00, 01")]
    [InlineData("NVMeTLSkey-1:01:VRLbtnN9AQb2WXW3c9+wEf/DRLz0QuLdbYvEhwtdWwNf9Lr!:", "not valid base64")]
    [InlineData("NVMeTLSkey-1:01:VRLbtnN9AQb2WXW3c9+wEf/DRLz0QuLdbYvEhwtdWwNf9LrY:", "CRC-32 does not match")]
    [InlineData("NVMeTLSkey-1:02:VRLbtnN9AQb2WXW3c9+wEf/DRLz0QuLdbYvEhwtdWwNf9LrZ:", "hash 02 needs 52")]
    [InlineData("NVMeTLSkey-1:01:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vcSEgBQ==:", "hash 01 needs 36")]
    [InlineData("NVMeTLSkey-1:00:AAECAwQF:", "expected 36 or 52")]
    public void Malformed_strings_are_refused_with_the_problem_named_and_no_secret(string text, string problem)
    {
        var error = Assert.Throws<FormatException>(() => NvmeTlsPsk.Parse(text, "psk"));
        Assert.StartsWith("psk: ", error.Message, StringComparison.Ordinal);
        Assert.Contains(problem, error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("VRLbtnN9", error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("AAECAwQF", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ToString_never_shows_the_key()
    {
        using var psk = NvmeTlsPsk.Parse(PublishedSha256Key);
        Assert.Equal("NVMeTLSkey-1:01:<32-byte key>:", psk.ToString());
    }

    [Fact]
    public void Identities_name_the_suite_hash_host_and_subsystem()
    {
        Assert.Equal($"NVMe0R01 {HostNqn} {SubsystemNqn}", NvmeTlsPskDerivation.Identity(NvmeTlsCipherSuite.Aes128GcmSha256, HostNqn, SubsystemNqn));
        Assert.Equal($"NVMe0R02 {HostNqn} {SubsystemNqn}", NvmeTlsPskDerivation.Identity(NvmeTlsCipherSuite.Aes256GcmSha384, HostNqn, SubsystemNqn));
    }

    // libnvme's published vectors (its PSK tests, the library under nvme-cli and the Linux host's tools): the TP 8018
    // identity of these keys for host nqn.psk-test-host and subsystem nqn.psk-test-subsys, PSK digest included.
    [Theory]
    [InlineData(PublishedSha256Key, "NVMe1R01 nqn.psk-test-host nqn.psk-test-subsys iSbjiStwJ/1TrTvDlt2fjFmzvsytOJelidNnA+X5lEU=")]
    [InlineData("NVMeTLSkey-1:02:VRLbtnN9AQb2WXW3c9+wEf/DRLz0QuLdbYvEhwtdWwP/w0S89ELi3W2LxIcLXVsDn8kXZQ==:", "NVMe1R02 nqn.psk-test-host nqn.psk-test-subsys QhW2+Rp6RzHlNtCslyRxMnwJ11tKKhz8JCAQpQ+XUD8f9td1VeH5h53yz2wKJG1a")]
    public void Version_1_identities_match_libnvmes_published_vectors(string key, string expected)
    {
        const string Host = "nqn.psk-test-host", Subsystem = "nqn.psk-test-subsys";
        using var psk = NvmeTlsPsk.Parse(key);
        byte[] retained = psk.RetainedPsk(Host);
        string digest = NvmeTlsPskDerivation.PskDigest(retained, psk.CipherSuite, Host, Subsystem);
        Assert.Equal(expected, NvmeTlsPskDerivation.IdentityV1(psk.CipherSuite, Host, Subsystem, digest));
    }

    // Expected values computed with Python's hmac module (an HKDF written from RFC 5869 there), not with .NET's HKDF.
    [Fact]
    public void Sha256_retained_and_tls_psk_match_an_independent_hkdf()
    {
        using var psk = NvmeTlsPsk.Parse(PublishedSha256Key);
        byte[] retained = psk.RetainedPsk(HostNqn);
        Assert.Equal("5e378e6e075689b9de0ec81bdbccd960418451f75df57fe13ed267f4be2180c2", Convert.ToHexStringLower(retained));

        string identity = NvmeTlsPskDerivation.Identity(psk.CipherSuite, HostNqn, SubsystemNqn);
        byte[] tls = NvmeTlsPskDerivation.TlsPsk(retained, identity, psk.CipherSuite);
        Assert.Equal("1b9c98145d84f8356a6c72454dd1917619af09a77820b1f817f3729e7719fa68", Convert.ToHexStringLower(tls));
    }

    [Fact]
    public void Sha384_retained_and_tls_psk_match_an_independent_hkdf()
    {
        using var psk = NvmeTlsPsk.Parse(CountingSha384Key);
        byte[] retained = psk.RetainedPsk(HostNqn);
        Assert.Equal("ba245fcaf4dc818b2339fadec7f89d7d72b2b217381eea022e9d63dd7948174a40bc29c17cc09523b511018b7a03e3ad", Convert.ToHexStringLower(retained));

        byte[] tls = NvmeTlsPskDerivation.TlsPsk(retained, NvmeTlsPskDerivation.Identity(psk.CipherSuite, HostNqn, SubsystemNqn), psk.CipherSuite);
        Assert.Equal("085135854ce6f14bf37a5f4c1a003b90d3b6dc46991c250ce5dabcbcaadc96899d6fcef39c156531c34485a0a00b13b7", Convert.ToHexStringLower(tls));
    }

    [Fact]
    public void Hash_00_uses_the_configured_key_as_the_retained_psk_and_another_host_gets_another_key()
    {
        var key = new byte[32];
        key[0] = 7;
        using var plain = NvmeTlsPsk.Parse(NvmeTlsPsk.Format(key, NvmeTlsPskHash.None));
        Assert.Equal(key, plain.RetainedPsk(HostNqn));

        using var hashed = NvmeTlsPsk.Parse(NvmeTlsPsk.Format(key, NvmeTlsPskHash.Sha256));
        Assert.NotEqual(hashed.RetainedPsk(HostNqn), hashed.RetainedPsk(HostNqn + "x"));
    }

    [Fact]
    public void A_disposed_key_is_zeroed_and_unusable()
    {
        var psk = NvmeTlsPsk.Parse(PublishedSha256Key);
        psk.Dispose();
        Assert.Throws<ObjectDisposedException>(() => psk.RetainedPsk(HostNqn));
    }
}
