using System.Runtime.CompilerServices;

namespace ActorNvme.Protocol.Nvme;

/// <summary>Admin command opcodes.</summary>
public enum AdminOpcode : byte
{
    DeleteIoSubmissionQueue = 0x00,
    CreateIoSubmissionQueue = 0x01,
    GetLogPage = 0x02,
    DeleteIoCompletionQueue = 0x04,
    CreateIoCompletionQueue = 0x05,
    Identify = 0x06,
    Abort = 0x08,
    SetFeatures = 0x09,
    GetFeatures = 0x0A,
    AsynchronousEventRequest = 0x0C,
    KeepAlive = 0x18,
    Fabrics = 0x7F,
}

/// <summary>NVM command set opcodes (I/O queues).</summary>
public enum NvmOpcode : byte
{
    Flush = 0x00,
    Write = 0x01,
    Read = 0x02,
    WriteZeroes = 0x08,
    DatasetManagement = 0x09,
    ReservationRegister = 0x0D,
    ReservationReport = 0x0E,
    ReservationAcquire = 0x11,
    ReservationRelease = 0x15,
}

/// <summary>FCTYPE of fabrics commands (opcode 0x7F).</summary>
public enum FabricsCommandType : byte
{
    PropertySet = 0x00,
    Connect = 0x01,
    PropertyGet = 0x04,
    AuthenticationSend = 0x05,
    AuthenticationReceive = 0x06,
    Disconnect = 0x08,
}

/// <summary>Feature identifiers the host uses.</summary>
public enum FeatureId : byte
{
    NumberOfQueues = 0x07,
    AsynchronousEventConfiguration = 0x0B,
    KeepAliveTimer = 0x0F,

    /// <summary>Host Behavior Support (512-byte data; byte 0 bit 0: ACRE, the host honours Command Retry Delay).</summary>
    HostBehaviorSupport = 0x16,
}

/// <summary>Builders for admin commands. Command ids and data pointers are filled by the queue pair.</summary>
public static class AdminCommands
{
    /// <summary>Identify with the given CNS; <paramref name="controllerId"/> fills CNTID where the CNS uses it.</summary>
    public static SubmissionQueueEntry Identify(byte cns, uint namespaceId = 0, ushort controllerId = 0) => new()
    {
        Opcode = (byte)AdminOpcode.Identify,
        NamespaceId = namespaceId,
        Cdw10 = cns | ((uint)controllerId << 16),
    };

    /// <summary>
    /// Get Log Page for <paramref name="length"/> bytes (a multiple of 4, at least 4) from byte
    /// <paramref name="offset"/> (a multiple of 4). NUMD is the 0's based dword count split over CDW10/11.
    /// </summary>
    public static SubmissionQueueEntry GetLogPage(byte logPageId, uint length, ulong offset = 0, uint namespaceId = 0xFFFFFFFF, bool retainAsyncEvent = false, byte logSpecific = 0)
    {
        if (length < 4 || length % 4 != 0)
        {
            throw new ArgumentOutOfRangeException(nameof(length), length, "Get Log Page length must be a non-zero multiple of 4 bytes");
        }

        if (offset % 4 != 0)
        {
            throw new ArgumentOutOfRangeException(nameof(offset), offset, "Get Log Page offset (LPO) must be a multiple of 4 bytes");
        }

        uint numd = (length / 4) - 1;
        return new SubmissionQueueEntry
        {
            Opcode = (byte)AdminOpcode.GetLogPage,
            NamespaceId = namespaceId,
            Cdw10 = logPageId | ((uint)(logSpecific & 0xF) << 8) | (retainAsyncEvent ? 1u << 15 : 0) | ((numd & 0xFFFF) << 16),
            Cdw11 = numd >> 16,
            Cdw12 = (uint)offset,
            Cdw13 = (uint)(offset >> 32),
        };
    }

    public static SubmissionQueueEntry SetFeatures(FeatureId feature, uint value, bool save = false) => new()
    {
        Opcode = (byte)AdminOpcode.SetFeatures,
        Cdw10 = (byte)feature | (save ? 1u << 31 : 0),
        Cdw11 = value,
    };

    public static SubmissionQueueEntry GetFeatures(FeatureId feature, byte select = 0) => new()
    {
        Opcode = (byte)AdminOpcode.GetFeatures,
        Cdw10 = (byte)feature | ((uint)(select & 0x7) << 8),
    };

    /// <summary>Set Features / Number of Queues: counts are 1-based here and sent 0's based.</summary>
    public static SubmissionQueueEntry SetNumberOfQueues(ushort submissionQueues, ushort completionQueues)
    {
        if (submissionQueues == 0 || completionQueues == 0)
        {
            throw new ArgumentOutOfRangeException(nameof(submissionQueues), "at least one I/O submission and completion queue must be requested");
        }

        return SetFeatures(FeatureId.NumberOfQueues, (uint)(submissionQueues - 1) | ((uint)(completionQueues - 1) << 16));
    }

    /// <summary>Decodes the Number of Queues completion dword 0 into 1-based counts.</summary>
    public static (int SubmissionQueues, int CompletionQueues) DecodeNumberOfQueues(uint dw0) =>
        ((int)(dw0 & 0xFFFF) + 1, (int)(dw0 >> 16) + 1);

    public static SubmissionQueueEntry SetAsyncEventConfiguration(uint configuration) =>
        SetFeatures(FeatureId.AsynchronousEventConfiguration, configuration);

    public static SubmissionQueueEntry SetKeepAliveTimer(uint keepAliveMilliseconds) =>
        SetFeatures(FeatureId.KeepAliveTimer, keepAliveMilliseconds);

    public static SubmissionQueueEntry AsynchronousEventRequest() => new() { Opcode = (byte)AdminOpcode.AsynchronousEventRequest };

    public static SubmissionQueueEntry KeepAlive() => new() { Opcode = (byte)AdminOpcode.KeepAlive };

    public static SubmissionQueueEntry Abort(ushort submissionQueueId, ushort commandId) => new()
    {
        Opcode = (byte)AdminOpcode.Abort,
        Cdw10 = submissionQueueId | ((uint)commandId << 16),
    };
}

/// <summary>Builders and field accessors for fabrics commands.</summary>
public static class FabricsCommands
{
    public const byte Opcode = 0x7F;

    /// <summary>Size of the Connect command's data (host id, controller id, NQNs).</summary>
    public const int ConnectDataSize = 1024;

    /// <summary>CATTR bit 2: ask the controller to disable SQ flow control (SQHD is then not maintained).</summary>
    public const byte DisableSqFlowControl = 0x04;

    /// <summary>
    /// Connect for queue <paramref name="queueId"/> (0 = admin) of <paramref name="queueSize"/> entries
    /// (sent 0's based). <paramref name="keepAliveMilliseconds"/> is KATO and only meaningful on the admin queue.
    /// </summary>
    public static SubmissionQueueEntry Connect(ushort queueId, int queueSize, uint keepAliveMilliseconds, byte connectAttributes = 0)
    {
        if (queueSize < 2 || queueSize > 65536)
        {
            throw new ArgumentOutOfRangeException(nameof(queueSize), queueSize, "a queue holds 2..65536 entries");
        }

        return new SubmissionQueueEntry
        {
            Opcode = Opcode,
            NamespaceId = (byte)FabricsCommandType.Connect,
            DataPointer = SglDescriptor.InCapsule(ConnectDataSize),
            Cdw10 = (uint)queueId << 16, // RECFMT 0 in the low half
            Cdw11 = (uint)(queueSize - 1) | ((uint)connectAttributes << 16),
            Cdw12 = keepAliveMilliseconds,
        };
    }

    public static ushort ConnectRecordFormat(in SubmissionQueueEntry sqe) => (ushort)sqe.Cdw10;

    public static ushort ConnectQueueId(in SubmissionQueueEntry sqe) => (ushort)(sqe.Cdw10 >> 16);

    /// <summary>Queue size in entries (1-based) from the 0's based SQSIZE field.</summary>
    public static int ConnectQueueSize(in SubmissionQueueEntry sqe) => (ushort)sqe.Cdw11 + 1;

    public static byte ConnectAttributes(in SubmissionQueueEntry sqe) => (byte)(sqe.Cdw11 >> 16);

    public static uint ConnectKeepAlive(in SubmissionQueueEntry sqe) => sqe.Cdw12;

    /// <summary>Connect completion dword 0: the controller id (bits 15:0) and AUTHREQ (bits 31:16).</summary>
    public static (ushort ControllerId, ushort AuthenticationRequirements) DecodeConnectResponse(uint dw0) => ((ushort)dw0, (ushort)(dw0 >> 16));

    /// <summary>Property Get of the register at <paramref name="offset"/>; 8-byte registers (CAP) set <paramref name="eightBytes"/>.</summary>
    public static SubmissionQueueEntry PropertyGet(uint offset, bool eightBytes) => new()
    {
        Opcode = Opcode,
        NamespaceId = (byte)FabricsCommandType.PropertyGet,
        DataPointer = SglDescriptor.Transport(0),
        Cdw10 = eightBytes ? 1u : 0u,
        Cdw11 = offset,
    };

    public static SubmissionQueueEntry PropertySet(uint offset, ulong value, bool eightBytes) => new()
    {
        Opcode = Opcode,
        NamespaceId = (byte)FabricsCommandType.PropertySet,
        DataPointer = SglDescriptor.Transport(0),
        Cdw10 = eightBytes ? 1u : 0u,
        Cdw11 = offset,
        Cdw12 = (uint)value,
        Cdw13 = (uint)(value >> 32),
    };

    public static bool PropertyIsEightBytes(in SubmissionQueueEntry sqe) => (sqe.Cdw10 & 0x7) == 1;

    public static uint PropertyOffset(in SubmissionQueueEntry sqe) => sqe.Cdw11;

    public static ulong PropertyValue(in SubmissionQueueEntry sqe) => ((ulong)sqe.Cdw13 << 32) | sqe.Cdw12;

    public static SubmissionQueueEntry Disconnect() => new()
    {
        Opcode = Opcode,
        NamespaceId = (byte)FabricsCommandType.Disconnect,
    };
}

/// <summary>Builders for NVM I/O commands. LBA counts are 1-based here and sent 0's based.</summary>
public static class NvmCommands
{
    public const int MaxBlocksPerCommand = 65536;

    public static SubmissionQueueEntry Read(uint namespaceId, ulong startLba, int blockCount, bool forceUnitAccess = false) =>
        ReadWrite(NvmOpcode.Read, namespaceId, startLba, blockCount, forceUnitAccess);

    public static SubmissionQueueEntry Write(uint namespaceId, ulong startLba, int blockCount, bool forceUnitAccess = false) =>
        ReadWrite(NvmOpcode.Write, namespaceId, startLba, blockCount, forceUnitAccess);

    public static SubmissionQueueEntry Flush(uint namespaceId) => new() { Opcode = (byte)NvmOpcode.Flush, NamespaceId = namespaceId };

    public static SubmissionQueueEntry WriteZeroes(uint namespaceId, ulong startLba, int blockCount, bool deallocate = false)
    {
        var sqe = ReadWrite(NvmOpcode.WriteZeroes, namespaceId, startLba, blockCount, false);
        sqe.DataPointer = default;
        if (deallocate)
        {
            sqe.Cdw12 |= 1u << 25;
        }

        return sqe;
    }

    /// <summary>Dataset Management with <paramref name="rangeCount"/> 16-byte ranges in its data; AD (deallocate) set when asked.</summary>
    public static SubmissionQueueEntry DatasetManagement(uint namespaceId, int rangeCount, bool deallocate)
    {
        if (rangeCount is < 1 or > 256)
        {
            throw new ArgumentOutOfRangeException(nameof(rangeCount), rangeCount, "Dataset Management takes 1..256 ranges");
        }

        return new SubmissionQueueEntry
        {
            Opcode = (byte)NvmOpcode.DatasetManagement,
            NamespaceId = namespaceId,
            Cdw10 = (uint)(rangeCount - 1),
            Cdw11 = deallocate ? 1u << 2 : 0,
        };
    }

    /// <summary>Writes one Dataset Management range (16 bytes): context attributes, length in blocks, starting LBA.</summary>
    public static void WriteRange(Span<byte> destination, ulong startLba, uint blockCount, uint contextAttributes = 0)
    {
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32LittleEndian(destination, contextAttributes);
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32LittleEndian(destination[4..], blockCount);
        System.Buffers.Binary.BinaryPrimitives.WriteUInt64LittleEndian(destination[8..], startLba);
    }

    public static (ulong StartLba, uint BlockCount, uint ContextAttributes) ReadRange(ReadOnlySpan<byte> source) => (
        System.Buffers.Binary.BinaryPrimitives.ReadUInt64LittleEndian(source[8..]),
        System.Buffers.Binary.BinaryPrimitives.ReadUInt32LittleEndian(source[4..]),
        System.Buffers.Binary.BinaryPrimitives.ReadUInt32LittleEndian(source));

    public static ulong StartLba(in SubmissionQueueEntry sqe) => ((ulong)sqe.Cdw11 << 32) | sqe.Cdw10;

    public static int BlockCount(in SubmissionQueueEntry sqe) => (int)(sqe.Cdw12 & 0xFFFF) + 1;

    public static bool ForceUnitAccess(in SubmissionQueueEntry sqe) => (sqe.Cdw12 & (1u << 30)) != 0;

    public static bool Deallocate(in SubmissionQueueEntry sqe) => (sqe.Cdw12 & (1u << 25)) != 0;

    public static int RangeCount(in SubmissionQueueEntry sqe) => (int)(sqe.Cdw10 & 0xFF) + 1;

    public static bool DeallocateAttribute(in SubmissionQueueEntry sqe) => (sqe.Cdw11 & (1u << 2)) != 0;

    private static SubmissionQueueEntry ReadWrite(NvmOpcode opcode, uint namespaceId, ulong startLba, int blockCount, bool forceUnitAccess)
    {
        if (blockCount is < 1 or > MaxBlocksPerCommand)
        {
            throw new ArgumentOutOfRangeException(nameof(blockCount), blockCount, $"an NVM command moves 1..{MaxBlocksPerCommand} blocks");
        }

        return new SubmissionQueueEntry
        {
            Opcode = (byte)opcode,
            NamespaceId = namespaceId,
            Cdw10 = (uint)startLba,
            Cdw11 = (uint)(startLba >> 32),
            Cdw12 = (uint)(blockCount - 1) | (forceUnitAccess ? 1u << 30 : 0),
        };
    }
}
