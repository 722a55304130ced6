using System.Buffers.Binary;

namespace ActorNvme.Protocol.Data;

/// <summary>
/// The Identify Controller data structure (CNS 01h, 4096 bytes): the fields a host uses. Fields not
/// listed here are written as zero. Byte-string identifiers (FGUID) are kept as <see cref="UInt128"/>
/// read big-endian, so their hex form is the wire byte order. Decoding allocates only the four strings.
/// </summary>
public readonly record struct IdentifyController
{
    /// <summary>Size of the structure in bytes.</summary>
    public const int Size = 4096;

    /// <summary>Field sizes of the text fields.</summary>
    public const int SerialNumberLength = 20, ModelNumberLength = 40, FirmwareRevisionLength = 8, SubsystemNqnLength = 256;

    /// <summary>VID (offset 0): PCI vendor id.</summary>
    public ushort VendorId { get; init; }

    /// <summary>SSVID (2): PCI subsystem vendor id.</summary>
    public ushort SubsystemVendorId { get; init; }

    /// <summary>SN (4, 20 bytes ASCII, space padded): serial number, without padding.</summary>
    public string SerialNumber { get => field ?? string.Empty; init; }

    /// <summary>MN (24, 40 bytes ASCII, space padded): model number, without padding.</summary>
    public string ModelNumber { get => field ?? string.Empty; init; }

    /// <summary>FR (64, 8 bytes ASCII, space padded): firmware revision, without padding.</summary>
    public string FirmwareRevision { get => field ?? string.Empty; init; }

    /// <summary>RAB (72): recommended arbitration burst.</summary>
    public byte RecommendedArbitrationBurst { get; init; }

    /// <summary>IEEE (73, 3 bytes little-endian): IEEE OUI identifier (24 bits).</summary>
    public uint IeeeOui { get; init; }

    /// <summary>CMIC (76): controller multi-path I/O and namespace sharing capabilities.</summary>
    public byte MultiPathCapabilities { get; init; }

    /// <summary>MDTS (77): maximum data transfer size, 2^n minimum pages; 0 is no limit.</summary>
    public byte MaxDataTransferSize { get; init; }

    /// <summary>CNTLID (78): controller id.</summary>
    public ushort ControllerId { get; init; }

    /// <summary>VER (80): version.</summary>
    public NvmeVersion Version { get; init; }

    /// <summary>RTD3R (84): RTD3 resume latency, microseconds.</summary>
    public uint Rtd3ResumeLatency { get; init; }

    /// <summary>RTD3E (88): RTD3 entry latency, microseconds.</summary>
    public uint Rtd3EntryLatency { get; init; }

    /// <summary>OAES (92): optional asynchronous events supported (same bits as <see cref="AsyncEventConfiguration"/>).</summary>
    public uint OptionalAsyncEvents { get; init; }

    /// <summary>CTRATT (96): controller attributes.</summary>
    public uint ControllerAttributes { get; init; }

    /// <summary>CNTRLTYPE (111): controller type.</summary>
    public ControllerType ControllerType { get; init; }

    /// <summary>FGUID (112, 16 bytes): FRU globally unique identifier, big-endian byte string.</summary>
    public UInt128 FruGuid { get; init; }

    /// <summary>OACS (256): optional admin command support.</summary>
    public ushort OptionalAdminCommands { get; init; }

    /// <summary>ACL (258): abort command limit, 0-based.</summary>
    public byte AbortCommandLimit { get; init; }

    /// <summary>AERL (259): asynchronous event request limit, 0-based.</summary>
    public byte AsyncEventRequestLimit { get; init; }

    /// <summary>FRMW (260): firmware updates.</summary>
    public byte FirmwareUpdates { get; init; }

    /// <summary>LPA (261): log page attributes.</summary>
    public byte LogPageAttributes { get; init; }

    /// <summary>ELPE (262): error log page entries, 0-based.</summary>
    public byte ErrorLogPageEntries { get; init; }

    /// <summary>NPSS (263): number of power states support, 0-based.</summary>
    public byte NumberOfPowerStates { get; init; }

    /// <summary>KAS (320): keep alive support, granularity in 100 ms units; 0 is not supported.</summary>
    public ushort KeepAliveSupport { get; init; }

    /// <summary>CRDT1..3 (128, 130, 132): command retry delay times, in 100 ms units, chosen by a completion's CRD field (1..3).</summary>
    public ushort CommandRetryDelayTime1 { get; init; }

    /// <summary>CRDT2 (130), 100 ms units.</summary>
    public ushort CommandRetryDelayTime2 { get; init; }

    /// <summary>CRDT3 (132), 100 ms units.</summary>
    public ushort CommandRetryDelayTime3 { get; init; }

    /// <summary>
    /// CQT (386, TP 4129): command quiesce time in milliseconds: the longest the controller may still
    /// execute commands of an association after it has ended (keep-alive expiry or a lost connection).
    /// 0: not reported.
    /// </summary>
    public ushort CommandQuiesceTime { get; init; }

    /// <summary>ANATT (342): ANA transition time, seconds.</summary>
    public byte AnaTransitionTime { get; init; }

    /// <summary>ANACAP (343): asymmetric namespace access capabilities.</summary>
    public byte AnaCapabilities { get; init; }

    /// <summary>ANAGRPMAX (344): ANA group identifier maximum.</summary>
    public uint AnaGroupIdMax { get; init; }

    /// <summary>NANAGRPID (348): number of ANA group identifiers.</summary>
    public uint NumberOfAnaGroupIds { get; init; }

    /// <summary>SQES (512): submission queue entry size (bits 3:0 required, 7:4 maximum, as powers of two).</summary>
    public byte SubmissionQueueEntrySize { get; init; }

    /// <summary>CQES (513): completion queue entry size (bits 3:0 required, 7:4 maximum, as powers of two).</summary>
    public byte CompletionQueueEntrySize { get; init; }

    /// <summary>MAXCMD (514): maximum outstanding commands.</summary>
    public ushort MaxOutstandingCommands { get; init; }

    /// <summary>NN (516): number of namespaces (largest NSID).</summary>
    public uint NumberOfNamespaces { get; init; }

    /// <summary>ONCS (520): optional NVM command support.</summary>
    public ushort OptionalNvmCommands { get; init; }

    /// <summary>FUSES (522): fused operation support.</summary>
    public ushort FusedOperations { get; init; }

    /// <summary>FNA (524): format NVM attributes.</summary>
    public byte FormatNvmAttributes { get; init; }

    /// <summary>VWC (525): volatile write cache.</summary>
    public byte VolatileWriteCache { get; init; }

    /// <summary>AWUN (526): atomic write unit normal, 0-based blocks.</summary>
    public ushort AtomicWriteUnitNormal { get; init; }

    /// <summary>AWUPF (528): atomic write unit power fail, 0-based blocks.</summary>
    public ushort AtomicWriteUnitPowerFail { get; init; }

    /// <summary>SGLS (536): SGL support.</summary>
    public uint SglSupport { get; init; }

    /// <summary>MNAN (540): maximum number of allowed namespaces.</summary>
    public uint MaxAllowedNamespaces { get; init; }

    /// <summary>SUBNQN (768, 256 bytes UTF-8, NUL terminated): NVM subsystem NQN.</summary>
    public string SubsystemNqn { get => field ?? string.Empty; init; }

    /// <summary>IOCCSZ (1792): I/O queue command capsule supported size, 16-byte units.</summary>
    public uint IoCommandCapsuleSize { get; init; }

    /// <summary>IORCSZ (1796): I/O queue response capsule supported size, 16-byte units.</summary>
    public uint IoResponseCapsuleSize { get; init; }

    /// <summary>ICDOFF (1800): in-capsule data offset, 16-byte units.</summary>
    public ushort InCapsuleDataOffset { get; init; }

    /// <summary>FCATT (1802): fabrics controller attributes.</summary>
    public byte FabricsControllerAttributes { get; init; }

    /// <summary>MSDBD (1803): maximum SGL data block descriptors.</summary>
    public byte MaxSglDataBlockDescriptors { get; init; }

    /// <summary>OFCS (1804): optional fabrics commands support.</summary>
    public ushort OptionalFabricsCommands { get; init; }

    /// <summary>Decodes the first 4096 bytes of <paramref name="source"/>.</summary>
    public static bool TryRead(ReadOnlySpan<byte> source, out IdentifyController value, out DataError error)
    {
        if (source.Length < Size)
        {
            value = default;
            error = DataError.TooShort("Identify Controller", source.Length, Size);
            return false;
        }

        var s = source[..Size];
        value = new IdentifyController
        {
            VendorId = U16(s, 0),
            SubsystemVendorId = U16(s, 2),
            SerialNumber = WireText.ReadAscii(s.Slice(4, SerialNumberLength)),
            ModelNumber = WireText.ReadAscii(s.Slice(24, ModelNumberLength)),
            FirmwareRevision = WireText.ReadAscii(s.Slice(64, FirmwareRevisionLength)),
            RecommendedArbitrationBurst = s[72],
            IeeeOui = (uint)(s[73] | (s[74] << 8) | (s[75] << 16)),
            MultiPathCapabilities = s[76],
            MaxDataTransferSize = s[77],
            ControllerId = U16(s, 78),
            Version = new NvmeVersion(U32(s, 80)),
            Rtd3ResumeLatency = U32(s, 84),
            Rtd3EntryLatency = U32(s, 88),
            OptionalAsyncEvents = U32(s, 92),
            ControllerAttributes = U32(s, 96),
            ControllerType = (ControllerType)s[111],
            FruGuid = BinaryPrimitives.ReadUInt128BigEndian(s[112..]),
            OptionalAdminCommands = U16(s, 256),
            AbortCommandLimit = s[258],
            AsyncEventRequestLimit = s[259],
            FirmwareUpdates = s[260],
            LogPageAttributes = s[261],
            ErrorLogPageEntries = s[262],
            NumberOfPowerStates = s[263],
            CommandRetryDelayTime1 = U16(s, 128),
            CommandRetryDelayTime2 = U16(s, 130),
            CommandRetryDelayTime3 = U16(s, 132),
            KeepAliveSupport = U16(s, 320),
            AnaTransitionTime = s[342],
            AnaCapabilities = s[343],
            AnaGroupIdMax = U32(s, 344),
            NumberOfAnaGroupIds = U32(s, 348),
            CommandQuiesceTime = U16(s, 386),
            SubmissionQueueEntrySize = s[512],
            CompletionQueueEntrySize = s[513],
            MaxOutstandingCommands = U16(s, 514),
            NumberOfNamespaces = U32(s, 516),
            OptionalNvmCommands = U16(s, 520),
            FusedOperations = U16(s, 522),
            FormatNvmAttributes = s[524],
            VolatileWriteCache = s[525],
            AtomicWriteUnitNormal = U16(s, 526),
            AtomicWriteUnitPowerFail = U16(s, 528),
            SglSupport = U32(s, 536),
            MaxAllowedNamespaces = U32(s, 540),
            SubsystemNqn = WireText.ReadUtf8(s.Slice(768, SubsystemNqnLength)),
            IoCommandCapsuleSize = U32(s, 1792),
            IoResponseCapsuleSize = U32(s, 1796),
            InCapsuleDataOffset = U16(s, 1800),
            FabricsControllerAttributes = s[1802],
            MaxSglDataBlockDescriptors = s[1803],
            OptionalFabricsCommands = U16(s, 1804),
        };
        error = DataError.None;
        return true;
    }

    /// <summary>Decodes, throwing <see cref="NvmeDataException"/> on error.</summary>
    public static IdentifyController Read(ReadOnlySpan<byte> source) =>
        TryRead(source, out var value, out var error) ? value : throw new NvmeDataException(error);

    /// <summary>
    /// Encodes into the first 4096 bytes of <paramref name="destination"/>, zeroing every field not modelled here.
    /// Throws <see cref="NvmeDataException"/> when a text field does not fit or is not printable, or IEEE exceeds 24 bits.
    /// </summary>
    public void WriteTo(Span<byte> destination)
    {
        DataGuard.Destination(destination, Size, "Identify Controller");
        if (IeeeOui > 0xFFFFFF)
        {
            throw NvmeDataException.OutOfRange("IEEE", IeeeOui, 0xFFFFFF);
        }

        var d = destination[..Size];
        d.Clear();
        BinaryPrimitives.WriteUInt16LittleEndian(d, VendorId);
        BinaryPrimitives.WriteUInt16LittleEndian(d[2..], SubsystemVendorId);
        WireText.WriteAscii(SerialNumber, d.Slice(4, SerialNumberLength), (byte)' ', "SN");
        WireText.WriteAscii(ModelNumber, d.Slice(24, ModelNumberLength), (byte)' ', "MN");
        WireText.WriteAscii(FirmwareRevision, d.Slice(64, FirmwareRevisionLength), (byte)' ', "FR");
        d[72] = RecommendedArbitrationBurst;
        d[73] = (byte)IeeeOui;
        d[74] = (byte)(IeeeOui >> 8);
        d[75] = (byte)(IeeeOui >> 16);
        d[76] = MultiPathCapabilities;
        d[77] = MaxDataTransferSize;
        BinaryPrimitives.WriteUInt16LittleEndian(d[78..], ControllerId);
        BinaryPrimitives.WriteUInt32LittleEndian(d[80..], Version.Value);
        BinaryPrimitives.WriteUInt32LittleEndian(d[84..], Rtd3ResumeLatency);
        BinaryPrimitives.WriteUInt32LittleEndian(d[88..], Rtd3EntryLatency);
        BinaryPrimitives.WriteUInt32LittleEndian(d[92..], OptionalAsyncEvents);
        BinaryPrimitives.WriteUInt32LittleEndian(d[96..], ControllerAttributes);
        d[111] = (byte)ControllerType;
        BinaryPrimitives.WriteUInt128BigEndian(d[112..], FruGuid);
        BinaryPrimitives.WriteUInt16LittleEndian(d[256..], OptionalAdminCommands);
        d[258] = AbortCommandLimit;
        d[259] = AsyncEventRequestLimit;
        d[260] = FirmwareUpdates;
        d[261] = LogPageAttributes;
        d[262] = ErrorLogPageEntries;
        d[263] = NumberOfPowerStates;
        BinaryPrimitives.WriteUInt16LittleEndian(d[128..], CommandRetryDelayTime1);
        BinaryPrimitives.WriteUInt16LittleEndian(d[130..], CommandRetryDelayTime2);
        BinaryPrimitives.WriteUInt16LittleEndian(d[132..], CommandRetryDelayTime3);
        BinaryPrimitives.WriteUInt16LittleEndian(d[320..], KeepAliveSupport);
        d[342] = AnaTransitionTime;
        d[343] = AnaCapabilities;
        BinaryPrimitives.WriteUInt32LittleEndian(d[344..], AnaGroupIdMax);
        BinaryPrimitives.WriteUInt32LittleEndian(d[348..], NumberOfAnaGroupIds);
        BinaryPrimitives.WriteUInt16LittleEndian(d[386..], CommandQuiesceTime);
        d[512] = SubmissionQueueEntrySize;
        d[513] = CompletionQueueEntrySize;
        BinaryPrimitives.WriteUInt16LittleEndian(d[514..], MaxOutstandingCommands);
        BinaryPrimitives.WriteUInt32LittleEndian(d[516..], NumberOfNamespaces);
        BinaryPrimitives.WriteUInt16LittleEndian(d[520..], OptionalNvmCommands);
        BinaryPrimitives.WriteUInt16LittleEndian(d[522..], FusedOperations);
        d[524] = FormatNvmAttributes;
        d[525] = VolatileWriteCache;
        BinaryPrimitives.WriteUInt16LittleEndian(d[526..], AtomicWriteUnitNormal);
        BinaryPrimitives.WriteUInt16LittleEndian(d[528..], AtomicWriteUnitPowerFail);
        BinaryPrimitives.WriteUInt32LittleEndian(d[536..], SglSupport);
        BinaryPrimitives.WriteUInt32LittleEndian(d[540..], MaxAllowedNamespaces);
        WireText.WriteUtf8(SubsystemNqn, d.Slice(768, SubsystemNqnLength), "SUBNQN");
        BinaryPrimitives.WriteUInt32LittleEndian(d[1792..], IoCommandCapsuleSize);
        BinaryPrimitives.WriteUInt32LittleEndian(d[1796..], IoResponseCapsuleSize);
        BinaryPrimitives.WriteUInt16LittleEndian(d[1800..], InCapsuleDataOffset);
        d[1802] = FabricsControllerAttributes;
        d[1803] = MaxSglDataBlockDescriptors;
        BinaryPrimitives.WriteUInt16LittleEndian(d[1804..], OptionalFabricsCommands);
    }

    private static ushort U16(ReadOnlySpan<byte> s, int offset) => BinaryPrimitives.ReadUInt16LittleEndian(s[offset..]);

    private static uint U32(ReadOnlySpan<byte> s, int offset) => BinaryPrimitives.ReadUInt32LittleEndian(s[offset..]);
}
