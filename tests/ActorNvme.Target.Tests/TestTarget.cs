using ActorNvme.Protocol.Tcp;
using ActorNvme.Transport;
using ActorNvme.Transport.InMemory;

namespace ActorNvme.Target.Tests;

/// <summary>A target with one NVM subsystem (one 4 MiB RAM namespace) and one listener, in memory or on TCP 127.0.0.1:0.</summary>
public sealed class TestTarget : IAsyncDisposable
{
    public const string Nqn = "nqn.2024-01.io.actornvme:test";
    public const string DiscoveryNqn = DiscoverySubsystem.WellKnownNqn;
    public const int NamespaceSize = 4 * 1024 * 1024;

    private TestTarget(NvmeTarget target, InMemoryNetwork network, TargetListener listener, NvmSubsystem subsystem)
    {
        Target = target;
        Network = network;
        Listener = listener;
        Subsystem = subsystem;
    }

    public NvmeTarget Target { get; }

    public InMemoryNetwork Network { get; }

    public TargetListener Listener { get; }

    public NvmSubsystem Subsystem { get; }

    public TargetFaults Faults => Target.Faults;

    public static TestTarget Create(string transport = "memory", TargetOptions? options = null, int blockSize = 512, NamespaceBackend backend = NamespaceBackend.Ram)
    {
        var target = new NvmeTarget(options);
        var network = new InMemoryNetwork();
        var subsystem = target.AddSubsystem(Nqn);
        subsystem.AddNamespace(new NamespaceOptions { SizeBytes = NamespaceSize, BlockSize = blockSize, Backend = backend });
        var listener = AddListener(target, network, transport);
        return new TestTarget(target, network, listener, subsystem);
    }

    public static TargetListener AddListener(NvmeTarget target, InMemoryNetwork network, string transport) =>
        transport == "tcp"
            ? target.ListenTcp("127.0.0.1", 0)
            : target.ListenInMemory(network, new TransportAddress("10.11.12.13", 4420 + target.Listeners.Count));

    public Task<RawClient> ConnectAsync(TargetListener? listener = null) => RawClient.ConnectAsync(listener ?? Listener, Network);

    /// <summary>An admin queue (enabled) and one I/O queue of the same controller.</summary>
    public async Task<(RawClient Admin, RawClient Io, ushort ControllerId)> ConnectIoAsync(DigestOptions digests = DigestOptions.None, bool disableSqFlow = false, int queueSize = 32, uint kato = 0, string hostNqn = RawClient.HostNqn)
    {
        var admin = await ConnectAsync();
        ushort id = await admin.SetUpAdminAsync(Nqn, kato, digests, hostNqn: hostNqn);
        var io = await ConnectAsync();
        await io.SetUpIoAsync(Nqn, id, 1, queueSize, digests, disableSqFlow, hostNqn);
        return (admin, io, id);
    }

    public async ValueTask DisposeAsync() => await Target.DisposeAsync();
}

public static class Transports
{
    public static TheoryData<string> Both => new() { "memory", "tcp" };
}
