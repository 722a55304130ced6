using System.Buffers.Binary;

namespace ActorNvme.Protocol.Nvme;

/// <summary>Reservation types (RTYPE): who may read and who may write while a reservation is held.</summary>
public enum ReservationType : byte
{
    /// <summary>No reservation is held (only in a Report).</summary>
    None = 0,
    WriteExclusive = 1,
    ExclusiveAccess = 2,
    WriteExclusiveRegistrantsOnly = 3,
    ExclusiveAccessRegistrantsOnly = 4,
    WriteExclusiveAllRegistrants = 5,
    ExclusiveAccessAllRegistrants = 6,
}

/// <summary>RREGA of Reservation Register.</summary>
public enum ReservationRegisterAction : byte
{
    Register = 0,
    Unregister = 1,
    Replace = 2,
}

/// <summary>RACQA of Reservation Acquire.</summary>
public enum ReservationAcquireAction : byte
{
    Acquire = 0,
    Preempt = 1,
    PreemptAndAbort = 2,
}

/// <summary>RRELA of Reservation Release.</summary>
public enum ReservationReleaseAction : byte
{
    Release = 0,
    Clear = 1,
}

/// <summary>CPTPL of Reservation Register: whether reservations persist through a power loss.</summary>
public enum PersistThroughPowerLossChange : byte
{
    NoChange = 0,
    Clear = 2,
    Set = 3,
}

/// <summary>
/// The reservation commands of the NVM command set (Register 0Dh, Report 0Eh, Acquire 11h, Release 15h):
/// builders, CDW10 field accessors, and the small data buffers they carry. Keys are 64-bit; the host
/// identifier that registrants are known by is the 128-bit HOSTID of the Connect command.
/// </summary>
public static class ReservationCommands
{
    /// <summary>Register and Acquire data: current key (CRKEY) then the new or preempted key (NRKEY / PRKEY).</summary>
    public const int KeyPairSize = 16;

    /// <summary>Release data: the current key (CRKEY).</summary>
    public const int KeySize = 8;

    /// <summary>Reservation Register: <paramref name="newKey"/> is NRKEY; <paramref name="currentKey"/> is CRKEY (ignored by Register).</summary>
    public static SubmissionQueueEntry Register(uint namespaceId, ReservationRegisterAction action, bool ignoreExistingKey = false, PersistThroughPowerLossChange persist = PersistThroughPowerLossChange.NoChange) => new()
    {
        Opcode = (byte)NvmOpcode.ReservationRegister,
        NamespaceId = namespaceId,
        Cdw10 = ((uint)action & 0x7) | (ignoreExistingKey ? 1u << 3 : 0) | ((uint)persist << 30),
    };

    public static SubmissionQueueEntry Acquire(uint namespaceId, ReservationAcquireAction action, ReservationType type, bool ignoreExistingKey = false) => new()
    {
        Opcode = (byte)NvmOpcode.ReservationAcquire,
        NamespaceId = namespaceId,
        Cdw10 = ((uint)action & 0x7) | (ignoreExistingKey ? 1u << 3 : 0) | ((uint)type << 8),
    };

    public static SubmissionQueueEntry Release(uint namespaceId, ReservationReleaseAction action, ReservationType type, bool ignoreExistingKey = false) => new()
    {
        Opcode = (byte)NvmOpcode.ReservationRelease,
        NamespaceId = namespaceId,
        Cdw10 = ((uint)action & 0x7) | (ignoreExistingKey ? 1u << 3 : 0) | ((uint)type << 8),
    };

    /// <summary>Reservation Report of <paramref name="length"/> bytes (a non-zero multiple of 4); <paramref name="extended"/> asks for 128-bit host identifiers (EDS).</summary>
    public static SubmissionQueueEntry Report(uint namespaceId, int length, bool extended = true)
    {
        if (length < 4 || length % 4 != 0)
        {
            throw new ArgumentOutOfRangeException(nameof(length), length, "Reservation Report length must be a non-zero multiple of 4 bytes");
        }

        return new SubmissionQueueEntry
        {
            Opcode = (byte)NvmOpcode.ReservationReport,
            NamespaceId = namespaceId,
            Cdw10 = (uint)((length / 4) - 1), // NUMD, 0's based
            Cdw11 = extended ? 1u : 0u,
        };
    }

    /// <summary>The action field (bits 2:0 of CDW10) of Register, Acquire or Release.</summary>
    public static byte Action(in SubmissionQueueEntry sqe) => (byte)(sqe.Cdw10 & 0x7);

    /// <summary>IEKEY (bit 3 of CDW10).</summary>
    public static bool IgnoreExistingKey(in SubmissionQueueEntry sqe) => (sqe.Cdw10 & (1u << 3)) != 0;

    /// <summary>RTYPE (bits 15:8 of CDW10) of Acquire and Release; not checked against the defined values.</summary>
    public static byte Type(in SubmissionQueueEntry sqe) => (byte)(sqe.Cdw10 >> 8);

    /// <summary>CPTPL (bits 31:30 of CDW10) of Register.</summary>
    public static byte PersistChange(in SubmissionQueueEntry sqe) => (byte)(sqe.Cdw10 >> 30);

    /// <summary>Bytes a Report asks for: NUMD (CDW10, 0's based dwords) × 4.</summary>
    public static long ReportLength(in SubmissionQueueEntry sqe) => ((long)sqe.Cdw10 + 1) * 4;

    /// <summary>EDS (bit 0 of CDW11) of Report: the extended data structure with 128-bit host identifiers.</summary>
    public static bool ReportExtended(in SubmissionQueueEntry sqe) => (sqe.Cdw11 & 1) != 0;

    public static bool IsDefined(ReservationType type) => type is >= ReservationType.WriteExclusive and <= ReservationType.ExclusiveAccessAllRegistrants;

    /// <summary>Writes the 16-byte key pair of Register (CRKEY, NRKEY) or Acquire (CRKEY, PRKEY).</summary>
    public static void WriteKeys(Span<byte> destination, ulong currentKey, ulong otherKey)
    {
        BinaryPrimitives.WriteUInt64LittleEndian(destination, currentKey);
        BinaryPrimitives.WriteUInt64LittleEndian(destination[8..], otherKey);
    }

    public static (ulong CurrentKey, ulong OtherKey) ReadKeys(ReadOnlySpan<byte> source) =>
        (BinaryPrimitives.ReadUInt64LittleEndian(source), BinaryPrimitives.ReadUInt64LittleEndian(source[8..]));
}

/// <summary>RESCAP (Identify Namespace byte 31) bits.</summary>
[Flags]
public enum ReservationCapabilities : byte
{
    None = 0,
    PersistThroughPowerLoss = 1 << 0,
    WriteExclusive = 1 << 1,
    ExclusiveAccess = 1 << 2,
    WriteExclusiveRegistrantsOnly = 1 << 3,
    ExclusiveAccessRegistrantsOnly = 1 << 4,
    WriteExclusiveAllRegistrants = 1 << 5,
    ExclusiveAccessAllRegistrants = 1 << 6,
    IgnoreExistingKey = 1 << 7,

    /// <summary>Every reservation type (1..6).</summary>
    AllTypes = WriteExclusive | ExclusiveAccess | WriteExclusiveRegistrantsOnly | ExclusiveAccessRegistrantsOnly | WriteExclusiveAllRegistrants | ExclusiveAccessAllRegistrants,
}

/// <summary>ONCS (Identify Controller bytes 521:520) bits this runtime reads or reports.</summary>
public static class OptionalNvmCommandSupport
{
    public const ushort DatasetManagement = 1 << 2;
    public const ushort WriteZeroes = 1 << 3;

    /// <summary>Reservations (Register, Report, Acquire, Release) are supported.</summary>
    public const ushort Reservations = 1 << 5;
}

/// <summary>One registrant in a Reservation Report.</summary>
/// <param name="ControllerId">CNTLID of a controller of the registrant; FFFFh when the host is registered but has no controller.</param>
/// <param name="HoldsReservation">RCSTS bit 0: this registrant holds the reservation.</param>
/// <param name="HostId">The host identifier: 128-bit in the extended structure; the low 8 bytes (wire order) in the basic one.</param>
public readonly record struct ReservationRegistrant(ushort ControllerId, bool HoldsReservation, ulong Key, UInt128 HostId);

/// <summary>
/// The Reservation Status data structure that Reservation Report returns: a header (24 bytes, or 64 with
/// EDS) with the generation, the reservation type and the number of registrants, then one entry per
/// registrant (24 bytes, or 64 with EDS). A host identifier is kept as the integer read big-endian from its
/// wire bytes, so its hex form is wire order.
/// </summary>
public sealed record ReservationStatus(uint Generation, ReservationType Type, bool PersistThroughPowerLoss, IReadOnlyList<ReservationRegistrant> Registrants)
{
    public const int HeaderSize = 24;
    public const int ExtendedHeaderSize = 64;
    public const int EntrySize = 24;
    public const int ExtendedEntrySize = 64;

    public static int GetSize(int registrants, bool extended) =>
        extended ? ExtendedHeaderSize + (registrants * ExtendedEntrySize) : HeaderSize + (registrants * EntrySize);

    /// <summary>The registrant holding the reservation, if any.</summary>
    public ReservationRegistrant? Holder => Registrants.Where(r => r.HoldsReservation).Select(r => (ReservationRegistrant?)r).FirstOrDefault();

    /// <summary>
    /// Writes as much of the structure as fits in <paramref name="destination"/> (a Report for fewer bytes
    /// than the whole gets the head of it, as the specification asks); the rest of it is zeroed.
    /// </summary>
    public void WriteTo(Span<byte> destination, bool extended)
    {
        int size = GetSize(Registrants.Count, extended);
        Span<byte> full = size <= 4096 ? stackalloc byte[size] : new byte[size];
        full.Clear();
        BinaryPrimitives.WriteUInt32LittleEndian(full, Generation);
        full[4] = (byte)Type;
        BinaryPrimitives.WriteUInt16LittleEndian(full[5..], (ushort)Math.Min(Registrants.Count, ushort.MaxValue));
        full[9] = PersistThroughPowerLoss ? (byte)1 : (byte)0;
        int offset = extended ? ExtendedHeaderSize : HeaderSize;
        foreach (var registrant in Registrants)
        {
            var entry = full.Slice(offset, extended ? ExtendedEntrySize : EntrySize);
            BinaryPrimitives.WriteUInt16LittleEndian(entry, registrant.ControllerId);
            entry[2] = registrant.HoldsReservation ? (byte)1 : (byte)0;
            if (extended)
            {
                BinaryPrimitives.WriteUInt64LittleEndian(entry[8..], registrant.Key);
                BinaryPrimitives.WriteUInt128BigEndian(entry[16..], registrant.HostId);
            }
            else
            {
                BinaryPrimitives.WriteUInt64BigEndian(entry[8..], (ulong)registrant.HostId);
                BinaryPrimitives.WriteUInt64LittleEndian(entry[16..], registrant.Key);
            }

            offset += entry.Length;
        }

        int copied = Math.Min(size, destination.Length);
        full[..copied].CopyTo(destination);
        destination[copied..].Clear();
    }

    /// <summary>
    /// Reads a structure of <paramref name="source"/>.Length bytes. The registrant count comes from the
    /// wire: only the entries that fit in the buffer are read (a short buffer is a truncated list, not an
    /// error); a buffer shorter than the header is.
    /// </summary>
    /// <exception cref="ActorNvme.Protocol.Data.NvmeDataException">Shorter than the header, or an undefined reservation type.</exception>
    public static ReservationStatus Read(ReadOnlySpan<byte> source, bool extended)
    {
        int headerSize = extended ? ExtendedHeaderSize : HeaderSize;
        if (source.Length < headerSize)
        {
            throw new ActorNvme.Protocol.Data.NvmeDataException($"a reservation status is at least {headerSize} bytes, got {source.Length}");
        }

        uint generation = BinaryPrimitives.ReadUInt32LittleEndian(source);
        var type = (ReservationType)source[4];
        if (type != ReservationType.None && !ReservationCommands.IsDefined(type))
        {
            throw new ActorNvme.Protocol.Data.NvmeDataException($"reservation status reports undefined reservation type {(byte)type}");
        }

        int declared = BinaryPrimitives.ReadUInt16LittleEndian(source[5..]);
        bool persist = (source[9] & 1) != 0;
        int entrySize = extended ? ExtendedEntrySize : EntrySize;
        int present = Math.Min(declared, (source.Length - headerSize) / entrySize);
        var registrants = new ReservationRegistrant[present];
        for (int i = 0; i < present; i++)
        {
            var entry = source.Slice(headerSize + (i * entrySize), entrySize);
            ushort controllerId = BinaryPrimitives.ReadUInt16LittleEndian(entry);
            bool holds = (entry[2] & 1) != 0;
            registrants[i] = extended
                ? new ReservationRegistrant(controllerId, holds, BinaryPrimitives.ReadUInt64LittleEndian(entry[8..]), BinaryPrimitives.ReadUInt128BigEndian(entry[16..]))
                : new ReservationRegistrant(controllerId, holds, BinaryPrimitives.ReadUInt64LittleEndian(entry[16..]), BinaryPrimitives.ReadUInt64BigEndian(entry[8..]));
        }

        return new ReservationStatus(generation, type, persist, registrants);
    }

    /// <summary>The registrant count the header declares (may exceed the entries a short Report carried).</summary>
    public static int DeclaredRegistrants(ReadOnlySpan<byte> source) =>
        source.Length < 7 ? 0 : BinaryPrimitives.ReadUInt16LittleEndian(source[5..]);
}
