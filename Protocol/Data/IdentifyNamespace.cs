using System.Buffers.Binary;

namespace ActorNvme.Protocol.Data;

/// <summary>
/// The Identify Namespace data structure (CNS 00h, 4096 bytes) of the NVM command set: the fields a host
/// uses. NGUID and EUI64 are byte strings, kept as integers read big-endian (hex form = wire order).
/// Decoding allocates nothing. An inactive namespace (NSZE 0, all zeros) decodes; an active one must have
/// a valid format in use (NLBAF, FLBAS and LBADS 9..16 are checked).
/// </summary>
public readonly record struct IdentifyNamespace
{
    /// <summary>Size of the structure in bytes.</summary>
    public const int Size = 4096;

    /// <summary>Offset of the LBA format table.</summary>
    public const int LbaFormatsOffset = 128;

    /// <summary>NSZE (0): namespace size in logical blocks.</summary>
    public ulong NamespaceSize { get; init; }

    /// <summary>NCAP (8): namespace capacity in logical blocks.</summary>
    public ulong NamespaceCapacity { get; init; }

    /// <summary>NUSE (16): namespace utilization in logical blocks.</summary>
    public ulong NamespaceUtilization { get; init; }

    /// <summary>NSFEAT (24): namespace features.</summary>
    public byte Features { get; init; }

    /// <summary>NLBAF (25): number of LBA formats, 0-based (0 means one format).</summary>
    public byte NumberOfLbaFormats { get; init; }

    /// <summary>FLBAS (26): formatted LBA size (bits 3:0 low index, bit 4 metadata at end of LBA, bits 6:5 high index).</summary>
    public byte FormattedLbaSize { get; init; }

    /// <summary>MC (27): metadata capabilities.</summary>
    public byte MetadataCapabilities { get; init; }

    /// <summary>DPC (28): end-to-end data protection capabilities.</summary>
    public byte DataProtectionCapabilities { get; init; }

    /// <summary>DPS (29): end-to-end data protection type settings.</summary>
    public byte DataProtectionSettings { get; init; }

    /// <summary>NMIC (30): namespace multi-path I/O and sharing capabilities.</summary>
    public byte MultiPathCapabilities { get; init; }

    /// <summary>RESCAP (31): reservation capabilities.</summary>
    public byte ReservationCapabilities { get; init; }

    /// <summary>DLFEAT (33): deallocate logical block features.</summary>
    public byte DeallocateFeatures { get; init; }

    /// <summary>ANAGRPID (92): ANA group identifier.</summary>
    public uint AnaGroupId { get; init; }

    /// <summary>NSATTR (99): namespace attributes (bit 0 write protected).</summary>
    public byte Attributes { get; init; }

    /// <summary>NGUID (104, 16 bytes): namespace globally unique identifier, big-endian byte string.</summary>
    public UInt128 Nguid { get; init; }

    /// <summary>EUI64 (120, 8 bytes): IEEE extended unique identifier, big-endian byte string.</summary>
    public ulong Eui64 { get; init; }

    /// <summary>LBAF0..LBAF63 (128): LBA formats; entries beyond NLBAF are written but carry no meaning.</summary>
    public LbaFormatTable LbaFormats { get; init; }

    /// <summary>True when the namespace is active (NSZE is not zero).</summary>
    public bool IsActive => NamespaceSize != 0;

    /// <summary>Number of LBA formats (NLBAF + 1).</summary>
    public int LbaFormatCount => NumberOfLbaFormats + 1;

    /// <summary>Index of the LBA format in use, from FLBAS (bits 6:5 only count when there are more than 16 formats).</summary>
    public int LbaFormatIndex => InUseIndex(FormattedLbaSize, NumberOfLbaFormats);

    /// <summary>FLBAS bit 4: metadata is transferred at the end of the data LBA (extended LBA).</summary>
    public bool MetadataAtEndOfLba => (FormattedLbaSize & 0x10) != 0;

    /// <summary>The LBA format in use.</summary>
    public LbaFormat InUseLbaFormat => LbaFormats[LbaFormatIndex & (LbaFormatTable.Capacity - 1)];

    /// <summary>Logical block size in bytes of the format in use; throws <see cref="NvmeDataException"/> when invalid.</summary>
    public int BlockSize => TryGetBlockSize(out int size, out var error) ? size : throw new NvmeDataException(error);

    /// <summary>Logical block size in bytes of the format in use, checking NLBAF, FLBAS and LBADS (9..16).</summary>
    public bool TryGetBlockSize(out int blockSize, out DataError error)
    {
        blockSize = 0;
        if (NumberOfLbaFormats >= LbaFormatTable.Capacity)
        {
            error = new DataError(DataErrorCode.LbaFormatCountOutOfRange, "NLBAF", NumberOfLbaFormats, LbaFormatTable.Capacity - 1, 25);
            return false;
        }

        int index = LbaFormatIndex;
        if (index > NumberOfLbaFormats)
        {
            error = new DataError(DataErrorCode.LbaFormatIndexOutOfRange, "FLBAS", (ulong)index, NumberOfLbaFormats, 26);
            return false;
        }

        byte lbads = LbaFormats[index].LbaDataSizeShift;
        if (lbads < LbaFormat.MinDataSizeShift || lbads > LbaFormat.MaxDataSizeShift)
        {
            error = new DataError(DataErrorCode.LbaDataSizeOutOfRange, "LBADS", lbads, (ulong)index, LbaFormatsOffset + (index * LbaFormat.Size) + 2);
            return false;
        }

        blockSize = 1 << lbads;
        error = DataError.None;
        return true;
    }

    /// <summary>Decodes the first 4096 bytes of <paramref name="source"/>; an active namespace must have a valid format in use.</summary>
    public static bool TryRead(ReadOnlySpan<byte> source, out IdentifyNamespace value, out DataError error)
    {
        if (source.Length < Size)
        {
            value = default;
            error = DataError.TooShort("Identify Namespace", source.Length, Size);
            return false;
        }

        var s = source[..Size];
        var formats = default(LbaFormatTable);
        for (int i = 0; i < LbaFormatTable.Capacity; i++)
        {
            var f = s.Slice(LbaFormatsOffset + (i * LbaFormat.Size), LbaFormat.Size);
            formats[i] = new LbaFormat(BinaryPrimitives.ReadUInt16LittleEndian(f), f[2], (byte)(f[3] & 0x3));
        }

        value = new IdentifyNamespace
        {
            NamespaceSize = BinaryPrimitives.ReadUInt64LittleEndian(s),
            NamespaceCapacity = BinaryPrimitives.ReadUInt64LittleEndian(s[8..]),
            NamespaceUtilization = BinaryPrimitives.ReadUInt64LittleEndian(s[16..]),
            Features = s[24],
            NumberOfLbaFormats = s[25],
            FormattedLbaSize = s[26],
            MetadataCapabilities = s[27],
            DataProtectionCapabilities = s[28],
            DataProtectionSettings = s[29],
            MultiPathCapabilities = s[30],
            ReservationCapabilities = s[31],
            DeallocateFeatures = s[33],
            AnaGroupId = BinaryPrimitives.ReadUInt32LittleEndian(s[92..]),
            Attributes = s[99],
            Nguid = BinaryPrimitives.ReadUInt128BigEndian(s[104..]),
            Eui64 = BinaryPrimitives.ReadUInt64BigEndian(s[120..]),
            LbaFormats = formats,
        };

        if (value.IsActive && !value.TryGetBlockSize(out _, out error))
        {
            value = default;
            return false;
        }

        error = DataError.None;
        return true;
    }

    /// <summary>Decodes, throwing <see cref="NvmeDataException"/> on error.</summary>
    public static IdentifyNamespace Read(ReadOnlySpan<byte> source) =>
        TryRead(source, out var value, out var error) ? value : throw new NvmeDataException(error);

    /// <summary>Encodes into the first 4096 bytes of <paramref name="destination"/>, zeroing fields not modelled here.</summary>
    public void WriteTo(Span<byte> destination)
    {
        DataGuard.Destination(destination, Size, "Identify Namespace");
        var d = destination[..Size];
        d.Clear();
        BinaryPrimitives.WriteUInt64LittleEndian(d, NamespaceSize);
        BinaryPrimitives.WriteUInt64LittleEndian(d[8..], NamespaceCapacity);
        BinaryPrimitives.WriteUInt64LittleEndian(d[16..], NamespaceUtilization);
        d[24] = Features;
        d[25] = NumberOfLbaFormats;
        d[26] = FormattedLbaSize;
        d[27] = MetadataCapabilities;
        d[28] = DataProtectionCapabilities;
        d[29] = DataProtectionSettings;
        d[30] = MultiPathCapabilities;
        d[31] = ReservationCapabilities;
        d[33] = DeallocateFeatures;
        BinaryPrimitives.WriteUInt32LittleEndian(d[92..], AnaGroupId);
        d[99] = Attributes;
        BinaryPrimitives.WriteUInt128BigEndian(d[104..], Nguid);
        BinaryPrimitives.WriteUInt64BigEndian(d[120..], Eui64);
        var formats = LbaFormats;
        for (int i = 0; i < LbaFormatTable.Capacity; i++)
        {
            var f = formats[i];
            if (f.RelativePerformance > 3)
            {
                throw NvmeDataException.OutOfRange("LBAF.RP", f.RelativePerformance, 3);
            }

            var e = d.Slice(LbaFormatsOffset + (i * LbaFormat.Size), LbaFormat.Size);
            BinaryPrimitives.WriteUInt16LittleEndian(e, f.MetadataSize);
            e[2] = f.LbaDataSizeShift;
            e[3] = f.RelativePerformance;
        }
    }

    private static int InUseIndex(byte flbas, byte nlbaf)
    {
        int low = flbas & 0xF;
        return nlbaf >= 16 ? low | ((flbas & 0x60) >> 1) : low;
    }
}
