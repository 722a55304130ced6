using Akka.Configuration;
using ActorNvme.Actors.Settings;
using ActorNvme.Protocol.Auth;

namespace ActorNvme.Actors.Tests;

/// <summary>dhchap-key / dhchap-ctrlr-key (inline and key files) and the offered lists, read from HOCON.</summary>
public class DhChapSettingsSpecs
{
    [Fact]
    public void The_defaults_have_no_key_and_parse()
    {
        var settings = NvmeHostSettings.Create(ConfigurationFactory.Empty);
        Assert.Null(settings.DhChap);
    }

    [Fact]
    public void Inline_keys_and_lists_are_read_and_never_shown()
    {
        string host = DhChapSecret.Generate(32, 1);
        string controller = DhChapSecret.Generate(48, 2);
        var settings = NvmeHostSettings.Create(ConfigurationFactory.ParseString($$"""
            actornvme {
              dhchap-key = "{{host}}"
              dhchap-ctrlr-key = "{{controller}}"
              dhchap-digests = [sha384]
              dhchap-dhgroups = [null, ffdhe3072]
            }
            """));

        var credentials = Assert.IsType<DhChapHostCredentials>(settings.DhChap);
        Assert.True(credentials.Bidirectional);
        Assert.Equal([DhChapHashId.Sha384], credentials.Hashes);
        Assert.Equal([DhChapGroupId.Null, DhChapGroupId.Ffdhe3072], credentials.Groups);
        Assert.Equal(48, credentials.ControllerSecret!.KeyLength);
        Assert.DoesNotContain(host.Split(':')[2], settings.ToString(), StringComparison.Ordinal);
        Assert.DoesNotContain(controller.Split(':')[2], settings.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public void A_key_file_must_be_absolute_and_private()
    {
        if (OperatingSystem.IsWindows())
        {
            return;
        }

        string directory = Directory.CreateTempSubdirectory("dhchap-settings-").FullName;
        try
        {
            string path = Path.Combine(directory, "host.key");
            File.WriteAllText(path, DhChapSecret.Generate() + "\n");
            File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
            var settings = NvmeHostSettings.Create(ConfigurationFactory.ParseString($"actornvme.dhchap-key = \"{path}\""));
            Assert.NotNull(settings.DhChap);

            File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead);
            var open = Assert.Throws<InvalidNvmeSettingsException>(() => NvmeHostSettings.Create(ConfigurationFactory.ParseString($"actornvme.dhchap-key = \"{path}\"")));
            Assert.Contains("0600", open.Message, StringComparison.Ordinal);

            var relative = Assert.Throws<InvalidNvmeSettingsException>(() => NvmeHostSettings.Create(ConfigurationFactory.ParseString("actornvme.dhchap-key = \"keys/host.key\"")));
            Assert.Contains("absolute", relative.Message, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    [Theory]
    [InlineData("actornvme.dhchap-key = \"DHHC-1:00:AAAA:\"", "dhchap-key")]
    [InlineData("actornvme.dhchap-digests = [md5]", "md5")]
    [InlineData("actornvme.dhchap-dhgroups = [ffdhe1024]", "ffdhe1024")]
    public void Bad_values_are_refused_naming_the_setting(string hocon, string named)
    {
        var error = Assert.Throws<InvalidNvmeSettingsException>(() => NvmeHostSettings.Create(ConfigurationFactory.ParseString(hocon)));
        Assert.Contains(named, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_controller_key_without_a_host_key_is_refused()
    {
        var error = Assert.Throws<InvalidNvmeSettingsException>(() => NvmeHostSettings.Create(ConfigurationFactory.ParseString($"actornvme.dhchap-ctrlr-key = \"{DhChapSecret.Generate()}\"")));
        Assert.Contains("dhchap-ctrlr-key", error.Message, StringComparison.Ordinal);
    }
}
