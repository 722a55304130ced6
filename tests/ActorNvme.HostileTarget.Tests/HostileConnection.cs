using System.Buffers;
using System.IO.Pipelines;
using System.Net.Sockets;
using System.Text;
using ActorNvme.Protocol.Data;
using ActorNvme.Protocol.Nvme;
using ActorNvme.Protocol.Tcp;

namespace ActorNvme.HostileTarget.Tests;

/// <summary>
/// One queue (admin or I/O) of a <see cref="HostileTarget"/>: a single loop reads each PDU and
/// writes every answer, so nothing here needs a lock.
/// </summary>
internal sealed class HostileConnection : IAsyncDisposable
{
    private const uint MaxH2CData = 128 * 1024;
    private const ushort ControllerId = 1;
    private const ushort UnknownCommandId = 0xBEEF;
    private const int MaxImmediateAsyncEvents = 500;

    // Byte offsets of fields inside one discovery log entry, for corrupting what the encoder would refuse to write.
    private const int EntrySubsystemNqnOffset = 256;

    private readonly HostileTarget _target;
    private readonly Socket _socket;
    private readonly NetworkStream _stream;
    private readonly PipeReader _input;
    private readonly FaultMode _mode;
    private readonly PduFramerOptions _framer = PduFramerOptions.Controller();
    private readonly Dictionary<ushort, PendingWrite> _writes = [];
    private readonly List<ushort> _writesWithoutR2T = [];
    private ushort _queueId;
    private int _queueSize = 32;
    private ushort _sqHead;
    private bool _discovery;
    private bool _enabled;
    private ushort _nextTransferTag;
    private int _immediateAsyncEvents;
    private bool _faultedOnce;
    private (ushort CommandId, NvmeStatus Status)? _lastCompletion;

    public HostileConnection(HostileTarget target, Socket socket)
    {
        _target = target;
        _socket = socket;
        _socket.NoDelay = true;
        _stream = new NetworkStream(socket, ownsSocket: true);
        _input = PipeReader.Create(_stream);
        _mode = target.Mode;
    }

    private sealed record PendingWrite(ushort CommandId, int MediaOffset, int Length)
    {
        public int Received { get; set; }
    }

    private sealed record Pdu(CommonHeader Common, byte[] Header, byte[] Data, byte[] Raw)
    {
        public SubmissionQueueEntry Command => SubmissionQueueEntry.Read(Header.AsSpan(CommonHeader.Size));
    }

    private CancellationToken Stopping => _target.Stopping;

    private bool IsAdmin => _queueId == 0;

    public async Task RunAsync()
    {
        if (!await InitializeAsync())
        {
            return;
        }

        while (true)
        {
            var pdu = await ReceiveAsync();
            switch (pdu.Common.Type)
            {
                case PduType.CapsuleCmd:
                    await HandleCommandAsync(pdu.Command, pdu.Data, pdu.Header);
                    break;
                case PduType.H2CData:
                    await HandleH2CDataAsync(DataPduHeader.Read(pdu.Header), pdu.Data);
                    break;
                case PduType.H2CTermReq:
                    return; // the host gave up on us: exactly what a hostile mode wants
                default:
                    return;
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _input.CompleteAsync();
        await _stream.DisposeAsync();
    }

    private async Task<bool> InitializeAsync()
    {
        var request = await ReceiveAsync();
        if (request.Common.Type != PduType.ICReq)
        {
            return false;
        }

        var icreq = ICReq.Read(request.Raw);
        var answer = new byte[ICResp.Size];
        var good = new ICResp(0, 0, icreq.Digests, MaxH2CData);
        switch (_mode)
        {
            case FaultMode.IcRespNeverAnswers:
                _target.FaultApplied();
                await DrainUntilClosedAsync();
                return false;
            case FaultMode.IcRespCloses:
                _target.FaultApplied();
                return false;
            case FaultMode.IcRespWrongPfv:
                _target.FaultApplied();
                (good with { PduFormatVersion = 1 }).WriteTo(answer);
                break;
            case FaultMode.IcRespWrongType:
                _target.FaultApplied();
                answer = Response(0, NvmeStatus.Success, 0, 0, 0);
                break;
            case FaultMode.IcRespHugeHeaderLength:
                _target.FaultApplied();
                good.WriteTo(answer);
                new CommonHeader(PduType.ICResp, PduFlags.None, byte.MaxValue, 0, ICResp.Size).WriteTo(answer);
                break;
            case FaultMode.IcRespHugePduLength:
                _target.FaultApplied();
                good.WriteTo(answer);
                new CommonHeader(PduType.ICResp, PduFlags.None, ICResp.Size, 0, 0xFFFF_FF00).WriteTo(answer);
                break;
            case FaultMode.IcRespDigestMismatch:
                _target.FaultApplied();
                (good with { Digests = icreq.Digests ^ DigestOptions.Both }).WriteTo(answer);
                break;
            default:
                good.WriteTo(answer);
                break;
        }

        await SendAsync(answer);
        if (_mode is FaultMode.IcRespWrongPfv or FaultMode.IcRespWrongType or FaultMode.IcRespHugeHeaderLength or FaultMode.IcRespHugePduLength or FaultMode.IcRespDigestMismatch)
        {
            await DrainUntilClosedAsync();
            return false;
        }

        return true;
    }

    private async Task HandleCommandAsync(SubmissionQueueEntry sqe, byte[] inCapsule, byte[] header)
    {
        _sqHead = (ushort)((_sqHead + 1) % _queueSize);
        if (sqe.IsFabrics)
        {
            await HandleFabricsAsync(sqe, inCapsule);
        }
        else if (IsAdmin)
        {
            await HandleAdminAsync(sqe);
        }
        else
        {
            await HandleIoAsync(sqe, header);
        }
    }

    // ---- Fabrics: Connect, Property Get / Set ----

    private async Task HandleFabricsAsync(SubmissionQueueEntry sqe, byte[] data)
    {
        switch (sqe.FabricsType)
        {
            case FabricsCommandType.Connect:
                await ConnectAsync(sqe, data);
                break;
            case FabricsCommandType.PropertyGet:
                await PropertyGetAsync(sqe);
                break;
            case FabricsCommandType.PropertySet:
                if (FabricsCommands.PropertyOffset(sqe) == ControllerRegister.Configuration)
                {
                    var configuration = new ControllerConfiguration((uint)FabricsCommands.PropertyValue(sqe));
                    _enabled = configuration.Enable;
                }

                await RespondAsync(sqe.CommandId);
                break;
            default:
                await RespondAsync(sqe.CommandId, NvmeStatus.Generic(GenericStatus.InvalidOpcode, true));
                break;
        }
    }

    private async Task ConnectAsync(SubmissionQueueEntry sqe, byte[] data)
    {
        _queueId = FabricsCommands.ConnectQueueId(sqe);
        _queueSize = Math.Max(2, FabricsCommands.ConnectQueueSize(sqe));
        _sqHead = (ushort)(1 % _queueSize);
        if (!ConnectData.TryRead(data, out var connect, out _))
        {
            await RespondAsync(sqe.CommandId, NvmeStatus.Specific((byte)FabricsStatus.ConnectInvalidParameters, true));
            return;
        }

        _discovery = connect.SubsystemNqn == Nqn.Discovery;
        if (_queueId == 0 && !_discovery)
        {
            switch (_mode)
            {
                case FaultMode.ConnectErrorStatus:
                    _target.FaultApplied();
                    await RespondAsync(sqe.CommandId, NvmeStatus.Generic(GenericStatus.InternalError));
                    return;
                case FaultMode.ConnectDoNotRetry:
                    _target.FaultApplied();
                    await RespondAsync(sqe.CommandId, NvmeStatus.Specific((byte)FabricsStatus.ConnectInvalidHost, true));
                    return;
                case FaultMode.ConnectWrongControllerId:
                    // 0xFFFF asks for a dynamic controller; no controller has it as its id.
                    _target.FaultApplied();
                    await RespondAsync(sqe.CommandId, NvmeStatus.Success, ConnectData.DynamicControllerId);
                    return;
                case FaultMode.ConnectNeverAnswers:
                    _target.FaultApplied();
                    return;
                case FaultMode.ConnectAnswersWrongCid:
                    _target.FaultApplied();
                    await RespondAsync((ushort)(sqe.CommandId + 1), NvmeStatus.Success, ControllerId);
                    return;
            }
        }

        await RespondAsync(sqe.CommandId, NvmeStatus.Success, ControllerId);
    }

    private async Task PropertyGetAsync(SubmissionQueueEntry sqe)
    {
        uint offset = FabricsCommands.PropertyOffset(sqe);
        ulong value;
        if (offset == ControllerRegister.Capabilities)
        {
            // MQES 127, CQR, TO 1 (500 ms), the NVM command set.
            value = new ControllerCapabilities { MaxQueueEntries = 127, ContiguousQueuesRequired = true, Timeout = 1, CommandSets = 1 }.Value;
        }
        else if (offset == ControllerRegister.Version)
        {
            value = NvmeVersion.V1_4_0.Value;
        }
        else if (offset == ControllerRegister.Configuration)
        {
            value = _enabled ? 0x0046_0001u : 0u;
        }
        else if (offset == ControllerRegister.Status)
        {
            var status = new ControllerStatus { Ready = _enabled };
            if (!_discovery && _mode == FaultMode.CstsFatalStatus && _enabled)
            {
                _target.FaultApplied();
                status = new ControllerStatus { FatalStatus = true };
            }
            else if (!_discovery && _mode == FaultMode.CstsNeverReady)
            {
                _target.FaultApplied();
                status = default;
            }

            value = status.Value;
        }
        else
        {
            await RespondAsync(sqe.CommandId, NvmeStatus.Generic(GenericStatus.InvalidField, true));
            return;
        }

        await RespondAsync(sqe.CommandId, NvmeStatus.Success, (uint)value, (uint)(value >> 32));
    }

    // ---- Admin ----

    private async Task HandleAdminAsync(SubmissionQueueEntry sqe)
    {
        switch ((AdminOpcode)sqe.Opcode)
        {
            case AdminOpcode.Identify:
                await IdentifyAsync(sqe);
                break;
            case AdminOpcode.GetLogPage:
                await GetLogPageAsync(sqe);
                break;
            case AdminOpcode.SetFeatures when (FeatureId)(byte)sqe.Cdw10 == FeatureId.NumberOfQueues:
                await RespondAsync(sqe.CommandId, NvmeStatus.Success, 0); // one submission and one completion queue (0's based)
                break;
            case AdminOpcode.SetFeatures:
            case AdminOpcode.GetFeatures:
            case AdminOpcode.KeepAlive:
                await RespondAsync(sqe.CommandId);
                break;
            case AdminOpcode.AsynchronousEventRequest:
                await AsyncEventRequestAsync(sqe);
                break;
            default:
                await RespondAsync(sqe.CommandId, NvmeStatus.Generic(GenericStatus.InvalidOpcode, true));
                break;
        }
    }

    private async Task AsyncEventRequestAsync(SubmissionQueueEntry sqe)
    {
        if (_discovery)
        {
            return; // held until the connection ends, as a quiet discovery controller does
        }

        if (_mode == FaultMode.AerCompletesAtOnce && _immediateAsyncEvents < MaxImmediateAsyncEvents)
        {
            _immediateAsyncEvents++;
            _target.FaultApplied();
            var notice = AsyncEventCompletion.ForNotice(AsyncEventNotice.NamespaceAttributeChanged, (byte)LogPageId.ChangedNamespaceList);
            await RespondAsync(sqe.CommandId, NvmeStatus.Success, notice.ToDword0());
        }
        else if (_mode == FaultMode.AerUnknownLogPage && !_faultedOnce)
        {
            _faultedOnce = true;
            _target.FaultApplied();
            var unknown = new AsyncEventCompletion(AsyncEventType.Notice, 0x7E, 0xAB);
            await RespondAsync(sqe.CommandId, NvmeStatus.Success, unknown.ToDword0());
        }

        // otherwise held: a well-behaved controller answers an AER only when something happens
    }

    private async Task IdentifyAsync(SubmissionQueueEntry sqe)
    {
        var cns = (IdentifyCns)(byte)sqe.Cdw10;
        var page = new byte[IdentifyController.Size];
        switch (cns)
        {
            case IdentifyCns.Controller:
                Identity().WriteTo(page);
                if (!_discovery && _mode == FaultMode.IdentifyControllerShortData)
                {
                    _target.FaultApplied();
                    page = page[..512];
                }
                else if (!_discovery && _mode == FaultMode.IdentifyControllerGarbage)
                {
                    _target.FaultApplied();
                    new Random(10).NextBytes(page);
                }

                break;
            case IdentifyCns.ActiveNamespaceList when !_discovery:
                if (_mode == FaultMode.ActiveListHuge)
                {
                    _target.FaultApplied();
                    uint[] all = [.. Enumerable.Range(1, ActiveNamespaceList.MaxEntries).Select(i => (uint)i)];
                    ActiveNamespaceList.WriteTo(all, page);
                }
                else
                {
                    ActiveNamespaceList.WriteTo(sqe.NamespaceId < 1 ? [1u] : [], page);
                }

                break;
            case IdentifyCns.Namespace when !_discovery:
                if (sqe.NamespaceId == 1)
                {
                    NamespaceData().WriteTo(page);
                }

                // any other id is inactive: zeros
                break;
            default:
                await RespondAsync(sqe.CommandId, NvmeStatus.Generic(GenericStatus.InvalidField, true));
                return;
        }

        await SendDataAndRespondAsync(sqe.CommandId, page);
    }

    private IdentifyController Identity() => new()
    {
        SerialNumber = "hostile",
        ModelNumber = "ActorNvme hostile target",
        FirmwareRevision = "1.0",
        ControllerId = ControllerId,
        Version = NvmeVersion.V1_4_0,
        ControllerType = _discovery ? ControllerType.Discovery : ControllerType.Io,
        OptionalAsyncEvents = (uint)(_discovery ? AsyncEventConfiguration.DiscoveryLogChangeNotices : AsyncEventConfiguration.NamespaceAttributeNotices),
        AsyncEventRequestLimit = 3,
        LogPageAttributes = 0x04,
        KeepAliveSupport = 10,
        SubmissionQueueEntrySize = 0x66,
        CompletionQueueEntrySize = 0x44,
        MaxOutstandingCommands = 128,
        MaxDataTransferSize = _mode == FaultMode.StopsReadingWriteData ? (byte)8 : (byte)5, // 1 MiB (the whole namespace) or 128 KiB, in 4 KiB pages
        NumberOfNamespaces = _discovery ? 0u : 1u,
        MaxAllowedNamespaces = _discovery ? 0u : 1u,
        SglSupport = 1,
        SubsystemNqn = _discovery ? Nqn.Discovery : HostileTarget.SubsystemNqn,
        IoCommandCapsuleSize = _discovery ? 0u : (64u + 1024u) / 16u, // room for the Connect data only: every 4 KiB write goes through R2T
        IoResponseCapsuleSize = _discovery ? 0u : 1u,
        MaxSglDataBlockDescriptors = 1,
    };

    private IdentifyNamespace NamespaceData()
    {
        var formats = default(LbaFormatTable);
        formats[0] = new LbaFormat(0, 9, 0);
        ulong size = HostileTarget.BlockCount;
        if (_mode == FaultMode.NamespaceZeroSize)
        {
            _target.FaultApplied();
            size = 0;
        }

        if (_mode == FaultMode.NamespaceBadLbaFormat)
        {
            // LBADS 40: a block of 1 TiB, and FLBAS names a format beyond NLBAF.
            _target.FaultApplied();
            formats[0] = new LbaFormat(0, 40, 0);
            return new IdentifyNamespace { NamespaceSize = size, NamespaceCapacity = size, NumberOfLbaFormats = 0, FormattedLbaSize = 5, LbaFormats = formats };
        }

        return new IdentifyNamespace { NamespaceSize = size, NamespaceCapacity = size, NamespaceUtilization = size, LbaFormats = formats };
    }

    private async Task GetLogPageAsync(SubmissionQueueEntry sqe)
    {
        var logPageId = (LogPageId)(byte)sqe.Cdw10;
        long length = (((long)(sqe.Cdw11 & 0xFFFF) << 16) | (sqe.Cdw10 >> 16)) + 1;
        length *= 4;
        ulong offset = ((ulong)sqe.Cdw13 << 32) | sqe.Cdw12;
        byte[] log;
        if (logPageId == LogPageId.Discovery && _discovery)
        {
            log = DiscoveryLog();
        }
        else if (logPageId == LogPageId.ChangedNamespaceList && !_discovery)
        {
            log = new byte[4096]; // no namespace changed
        }
        else
        {
            await RespondAsync(sqe.CommandId, NvmeStatus.Generic(GenericStatus.InvalidField, true));
            return;
        }

        if (length > 4 * 1024 * 1024)
        {
            await RespondAsync(sqe.CommandId, NvmeStatus.Generic(GenericStatus.InvalidField, true));
            return;
        }

        var page = new byte[length];
        if (offset < (ulong)log.Length)
        {
            log.AsSpan((int)offset, (int)Math.Min(length, log.Length - (long)offset)).CopyTo(page);
        }

        await SendDataAndRespondAsync(sqe.CommandId, page);
    }

    private DiscoveryLogEntry Entry(string subsystemNqn, SubsystemType type = SubsystemType.Nvm, string? port = null) => new()
    {
        TransportType = TransportType.Tcp,
        AddressFamily = NvmeAddressFamily.IPv4,
        SubsystemType = type,
        TransportRequirements = TransportRequirements.SecureChannelNotRequired,
        PortId = 1,
        ControllerId = DiscoveryLogEntry.DynamicControllerId,
        AdminMaxSqSize = 32,
        TransportServiceId = port ?? _target.Address.Port.ToString(System.Globalization.CultureInfo.InvariantCulture),
        TransportAddress = _target.Address.Host,
        SubsystemNqn = subsystemNqn,
    };

    private byte[] DiscoveryLog()
    {
        DiscoveryLogEntry[] entries = _mode switch
        {
            FaultMode.LogInvalidSubnqn => [Entry("not-an-nqn")],
            FaultMode.LogNonUtf8Subnqn or FaultMode.LogNulInSubnqn => [Entry("nqn.2016-06.io.actornvme:placeholder")],
            FaultMode.LogBadPort => [Entry(HostileTarget.SubsystemNqn, port: "99999")],
            FaultMode.LogCurrentDiscoverySubtype => [Entry(Nqn.Discovery, SubsystemType.CurrentDiscovery)],
            FaultMode.LogUnknownSubtype => [Entry(HostileTarget.SubsystemNqn, (SubsystemType)0x7F)],
            FaultMode.Log2000Records => [.. Enumerable.Repeat(Entry(HostileTarget.SubsystemNqn), 2000)],
            _ => [Entry(HostileTarget.SubsystemNqn)],
        };

        ulong generation = _target.CurrentLogGeneration;
        if (_mode == FaultMode.LogGenctrChangesDuringRead)
        {
            _target.FaultApplied();
            generation = _target.NextLogGeneration();
        }

        var log = new byte[DiscoveryLogPage.GetSize(entries.Length)];
        DiscoveryLogPage.WriteTo(generation, entries, log);
        var firstEntryNqn = log.AsSpan(DiscoveryLogHeader.Size + EntrySubsystemNqnOffset, DiscoveryLogEntry.SubsystemNqnLength);
        switch (_mode)
        {
            case FaultMode.LogNumrecHuge:
                _target.FaultApplied();
                new DiscoveryLogHeader(generation, 1UL << 40).WriteTo(log);
                break;
            case FaultMode.LogNonUtf8Subnqn:
                _target.FaultApplied();
                firstEntryNqn.Clear();
                Encoding.ASCII.GetBytes("nqn.2016-06.io.actornvme:bad-").CopyTo(firstEntryNqn);
                firstEntryNqn[29] = 0xFF;
                firstEntryNqn[30] = 0xFE;
                firstEntryNqn[31] = 0xC3;
                break;
            case FaultMode.LogNulInSubnqn:
                _target.FaultApplied();
                firstEntryNqn.Clear();
                Encoding.ASCII.GetBytes("nqn.2016-06.io.actornvme:a\0hidden").CopyTo(firstEntryNqn);
                break;
            case FaultMode.LogInvalidSubnqn:
            case FaultMode.LogBadPort:
            case FaultMode.LogCurrentDiscoverySubtype:
            case FaultMode.LogUnknownSubtype:
            case FaultMode.Log2000Records:
                _target.FaultApplied();
                break;
        }

        return log;
    }

    // ---- I/O ----

    private async Task HandleIoAsync(SubmissionQueueEntry sqe, byte[] header)
    {
        if (_mode == FaultMode.CqeDuplicate && _lastCompletion is { } last)
        {
            // The previous completion again, once the host has sent its next command: when that command
            // reuses the id, only a host that checks the transfer tells the stale completion from its own.
            _target.FaultApplied();
            _lastCompletion = null;
            await RespondAsync(last.CommandId, last.Status);
        }

        if (_mode == FaultMode.C2HTermReq)
        {
            _target.FaultApplied();
            var termReq = new byte[TermReq.HeaderSize + PduSizes.MaxTermReqData];
            int length = new TermReq(TermReqError.InvalidHeaderField, 10).WriteTo(termReq, PduType.C2HTermReq, header);
            await SendAsync(termReq.AsMemory(0, length));
            await DrainUntilClosedAsync();
            return;
        }

        ulong lba = NvmCommands.StartLba(sqe);
        int blocks = NvmCommands.BlockCount(sqe);
        long end = ((long)lba + blocks) * HostileTarget.BlockSize;
        if (end > _target.Media.Length)
        {
            await CompleteIoAsync(sqe.CommandId, NvmeStatus.Generic(GenericStatus.LbaOutOfRange, true));
            return;
        }

        int mediaOffset = (int)lba * HostileTarget.BlockSize;
        int bytes = blocks * HostileTarget.BlockSize;
        switch ((NvmOpcode)sqe.Opcode)
        {
            case NvmOpcode.Read:
                await ReadAsync(sqe.CommandId, mediaOffset, bytes);
                break;
            case NvmOpcode.Write:
                await StartWriteAsync(sqe.CommandId, mediaOffset, bytes);
                break;
            default:
                await CompleteIoAsync(sqe.CommandId, NvmeStatus.Success);
                break;
        }
    }

    private async Task ReadAsync(ushort commandId, int mediaOffset, int length)
    {
        var data = _target.Media.AsMemory(mediaOffset, length);
        switch (_mode)
        {
            case FaultMode.C2HDataShort:
                _target.FaultApplied();
                await SendAsync(C2HData(commandId, 0, data.Span[..(length / 2)], last: true));
                await CompleteIoAsync(commandId, NvmeStatus.Success);
                return;
            case FaultMode.C2HDataGap:
                _target.FaultApplied();
                await SendAsync(C2HData(commandId, 0, data.Span[..(length / 4)], last: false));
                await SendAsync(C2HData(commandId, (uint)(length / 2), data.Span[(length / 2)..], last: true));
                await CompleteIoAsync(commandId, NvmeStatus.Success);
                return;
            case FaultMode.C2HDataBeyondLength:
                _target.FaultApplied();
                await SendAsync(C2HData(commandId, 0, new byte[length + HostileTarget.BlockSize], last: true));
                await CompleteIoAsync(commandId, NvmeStatus.Success);
                return;
            case FaultMode.C2HDataSuccessWithoutLast:
            {
                _target.FaultApplied();
                var pdu = C2HData(commandId, 0, data.Span, last: true, success: true);
                CommonHeader.TryRead(pdu, out var common);
                (common with { Flags = PduFlags.Success }).WriteTo(pdu);
                await SendAsync(pdu); // and no completion: SUCCESS without LAST_PDU completes nothing
                return;
            }

            case FaultMode.C2HDataUnknownCid:
                _target.FaultApplied();
                await SendAsync(C2HData(UnknownCommandId, 0, data.Span, last: true));
                break;
            case FaultMode.R2TForRead:
                _target.FaultApplied();
                await SendAsync(ReadyToTransfer(commandId, _nextTransferTag++, 0, (uint)length));
                return;
        }

        await SendAsync(C2HData(commandId, 0, data.Span, last: true));
        await CompleteIoAsync(commandId, NvmeStatus.Success);
    }

    private async Task StartWriteAsync(ushort commandId, int mediaOffset, int length)
    {
        ushort tag = _nextTransferTag++;
        _writes[tag] = new PendingWrite(commandId, mediaOffset, length);
        if (_mode == FaultMode.StopsReadingWriteData)
        {
            await AskForAllThenStopReadingAsync(tag);
            return;
        }

        uint r2tLength = (uint)length;
        if (_mode == FaultMode.R2TBeyondLength)
        {
            _target.FaultApplied();
            r2tLength = (uint)length * 2;
        }

        await SendAsync(ReadyToTransfer(commandId, tag, 0, r2tLength));
    }

    /// <summary>
    /// Holds the R2Ts until <see cref="HostileTarget.StalledWrites"/> writes have arrived (the host cannot
    /// send data before an R2T, so their capsules all come first), asks for all their data at once, and
    /// then reads nothing until the test resumes it: the host has more to send than the sockets can hold.
    /// </summary>
    private async Task AskForAllThenStopReadingAsync(ushort tag)
    {
        _writesWithoutR2T.Add(tag);
        if (_writesWithoutR2T.Count < HostileTarget.StalledWrites)
        {
            return;
        }

        foreach (ushort waiting in _writesWithoutR2T)
        {
            var write = _writes[waiting];
            await SendAsync(ReadyToTransfer(write.CommandId, waiting, 0, (uint)write.Length));
        }

        _writesWithoutR2T.Clear();
        _target.FaultApplied();
        await _target.ReadingResumed.WaitAsync(Stopping);
    }

    private async Task HandleH2CDataAsync(DataPduHeader header, byte[] data)
    {
        if (!_writes.TryGetValue(header.TransferTag, out var write) || header.CommandId != write.CommandId
            || header.DataOffset + (long)data.Length > write.Length)
        {
            return; // a host that sends stray data is not what this target tests
        }

        data.CopyTo(_target.Media.AsSpan(write.MediaOffset + (int)header.DataOffset));
        write.Received += data.Length;
        if (write.Received >= write.Length)
        {
            _writes.Remove(header.TransferTag);
            await CompleteIoAsync(write.CommandId, NvmeStatus.Success);
        }
    }

    /// <summary>Completes an I/O command, applying the completion-queue faults.</summary>
    private async Task CompleteIoAsync(ushort commandId, NvmeStatus status)
    {
        ushort sqHead = _sqHead;
        switch (_mode)
        {
            case FaultMode.CqeUnknownCid:
                _target.FaultApplied();
                await RespondAsync(UnknownCommandId, NvmeStatus.Success);
                break;
            case FaultMode.CqeDoNotRetryStatus:
                _target.FaultApplied();
                status = NvmeStatus.Generic(GenericStatus.InternalError, doNotRetry: true);
                break;
            case FaultMode.CqeSqHeadGarbage:
                _target.FaultApplied();
                sqHead = 0xFFF7;
                break;
        }

        await RespondAsync(commandId, status, sqHead: sqHead);
        _lastCompletion = (commandId, status);
    }

    // ---- PDUs ----

    private Task RespondAsync(ushort commandId, NvmeStatus status = default, uint dw0 = 0, uint dw1 = 0, ushort? sqHead = null) =>
        SendAsync(Response(commandId, status, dw0, dw1, sqHead ?? _sqHead));

    private byte[] Response(ushort commandId, NvmeStatus status, uint dw0, uint dw1, ushort sqHead)
    {
        var bytes = new byte[PduWriter.PduLength(PduSizes.CapsuleResp, 0, DigestOptions.None, 4)];
        PduWriter.WriteCapsuleResponse(bytes, new CompletionQueueEntry(dw0, dw1, sqHead, _queueId, commandId, status), DigestOptions.None);
        return bytes;
    }

    private static byte[] C2HData(ushort commandId, uint offset, ReadOnlySpan<byte> data, bool last, bool success = false)
    {
        var bytes = new byte[PduWriter.PduLength(PduSizes.DataHeader, data.Length, DigestOptions.None, 4)];
        PduWriter.WriteDataPdu(bytes, PduType.C2HData, new DataPduHeader(commandId, 0, offset, (uint)data.Length), data, DigestOptions.None, last, success);
        return bytes;
    }

    private static byte[] ReadyToTransfer(ushort commandId, ushort transferTag, uint offset, uint length)
    {
        var bytes = new byte[PduWriter.PduLength(PduSizes.R2T, 0, DigestOptions.None, 4)];
        PduWriter.WriteR2T(bytes, new R2THeader(commandId, transferTag, offset, length), DigestOptions.None);
        return bytes;
    }

    private async Task SendDataAndRespondAsync(ushort commandId, byte[] data)
    {
        for (int offset = 0; offset < data.Length; offset += (int)MaxH2CData)
        {
            int chunk = Math.Min((int)MaxH2CData, data.Length - offset);
            await SendAsync(C2HData(commandId, (uint)offset, data.AsSpan(offset, chunk), last: offset + chunk == data.Length));
        }

        await RespondAsync(commandId);
    }

    private async Task SendAsync(ReadOnlyMemory<byte> bytes) => await _stream.WriteAsync(bytes, Stopping);

    private async Task<Pdu> ReceiveAsync()
    {
        while (true)
        {
            var result = await _input.ReadAsync(Stopping);
            var buffer = result.Buffer;
            var status = PduFramer.TryParse(buffer, _framer, out var frame, out var fault);
            if (status == FrameStatus.Frame)
            {
                var pdu = new Pdu(frame.Common, frame.HeaderBytes.ToArray(), frame.Data.ToArray(), buffer.Slice(0, frame.Length).ToArray());
                _input.AdvanceTo(buffer.GetPosition(frame.Length));
                return pdu;
            }

            if (status == FrameStatus.Error)
            {
                throw new InvalidDataException($"the host sent a malformed PDU: {fault}");
            }

            _input.AdvanceTo(buffer.Start, buffer.End);
            if (result.IsCompleted || result.IsCanceled)
            {
                throw new HostClosedException();
            }
        }
    }

    private async Task DrainUntilClosedAsync()
    {
        while (true)
        {
            var result = await _input.ReadAsync(Stopping);
            _input.AdvanceTo(result.Buffer.End);
            if (result.IsCompleted || result.IsCanceled)
            {
                return;
            }
        }
    }
}
