using System.Net.Sockets;

namespace ActorNvme.Target.Tests;

/// <summary>
/// Connections that hold a slot without becoming a queue are reaped, and a port that is taken is refused:
/// silent or half-initialised hosts cannot lock real hosts out, and two targets cannot split one port.
/// </summary>
public sealed class HalfOpenConnectionTests
{
    // Long enough that a loaded machine still completes ICReq and Connect within it, short enough for a test.
    private static readonly TargetOptions QuickReaping = new() { InitializationTimeout = TimeSpan.FromSeconds(2) };

    [Theory]
    [InlineData("tcp", false)]
    [InlineData("tcp", true)]
    [InlineData("memory", true)]
    public async Task A_connection_that_sends_no_Connect_is_closed_and_a_real_host_still_gets_in(string transport, bool sendsICReq)
    {
        await using var t = TestTarget.Create(transport, QuickReaping);
        await using var idle = await t.ConnectAsync();
        if (sendsICReq)
        {
            await idle.InitializeAsync();
        }

        var (end, _) = await idle.ReceiveUntilClosedAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(ReceiveKind.Closed, end);

        // A host that does connect in time keeps its queue past the reaping time.
        await using var host = await t.ConnectAsync();
        await host.SetUpAdminAsync(TestTarget.Nqn);
        await Task.Delay(QuickReaping.InitializationTimeout + TimeSpan.FromMilliseconds(500));
        var answer = await host.CommandAsync(Protocol.Nvme.AdminCommands.KeepAlive());
        Assert.True(answer.Status.IsSuccess);
    }

    [Fact]
    public async Task A_second_listener_on_a_port_in_use_is_refused()
    {
        await using var first = new NvmeTarget();
        var listener = first.ListenTcp("127.0.0.1", 0);
        await using var second = new NvmeTarget();
        var error = Assert.ThrowsAny<SocketException>(() => second.ListenTcp("127.0.0.1", listener.Address.Port));
        Assert.Equal(SocketError.AddressAlreadyInUse, error.SocketErrorCode);
    }
}
