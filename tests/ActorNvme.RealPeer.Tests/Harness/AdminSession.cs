using ActorNvme.Protocol.Nvme;
using ActorNvme.Protocol.Tcp;
using ActorNvme.Transport;
using ActorNvme.Transport.Tcp;

namespace ActorNvme.RealPeer.Tests.Harness;

/// <summary>
/// A test's stand-in for the controller actor: an admin queue pair whose completions complete the
/// task each submission returns (the submission's state object is that task's source). Brings a
/// controller up the way a host must: Fabrics Connect, CC.EN=1, wait for CSTS.RDY.
/// </summary>
internal sealed class AdminSession : IAdminCompletionSink, IAsyncDisposable
{
    public static readonly TimeSpan Deadline = TimeSpan.FromSeconds(30);
    public static readonly Guid HostId = Guid.Parse("6f1b3a52-2c61-4a38-9a0e-6c2f0d4e7a11");
    public static readonly string HostNqn = $"nqn.2014-08.org.nvmexpress:uuid:{HostId}";

    private const uint CapRegister = 0x00;
    private const uint CcRegister = 0x14;
    private const uint CstsRegister = 0x1C;

    private readonly TaskCompletionSource<ConnectionClosed> _closed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private AdminQueuePair? _queue;

    public AdminQueuePair Queue => _queue ?? throw new InvalidOperationException("not connected");

    public ushort ControllerId { get; private set; }

    public Task<ConnectionClosed> Closed => _closed.Task;

    public static async Task<AdminSession> ConnectAsync(TransportAddress address, string subsystemNqn, DigestOptions digests = DigestOptions.None)
    {
        var session = new AdminSession();
        session._queue = await AdminQueuePair.ConnectAsync(new TcpTransport(), address, QueuePairOptions.Admin with { Digests = digests }, session)
            .WaitAsync(Deadline);
        var parameters = new FabricsConnectParameters(HostId, subsystemNqn, HostNqn) { KeepAliveMilliseconds = 60_000 };
        var connect = await session.SubmitAsync((queue, state) => queue.TrySubmitConnect(parameters, state, out _));
        EnsureSuccess(connect, $"Fabrics Connect to {subsystemNqn}", CommandSet.Fabrics);
        session.ControllerId = FabricsCommands.DecodeConnectResponse(connect.Completion.Dw0).ControllerId;
        await session.EnableAsync();
        return session;
    }

    public Task<AdminCompletion> RunAsync(SubmissionQueueEntry command) =>
        SubmitAsync((queue, state) => queue.TrySubmit(command, state, out _));

    public Task<AdminCompletion> ReadAsync(SubmissionQueueEntry command, Memory<byte> destination) =>
        SubmitAsync((queue, state) => queue.TrySubmitRead(command, destination, state, out _));

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

    public async Task<AdminCompletion> SubmitAsync(Func<AdminQueuePair, object, SubmitStatus> submit)
    {
        var answered = new TaskCompletionSource<AdminCompletion>(TaskCreationOptions.RunContinuationsAsynchronously);
        var status = submit(Queue, answered);
        if (status != SubmitStatus.Submitted)
        {
            throw new InvalidOperationException($"admin submission refused: {status}");
        }

        return await answered.Task.WaitAsync(Deadline);
    }

    public void OnCompletion(AdminCompletion completion)
    {
        ((TaskCompletionSource<AdminCompletion>)completion.State!).TrySetResult(completion);
        _queue?.Release(completion.CommandId); // matched by its waiter, not by id
    }

    public void OnClosed(ConnectionClosed closed) => _closed.TrySetResult(closed);

    public async ValueTask DisposeAsync()
    {
        if (_queue is not null)
        {
            await _queue.DisposeAsync();
        }
    }

    /// <summary>CC.EN=1 with 64-byte SQ and 16-byte CQ entries, then wait for CSTS.RDY (CAP.TO bounds the wait).</summary>
    private async Task EnableAsync()
    {
        ulong cap = await PropertyGetAsync(CapRegister, eightBytes: true);
        var timeout = TimeSpan.FromMilliseconds(Math.Max(1, (cap >> 24) & 0xFF) * 500) + TimeSpan.FromSeconds(5);
        var set = await RunAsync(FabricsCommands.PropertySet(CcRegister, 1u | (6u << 16) | (4u << 20), eightBytes: false));
        EnsureSuccess(set, "Property Set CC.EN", CommandSet.Fabrics);
        var deadline = DateTime.UtcNow + timeout;
        while ((await PropertyGetAsync(CstsRegister, eightBytes: false) & 1) == 0)
        {
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"CSTS.RDY stayed 0 for {timeout.TotalSeconds:0.#} s after CC.EN=1");
            }

            await Task.Delay(50);
        }
    }
}
