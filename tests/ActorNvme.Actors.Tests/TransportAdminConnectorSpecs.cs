using System.Buffers;
using System.IO.Pipelines;
using System.Threading.Channels;
using ActorNvme.Actors.Connection;
using ActorNvme.Protocol.Nvme;
using ActorNvme.Protocol.Tcp;
using ActorNvme.Transport;
using ActorNvme.Transport.InMemory;

namespace ActorNvme.Actors.Tests;

/// <summary>
/// The production admin connector over the in-memory transport against a controller scripted PDU by
/// PDU: what the controller actor receives for a read whose data fell short, and when an id may be
/// used again.
/// </summary>
public sealed class TransportAdminConnectorSpecs
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(20);
    private static int _nextPort;

    [Fact]
    public async Task An_Identify_answered_with_short_data_reaches_the_controller_as_a_data_transfer_error()
    {
        await using var rig = await Rig.StartAsync(queueSize: 32);

        Assert.True(rig.Connection.TrySubmit(AdminCommands.Identify(1), default, 4096, out ushort cid));
        var command = await rig.Peer.ReceiveCommandAsync();
        Assert.Equal(cid, command.CommandId);
        await rig.Peer.SendC2HDataAsync(cid, new byte[512], success: false);
        await rig.Peer.RespondAsync(cid);

        var response = await rig.Events.NextAsync();
        Assert.Equal(cid, response.CommandId);
        Assert.False(response.Entry.Status.IsSuccess, "a short Identify must not look complete to the controller's continuation");
        Assert.Equal(NvmeStatus.Generic(GenericStatus.DataTransferError), response.Entry.Status);
        Assert.Equal(512, response.Data.Length);
        Assert.False(rig.Connection.Closed.IsCompleted);
    }

    [Fact]
    public async Task An_id_is_used_again_only_after_the_controller_released_it()
    {
        await using var rig = await Rig.StartAsync(queueSize: 2); // one command id

        Assert.True(rig.Connection.TrySubmit(AdminCommands.AsynchronousEventRequest(), default, 0, out ushort cid));
        await rig.Peer.ReceiveCommandAsync();
        await rig.Peer.RespondAsync(cid);
        Assert.Equal(cid, (await rig.Events.NextAsync()).CommandId);

        // Delivered to the actor's mailbox but not handled yet: the id is still taken.
        Assert.False(rig.Connection.TrySubmit(AdminCommands.KeepAlive(), default, 0, out _));

        rig.Connection.Release(cid);
        Assert.True(rig.Connection.TrySubmit(AdminCommands.KeepAlive(), default, 0, out ushort again));
        Assert.Equal(cid, again);
        Assert.Equal(cid, (await rig.Peer.ReceiveCommandAsync()).CommandId);
    }

    private sealed class Rig : IAsyncDisposable
    {
        private readonly IDisposable _listener;

        private Rig(IDisposable listener, IAdminConnection connection, RawController peer, RecordingEvents events)
        {
            _listener = listener;
            Connection = connection;
            Peer = peer;
            Events = events;
        }

        public IAdminConnection Connection { get; }

        public RawController Peer { get; }

        public RecordingEvents Events { get; }

        public static async Task<Rig> StartAsync(int queueSize)
        {
            var network = new InMemoryNetwork();
            var address = new TransportAddress("connector-spec", Interlocked.Increment(ref _nextPort));
            var accepted = Channel.CreateUnbounded<INvmeConnection>();
            var listener = network.Listen(address, c => accepted.Writer.WriteAsync(c).AsTask());
            var events = new RecordingEvents();
            var connector = new TransportAdminConnector(new InMemoryTransport(network));
            var connection = await connector.ConnectAsync(new AdminConnectRequest(address, DigestOptions.None, queueSize, "spec"), events, CancellationToken.None).WaitAsync(Deadline);
            var peer = new RawController((await accepted.Reader.ReadAsync().AsTask().WaitAsync(Deadline)).Pipe);
            var initializing = connection.InitializeAsync(CancellationToken.None);
            await peer.AcceptAsync();
            await initializing.WaitAsync(Deadline);
            return new Rig(listener, connection, peer, events);
        }

        public ValueTask DisposeAsync()
        {
            Connection.Abort(new ConnectionClosed(CloseReason.LocalShutdown, "spec done"));
            _listener.Dispose();
            return ValueTask.CompletedTask;
        }
    }

    /// <summary>The controller end, without digests: ICResp, then capsules in, data and responses out.</summary>
    private sealed class RawController(IDuplexPipe pipe)
    {
        private readonly PduFramerOptions _framer = PduFramerOptions.Controller();

        public async Task AcceptAsync()
        {
            await ReceiveAsync(PduType.ICReq);
            var answer = new byte[ICResp.Size];
            new ICResp(0, 0, DigestOptions.None, 128 * 1024).WriteTo(answer);
            await pipe.Output.WriteAsync(answer);
        }

        public async Task<SubmissionQueueEntry> ReceiveCommandAsync()
        {
            var header = await ReceiveAsync(PduType.CapsuleCmd);
            return SubmissionQueueEntry.Read(header.AsSpan(CommonHeader.Size));
        }

        public async Task SendC2HDataAsync(ushort commandId, byte[] data, bool success)
        {
            var bytes = new byte[PduWriter.PduLength(PduSizes.DataHeader, data.Length, DigestOptions.None, 4)];
            PduWriter.WriteDataPdu(bytes, PduType.C2HData, new DataPduHeader(commandId, 0, 0, (uint)data.Length), data, DigestOptions.None, last: true, success);
            await pipe.Output.WriteAsync(bytes);
        }

        public async Task RespondAsync(ushort commandId)
        {
            var bytes = new byte[PduWriter.PduLength(PduSizes.CapsuleResp, 0, DigestOptions.None, 4)];
            PduWriter.WriteCapsuleResponse(bytes, new CompletionQueueEntry(0, 0, 0, 0, commandId, NvmeStatus.Success), DigestOptions.None);
            await pipe.Output.WriteAsync(bytes);
        }

        private async Task<byte[]> ReceiveAsync(PduType expected)
        {
            using var timeout = new CancellationTokenSource(Deadline);
            while (true)
            {
                var result = await pipe.Input.ReadAsync(timeout.Token);
                var buffer = result.Buffer;
                if (PduFramer.TryParse(buffer, _framer, out var frame, out var fault) is var status && status == FrameStatus.Frame)
                {
                    Assert.Equal(expected, frame.Common.Type);
                    var header = frame.HeaderBytes.ToArray();
                    pipe.Input.AdvanceTo(buffer.GetPosition(frame.Length));
                    return header;
                }

                Assert.NotEqual(FrameStatus.Error, status);
                Assert.False(result.IsCompleted, $"the host closed the connection while the controller waited for {expected} ({fault})");
                pipe.Input.AdvanceTo(buffer.Start, buffer.End);
            }
        }
    }

    private sealed class RecordingEvents : IAdminEvents
    {
        private readonly Channel<AdminResponse> _completions = Channel.CreateUnbounded<AdminResponse>();

        public void Completed(AdminResponse completion) => _completions.Writer.TryWrite(completion);

        public void Closed(ConnectionClosed reason)
        {
        }

        public async Task<AdminResponse> NextAsync() => await _completions.Reader.ReadAsync().AsTask().WaitAsync(Deadline);
    }
}
