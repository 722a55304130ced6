using System.Buffers;
using System.Net;
using System.Net.Sockets;
using ActorNvme.Protocol.Data;
using ActorNvme.Protocol.Nvme;
using ActorNvme.Protocol.Tcp;
using ActorNvme.Transport;

namespace ActorNvme.Benchmarks;

/// <summary>
/// A minimal NVMe/TCP controller with a null namespace, for measuring the host: answers ICReq,
/// Fabrics commands with success, reads with one C2HData carrying SUCCESS, in-capsule writes with a
/// CapsuleResp, other writes with one R2T then a CapsuleResp after the last H2CData. One thread per
/// connection with a blocking receive, every PDU in the buffer answered in one send; it allocates
/// nothing per command, so it does not pollute the host's allocation figures. On an admin queue it
/// answers just enough for the runtime's controller actor to come up (CAP, CSTS.RDY, Identify of a
/// controller with one 1 GiB namespace of 512-byte blocks, Number of Queues, Keep Alive; AERs are
/// held), so `actornvme perf` can run against it as against a target far cheaper than ours.
/// </summary>
public sealed class LoopbackResponder : IDisposable
{
    private const int BufferSize = 4 * 1024 * 1024;
    private static readonly byte[] Zeros = new byte[1024 * 1024];

    private readonly Socket _listener = new(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
    private readonly uint _maxH2CData;

    public LoopbackResponder(uint maxH2CData = 128 * 1024, int port = 0)
    {
        _maxH2CData = maxH2CData;
        _listener.Bind(new IPEndPoint(IPAddress.Loopback, port));
        _listener.Listen(16);
        Address = new TransportAddress("127.0.0.1", ((IPEndPoint)_listener.LocalEndPoint!).Port);
        new Thread(Accept) { IsBackground = true, Name = "responder accept" }.Start();
    }

    public TransportAddress Address { get; }

    public void Dispose() => _listener.Dispose();

    private void Accept()
    {
        try
        {
            while (true)
            {
                var socket = _listener.Accept();
                socket.NoDelay = true;
                new Thread(() => Serve(socket)) { IsBackground = true, Name = "responder connection" }.Start();
            }
        }
        catch (SocketException)
        {
            // Listener disposed.
        }
        catch (ObjectDisposedException)
        {
        }
    }

    private void Serve(Socket socket)
    {
        var session = new Session(socket, _maxH2CData);
        try
        {
            session.Run();
        }
        catch (SocketException)
        {
        }
        finally
        {
            socket.Dispose();
        }
    }

    private sealed class Session(Socket socket, uint maxH2CData)
    {
        private readonly byte[] _receive = new byte[BufferSize];
        private readonly byte[] _send = new byte[BufferSize + (64 * 1024)];
        private readonly uint[] _pendingWrites = new uint[65536];
        private PduFramerOptions _framer = PduFramerOptions.Controller(2 * 1024 * 1024);
        private DigestOptions _digests;
        private int _sendLength;
        private bool _admin;
        private ulong _configuration;

        public void Run()
        {
            int start = 0;
            int end = 0;
            while (true)
            {
                int received = socket.Receive(_receive, end, _receive.Length - end, SocketFlags.None);
                if (received == 0)
                {
                    return;
                }

                end += received;
                var buffer = new ReadOnlySequence<byte>(_receive, start, end - start);
                FrameStatus status;
                while ((status = PduFramer.TryParse(buffer, _framer, out var frame, out _)) == FrameStatus.Frame)
                {
                    Handle(frame);
                    buffer = buffer.Slice(frame.Length);
                    if (_sendLength > BufferSize)
                    {
                        Flush();
                    }
                }

                if (status == FrameStatus.Error)
                {
                    return;
                }

                start = buffer.Start.GetInteger();
                if (start == end)
                {
                    start = end = 0;
                }
                else if (end > _receive.Length / 2)
                {
                    Buffer.BlockCopy(_receive, start, _receive, 0, end - start);
                    end -= start;
                    start = 0;
                }

                Flush();
            }
        }

        private void Flush()
        {
            int sent = 0;
            while (sent < _sendLength)
            {
                sent += socket.Send(_send, sent, _sendLength - sent, SocketFlags.None);
            }

            _sendLength = 0;
        }

        private Span<byte> Reserve(int length) => _send.AsSpan(_sendLength, length);

        private void Handle(in PduFrame frame)
        {
            Span<byte> scratch = stackalloc byte[128];
            var header = frame.GetHeader(scratch);
            switch (frame.Type)
            {
                case PduType.ICReq:
                    var request = ICReq.Read(header);
                    _digests = request.Digests;
                    _framer = _framer.WithDigests(request.Digests);
                    new ICResp(0, 0, request.Digests, maxH2CData).WriteTo(Reserve(ICResp.Size));
                    _sendLength += ICResp.Size;
                    break;
                case PduType.CapsuleCmd:
                    OnCommand(SubmissionQueueEntry.Read(header[CommonHeader.Size..]), frame.Data.Length);
                    break;
                case PduType.H2CData:
                    var data = DataPduHeader.Read(header);
                    if ((frame.Common.Flags & PduFlags.LastPdu) != 0 && data.DataOffset + data.DataLength >= _pendingWrites[data.CommandId])
                    {
                        Respond(data.CommandId, 0);
                    }

                    break;
            }
        }

        private void OnCommand(in SubmissionQueueEntry command, long inCapsule)
        {
            uint length = command.DataPointer.Length;
            if (_admin && !command.IsFabrics)
            {
                OnAdminCommand(command, length);
                return;
            }

            switch (command.Opcode)
            {
                case (byte)NvmOpcode.Read:
                    int pdu = PduWriter.PduLength(PduSizes.DataHeader, (int)length, _digests, 4);
                    _sendLength += PduWriter.WriteDataPdu(Reserve(pdu), PduType.C2HData, new DataPduHeader(command.CommandId, 0, 0, length), Zeros.AsSpan(0, (int)length), _digests, last: true, success: true);
                    break;
                case (byte)NvmOpcode.Write when inCapsule == 0 && length > 0:
                    _pendingWrites[command.CommandId] = length;
                    int r2t = PduWriter.PduLength(PduSizes.R2T, 0, _digests, 4);
                    _sendLength += PduWriter.WriteR2T(Reserve(r2t), new R2THeader(command.CommandId, command.CommandId, 0, length), _digests);
                    break;
                case FabricsCommands.Opcode when command.FabricsType == FabricsCommandType.Connect:
                    _admin = FabricsCommands.ConnectQueueId(command) == 0;
                    Respond(command.CommandId, 1, sqHead: (FabricsCommands.ConnectAttributes(command) & FabricsCommands.DisableSqFlowControl) != 0 ? (ushort)0xFFFF : (ushort)0);
                    break;
                case FabricsCommands.Opcode when command.FabricsType == FabricsCommandType.PropertySet:
                    _configuration = FabricsCommands.PropertyValue(command);
                    Respond(command.CommandId, 0);
                    break;
                case FabricsCommands.Opcode when command.FabricsType == FabricsCommandType.PropertyGet:
                    ulong value = FabricsCommands.PropertyOffset(command) switch
                    {
                        ControllerRegister.Capabilities => 0x0000_0020_0101_03FFUL, // MQES 1023, CQR, TO 500 ms, CSS NVM
                        ControllerRegister.Version => 0x0001_0400,
                        ControllerRegister.Configuration => _configuration,
                        ControllerRegister.Status => (_configuration & 1) | (((_configuration >> 14) & 3) != 0 ? 0x8UL : 0),
                        _ => 0,
                    };
                    Respond(command.CommandId, (uint)value, (uint)(value >> 32));
                    break;
                default:
                    Respond(command.CommandId, 0);
                    break;
            }
        }

        private void OnAdminCommand(in SubmissionQueueEntry command, uint length)
        {
            switch ((AdminOpcode)command.Opcode)
            {
                case AdminOpcode.Identify:
                    Span<byte> page = stackalloc byte[4096];
                    page.Clear();
                    switch ((IdentifyCns)(command.Cdw10 & 0xFF))
                    {
                        case IdentifyCns.Controller:
                            new IdentifyController
                            {
                                SerialNumber = "loopback0001",
                                ModelNumber = "ActorNvme loopback responder",
                                ControllerId = 1,
                                NumberOfNamespaces = 1,
                                AsyncEventRequestLimit = 3,
                                MaxOutstandingCommands = 1024,
                                IoCommandCapsuleSize = (8192 + 64) / 16,
                                IoResponseCapsuleSize = 1,
                                SubsystemNqn = "nqn.2016-06.io.spdk:loopback",
                            }.WriteTo(page);
                            break;
                        case IdentifyCns.ActiveNamespaceList:
                            ActiveNamespaceList.WriteTo([1u], page);
                            break;
                        case IdentifyCns.Namespace:
                            var formats = new LbaFormatTable();
                            formats[0] = new LbaFormat(0, 9, 0);
                            const ulong blocks = (1UL << 30) / 512;
                            new IdentifyNamespace { NamespaceSize = blocks, NamespaceCapacity = blocks, NamespaceUtilization = blocks, LbaFormats = formats }.WriteTo(page);
                            break;
                        case IdentifyCns.NamespaceIdentificationDescriptors:
                            new NamespaceIdentifiers { Nguid = 0x1234_5678_9ABC_DEF0UL, CommandSet = 0 }.WriteTo(page);
                            break;
                    }

                    int size = (int)Math.Min(length, 4096);
                    int pdu = PduWriter.PduLength(PduSizes.DataHeader, size, _digests, 4);
                    _sendLength += PduWriter.WriteDataPdu(Reserve(pdu), PduType.C2HData, new DataPduHeader(command.CommandId, 0, 0, (uint)size), page[..size], _digests, last: true);
                    Respond(command.CommandId, 0);
                    break;
                case AdminOpcode.SetFeatures when (command.Cdw10 & 0xFF) == 0x07:
                    Respond(command.CommandId, 0x0007_0007); // eight I/O queues
                    break;
                case AdminOpcode.AsynchronousEventRequest:
                    break; // held, as a controller without events holds them
                default:
                    Respond(command.CommandId, 0);
                    break;
            }
        }

        private void Respond(ushort commandId, uint dw0, uint dw1 = 0, ushort sqHead = 0)
        {
            int length = PduWriter.PduLength(PduSizes.CapsuleResp, 0, _digests, 4);
            _sendLength += PduWriter.WriteCapsuleResponse(Reserve(length), new CompletionQueueEntry(dw0, dw1, sqHead, 1, commandId, NvmeStatus.Success), _digests);
        }
    }
}
