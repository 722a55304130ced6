using Akka.Configuration;
using ActorNvme.Actors.Settings;

namespace ActorNvme.Io.Tests;

/// <summary>The io-* keys of reference.conf: defaults, overrides, and refusals that name the rule.</summary>
public sealed class IoSettingsTests
{
    [Fact]
    public void The_defaults_ask_for_one_queue_per_core_of_128_entries_with_sq_flow_control_disabled()
    {
        var settings = NvmeHostSettings.Create(ConfigurationFactory.Empty);
        Assert.Equal(0, settings.IoQueues);
        Assert.Equal(Environment.ProcessorCount, settings.EffectiveIoQueues);
        Assert.Equal(128, settings.IoQueueSize);
        Assert.Equal(5, settings.IoRetries);
        Assert.Equal(4096, settings.IoHoldLimit);
        Assert.True(settings.DisableSqFlowControl);
        Assert.Equal(TimeSpan.Zero, settings.IoReceiveSpin);
    }

    [Fact]
    public void Every_io_key_can_be_overridden()
    {
        var settings = NvmeHostSettings.Create(ConfigurationFactory.ParseString("""
            actornvme.io-queues = 3
            actornvme.io-queue-size = 64
            actornvme.io-retries = 0
            actornvme.io-hold-limit = 10
            actornvme.disable-sq-flow-control = off
            actornvme.io-receive-spin = 0.05ms
            """));
        Assert.Equal(3, settings.EffectiveIoQueues);
        Assert.Equal(64, settings.IoQueueSize);
        Assert.Equal(0, settings.IoRetries);
        Assert.Equal(10, settings.IoHoldLimit);
        Assert.False(settings.DisableSqFlowControl);
        Assert.Equal(TimeSpan.FromMicroseconds(50), settings.IoReceiveSpin);
    }

    [Theory]
    [InlineData("actornvme.io-queues = -1", "io-queues-range")]
    [InlineData("actornvme.io-queue-size = 1", "io-queue-size-range")]
    [InlineData("actornvme.io-queue-size = 5000", "io-queue-size-range")]
    [InlineData("actornvme.io-retries = -2", "io-bounds")]
    [InlineData("actornvme.io-hold-limit = -5", "io-bounds")]
    [InlineData("actornvme.io-receive-spin = 20ms", "io-receive-spin-range")]
    public void An_invalid_value_is_refused_naming_the_rule(string hocon, string rule)
    {
        var error = Assert.Throws<InvalidNvmeSettingsException>(() => NvmeHostSettings.Create(ConfigurationFactory.ParseString(hocon)));
        Assert.Equal(rule, error.Rule);
    }
}
