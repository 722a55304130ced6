using System.Diagnostics;
using System.Text.Json;

namespace ActorNvme.Host.Tests;

/// <summary>serve --log-file / --log-json: the log goes to the file too, one JSON object per line when asked.</summary>
public sealed class ServeLoggingTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("anvme-log").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public async Task The_daemon_logs_compact_json_lines_to_the_console_and_the_file()
    {
        string logFile = Path.Combine(_dir, "serve.log");
        string socket = TempSocket.NewPath("log");
        var start = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = _dir,
        };
        foreach (string arg in new[] { Path.Combine(AppContext.BaseDirectory, "actornvme.dll"), "serve", "-r", socket, "--log-json", "--log-file", logFile })
        {
            start.ArgumentList.Add(arg);
        }

        start.Environment["ACTORNVME_STATE_DIR"] = _dir;
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        try
        {
            var until = DateTime.UtcNow + TimeSpan.FromSeconds(60);
            while (!(File.Exists(logFile) && (await ReadSharedAsync(logFile)).Contains("JSON-RPC", StringComparison.Ordinal)))
            {
                Assert.False(process.HasExited, "serve exited early");
                Assert.True(DateTime.UtcNow < until, "no JSON-RPC start line in the log file within 60 s");
                await Task.Delay(100);
            }
        }
        finally
        {
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync();
        }

        var lines = (await ReadSharedAsync(logFile)).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.NotEmpty(lines);
        foreach (string line in lines)
        {
            using var entry = JsonDocument.Parse(line); // every line is one JSON object
            Assert.True(entry.RootElement.TryGetProperty("@t", out _));
            Assert.True(entry.RootElement.TryGetProperty("@mt", out _));
        }

        Assert.Contains(lines, l => l.Contains("\"HostNqn\"", StringComparison.Ordinal)); // properties stay fields, not text
        Assert.StartsWith("{\"@t\"", (await stdout).TrimStart(), StringComparison.Ordinal);
    }

    private static async Task<string> ReadSharedAsync(string path)
    {
        await using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        using var reader = new StreamReader(stream);
        return await reader.ReadToEndAsync();
    }
}
