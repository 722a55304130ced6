using Akka.Actor;
using Akka.Hosting;
using ActorNvme.Actors.Host;
using ActorNvme.Hosting;
using ActorNvme.Io;
using ActorNvme.Target;
using ActorNvme.Transport;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace ActorNvme.Host.Tests;

/// <summary>
/// The README's embedding snippet is this file's, character for character, and it runs: it compiles here
/// and attaches, writes and reads against an in-process target.
/// </summary>
public sealed class ReadmeSnippetTests
{
    private const string SnippetStart = "// README embedding snippet: start";
    private const string SnippetEnd = "// README embedding snippet: end";

    [Fact]
    public async Task The_embedding_snippet_attaches_waits_for_a_device_and_does_io()
    {
        await using var target = new NvmeTarget();
        var listener = target.ListenTcp("127.0.0.1", 0);
        var subsystem = target.AddSubsystem("nqn.2016-06.io.actornvme:readme");
        subsystem.AddNamespace(NamespaceOptions.Ram(1024 * 1024, 512));
        var discovery = listener.Address;
        var builder = Microsoft.Extensions.Hosting.Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });

        // README embedding snippet: start
        builder.Services.AddAkka("storage", akka => akka
            .WithNvmeHost(o =>
            {
                o.CtrlrLossTimeout = TimeSpan.FromSeconds(30);
                o.Discoveries.Add(new NvmeDiscoveryTarget("nvme", discovery));
            }));
        using var app = builder.Build();
        await app.StartAsync();

        var system = app.Services.GetRequiredService<ActorSystem>();
        var nvme = new NvmeHostClient(system, await ActorRegistry.For(system).GetAsync<NvmeHostActor>());
        BlockDevice device = await nvme.WaitForBlockDeviceAsync("nvme0n1", TimeSpan.FromSeconds(30));
        var block = new byte[device.BlockSize];
        block[0] = 42;
        await device.WriteAsync(0, block);
        await device.ReadAsync(0, block);
        await app.StopAsync(); // detaches every controller cleanly (CC.SHN)
        // README embedding snippet: end

        Assert.Equal(42, block[0]);
        Assert.Equal(512, device.BlockSize);
        Assert.Equal(1, subsystem.ShutdownsRequested);
        Assert.Equal(1, device.Statistics.Snapshot().Write.Operations);
    }

    [Fact]
    public void The_readme_shows_the_snippet_exactly_as_it_is_compiled_here()
    {
        string source = File.ReadAllText(Path.Combine(RepoRoot(), "tests", "ActorNvme.Host.Tests", "ReadmeSnippetTests.cs"));
        int start = source.IndexOf(SnippetStart + "\n", StringComparison.Ordinal);
        int end = source.IndexOf("        " + SnippetEnd, StringComparison.Ordinal);
        Assert.True(start > 0 && end > start, "the snippet markers are missing");
        string snippet = string.Join('\n', source[(start + SnippetStart.Length + 1)..end]
            .Split('\n')
            .Select(line => line.StartsWith("        ", StringComparison.Ordinal) ? line[8..] : line)).TrimEnd();

        string readme = File.ReadAllText(Path.Combine(RepoRoot(), "README.md"));
        Assert.Contains("```csharp\n" + snippet + "\n```", readme, StringComparison.Ordinal);
    }

    private static string RepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "ActorNvme.sln")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException("the repository root (ActorNvme.sln) is not above " + AppContext.BaseDirectory);
    }
}
