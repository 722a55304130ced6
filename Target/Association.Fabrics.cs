using System.Buffers;
using ActorNvme.Protocol.Nvme;
using ActorNvme.Protocol.Data;
using ActorNvme.Transport.Tls;

namespace ActorNvme.Target;

// Fabrics commands: Connect (admin and I/O queues), Property Get and Property Set.
internal sealed partial class Association
{
    // Byte offsets reported in a Connect Invalid Parameters completion (IPO); IATTR (bit 16) set means "in the Connect data".
    private const uint InConnectData = 1u << 16;
    private const uint QueueIdOffset = 42;
    private const uint QueueSizeOffset = 44;
    private const uint ControllerIdOffset = InConnectData | 16;
    private const uint SubsystemNqnOffset = InConnectData | 256;
    private const uint HostNqnOffset = InConnectData | 512;

    private const uint RegisterCap = 0x00;
    private const uint RegisterVs = 0x08;
    private const uint RegisterCc = 0x14;
    private const uint RegisterCsts = 0x1C;

    private ValueTask HandleFabricsAsync(SubmissionQueueEntry sqe, ReadOnlySequence<byte> data)
    {
        var controller = Controller;
        if (controller is null)
        {
            return ConnectAsync(sqe, data);
        }

        if (!IsAdminQueue)
        {
            return CompleteAsync(sqe.CommandId, NvmeStatus.Generic(GenericStatus.InvalidOpcode, true));
        }

        return sqe.FabricsType switch
        {
            FabricsCommandType.PropertyGet => PropertyGetAsync(controller, sqe),
            FabricsCommandType.PropertySet => PropertySetAsync(controller, sqe),
            _ => CompleteAsync(sqe.CommandId, NvmeStatus.Generic(GenericStatus.InvalidOpcode, true)),
        };
    }

    private ValueTask ConnectAsync(SubmissionQueueEntry sqe, ReadOnlySequence<byte> data)
    {
        var invalid = NvmeStatus.Create(StatusCodeType.CommandSpecific, (byte)FabricsStatus.ConnectInvalidParameters, doNotRetry: true);
        if (!sqe.DataPointer.IsInCapsule || sqe.DataPointer.Length != FabricsCommands.ConnectDataSize)
        {
            return CompleteAsync(sqe.CommandId, NvmeStatus.Generic(GenericStatus.DataSglLengthInvalid, true));
        }

        if (data.Length != FabricsCommands.ConnectDataSize)
        {
            return CompleteAsync(sqe.CommandId, NvmeStatus.Generic(GenericStatus.DataSglLengthInvalid, true));
        }

        if (FabricsCommands.ConnectRecordFormat(sqe) != 0)
        {
            return CompleteAsync(sqe.CommandId, NvmeStatus.Create(StatusCodeType.CommandSpecific, (byte)FabricsStatus.IncompatibleFormat, doNotRetry: true));
        }

        Span<byte> bytes = stackalloc byte[ConnectData.Size];
        data.CopyTo(bytes);
        if (!ConnectData.TryRead(bytes, out var connectData, out var error))
        {
            _target.Log.ConnectRefused(Remote, "?", "?", error.ToString());
            return CompleteAsync(sqe.CommandId, invalid, SubsystemNqnOffset);
        }

        var hostId = connectData.HostId;
        ushort controllerId = connectData.ControllerId;
        string subsystemNqn = connectData.SubsystemNqn;
        string hostNqn = connectData.HostNqn;
        ushort queueId = FabricsCommands.ConnectQueueId(sqe);
        int sqSize = (ushort)sqe.Cdw11; // 0's based
        bool disableSqFlow = (FabricsCommands.ConnectAttributes(sqe) & FabricsCommands.DisableSqFlowControl) != 0;

        var subsystem = _target.FindAnySubsystem(subsystemNqn);
        if (subsystem is null)
        {
            _target.Log.ConnectRefused(Remote, subsystemNqn, hostNqn, "no such subsystem");
            return CompleteAsync(sqe.CommandId, invalid, SubsystemNqnOffset);
        }

        if (subsystem is NvmSubsystem nvm && !nvm.IsLinked(Listener))
        {
            _target.Log.ConnectRefused(Remote, subsystemNqn, hostNqn, $"not linked to {Listener}");
            return CompleteAsync(sqe.CommandId, invalid, SubsystemNqnOffset);
        }

        // Over TLS the PSK was chosen for one host and subsystem: Connect may not name others.
        if (_connection is TlsTargetConnection tls && TlsPskAcceptor.TryParseIdentity(tls.Identity, out _, out string tlsHost, out string tlsSubsystem)
            && (tlsHost != hostNqn || tlsSubsystem != subsystemNqn))
        {
            _target.Log.ConnectRefused(Remote, subsystemNqn, hostNqn, "Connect names another host or subsystem than the TLS PSK identity");
            return CompleteAsync(sqe.CommandId, NvmeStatus.Create(StatusCodeType.CommandSpecific, (byte)FabricsStatus.ConnectInvalidHost, doNotRetry: true), HostNqnOffset);
        }

        if (!subsystem.AllowsHost(hostNqn))
        {
            _target.Log.ConnectRefused(Remote, subsystemNqn, hostNqn, "host not allowed");
            return CompleteAsync(sqe.CommandId, NvmeStatus.Create(StatusCodeType.CommandSpecific, (byte)FabricsStatus.ConnectInvalidHost, doNotRetry: true), HostNqnOffset);
        }

        if (sqSize == 0)
        {
            return CompleteAsync(sqe.CommandId, invalid, QueueSizeOffset);
        }

        if (queueId == 0)
        {
            if (controllerId != ConnectData.DynamicControllerId)
            {
                return CompleteAsync(sqe.CommandId, invalid, ControllerIdOffset);
            }

            if (sqSize + 1 > _options.MaxAdminQueueSize)
            {
                return CompleteAsync(sqe.CommandId, invalid, QueueSizeOffset);
            }

            var created = subsystem.CreateController(id => new Controller(id, subsystem, hostNqn, hostId, this, FabricsCommands.ConnectKeepAlive(sqe)));
            if (created is null)
            {
                return CompleteAsync(sqe.CommandId, NvmeStatus.Create(StatusCodeType.CommandSpecific, (byte)FabricsStatus.ControllerBusy, doNotRetry: true));
            }

            Install(created, 0, sqSize + 1, disableSqFlow);
            _target.Log.ControllerCreated(subsystem.IsDiscovery ? "discovery" : "nvm", created.Id, subsystemNqn, hostNqn, Remote);
            return CompleteAsync(sqe.CommandId, NvmeStatus.Success, created.Id | StartAuthentication(subsystem, hostNqn), connectResponse: true);
        }

        if (subsystem.IsDiscovery)
        {
            return CompleteAsync(sqe.CommandId, invalid, QueueIdOffset);
        }

        var owner = subsystem.FindController(controllerId);
        if (owner is null || owner.IsTornDown || owner.HostNqn != hostNqn)
        {
            _target.Log.ConnectRefused(Remote, subsystemNqn, hostNqn, $"no controller {controllerId} for this host");
            return CompleteAsync(sqe.CommandId, invalid, ControllerIdOffset);
        }

        if (queueId > _options.MaxIoQueues)
        {
            return CompleteAsync(sqe.CommandId, invalid, QueueIdOffset);
        }

        if (sqSize + 1 > _options.MaxIoQueueSize)
        {
            return CompleteAsync(sqe.CommandId, invalid, QueueSizeOffset);
        }

        if (!owner.TryAddIoQueue(queueId, this))
        {
            return CompleteAsync(sqe.CommandId, NvmeStatus.Generic(GenericStatus.CommandSequenceError, true));
        }

        owner.Touch();
        Install(owner, queueId, sqSize + 1, disableSqFlow);
        return CompleteAsync(sqe.CommandId, NvmeStatus.Success, owner.Id | StartAuthentication(subsystem, hostNqn), connectResponse: true);
    }

    private void Install(Controller controller, ushort queueId, int queueSize, bool disableSqFlow)
    {
        _queueId = queueId;
        _queueSize = queueSize;
        _sqFlowControlDisabled = disableSqFlow;
        _sqHead = 1 % queueSize; // the Connect command was the first entry
        Volatile.Write(ref _controller, controller);
        if (controller.IsTornDown)
        {
            Close("controller torn down while connecting");
        }
    }

    private ValueTask PropertyGetAsync(Controller controller, SubmissionQueueEntry sqe)
    {
        bool eightBytes = FabricsCommands.PropertyIsEightBytes(sqe);
        uint offset = FabricsCommands.PropertyOffset(sqe);
        ulong? value = (offset, eightBytes) switch
        {
            (RegisterCap, _) => eightBytes ? controller.Capabilities : (uint)controller.Capabilities,
            (RegisterCap + 4, false) => (uint)(controller.Capabilities >> 32),
            (RegisterVs, false) => controller.Version.Value,
            (RegisterCc, false) => controller.ConfigurationRegister,
            (RegisterCsts, false) => controller.StatusRegister,
            _ => null,
        };

        if (value is null)
        {
            return CompleteAsync(sqe.CommandId, NvmeStatus.Generic(GenericStatus.InvalidField, true));
        }

        return CompleteAsync(sqe.CommandId, NvmeStatus.Success, (uint)value.Value, (uint)(value.Value >> 32));
    }

    private ValueTask PropertySetAsync(Controller controller, SubmissionQueueEntry sqe)
    {
        if (FabricsCommands.PropertyIsEightBytes(sqe) || FabricsCommands.PropertyOffset(sqe) != RegisterCc)
        {
            return CompleteAsync(sqe.CommandId, NvmeStatus.Generic(GenericStatus.InvalidField, true));
        }

        controller.WriteConfiguration((uint)FabricsCommands.PropertyValue(sqe));
        return CompleteAsync(sqe.CommandId, NvmeStatus.Success);
    }
}
