using ActorNvme.Protocol.Data;
using FsCheck.Xunit;

namespace ActorNvme.Protocol.Tests.Data;

/// <summary>Encode → decode returns the same value, and decode → encode the same bytes, for every structure.</summary>
[Properties(Arbitrary = new[] { typeof(DataArbitraries) }, MaxTest = 200)]
public sealed class RoundTripProperties
{
    [Property]
    public bool Capabilities_round_trip(ControllerCapabilities value)
    {
        var bytes = new byte[ControllerCapabilities.Size];
        value.WriteTo(bytes);
        var back = ControllerCapabilities.Read(bytes);
        var rebuilt = new ControllerCapabilities(back.Value & 0x00FF_3FFF_FF07_FFFFUL)
        {
            MaxQueueEntries = back.MaxQueueEntries,
            ContiguousQueuesRequired = back.ContiguousQueuesRequired,
            ArbitrationMechanisms = back.ArbitrationMechanisms,
            Timeout = back.Timeout,
            DoorbellStride = back.DoorbellStride,
            SubsystemResetSupported = back.SubsystemResetSupported,
            CommandSets = back.CommandSets,
            BootPartitionSupported = back.BootPartitionSupported,
            MemoryPageSizeMinimum = back.MemoryPageSizeMinimum,
            MemoryPageSizeMaximum = back.MemoryPageSizeMaximum,
        };
        return back == value && rebuilt.Value == (value.Value & 0x00FF_3FFF_FF07_FFFFUL);
    }

    [Property]
    public bool Version_round_trips(uint raw)
    {
        var value = new NvmeVersion(raw);
        var bytes = new byte[NvmeVersion.Size];
        value.WriteTo(bytes);
        var back = NvmeVersion.Read(bytes);
        return back == value && new NvmeVersion(back.Major, back.Minor, back.Tertiary) == value;
    }

    [Property]
    public bool Configuration_round_trips(ControllerConfiguration value)
    {
        var bytes = new byte[ControllerConfiguration.Size];
        value.WriteTo(bytes);
        var back = ControllerConfiguration.Read(bytes);
        var rebuilt = new ControllerConfiguration
        {
            Enable = back.Enable,
            CommandSet = back.CommandSet,
            MemoryPageSize = back.MemoryPageSize,
            ArbitrationMechanism = back.ArbitrationMechanism,
            ShutdownNotification = back.ShutdownNotification,
            IoSubmissionQueueEntrySize = back.IoSubmissionQueueEntrySize,
            IoCompletionQueueEntrySize = back.IoCompletionQueueEntrySize,
        };
        return back == value && rebuilt.Value == (value.Value & 0x00FF_FFF1u);
    }

    [Property]
    public bool Status_round_trips(ControllerStatus value)
    {
        var bytes = new byte[ControllerStatus.Size];
        value.WriteTo(bytes);
        var back = ControllerStatus.Read(bytes);
        var rebuilt = new ControllerStatus
        {
            Ready = back.Ready,
            FatalStatus = back.FatalStatus,
            ShutdownStatus = back.ShutdownStatus,
            SubsystemResetOccurred = back.SubsystemResetOccurred,
            ProcessingPaused = back.ProcessingPaused,
        };
        return back == value && rebuilt.Value == (value.Value & 0x3Fu);
    }

    [Property]
    public bool Identify_controller_round_trips(IdentifyController value)
    {
        var bytes = new byte[IdentifyController.Size];
        value.WriteTo(bytes);
        var back = IdentifyController.Read(bytes);
        var again = new byte[IdentifyController.Size];
        back.WriteTo(again);
        return back == value && bytes.AsSpan().SequenceEqual(again);
    }

    [Property]
    public bool Identify_namespace_round_trips(IdentifyNamespace value)
    {
        var bytes = new byte[IdentifyNamespace.Size];
        value.WriteTo(bytes);
        var back = IdentifyNamespace.Read(bytes);
        return back == value && (!value.IsActive || back.BlockSize == 1 << value.InUseLbaFormat.LbaDataSizeShift);
    }

    [Property]
    public bool Namespace_identifiers_round_trip(NamespaceIdentifiers value)
    {
        var bytes = new byte[NamespaceIdentifiers.Size];
        value.WriteTo(bytes);
        return NamespaceIdentifiers.Read(bytes) == value;
    }

    [Property]
    public bool Active_namespace_list_round_trips(uint[] nsids)
    {
        var bytes = new byte[ActiveNamespaceList.Size];
        ActiveNamespaceList.WriteTo(nsids, bytes);
        Span<uint> into = stackalloc uint[ActiveNamespaceList.MaxEntries];
        return ActiveNamespaceList.Read(bytes).AsSpan().SequenceEqual(nsids)
            && ActiveNamespaceList.TryRead(bytes, into, out int count, out _)
            && into[..count].SequenceEqual(nsids);
    }

    [Property]
    public bool Changed_namespace_list_round_trips(uint[] nsids)
    {
        var bytes = new byte[ChangedNamespaceList.Size];
        ChangedNamespaceList.WriteTo(nsids, bytes);
        var back = ChangedNamespaceList.Read(bytes, out bool overflowed);
        return !overflowed && back.AsSpan().SequenceEqual(nsids);
    }

    [Property]
    public bool Discovery_entry_round_trips(DiscoveryLogEntry value)
    {
        var bytes = new byte[DiscoveryLogEntry.Size];
        value.WriteTo(bytes);
        return DiscoveryLogEntry.Read(bytes) == value;
    }

    [Property]
    public bool Discovery_log_round_trips(DiscoveryLog value)
    {
        var bytes = new byte[DiscoveryLogPage.GetSize(value.Entries.Count)];
        DiscoveryLogPage.WriteTo(value, bytes);
        var back = DiscoveryLogPage.Read(bytes);
        return back.Header == value.Header && back.Entries.SequenceEqual(value.Entries);
    }

    [Property]
    public bool Ana_log_round_trips(AnaLog value)
    {
        var bytes = new byte[AnaLogPage.GetSize(value)];
        AnaLogPage.WriteTo(value, bytes);
        var back = AnaLogPage.Read(bytes);
        return back.ChangeCount == value.ChangeCount
            && back.Groups.Count == value.Groups.Count
            && back.Groups.Zip(value.Groups).All(p =>
                p.First.GroupId == p.Second.GroupId
                && p.First.ChangeCount == p.Second.ChangeCount
                && p.First.State == p.Second.State
                && p.First.NamespaceIds.SequenceEqual(p.Second.NamespaceIds));
    }

    [Property]
    public bool Error_information_entry_round_trips(ErrorInformationEntry value)
    {
        var bytes = new byte[ErrorInformationEntry.Size * 2];
        value.WriteTo(bytes.AsSpan(ErrorInformationEntry.Size));
        return ErrorInformationEntry.Read(bytes.AsSpan(ErrorInformationEntry.Size)) == value
            && ErrorInformationLog.TryReadEntry(bytes, 1, out var second, out _) && second == value;
    }

    [Property]
    public bool Async_event_completion_round_trips(AsyncEventCompletion value) =>
        AsyncEventCompletion.FromDword0(value.ToDword0()) == value;

    [Property]
    public bool Connect_data_round_trips(ConnectData value)
    {
        var bytes = new byte[ConnectData.Size];
        value.WriteTo(bytes);
        return ConnectData.Read(bytes) == value;
    }
}
