using System.Buffers;
using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;
using ActorNvme.Protocol.Tls;
using ActorNvme.Transport.InMemory;
using ActorNvme.Transport.RawSocket;
using ActorNvme.Transport.Tcp;
using ActorNvme.Transport.Tls;
using Xunit;

namespace ActorNvme.Transport.Tests;

/// <summary>Our TLS 1.3 PSK client against our acceptor (the controller's end), in memory and over loopback TCP.</summary>
public sealed class TlsPskTransportTests
{
    private const string HostNqn = "nqn.2014-08.org.nvmexpress:uuid:0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9";
    private const string SubsystemNqn = "nqn.2016-06.io.example:tls";
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(60);

    [Theory]
    [InlineData(NvmeTlsPskHash.Sha256, NvmeTlsCipherSuite.Aes128GcmSha256)]
    [InlineData(NvmeTlsPskHash.Sha384, NvmeTlsCipherSuite.Aes256GcmSha384)]
    [InlineData(NvmeTlsPskHash.None, NvmeTlsCipherSuite.Aes128GcmSha256)]
    public async Task Each_suite_handshakes_and_carries_data_both_ways(NvmeTlsPskHash hash, NvmeTlsCipherSuite suite)
    {
        string key = NvmeTlsPsk.Generate(hash);
        var network = new InMemoryNetwork();
        var address = new TransportAddress("tls-target", 4420);
        var accepted = new TaskCompletionSource<TlsPskConnection>(TaskCreationOptions.RunContinuationsAsynchronously);
        using var listening = network.Listen(address, inbound => EchoAsync(inbound, key, accepted));

        await using var connection = await new TlsPskTransport(new InMemoryTransport(network), Session(key)).ConnectAsync(address, CancellationToken.None).AsTask().WaitAsync(Deadline);
        var tls = Assert.IsType<TlsPskConnection>(connection);
        Assert.Equal(suite, tls.CipherSuite);
        var server = await accepted.Task.WaitAsync(Deadline);
        Assert.Equal(suite, server.CipherSuite);
        Assert.Equal($"NVMe0R0{(int)suite} {HostNqn} {SubsystemNqn}", server.Identity);

        // Larger than a TLS record (16 KiB): the stream splits and joins records.
        await AssertEchoedAsync(connection, 200 * 1024, seed: 7);
    }

    [Fact]
    public async Task A_wrong_psk_fails_the_handshake_naming_the_subsystem_and_never_the_key()
    {
        string right = NvmeTlsPsk.Generate();
        string wrong = NvmeTlsPsk.Generate();
        var error = await HandshakeRefusedAsync(right, Session(wrong));
        Assert.Equal(CloseReason.TlsHandshakeFailed, error.Closed.Reason);
        Assert.Contains($"TLS handshake with {SubsystemNqn}", error.Closed.Detail, StringComparison.Ordinal);
        Assert.DoesNotContain(wrong.Split(':')[2], error.Closed.Detail, StringComparison.Ordinal);
        Assert.DoesNotContain(right.Split(':')[2], error.Closed.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_host_the_controller_has_no_psk_for_is_refused()
    {
        string key = NvmeTlsPsk.Generate();
        var network = new InMemoryNetwork();
        var address = new TransportAddress("tls-target", 4420);
        var acceptor = new TlsPskAcceptor((host, subsystem) => null, Deadline);
        using var listening = network.Listen(address, async inbound =>
        {
            try
            {
                await acceptor.AcceptAsync(inbound, CancellationToken.None);
            }
            catch (ConnectionClosedException)
            {
            }
        });

        var error = await Assert.ThrowsAsync<ConnectionClosedException>(async () =>
            await new TlsPskTransport(new InMemoryTransport(network), Session(key)).ConnectAsync(address, CancellationToken.None).AsTask().WaitAsync(Deadline));
        Assert.Equal(CloseReason.TlsHandshakeFailed, error.Closed.Reason);
    }

    [Fact]
    public async Task A_controller_that_never_answers_times_the_handshake_out()
    {
        var network = new InMemoryNetwork();
        var address = new TransportAddress("silent", 4420);
        using var listening = network.Listen(address, _ => Task.CompletedTask);

        var session = Session(NvmeTlsPsk.Generate()) with { HandshakeTimeout = TimeSpan.FromMilliseconds(300) };
        var error = await Assert.ThrowsAsync<ConnectionClosedException>(async () =>
            await new TlsPskTransport(new InMemoryTransport(network), session).ConnectAsync(address, CancellationToken.None).AsTask().WaitAsync(Deadline));
        Assert.Equal(CloseReason.InitializationTimeout, error.Closed.Reason);
        Assert.Contains(SubsystemNqn, error.Closed.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Over_tcp_to_a_loopback_listener()
    {
        string key = NvmeTlsPsk.Generate(NvmeTlsPskHash.Sha384);
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var address = new TransportAddress("127.0.0.1", ((IPEndPoint)listener.LocalEndpoint).Port);
        var serving = Task.Run(async () =>
        {
            var socket = await listener.AcceptSocketAsync();
            await EchoAsync(new TcpTransport().Wrap(socket, new TransportAddress("client", 0)), key, null);
        });

        await using var connection = await new TlsPskTransport(NvmeTransports.ForAdminQueues(), Session(key)).ConnectAsync(address, CancellationToken.None).AsTask().WaitAsync(Deadline);
        await AssertEchoedAsync(connection, 64 * 1024 + 17, seed: 3);
    }

    [Theory]
    [InlineData(NvmeTlsCipherSuite.Aes128GcmSha256, 32, "ZwPMH8xU6S0pcHarV7Av5YBAr7yb9WGjA3VvYzWoYDU=", "d82e0f530384506bc03f69fcfd13d40f4dd7921e4660f8e240caf02b9e8b12f7")]
    [InlineData(NvmeTlsCipherSuite.Aes256GcmSha384, 48, "eBRSNkvwIVHU//eZY7iUpJKLEjgBhmlNptJ4t4QsInEUxi36yrAzfBMxkDmJc2GY", "877cbcae84f2da327249e5e248ac0202c59ff02976f9c3e238fcae5b7a5d904155870bb72feb0ce87fa96a05c4e92ced")]
    public void The_version_1_digest_and_tls_psk_match_the_formula_computed_apart(NvmeTlsCipherSuite suite, int length, string digest, string tlsPskHex)
    {
        // Expected values computed outside this code base (Python's hmac/hashlib) from the formulas:
        // digest = Base64(HMAC-H(retained, "<hostnqn> <subnqn> NVMe-over-Fabrics")),
        // TLS PSK = HKDF-Expand-Label(HKDF-Extract(0, retained), "nvme-tls-psk", "0h <digest>", L), retained = 00 01 02 ...
        byte[] retained = Enumerable.Range(0, length).Select(i => (byte)i).ToArray();
        Assert.Equal(digest, NvmeTlsPskDerivation.PskDigest(retained, suite, HostNqn, SubsystemNqn));
        Assert.Equal(tlsPskHex, Convert.ToHexStringLower(NvmeTlsPskDerivation.TlsPskV1(retained, digest, suite)));
        var identity = new NvmeTlsPskIdentity(1, suite, HostNqn, SubsystemNqn, digest);
        Assert.Equal($"NVMe1R0{(int)suite} {HostNqn} {SubsystemNqn} {digest}", identity.ToString());
        Assert.Equal(tlsPskHex, Convert.ToHexStringLower(NvmeTlsPskDerivation.TlsPsk(retained, identity)));

        // Version 0 keeps its context (the whole identity): another key.
        Assert.NotEqual(tlsPskHex, Convert.ToHexStringLower(NvmeTlsPskDerivation.TlsPsk(retained, identity with { Version = 0, PskDigest = null })));
    }

    [Theory]
    [InlineData(NvmeTlsPskHash.Sha256, NvmeTlsCipherSuite.Aes128GcmSha256)]
    [InlineData(NvmeTlsPskHash.Sha384, NvmeTlsCipherSuite.Aes256GcmSha384)]
    public async Task A_host_offering_the_version_1_identity_handshakes_with_our_acceptor(NvmeTlsPskHash hash, NvmeTlsCipherSuite suite)
    {
        string key = NvmeTlsPsk.Generate(hash);
        var network = new InMemoryNetwork();
        var address = new TransportAddress("tls-target", 4420);
        var accepted = new TaskCompletionSource<TlsPskConnection>(TaskCreationOptions.RunContinuationsAsynchronously);
        using var listening = network.Listen(address, inbound => EchoAsync(inbound, key, accepted));

        var session = Session(key) with { IdentityVersion = 1 };
        await using var connection = await new TlsPskTransport(new InMemoryTransport(network), session).ConnectAsync(address, CancellationToken.None).AsTask().WaitAsync(Deadline);
        var server = await accepted.Task.WaitAsync(Deadline);
        Assert.Equal(suite, server.CipherSuite);
        Assert.True(NvmeTlsPskIdentity.TryParse(server.Identity, out var identity));
        Assert.Equal(1, identity.Version);
        Assert.Equal((HostNqn, SubsystemNqn), (identity.HostNqn, identity.SubsystemNqn));
        byte[] retained = NvmeTlsPsk.Parse(key).RetainedPsk(HostNqn);
        Assert.Equal(NvmeTlsPskDerivation.PskDigest(retained, suite, HostNqn, SubsystemNqn), identity.PskDigest);

        await AssertEchoedAsync(connection, 4096, seed: 11);
    }

    [Fact]
    public async Task A_version_1_identity_whose_digest_belongs_to_another_psk_is_refused()
    {
        // The host's PSK differs from the controller's: the digest it sends cannot be the controller's, so no PSK is chosen.
        string right = NvmeTlsPsk.Generate();
        string wrong = NvmeTlsPsk.Generate();
        var error = await HandshakeRefusedAsync(right, Session(wrong) with { IdentityVersion = 1 });
        Assert.Equal(CloseReason.TlsHandshakeFailed, error.Closed.Reason);
        Assert.DoesNotContain(wrong.Split(':')[2], error.Closed.Detail, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("NVMe1R01 host sub ZwPMH8xU6S0pcHarV7Av5YBAr7yb9WGjA3VvYzWoYDU=", true)]
    [InlineData("NVMe1R02 host sub eBRSNkvwIVHU//eZY7iUpJKLEjgBhmlNptJ4t4QsInEUxi36yrAzfBMxkDmJc2GY", true)]
    [InlineData("NVMe1R02 host sub ZwPMH8xU6S0pcHarV7Av5YBAr7yb9WGjA3VvYzWoYDU=", false)]
    [InlineData("NVMe1R01 host sub short", false)]
    [InlineData("NVMe0R01 host sub ZwPMH8xU6S0pcHarV7Av5YBAr7yb9WGjA3VvYzWoYDU=", false)]
    [InlineData("NVMe2R01 host sub ZwPMH8xU6S0pcHarV7Av5YBAr7yb9WGjA3VvYzWoYDU=", false)]
    public void Version_1_identities_parse_only_with_a_digest_of_their_hash_length(string identity, bool parses)
    {
        Assert.Equal(parses, NvmeTlsPskIdentity.TryParse(identity, out _));
        Assert.Equal(parses, TlsPskAcceptor.TryParseIdentity(identity, out _, out _, out _));
    }

    [Theory]
    [InlineData("NVMe0R01 host sub", true)]
    [InlineData("NVMe0R02 host sub", true)]
    [InlineData("NVMe0R03 host sub", false)]
    [InlineData("NVMe1R01 host sub", false)]
    [InlineData("NVMe0R01 host", false)]
    [InlineData("NVMe0R01  sub", false)]
    [InlineData("NVMe0R01 host sub extra", false)]
    [InlineData("", false)]
    public void Identities_parse_only_in_their_exact_form(string identity, bool parses)
    {
        Assert.Equal(parses, TlsPskAcceptor.TryParseIdentity(identity, out _, out _, out _));
    }

    private static TlsPskSession Session(string key) => new(NvmeTlsPsk.Parse(key), HostNqn, SubsystemNqn) { HandshakeTimeout = Deadline };

    /// <summary>The controller's end: accepts with the PSK for (HostNqn, SubsystemNqn) and echoes what it reads.</summary>
    private static async Task EchoAsync(INvmeConnection inbound, string key, TaskCompletionSource<TlsPskConnection>? accepted)
    {
        var acceptor = new TlsPskAcceptor((host, subsystem) => host == HostNqn && subsystem == SubsystemNqn ? NvmeTlsPsk.Parse(key) : null, Deadline);
        TlsPskConnection connection;
        try
        {
            connection = await acceptor.AcceptAsync(inbound, CancellationToken.None);
        }
        catch (ConnectionClosedException)
        {
            return;
        }

        accepted?.TrySetResult(connection);
        await connection.RunReadLoop(async () =>
        {
            while (true)
            {
                var result = await connection.Pipe.Input.ReadAsync();
                foreach (var segment in result.Buffer)
                {
                    await connection.Pipe.Output.WriteAsync(segment);
                }

                connection.Pipe.Input.AdvanceTo(result.Buffer.End);
                if (result.IsCompleted || result.IsCanceled)
                {
                    return;
                }
            }
        });
    }

    /// <summary>Writes <paramref name="length"/> random bytes through <paramref name="connection"/> and asserts the echo brings them back whole.</summary>
    private static async Task AssertEchoedAsync(INvmeConnection connection, int length, int seed)
    {
        var data = new byte[length];
        new Random(seed).NextBytes(data);
        await connection.Pipe.Output.WriteAsync(data);
        var back = await ReadExactlyAsync(connection.Pipe.Input, data.Length);
        Assert.True(data.AsSpan().SequenceEqual(back));
    }

    /// <summary>Connects with <paramref name="session"/> to an in-memory controller that holds <paramref name="controllerPsk"/>; the connect must fail.</summary>
    private static async Task<ConnectionClosedException> HandshakeRefusedAsync(string controllerPsk, TlsPskSession session)
    {
        var network = new InMemoryNetwork();
        var address = new TransportAddress("tls-target", 4420);
        using var listening = network.Listen(address, inbound => EchoAsync(inbound, controllerPsk, null));
        return await Assert.ThrowsAsync<ConnectionClosedException>(async () =>
            await new TlsPskTransport(new InMemoryTransport(network), session).ConnectAsync(address, CancellationToken.None).AsTask().WaitAsync(Deadline));
    }

    private static Task<byte[]> ReadExactlyAsync(PipeReader input, int length) => Task.Run(async () =>
    {
        // Reads block in the TLS layer: off the test's thread.
        while (true)
        {
            var result = await input.ReadAsync();
            if (result.Buffer.Length >= length)
            {
                var bytes = result.Buffer.Slice(0, length).ToArray();
                input.AdvanceTo(result.Buffer.GetPosition(length));
                return bytes;
            }

            input.AdvanceTo(result.Buffer.Start, result.Buffer.End);
            if (result.IsCompleted)
            {
                throw new EndOfStreamException($"{result.Buffer.Length} of {length} bytes");
            }
        }
    }).WaitAsync(Deadline);
}
