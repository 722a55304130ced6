using System.Net;
using System.Net.Sockets;
using Akka.Configuration;
using ActorNvme.Actors.Settings;
using ActorNvme.Transport;

namespace ActorNvme.Io.Tests;

/// <summary>tcp-user-timeout: read from the settings, and set on the sockets both transports open.</summary>
public sealed class TcpUserTimeoutTests
{
    [Fact]
    public void By_default_the_user_timeout_follows_the_keep_alive_timeout()
    {
        var settings = NvmeHostSettings.Create(ConfigurationFactory.ParseString("actornvme.keep-alive-timeout = 3s"));
        Assert.Null(settings.TcpUserTimeout);
        Assert.Equal(TimeSpan.FromSeconds(3), settings.EffectiveTcpUserTimeout);
        Assert.Equal(TimeSpan.FromSeconds(7), (settings with { KeepAliveTimeout = TimeSpan.FromSeconds(7) }).EffectiveTcpUserTimeout);
    }

    [Theory]
    [InlineData("off", 0)]
    [InlineData("1500ms", 1500)]
    [InlineData("keep-alive-timeout", 10000)]
    public void The_user_timeout_can_be_set_or_turned_off(string value, int expectedMs)
    {
        var settings = NvmeHostSettings.Create(ConfigurationFactory.ParseString($"actornvme.tcp-user-timeout = {value}"));
        Assert.Equal(TimeSpan.FromMilliseconds(expectedMs), settings.EffectiveTcpUserTimeout);
    }

    [Theory]
    [InlineData("50ms")]
    [InlineData("2h")]
    public void A_user_timeout_out_of_range_is_refused_naming_the_key(string value)
    {
        var error = Assert.Throws<InvalidNvmeSettingsException>(() => NvmeHostSettings.Create(ConfigurationFactory.ParseString($"actornvme.tcp-user-timeout = {value}")));
        Assert.Contains("tcp-user-timeout", error.Message, StringComparison.Ordinal);
    }

    public static TheoryData<string> Transports => ["admin (pipelines)", "io (raw socket)"];

    [Theory]
    [MemberData(nameof(Transports))]
    public async Task Both_transports_set_the_user_timeout_on_the_sockets_they_open(string which)
    {
        if (!OperatingSystem.IsLinux())
        {
            return; // TCP_USER_TIMEOUT is a Linux socket option; elsewhere the keep-alive alone detects a loss
        }

        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen();
        int port = ((IPEndPoint)listener.LocalEndPoint!).Port;
        var inner = which.StartsWith("admin", StringComparison.Ordinal) ? NvmeTransports.ForAdminQueues() : NvmeTransports.ForIoQueues();

        var accepting = listener.AcceptAsync();
        await using var plain = await inner.ConnectAsync(new TransportAddress("127.0.0.1", port), CancellationToken.None);
        using var first = await accepting;
        var tunable = Assert.IsAssignableFrom<ITcpUserTimeoutConnection>(plain);
        Assert.Equal(TimeSpan.Zero, tunable.TryGetUserTimeout()); // the kernel's default until set

        accepting = listener.AcceptAsync();
        var transport = new TcpUserTimeoutTransport(inner, TimeSpan.FromMilliseconds(2500));
        await using var tuned = await transport.ConnectAsync(new TransportAddress("127.0.0.1", port), CancellationToken.None);
        using var second = await accepting;
        Assert.Equal(TimeSpan.FromMilliseconds(2500), ((ITcpUserTimeoutConnection)tuned).TryGetUserTimeout());
    }
}
