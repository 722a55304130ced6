using System.Buffers;
using ActorNvme.Protocol.Nvme;
using System.Buffers.Binary;
using ActorNvme.Protocol.Data;

namespace ActorNvme.Target;

// Admin commands of NVM and discovery controllers.
internal sealed partial class Association
{
    private ValueTask HandleAdminAsync(Controller controller, SubmissionQueueEntry sqe, ReadOnlySequence<byte> data)
    {
        if (data.Length > 0)
        {
            // No admin command this target supports carries data from the host.
            return CompleteAsync(sqe.CommandId, NvmeStatus.Generic(GenericStatus.InvalidField, true));
        }

        return (AdminOpcode)sqe.Opcode switch
        {
            AdminOpcode.Identify => IdentifyAsync(controller, sqe),
            AdminOpcode.GetLogPage => GetLogPageAsync(controller, sqe),
            AdminOpcode.SetFeatures => SetFeaturesAsync(controller, sqe),
            AdminOpcode.GetFeatures => GetFeaturesAsync(controller, sqe),
            AdminOpcode.AsynchronousEventRequest => AsyncEventRequestAsync(controller, sqe),
            AdminOpcode.KeepAlive => KeepAliveAsync(controller, sqe),
            AdminOpcode.Abort when !controller.IsDiscovery => AbortAsync(controller, sqe),
            _ => CompleteAsync(sqe.CommandId, NvmeStatus.Generic(GenericStatus.InvalidOpcode, true)),
        };
    }

    /// <summary>Checks the data pointer of a command returning <paramref name="length"/> bytes to the host.</summary>
    private static NvmeStatus CheckHostBuffer(in SubmissionQueueEntry sqe, int length)
    {
        if (!sqe.DataPointer.IsTransport)
        {
            return NvmeStatus.Generic(GenericStatus.SglDescriptorTypeInvalid, true);
        }

        return sqe.DataPointer.Length < length ? NvmeStatus.Generic(GenericStatus.DataSglLengthInvalid, true) : NvmeStatus.Success;
    }

    private ValueTask IdentifyAsync(Controller controller, SubmissionQueueEntry sqe)
    {
        var cns = (IdentifyCns)(byte)sqe.Cdw10;
        var check = CheckHostBuffer(sqe, IdentifyController.Size);
        if (!check.IsSuccess)
        {
            return CompleteAsync(sqe.CommandId, check);
        }

        var nvm = controller.Nvm;
        if (nvm is null && cns != IdentifyCns.Controller)
        {
            return CompleteAsync(sqe.CommandId, NvmeStatus.Generic(GenericStatus.InvalidField, true));
        }

        var buffer = ArrayPool<byte>.Shared.Rent(IdentifyController.Size);
        var page = buffer.AsSpan(0, IdentifyController.Size);
        var map = nvm?.NamespaceMap;
        uint nsid = sqe.NamespaceId;
        NvmeStatus status = NvmeStatus.Success;
        switch (cns)
        {
            case IdentifyCns.Controller:
                IdentityOf(controller).WriteTo(page);
                break;
            case IdentifyCns.Namespace:
                if (nsid == 0 || nsid > nvm!.Options.MaxNamespaces)
                {
                    status = NvmeStatus.Generic(GenericStatus.InvalidNamespaceOrFormat, true);
                }
                else if (map!.TryGetValue(nsid, out var ns))
                {
                    NamespaceData(ns).WriteTo(page);
                }
                else
                {
                    page.Clear(); // an inactive NSID reads as zeros
                }

                break;
            case IdentifyCns.ActiveNamespaceList:
                if (nsid >= 0xFFFFFFFE)
                {
                    status = NvmeStatus.Generic(GenericStatus.InvalidNamespaceOrFormat, true);
                }
                else
                {
                    uint[] active = [.. map!.Keys.Where(id => id > nsid).Take(ActiveNamespaceList.MaxEntries)];
                    ActiveNamespaceList.WriteTo(active, page);
                }

                break;
            case IdentifyCns.NamespaceIdentificationDescriptors:
                if (map!.TryGetValue(nsid, out var described))
                {
                    new NamespaceIdentifiers { Nguid = Nguid(described), Uuid = described.Uuid, CommandSet = 0 }.WriteTo(page);
                }
                else
                {
                    status = NvmeStatus.Generic(GenericStatus.InvalidNamespaceOrFormat, true);
                }

                break;
            default:
                status = NvmeStatus.Generic(GenericStatus.InvalidField, true);
                break;
        }

        if (!status.IsSuccess)
        {
            ArrayPool<byte>.Shared.Return(buffer);
            return CompleteAsync(sqe.CommandId, status);
        }

        return SendDataAsync(sqe.CommandId, buffer, IdentifyController.Size);
    }

    private static UInt128 Nguid(TargetNamespace ns) => BinaryPrimitives.ReadUInt128BigEndian(ns.Uuid.ToByteArray(bigEndian: true));

    private static IdentifyNamespace NamespaceData(TargetNamespace ns)
    {
        var formats = default(LbaFormatTable);
        formats[0] = new LbaFormat(0, (byte)ns.BlockSizeShift, 0);
        return new IdentifyNamespace
        {
            NamespaceSize = (ulong)ns.BlockCount,
            NamespaceCapacity = (ulong)ns.BlockCount,
            NamespaceUtilization = (ulong)ns.BlockCount,
            NumberOfLbaFormats = 0,
            FormattedLbaSize = 0,
            MultiPathCapabilities = 1, // may be shared by several controllers (multi-path)
            DeallocateFeatures = 0x09, // deallocated blocks read as zeros; Write Zeroes may deallocate
            ReservationCapabilities = ns.ReportsReservations ? (byte)NamespaceReservations.Capabilities : (byte)0,
            AnaGroupId = ns.AnaGroupId,
            Nguid = Nguid(ns),
            LbaFormats = formats,
        };
    }

    private ValueTask KeepAliveAsync(Controller controller, SubmissionQueueEntry sqe)
    {
        controller.Subsystem.CountKeepAlive();
        return CompleteAsync(sqe.CommandId, NvmeStatus.Success);
    }

    private IdentifyController IdentityOf(Controller controller)
    {
        var nvm = controller.Nvm;
        bool discovery = nvm is null;
        return new IdentifyController
        {
            VendorId = 0,
            SubmissionQueueEntrySize = 0x66,
            CompletionQueueEntrySize = 0x44,
            MaxSglDataBlockDescriptors = 1,
            SerialNumber = nvm?.SerialNumber ?? "ActorNvme-discovery",
            ModelNumber = nvm?.ModelNumber ?? "ActorNvme discovery",
            FirmwareRevision = "1.0",
            MultiPathCapabilities = discovery ? (byte)0 : (byte)0x0B, // multi-port, multi-controller, ANA reporting
            MaxDataTransferSize = (byte)System.Numerics.BitOperations.Log2((uint)(_options.MaxDataTransferSize / 4096)),
            ControllerId = controller.Id,
            Version = controller.Version,
            OptionalAsyncEvents = (uint)(discovery ? AsyncEventConfiguration.DiscoveryLogChangeNotices : AsyncEventConfiguration.NamespaceAttributeNotices | AsyncEventConfiguration.AnaChangeNotices),
            ControllerType = discovery ? ControllerType.Discovery : ControllerType.Io,
            ControllerAttributes = !discovery && _options.TrafficBasedKeepAlive ? 1u << 6 : 0, // TBKAS
            AbortCommandLimit = 3,
            CommandRetryDelayTime1 = discovery ? (ushort)0 : (ushort)(_options.CommandRetryDelayTime1.TotalMilliseconds / 100),
            AsyncEventRequestLimit = (byte)(_options.AsyncEventRequestLimit - 1),
            LogPageAttributes = 0x04, // extended data for Get Log Page (NUMDU, LPO)
            KeepAliveSupport = discovery ? (ushort)0 : (ushort)10, // ×100 ms, as nvmet
            AnaTransitionTime = discovery ? (byte)0 : (byte)Math.Ceiling(_options.AnaTransitionTime.TotalSeconds),
            CommandQuiesceTime = discovery ? (ushort)0 : (ushort)_options.CommandQuiesceTime.TotalMilliseconds,
            AnaCapabilities = discovery ? (byte)0 : (byte)0x1F,
            AnaGroupIdMax = discovery ? 0 : NvmSubsystem.MaxAnaGroups,
            NumberOfAnaGroupIds = discovery ? 0 : NvmSubsystem.MaxAnaGroups,
            MaxOutstandingCommands = (ushort)_options.MaxIoQueueSize,
            NumberOfNamespaces = nvm?.Options.MaxNamespaces ?? 0,
            MaxAllowedNamespaces = nvm?.Options.MaxNamespaces ?? 0, // MNAN: Linux refuses an ANA-reporting controller with 0
            OptionalNvmCommands = discovery ? (ushort)0 : (ushort)(OptionalNvmCommandSupport.DatasetManagement | OptionalNvmCommandSupport.WriteZeroes | OptionalNvmCommandSupport.Reservations),
            VolatileWriteCache = discovery ? (byte)0 : (byte)1,
            SglSupport = 0x0000_0001 | (_options.InCapsuleDataSize > 0 ? 1u << 20 : 0), // SGLs; offsets for in-capsule data
            SubsystemNqn = controller.Subsystem.Nqn,
            IoCommandCapsuleSize = discovery ? 0 : (uint)((64 + _options.InCapsuleDataSize) / 16),
            IoResponseCapsuleSize = discovery ? 0u : 1u,
        };
    }

    private ValueTask GetLogPageAsync(Controller controller, SubmissionQueueEntry sqe)
    {
        var logPageId = (LogPageId)(byte)sqe.Cdw10;
        byte logSpecific = (byte)((sqe.Cdw10 >> 8) & 0x7F);
        bool retain = (sqe.Cdw10 & (1u << 15)) != 0;
        long dwords = ((long)(sqe.Cdw11 & 0xFFFF) << 16 | (sqe.Cdw10 >> 16)) + 1;
        long length = dwords * 4;
        ulong offset = ((ulong)sqe.Cdw13 << 32) | sqe.Cdw12;
        if ((offset & 3) != 0 || length > _options.MaxDataTransferSize)
        {
            return CompleteAsync(sqe.CommandId, NvmeStatus.Generic(GenericStatus.InvalidField, true));
        }

        var check = CheckHostBuffer(sqe, (int)length);
        if (!check.IsSuccess)
        {
            return CompleteAsync(sqe.CommandId, check);
        }

        byte[]? full = null;
        int fullLength;
        bool discovery = controller.IsDiscovery;
        switch (logPageId)
        {
            case LogPageId.Discovery when discovery:
                var entries = _target.Discovery.Entries(controller.HostNqn, Listener, _connection.LocalHost);
                fullLength = DiscoveryLogPage.GetSize(entries.Count);
                full = ArrayPool<byte>.Shared.Rent(fullLength);
                DiscoveryLogPage.WriteTo(_target.DiscoveryGeneration, entries.ToArray(), full.AsSpan(0, fullLength));
                break;
            case LogPageId.ErrorInformation when !discovery:
                // One entry (ELPE 0), never filled: this target records no errors.
                fullLength = ErrorInformationEntry.Size;
                full = ArrayPool<byte>.Shared.Rent(fullLength);
                full.AsSpan(0, fullLength).Clear();
                break;
            case LogPageId.SmartHealth when !discovery:
                // 512 bytes, all zeros: no warnings, nothing counted (the Linux host reads it at connect).
                fullLength = 512;
                full = ArrayPool<byte>.Shared.Rent(fullLength);
                full.AsSpan(0, fullLength).Clear();
                break;
            case LogPageId.ChangedNamespaceList when !discovery:
                var (changed, overflow) = controller.TakeChangedNamespaces(retain);
                fullLength = ChangedNamespaceList.Size;
                full = ArrayPool<byte>.Shared.Rent(fullLength);
                if (overflow)
                {
                    ChangedNamespaceList.WriteOverflowTo(full.AsSpan(0, fullLength));
                }
                else
                {
                    ChangedNamespaceList.WriteTo(changed, full.AsSpan(0, fullLength));
                }

                break;
            case LogPageId.AsymmetricNamespaceAccess when !discovery:
                var ana = controller.Nvm!.AnaLog(Listener, groupsOnly: (logSpecific & 1) != 0);
                fullLength = AnaLogPage.GetSize(ana);
                full = ArrayPool<byte>.Shared.Rent(fullLength);
                AnaLogPage.WriteTo(ana, full.AsSpan(0, fullLength));
                break;
            default:
                return CompleteAsync(sqe.CommandId, NvmeStatus.Generic(GenericStatus.InvalidField, true));
        }

        try
        {
            if (offset > (ulong)fullLength)
            {
                return CompleteAsync(sqe.CommandId, NvmeStatus.Generic(GenericStatus.InvalidField, true));
            }

            if (!retain)
            {
                controller.LogPageRead(logPageId);
            }

            var page = ArrayPool<byte>.Shared.Rent((int)length);
            int available = (int)Math.Min(length, fullLength - (long)offset);
            full.AsSpan((int)offset, available).CopyTo(page);
            page.AsSpan(available, (int)length - available).Clear();
            return SendDataAsync(sqe.CommandId, page, (int)length);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(full);
        }
    }

    private ValueTask SetFeaturesAsync(Controller controller, SubmissionQueueEntry sqe)
    {
        var feature = (FeatureId)(byte)sqe.Cdw10;
        if ((sqe.Cdw10 & (1u << 31)) != 0)
        {
            return CompleteAsync(sqe.CommandId, NvmeStatus.Specific((byte)AdminSpecificStatus.FeatureIdentifierNotSaveable, true));
        }

        switch (feature)
        {
            case FeatureId.NumberOfQueues when !controller.IsDiscovery:
                if ((sqe.Cdw11 & 0xFFFF) == 0xFFFF || (sqe.Cdw11 >> 16) == 0xFFFF)
                {
                    return CompleteAsync(sqe.CommandId, NvmeStatus.Generic(GenericStatus.InvalidField, true));
                }

                return CompleteAsync(sqe.CommandId, NvmeStatus.Success, NumberOfQueuesValue());
            case FeatureId.KeepAliveTimer:
                controller.SetKeepAlive(sqe.Cdw11);
                return CompleteAsync(sqe.CommandId, NvmeStatus.Success);
            case FeatureId.HostBehaviorSupport when !controller.IsDiscovery:
                // ACRE and the rest are accepted; the target sets CRD only where a fault asks for it.
                return CompleteAsync(sqe.CommandId, NvmeStatus.Success);
            case FeatureId.AsynchronousEventConfiguration:
                uint supported = (uint)(controller.IsDiscovery
                    ? AsyncEventConfiguration.DiscoveryLogChangeNotices
                    : AsyncEventConfiguration.SmartCriticalWarnings | AsyncEventConfiguration.NamespaceAttributeNotices | AsyncEventConfiguration.AnaChangeNotices);
                if ((sqe.Cdw11 & ~supported) != 0)
                {
                    return CompleteAsync(sqe.CommandId, NvmeStatus.Generic(GenericStatus.InvalidField, true));
                }

                controller.SetAsyncEventConfiguration(sqe.Cdw11);
                return CompleteAsync(sqe.CommandId, NvmeStatus.Success);
            default:
                return CompleteAsync(sqe.CommandId, NvmeStatus.Generic(GenericStatus.InvalidField, true));
        }
    }

    private ValueTask GetFeaturesAsync(Controller controller, SubmissionQueueEntry sqe)
    {
        var feature = (FeatureId)(byte)sqe.Cdw10;
        uint select = (sqe.Cdw10 >> 8) & 0x7;
        if (select == 3)
        {
            // Supported capabilities: changeable, not saveable, not namespace specific.
            bool known = feature is FeatureId.KeepAliveTimer or FeatureId.AsynchronousEventConfiguration
                || (feature == FeatureId.NumberOfQueues && !controller.IsDiscovery);
            return CompleteAsync(sqe.CommandId, known ? NvmeStatus.Success : NvmeStatus.Generic(GenericStatus.InvalidField, true), known ? 0x4u : 0);
        }

        return feature switch
        {
            FeatureId.NumberOfQueues when !controller.IsDiscovery => CompleteAsync(sqe.CommandId, NvmeStatus.Success, NumberOfQueuesValue()),
            FeatureId.KeepAliveTimer => CompleteAsync(sqe.CommandId, NvmeStatus.Success, controller.KeepAliveMs),
            FeatureId.AsynchronousEventConfiguration => CompleteAsync(sqe.CommandId, NvmeStatus.Success, controller.AsyncEventConfiguration),
            _ => CompleteAsync(sqe.CommandId, NvmeStatus.Generic(GenericStatus.InvalidField, true)),
        };
    }

    // Granted queues, 0's based, submission and completion alike: always the maximum (as nvmet).
    private uint NumberOfQueuesValue() => (uint)(_options.MaxIoQueues - 1) | ((uint)(_options.MaxIoQueues - 1) << 16);

    /// <summary>Abort (SQID in CDW10 15:0, CID in 31:16): dword 0 bit 0 clear when the command was aborted, set when not.</summary>
    private ValueTask AbortAsync(Controller controller, SubmissionQueueEntry sqe)
    {
        ushort queueId = (ushort)sqe.Cdw10;
        ushort commandId = (ushort)(sqe.Cdw10 >> 16);
        _target.Faults.CountAbortRequest();
        bool aborted = queueId != 0 && controller.IoQueues().FirstOrDefault(q => q.QueueId == queueId) is { } queue && queue.TryAbortWaitingCommand(commandId);
        return CompleteAsync(sqe.CommandId, NvmeStatus.Success, aborted ? 0u : 1u);
    }

    private ValueTask AsyncEventRequestAsync(Controller controller, SubmissionQueueEntry sqe)
    {
        if (!controller.SubmitAsyncEventRequest(sqe.CommandId))
        {
            return CompleteAsync(sqe.CommandId, NvmeStatus.Specific((byte)AdminSpecificStatus.AsyncEventRequestLimitExceeded, true));
        }

        return ValueTask.CompletedTask;
    }
}
