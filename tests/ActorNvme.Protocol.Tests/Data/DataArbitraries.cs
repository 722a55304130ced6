using ActorNvme.Protocol.Data;
using FsCheck;
using FsCheck.Fluent;

namespace ActorNvme.Protocol.Tests.Data;

/// <summary>
/// FsCheck arbitraries for the data structures. Each value is built from a generated seed by a deterministic
/// builder, so every field gets a random value while the invariants the encoders require (text lengths,
/// valid LBA formats, NQN syntax) hold.
/// </summary>
public static class DataArbitraries
{
    public static Arbitrary<ControllerCapabilities> Capabilities() => FromSeed(r => new ControllerCapabilities(U64(r)));

    public static Arbitrary<ControllerConfiguration> Configuration() => FromSeed(r => new ControllerConfiguration(U32(r)));

    public static Arbitrary<ControllerStatus> Status() => FromSeed(r => new ControllerStatus(U32(r)));

    public static Arbitrary<IdentifyController> Controller() => FromSeed(BuildController);

    public static Arbitrary<IdentifyNamespace> Namespace() => FromSeed(BuildNamespace);

    public static Arbitrary<NamespaceIdentifiers> Identifiers() => FromSeed(r => new NamespaceIdentifiers
    {
        Eui64 = r.Next(2) == 0 ? null : U64(r),
        Nguid = r.Next(2) == 0 ? null : new UInt128(U64(r), U64(r)),
        Uuid = r.Next(2) == 0 ? null : new Guid(Bytes(r, 16)),
        CommandSet = r.Next(2) == 0 ? null : U8(r),
    });

    public static Arbitrary<DiscoveryLogEntry> DiscoveryEntry() => FromSeed(BuildDiscoveryEntry);

    public static Arbitrary<DiscoveryLog> Discovery() => FromSeed(r =>
    {
        var entries = new DiscoveryLogEntry[r.Next(6)];
        for (int i = 0; i < entries.Length; i++)
        {
            entries[i] = BuildDiscoveryEntry(r);
        }

        return new DiscoveryLog(new DiscoveryLogHeader(U64(r), (ulong)entries.Length, U16(r)), entries);
    });

    public static Arbitrary<AnaLog> Ana() => FromSeed(r =>
    {
        AnaState[] states = [AnaState.Optimized, AnaState.NonOptimized, AnaState.Inaccessible, AnaState.PersistentLoss, AnaState.Change];
        var groups = new AnaGroup[r.Next(5)];
        for (int g = 0; g < groups.Length; g++)
        {
            var nsids = new uint[r.Next(9)];
            for (int i = 0; i < nsids.Length; i++)
            {
                nsids[i] = U32(r);
            }

            groups[g] = new AnaGroup(U32(r), U64(r), states[r.Next(states.Length)], nsids);
        }

        return new AnaLog(U64(r), groups);
    });

    public static Arbitrary<ErrorInformationEntry> ErrorEntry() => FromSeed(r => new ErrorInformationEntry
    {
        ErrorCount = U64(r),
        SubmissionQueueId = U16(r),
        CommandId = U16(r),
        StatusField = U16(r),
        ParameterErrorLocation = U16(r),
        Lba = U64(r),
        NamespaceId = U32(r),
        VendorSpecificInfo = U8(r),
        TransportType = (TransportType)U8(r),
        CommandSpecificInfo = U64(r),
        TransportTypeSpecificInfo = U16(r),
    });

    public static Arbitrary<AsyncEventCompletion> AsyncEvent() => FromSeed(r => new AsyncEventCompletion((AsyncEventType)r.Next(8), U8(r), U8(r)));

    public static Arbitrary<ConnectData> Connect() => FromSeed(r => new ConnectData
    {
        HostId = new Guid(Bytes(r, 16)),
        ControllerId = U16(r),
        SubsystemNqn = NqnText(r),
        HostNqn = NqnText(r),
    });

    /// <summary>NSID lists: 0..1024 entries, none 0 or 0xFFFFFFFF.</summary>
    public static Arbitrary<uint[]> NamespaceIds() => FromSeed(r =>
    {
        int count = r.Next(4) == 0 ? 1024 : r.Next(40);
        var ids = new uint[count];
        for (int i = 0; i < count; i++)
        {
            ids[i] = (uint)r.NextInt64(1, uint.MaxValue);
        }

        return ids;
    });

    internal static IdentifyController BuildController(Random r) => new()
    {
        VendorId = U16(r),
        SubsystemVendorId = U16(r),
        SerialNumber = Ascii(r, IdentifyController.SerialNumberLength),
        ModelNumber = Ascii(r, IdentifyController.ModelNumberLength),
        FirmwareRevision = Ascii(r, IdentifyController.FirmwareRevisionLength),
        RecommendedArbitrationBurst = U8(r),
        IeeeOui = U32(r) & 0xFFFFFF,
        MultiPathCapabilities = U8(r),
        MaxDataTransferSize = U8(r),
        ControllerId = U16(r),
        Version = new NvmeVersion(U32(r)),
        Rtd3ResumeLatency = U32(r),
        Rtd3EntryLatency = U32(r),
        OptionalAsyncEvents = U32(r),
        ControllerAttributes = U32(r),
        ControllerType = (ControllerType)U8(r),
        FruGuid = new UInt128(U64(r), U64(r)),
        OptionalAdminCommands = U16(r),
        AbortCommandLimit = U8(r),
        AsyncEventRequestLimit = U8(r),
        FirmwareUpdates = U8(r),
        LogPageAttributes = U8(r),
        ErrorLogPageEntries = U8(r),
        NumberOfPowerStates = U8(r),
        KeepAliveSupport = U16(r),
        CommandRetryDelayTime1 = U16(r),
        CommandRetryDelayTime2 = U16(r),
        CommandRetryDelayTime3 = U16(r),
        CommandQuiesceTime = U16(r),
        AnaTransitionTime = U8(r),
        AnaCapabilities = U8(r),
        AnaGroupIdMax = U32(r),
        NumberOfAnaGroupIds = U32(r),
        SubmissionQueueEntrySize = U8(r),
        CompletionQueueEntrySize = U8(r),
        MaxOutstandingCommands = U16(r),
        NumberOfNamespaces = U32(r),
        OptionalNvmCommands = U16(r),
        FusedOperations = U16(r),
        FormatNvmAttributes = U8(r),
        VolatileWriteCache = U8(r),
        AtomicWriteUnitNormal = U16(r),
        AtomicWriteUnitPowerFail = U16(r),
        SglSupport = U32(r),
        MaxAllowedNamespaces = U32(r),
        SubsystemNqn = NqnText(r),
        IoCommandCapsuleSize = U32(r),
        IoResponseCapsuleSize = U32(r),
        InCapsuleDataOffset = U16(r),
        FabricsControllerAttributes = U8(r),
        MaxSglDataBlockDescriptors = U8(r),
        OptionalFabricsCommands = U16(r),
    };

    internal static IdentifyNamespace BuildNamespace(Random r)
    {
        bool active = r.Next(8) != 0;
        byte nlbaf = (byte)r.Next(64);
        int index = r.Next(nlbaf + 1);
        byte flbas = (byte)((index & 0xF) | ((index >> 4) << 5) | (r.Next(2) << 4));
        var formats = default(LbaFormatTable);
        for (int i = 0; i < LbaFormatTable.Capacity; i++)
        {
            formats[i] = new LbaFormat(U16(r), U8(r), (byte)r.Next(4));
        }

        if (active)
        {
            formats[index] = formats[index] with { LbaDataSizeShift = (byte)r.Next(9, 17) };
        }

        return new IdentifyNamespace
        {
            NamespaceSize = active ? Math.Max(1, U64(r)) : 0,
            NamespaceCapacity = U64(r),
            NamespaceUtilization = U64(r),
            Features = U8(r),
            NumberOfLbaFormats = nlbaf,
            FormattedLbaSize = flbas,
            MetadataCapabilities = U8(r),
            DataProtectionCapabilities = U8(r),
            DataProtectionSettings = U8(r),
            MultiPathCapabilities = U8(r),
            ReservationCapabilities = U8(r),
            DeallocateFeatures = U8(r),
            AnaGroupId = U32(r),
            Attributes = U8(r),
            Nguid = new UInt128(U64(r), U64(r)),
            Eui64 = U64(r),
            LbaFormats = formats,
        };
    }

    internal static DiscoveryLogEntry BuildDiscoveryEntry(Random r) => new()
    {
        TransportType = (TransportType)U8(r),
        AddressFamily = (NvmeAddressFamily)U8(r),
        SubsystemType = (SubsystemType)U8(r),
        TransportRequirements = (TransportRequirements)U8(r),
        PortId = U16(r),
        ControllerId = U16(r),
        AdminMaxSqSize = U16(r),
        Flags = (DiscoveryEntryFlags)U16(r),
        TransportServiceId = Ascii(r, DiscoveryLogEntry.TransportServiceIdLength),
        SubsystemNqn = NqnText(r),
        TransportAddress = Ascii(r, DiscoveryLogEntry.TransportAddressLength - 1),
        SecurityType = (TcpSecurityType)U8(r),
    };

    /// <summary>A valid NQN: "nqn." and up to 219 more bytes, sometimes with non-ASCII UTF-8.</summary>
    internal static string NqnText(Random r)
    {
        const string alphabet = "abcdefghijklmnopqrstuvwxyz0123456789.-:";
        var chars = new List<char>("nqn.");
        int bytes = chars.Count;
        int target = r.Next(4) == 0 ? Nqn.MaxLength : r.Next(5, 80);
        while (true)
        {
            char next = r.Next(20) == 0 ? 'é' : alphabet[r.Next(alphabet.Length)];
            int size = next < 0x80 ? 1 : 2;
            if (bytes + size > target)
            {
                break;
            }

            chars.Add(next);
            bytes += size;
        }

        return new string([.. chars]);
    }

    /// <summary>Printable ASCII of 0..max characters without trailing spaces (padding is trimmed on decode).</summary>
    internal static string Ascii(Random r, int max)
    {
        var chars = new char[r.Next(max + 1)];
        for (int i = 0; i < chars.Length; i++)
        {
            chars[i] = (char)r.Next(0x20, 0x7F);
        }

        return new string(chars).TrimEnd(' ');
    }

    internal static byte U8(Random r) => (byte)r.Next(256);

    internal static ushort U16(Random r) => (ushort)r.Next(65536);

    internal static uint U32(Random r) => (uint)r.NextInt64(0, 1L << 32);

    internal static ulong U64(Random r) => ((ulong)U32(r) << 32) | U32(r);

    internal static byte[] Bytes(Random r, int count)
    {
        var b = new byte[count];
        r.NextBytes(b);
        return b;
    }

    private static Arbitrary<T> FromSeed<T>(Func<Random, T> build) =>
        Gen.Choose(0, int.MaxValue - 1).Select(seed => build(new Random(seed))).ToArbitrary();
}
