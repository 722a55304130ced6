using ActorNvme.Protocol.Nvme;
using ActorNvme.Protocol.Tcp;
using ActorNvme.Transport;
using ActorNvme.Transport.BringUp;
using ActorNvme.Transport.Tcp;

namespace ActorNvme.RealPeer.Tests.Harness;

/// <summary>
/// A test's stand-in for the controller actor: an <see cref="AdminClient"/> brought up the way the host
/// brings every controller up (the Transport's bring-up script: Fabrics Connect, CAP, VS, CC.EN=1,
/// CSTS.RDY), with awaited submissions for the test's own commands.
/// </summary>
internal sealed class AdminSession : IAsyncDisposable
{
    public static readonly TimeSpan Deadline = TimeSpan.FromSeconds(30);
    public static readonly Guid HostId = Guid.Parse("6f1b3a52-2c61-4a38-9a0e-6c2f0d4e7a11");
    public static readonly string HostNqn = $"nqn.2014-08.org.nvmexpress:uuid:{HostId}";

    private readonly AdminClient _client;

    private AdminSession(AdminClient client, ushort controllerId)
    {
        _client = client;
        ControllerId = controllerId;
    }

    public AdminQueuePair Queue => _client.Queue;

    public ushort ControllerId { get; }

    public Task<ConnectionClosed> Closed => _client.Closed;

    public static async Task<AdminSession> ConnectAsync(TransportAddress address, string subsystemNqn, DigestOptions digests = DigestOptions.None)
    {
        var client = await AdminClient.ConnectAsync(new TcpTransport(), address, QueuePairOptions.Admin with { Digests = digests }).WaitAsync(Deadline);
        var parameters = new FabricsConnectParameters(HostId, subsystemNqn, HostNqn) { KeepAliveMilliseconds = 60_000 };
        var options = new BringUpOptions(parameters, QueuePairOptions.Admin.QueueSize) { Goal = BringUpGoal.Ready, MinimumReadyTimeout = TimeSpan.FromSeconds(5), ReadyPollInterval = TimeSpan.FromMilliseconds(50) };
        var result = await client.BringUpAsync(options).WaitAsync(Deadline);
        return new AdminSession(client, result.ControllerId);
    }

    public async Task<AdminCompletion> RunAsync(SubmissionQueueEntry command) =>
        (await _client.SubmitAsync(command, default, 0).WaitAsync(Deadline)).Completion;

    public async Task<AdminCompletion> ReadAsync(SubmissionQueueEntry command, Memory<byte> destination)
    {
        var (completion, data) = await _client.SubmitAsync(command, default, destination.Length).WaitAsync(Deadline);
        data.CopyTo(destination);
        return completion;
    }

    public async Task<byte[]> IdentifyAsync(byte cns, uint namespaceId = 0)
    {
        var data = new byte[4096];
        EnsureSuccess(await ReadAsync(AdminCommands.Identify(cns, namespaceId), data), $"Identify CNS {cns}", CommandSet.Admin);
        return data;
    }

    public async Task<ulong> PropertyGetAsync(uint offset, bool eightBytes)
    {
        var completion = await RunAsync(FabricsCommands.PropertyGet(offset, eightBytes));
        EnsureSuccess(completion, $"Property Get 0x{offset:x}", CommandSet.Fabrics);
        return eightBytes ? completion.Completion.Result64 : completion.Completion.Dw0;
    }

    public static void EnsureSuccess(AdminCompletion completion, string what, CommandSet commandSet)
    {
        if (!completion.IsSuccess)
        {
            throw new InvalidOperationException($"{what} failed: {(completion.Outcome == CommandOutcome.Completed ? completion.Status.ToString(commandSet) : completion.Outcome.ToString())}");
        }
    }

    public ValueTask DisposeAsync() => _client.DisposeAsync();
}
