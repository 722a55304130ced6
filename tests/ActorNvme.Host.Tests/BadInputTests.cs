using System.Diagnostics;
using Akka.Configuration;
using ActorNvme.Actors.Settings;
using ActorNvme.Host.Cli;

namespace ActorNvme.Host.Tests;

/// <summary>
/// Configuration and command lines that cannot be silently wrong: the actornvme process itself is run,
/// and each bad input must end it with one line that names the file, the key or option, and the rule —
/// never a stack trace, never a start on defaults.
/// </summary>
public sealed class BadInputTests
{
    public static TheoryData<string, string> BadConfigurations => new()
    {
        // HOCON, what the one line must say
        { "actornvme { keep-alive-timout = 5s }", "actornvme.keep-alive-timout is not a setting; did you mean actornvme.keep-alive-timeout?" },
        { "actornvme { discovery { referal-depth = 2 } }", "actornvme.discovery.referal-depth is not a setting" },
        { "actornvme { keep-alive-timeout = 5s", "line 1: '{' is never closed" },
        { "actornvme {\n  keep-alive-timeout = 5s\n}\n}", "line 4: '}' closes nothing" },
        { "actornvm { keep-alive-timeout = 5s }", "'actornvm' is not a section of this configuration" },
        { "actornvme { io-queue-size = banana }", "actornvme.io-queue-size = 'banana' is not a whole number" },
        { "actornvme { keep-alive-timeout = banana }", "actornvme.keep-alive-timeout = 'banana' is not a duration" },
        { "actornvme { disable-sq-flow-control = maybe }", "actornvme.disable-sq-flow-control = 'maybe' is not on or off" },
        { "actornvme { keep-alive-timeout = 4294967295ms }", "rule keep-alive-timeout-range" },
        { "actornvme { io-queues = 4294967295 }", "actornvme.io-queues = '4294967295' is not a whole number" },
        { "actornvme { connect-timeout = 30d }", "rule timer-range" },
        { "actornvme { ctrlr-loss-timeout = 2s, reconnect-delay = 5s }", "rule reconnect-delay-within-loss-timeout" },
        { "actornvme { host-nqn = \"nqn.x }", "line 1: a quoted string is" },
    };

    [Theory]
    [MemberData(nameof(BadConfigurations))]
    public async Task Serve_refuses_a_bad_configuration_with_one_line_naming_file_and_key(string hocon, string says)
    {
        string path = Path.Combine(Path.GetTempPath(), $"anvme-bad-{Guid.NewGuid():N}.hocon");
        await File.WriteAllTextAsync(path, hocon);
        try
        {
            var (exit, output) = await RunAsync("serve", "-c", path, "-r", Path.Combine(Path.GetTempPath(), $"anvme-{Guid.NewGuid():N}.sock"));
            Assert.Equal(2, exit);
            string line = Assert.Single(output.Split('\n', StringSplitOptions.RemoveEmptyEntries));
            Assert.Contains(path, line, StringComparison.Ordinal);
            Assert.Contains(says, line, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Theory]
    [InlineData("--hostnqn does not start with \"nqn.\"", "discover", "-a", "127.0.0.1", "-s", "1", "-q", "foo")]
    [InlineData("--timeout -1 must be more than 0", "discover", "-a", "127.0.0.1", "-s", "1", "--timeout", "-1")]
    [InlineData("--timeout NaN must be more than 0", "discover", "-a", "127.0.0.1", "-s", "1", "--timeout", "nan")]
    [InlineData("'notaguid'", "discover", "-a", "127.0.0.1", "-I", "notaguid")]
    [InlineData("Option '--traddr' is required", "discover")]
    [InlineData("--rpc-socket /missing/dir/x.sock: the directory /missing/dir does not exist", "serve", "-r", "/missing/dir/x.sock")]
    public async Task A_bad_option_is_one_line_without_a_stack_trace(string says, params string[] args)
    {
        var (exit, output) = await RunAsync(args);
        Assert.Equal(2, exit);
        string line = Assert.Single(output.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Contains(says, line, StringComparison.Ordinal);
        Assert.StartsWith("actornvme", line, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Config_prints_each_setting_with_where_its_value_comes_from_and_refuses_what_serve_refuses()
    {
        string path = Path.Combine(Path.GetTempPath(), $"anvme-cfg-{Guid.NewGuid():N}.hocon");
        try
        {
            await File.WriteAllTextAsync(path, "actornvme { keep-alive-timeout = 5s }\n");
            var (exit, output) = await RunAsync("config", "-c", path);
            Assert.Equal(0, exit);
            Assert.Contains("keep-alive-timeout = 5s   # from the file", output, StringComparison.Ordinal);
            Assert.Contains("io-retries = 5   # default", output, StringComparison.Ordinal);
            Assert.Contains("discovery.referral-depth = 8   # default", output, StringComparison.Ordinal);

            await File.WriteAllTextAsync(path, "actornvme { keep-alive-timeout = 5 minutes and a bit }\n");
            (exit, output) = await RunAsync("config", "-c", path);
            Assert.Equal(2, exit);
            Assert.Contains("actornvme.keep-alive-timeout", Assert.Single(output.Split('\n', StringSplitOptions.RemoveEmptyEntries)), StringComparison.Ordinal);

            (exit, output) = await RunAsync("config", "--sample");
            Assert.Equal(0, exit);
            Assert.Contains("# Host NQN sent in every Connect.", output, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public async Task Config_never_prints_an_inline_secret()
    {
        string path = Path.Combine(Path.GetTempPath(), $"anvme-cfg-{Guid.NewGuid():N}.hocon");
        string psk = ActorNvme.Protocol.Tls.NvmeTlsPsk.Generate();
        string dhchap = ActorNvme.Protocol.Auth.DhChapSecret.Generate();
        try
        {
            await File.WriteAllTextAsync(path, $"actornvme {{ psk = \"{psk}\", dhchap-key = \"{dhchap}\" }}\n");
            var (exit, output) = await RunAsync("config", "-c", path);
            Assert.Equal(0, exit);
            Assert.Contains("psk = \"<secret NVMeTLSkey-1>\"   # from the file", output, StringComparison.Ordinal);
            Assert.Contains("dhchap-key = \"<secret DHHC-1>\"   # from the file", output, StringComparison.Ordinal);
            Assert.DoesNotContain(psk.Split(':')[2], output, StringComparison.Ordinal);
            Assert.DoesNotContain(dhchap.Split(':')[2], output, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void Every_setting_of_reference_conf_is_known_and_an_unknown_one_is_refused()
    {
        Assert.Contains("keep-alive-timeout", NvmeHostSettings.KnownKeys);
        Assert.Contains("discovery.referral-depth", NvmeHostSettings.KnownKeys);
        Assert.Equal(TimeSpan.FromSeconds(7), NvmeHostSettings.Create(ConfigurationFactory.ParseString("actornvme.keep-alive-timeout = 7s")).KeepAliveTimeout);

        var error = Assert.Throws<InvalidNvmeSettingsException>(() => NvmeHostSettings.Create(ConfigurationFactory.ParseString("actornvme.io-retires = 3")));
        Assert.Equal("unknown-key", error.Rule);
        Assert.Contains("did you mean actornvme.io-retries?", error.Message, StringComparison.Ordinal);

        // Other sections are not the settings' business (the daemon's own file is checked by HoconCheck).
        Assert.Equal(5, NvmeHostSettings.Create(ConfigurationFactory.ParseString("akka.whatever = 1\nactornvme.io-retries = 5")).IoRetries);
    }

    [Fact]
    public void Braces_in_strings_and_comments_do_not_count()
    {
        HoconCheck.Balanced("# a { comment\nactornvme {\n  host-nqn = \"nqn.x:{not-a-brace\" // }\n  a = [1, 2]\n  b = \"\"\"{\n\"\"\"\n}\n");
        var error = Assert.Throws<ConfigurationException>(() => HoconCheck.Balanced("a = [1, 2}\n"));
        Assert.Contains("line 1: '}' closes the '[' of line 1", error.Message, StringComparison.Ordinal);
    }

    private static async Task<(int Exit, string Output)> RunAsync(params string[] args)
    {
        var start = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = Path.GetTempPath(), // no akka.hocon there to pick up
        };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "actornvme.dll"));
        foreach (string arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        try
        {
            await process.WaitForExitAsync(deadline.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"actornvme {string.Join(' ', args)} did not end within 60 s: {await stdout}{await stderr}");
        }

        string output = (await stdout) + (await stderr);
        Assert.DoesNotContain("   at ", output, StringComparison.Ordinal);
        return (process.ExitCode, output);
    }
}
