using Akka.Configuration;
using ActorNvme.Actors.Settings;
using ActorNvme.Protocol.Tls;

namespace ActorNvme.Actors.Tests;

/// <summary>psk (inline interchange string or a 0600 key file), read from HOCON.</summary>
public class TlsPskSettingsSpecs
{
    [Fact]
    public void The_default_is_plain_tcp()
    {
        Assert.Null(NvmeHostSettings.Create(ConfigurationFactory.Empty).TlsPsk);
    }

    [Fact]
    public void An_inline_psk_is_read_and_never_shown()
    {
        string psk = NvmeTlsPsk.Generate(NvmeTlsPskHash.Sha384);
        var settings = NvmeHostSettings.Create(ConfigurationFactory.ParseString($"actornvme.psk = \"{psk}\""));

        var read = Assert.IsType<NvmeTlsPsk>(settings.TlsPsk);
        Assert.Equal(NvmeTlsCipherSuite.Aes256GcmSha384, read.CipherSuite);
        Assert.DoesNotContain(psk.Split(':')[2], settings.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public void A_psk_file_must_be_absolute_and_private_and_may_end_without_a_newline()
    {
        if (OperatingSystem.IsWindows())
        {
            return;
        }

        string directory = Directory.CreateTempSubdirectory("psk-settings-").FullName;
        try
        {
            string path = Path.Combine(directory, "psk.key");
            File.WriteAllText(path, NvmeTlsPsk.Generate());
            File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
            Assert.NotNull(NvmeHostSettings.Create(ConfigurationFactory.ParseString($"actornvme.psk = \"{path}\"")).TlsPsk);

            File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.OtherRead);
            var open = Assert.Throws<InvalidNvmeSettingsException>(() => NvmeHostSettings.Create(ConfigurationFactory.ParseString($"actornvme.psk = \"{path}\"")));
            Assert.Contains("0600", open.Message, StringComparison.Ordinal);

            var relative = Assert.Throws<InvalidNvmeSettingsException>(() => NvmeHostSettings.Create(ConfigurationFactory.ParseString("actornvme.psk = \"keys/psk.key\"")));
            Assert.Contains("absolute", relative.Message, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    [Fact]
    public void A_bad_psk_is_refused_naming_the_setting_and_not_the_key()
    {
        string psk = NvmeTlsPsk.Generate();
        string broken = psk[..^3] + (psk[^3] == 'A' ? "B" : "A") + psk[^2..];
        var error = Assert.Throws<InvalidNvmeSettingsException>(() => NvmeHostSettings.Create(ConfigurationFactory.ParseString($"actornvme.psk = \"{broken}\"")));
        Assert.Contains("psk", error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(broken.Split(':')[2], error.Message, StringComparison.Ordinal);
    }
}
