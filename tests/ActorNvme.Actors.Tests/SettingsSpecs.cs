using Akka.Configuration;
using ActorNvme.Actors.Settings;

namespace ActorNvme.Actors.Tests;

public class SettingsSpecs
{
    [Theory]
    [InlineData(-2, 1, 0, "ctrlr-loss-timeout-range")]
    [InlineData(0, 1, 0, "reconnect-delay-without-reconnect")]
    [InlineData(0, 0, 1, "fast-io-fail-without-reconnect")]
    [InlineData(10, 0, 0, "reconnect-delay-required")]
    [InlineData(-1, 0, 0, "reconnect-delay-required")]
    [InlineData(5, 10, 0, "reconnect-delay-within-loss-timeout")]
    [InlineData(10, 5, 2, "fast-io-fail-at-least-reconnect-delay")]
    [InlineData(10, 2, 20, "fast-io-fail-within-loss-timeout")]
    public void Invalid_combinations_must_be_refused_naming_the_rule(long loss, long delay, long fastIoFail, string rule)
    {
        var error = Assert.Throws<InvalidNvmeSettingsException>(() => ResiliencySettings.FromSeconds(loss, delay, fastIoFail));
        Assert.Equal(rule, error.Rule);
    }

    [Theory]
    [InlineData(-1, 1, 0)]
    [InlineData(-1, 1, 30)]
    [InlineData(0, 0, 0)]
    [InlineData(2, 1, 1)]
    [InlineData(10, 10, 10)]
    public void Valid_combinations_must_be_accepted(long loss, long delay, long fastIoFail)
    {
        var settings = ResiliencySettings.FromSeconds(loss, delay, fastIoFail);
        Assert.Equal(TimeSpan.FromSeconds(loss), settings.CtrlrLossTimeout);
    }

    [Fact]
    public void Settings_must_be_read_from_config_with_the_embedded_defaults_as_fallback()
    {
        var config = ConfigurationFactory.ParseString("""
            actornvme {
              host-id = "6e766d65-7451-4000-8000-70726f626500"
              ctrlr-loss-timeout = 2s
              reconnect-delay = 1s
              fast-io-fail-timeout = 1s
              digests = both
            }
            """);

        var settings = NvmeHostSettings.Create(config);

        Assert.Equal("nqn.2014-08.org.nvmexpress:uuid:6e766d65-7451-4000-8000-70726f626500", settings.HostNqn);
        Assert.Equal(TimeSpan.FromSeconds(2), settings.Resiliency.CtrlrLossTimeout);
        Assert.Equal(TimeSpan.FromSeconds(10), settings.KeepAliveTimeout); // from reference.conf
        Assert.Equal(Protocol.Tcp.DigestOptions.Both, settings.Digests);
    }

    [Fact]
    public void A_bad_value_in_config_must_be_refused_naming_it()
    {
        var config = ConfigurationFactory.ParseString("actornvme { ctrlr-loss-timeout = 2s, reconnect-delay = 5s }");
        var error = Assert.Throws<InvalidNvmeSettingsException>(() => NvmeHostSettings.Create(config));
        Assert.Contains("reconnect-delay 5s", error.Message, StringComparison.Ordinal);

        var digests = ConfigurationFactory.ParseString("actornvme.digests = crc");
        Assert.Contains("'crc'", Assert.Throws<InvalidNvmeSettingsException>(() => NvmeHostSettings.Create(digests)).Message, StringComparison.Ordinal);
    }
}
