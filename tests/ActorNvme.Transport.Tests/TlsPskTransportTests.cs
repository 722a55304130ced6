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
        var data = new byte[200 * 1024];
        new Random(7).NextBytes(data);
        await connection.Pipe.Output.WriteAsync(data);
        var back = await ReadExactlyAsync(connection.Pipe.Input, data.Length);
        Assert.True(data.AsSpan().SequenceEqual(back));
    }

    [Fact]
    public async Task A_wrong_psk_fails_the_handshake_naming_the_subsystem_and_never_the_key()
    {
        string right = NvmeTlsPsk.Generate();
        string wrong = NvmeTlsPsk.Generate();
        var network = new InMemoryNetwork();
        var address = new TransportAddress("tls-target", 4420);
        using var listening = network.Listen(address, inbound => EchoAsync(inbound, right, null));

        var error = await Assert.ThrowsAsync<ConnectionClosedException>(async () =>
            await new TlsPskTransport(new InMemoryTransport(network), Session(wrong)).ConnectAsync(address, CancellationToken.None).AsTask().WaitAsync(Deadline));
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
        var data = new byte[64 * 1024 + 17];
        new Random(3).NextBytes(data);
        await connection.Pipe.Output.WriteAsync(data);
        var back = await ReadExactlyAsync(connection.Pipe.Input, data.Length);
        Assert.True(data.AsSpan().SequenceEqual(back));
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
