using System.Diagnostics;

namespace ActorNvme.Host.Tests;

/// <summary>The bash script of <c>actornvme completion bash</c>, run by bash against the built program.</summary>
public sealed class CompletionCommandTests
{
    private static readonly string Dll = Path.Combine(AppContext.BaseDirectory, "actornvme.dll");

    [Theory]
    [InlineData("actornvme dis", "discover disconnect disconnect-all", "serve")]
    [InlineData("actornvme serve --log-", "--log-file --log-json", "--cluster")]
    public async Task Bash_completes_commands_and_options_from_the_program_itself(string line, string expected, string notExpected)
    {
        string words = string.Join(' ', line.Split(' ').Select(w => $"'{w}'"));
        string script = $$"""
            actornvme() { dotnet '{{Dll}}' "$@"; }
            eval "$(actornvme completion bash)"
            COMP_LINE='{{line}}'
            COMP_POINT=${#COMP_LINE}
            COMP_WORDS=({{words}})
            COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))
            _actornvme_complete
            printf '%s\n' "${COMPREPLY[@]}"
            """;
        var start = new ProcessStartInfo("bash") { RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true };
        using var bash = Process.Start(start)!;
        await bash.StandardInput.WriteAsync(script);
        bash.StandardInput.Close();
        string output = await bash.StandardOutput.ReadToEndAsync();
        string errors = await bash.StandardError.ReadToEndAsync();
        await bash.WaitForExitAsync().WaitAsync(TimeSpan.FromMinutes(2));
        var offered = output.Split('\n', StringSplitOptions.RemoveEmptyEntries);

        Assert.True(bash.ExitCode == 0, $"bash exited {bash.ExitCode}: {errors}");
        foreach (string word in expected.Split(' '))
        {
            Assert.Contains(word, offered);
        }

        Assert.DoesNotContain(notExpected, offered);
    }

    [Fact]
    public async Task An_unknown_shell_is_refused_naming_it()
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add(Dll);
        start.ArgumentList.Add("completion");
        start.ArgumentList.Add("fish");
        using var process = Process.Start(start)!;
        string errors = await process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync().WaitAsync(TimeSpan.FromMinutes(2));

        Assert.Equal(2, process.ExitCode);
        Assert.Contains("fish", errors, StringComparison.Ordinal);
    }
}
