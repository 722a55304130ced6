using ActorNvme.Host.Perf;
using ActorNvme.Protocol.Tls;
using Xunit;

namespace ActorNvme.Host.Tests;

/// <summary>actornvme perf's --psk-path (SPDK perf's option): the settings of the run carry the PSK; bad files are refused.</summary>
public sealed class PerfTlsOptionsTests
{
    private static readonly string[] Base = ["-r", "trtype:TCP adrfam:IPv4 traddr:127.0.0.1 trsvcid:4422 subnqn:nqn.2016-06.io.spdk:cnode2", "-q", "32", "-o", "4096", "-w", "randread", "-t", "1"];

    [Fact]
    public void Psk_path_puts_the_psk_in_the_run_settings_and_ssl_is_accepted()
    {
        if (OperatingSystem.IsWindows())
        {
            return;
        }

        string directory = Directory.CreateTempSubdirectory("perf-psk-").FullName;
        try
        {
            string path = Path.Combine(directory, "psk.key");
            File.WriteAllText(path, NvmeTlsPsk.Generate(NvmeTlsPskHash.Sha384));
            File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);

            var options = PerfOptionParser.Parse([.. Base, "-S", "ssl", "--psk-path", path])!;
            Assert.Equal(path, options.PskPath);
            Assert.Equal(NvmeTlsCipherSuite.Aes256GcmSha384, PerfAttach.WithTls(PerfAttach.Settings(options), options).TlsPsk!.CipherSuite);
            var plain = PerfOptionParser.Parse(Base)!;
            Assert.Null(PerfAttach.WithTls(PerfAttach.Settings(plain), plain).TlsPsk);

            File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.OtherRead);
            var error = Assert.Throws<FormatException>(() => PerfAttach.WithTls(PerfAttach.Settings(options), options));
            Assert.Contains("--psk-path", error.Message, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    [Fact]
    public void Another_sock_impl_is_refused()
    {
        Assert.Throws<PerfUsageException>(() => PerfOptionParser.Parse([.. Base, "-S", "uring"]));
    }
}
