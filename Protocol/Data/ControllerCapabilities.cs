using System.Buffers.Binary;

namespace ActorNvme.Protocol.Data;

/// <summary>
/// CAP, the Controller Capabilities property (offset 0x00, 8 bytes). Holds the raw <see cref="Value"/>;
/// every field is a view of its bits, and its <c>init</c> accessor sets those bits (throwing when the
/// value does not fit), so a target can write <c>new ControllerCapabilities { MaxQueueEntries = 127, ... }</c>.
/// </summary>
public readonly record struct ControllerCapabilities
{
    /// <summary>Register offset.</summary>
    public const uint Offset = ControllerRegister.Capabilities;

    /// <summary>Property size in bytes.</summary>
    public const int Size = 8;

    /// <summary>Creates the register from its raw value.</summary>
    public ControllerCapabilities(ulong value) => Value = value;

    /// <summary>The raw 64-bit value.</summary>
    public ulong Value { get; init; }

    /// <summary>MQES, bits 15:0: maximum queue entries supported, 0-based.</summary>
    public ushort MaxQueueEntries
    {
        get => (ushort)Bits.Get(Value, 0, 16);
        init => Value = Bits.Set(Value, 0, 16, value, "CAP.MQES");
    }

    /// <summary>The largest queue size in entries (MQES + 1).</summary>
    public int MaxQueueSize => MaxQueueEntries + 1;

    /// <summary>CQR, bit 16: contiguous queues required.</summary>
    public bool ContiguousQueuesRequired
    {
        get => Bits.Get(Value, 16, 1) != 0;
        init => Value = Bits.Set(Value, 16, 1, value ? 1UL : 0UL, "CAP.CQR");
    }

    /// <summary>AMS, bits 18:17: arbitration mechanisms supported (bit 0 weighted round robin, bit 1 vendor specific).</summary>
    public byte ArbitrationMechanisms
    {
        get => (byte)Bits.Get(Value, 17, 2);
        init => Value = Bits.Set(Value, 17, 2, value, "CAP.AMS");
    }

    /// <summary>TO, bits 31:24: worst-case time to become ready, in 500 ms units.</summary>
    public byte Timeout
    {
        get => (byte)Bits.Get(Value, 24, 8);
        init => Value = Bits.Set(Value, 24, 8, value, "CAP.TO");
    }

    /// <summary><see cref="Timeout"/> as a duration.</summary>
    public TimeSpan ReadyTimeout => TimeSpan.FromMilliseconds(500.0 * Timeout);

    /// <summary>DSTRD, bits 35:32: doorbell stride (2 ^ (2 + DSTRD) bytes).</summary>
    public byte DoorbellStride
    {
        get => (byte)Bits.Get(Value, 32, 4);
        init => Value = Bits.Set(Value, 32, 4, value, "CAP.DSTRD");
    }

    /// <summary>NSSRS, bit 36: NVM subsystem reset supported.</summary>
    public bool SubsystemResetSupported
    {
        get => Bits.Get(Value, 36, 1) != 0;
        init => Value = Bits.Set(Value, 36, 1, value ? 1UL : 0UL, "CAP.NSSRS");
    }

    /// <summary>CSS, bits 44:37: command sets supported (bit 0 NVM, bit 6 I/O command sets, bit 7 admin only).</summary>
    public byte CommandSets
    {
        get => (byte)Bits.Get(Value, 37, 8);
        init => Value = Bits.Set(Value, 37, 8, value, "CAP.CSS");
    }

    /// <summary>BPS, bit 45: boot partition support.</summary>
    public bool BootPartitionSupported
    {
        get => Bits.Get(Value, 45, 1) != 0;
        init => Value = Bits.Set(Value, 45, 1, value ? 1UL : 0UL, "CAP.BPS");
    }

    /// <summary>MPSMIN, bits 51:48: minimum memory page size (2 ^ (12 + MPSMIN)).</summary>
    public byte MemoryPageSizeMinimum
    {
        get => (byte)Bits.Get(Value, 48, 4);
        init => Value = Bits.Set(Value, 48, 4, value, "CAP.MPSMIN");
    }

    /// <summary>MPSMAX, bits 55:52: maximum memory page size (2 ^ (12 + MPSMAX)).</summary>
    public byte MemoryPageSizeMaximum
    {
        get => (byte)Bits.Get(Value, 52, 4);
        init => Value = Bits.Set(Value, 52, 4, value, "CAP.MPSMAX");
    }

    /// <summary>Decodes the 8-byte little-endian property value.</summary>
    public static bool TryRead(ReadOnlySpan<byte> source, out ControllerCapabilities value, out DataError error)
    {
        if (source.Length < Size)
        {
            value = default;
            error = DataError.TooShort("CAP", source.Length, Size);
            return false;
        }

        value = new ControllerCapabilities(BinaryPrimitives.ReadUInt64LittleEndian(source));
        error = DataError.None;
        return true;
    }

    /// <summary>Decodes, throwing <see cref="NvmeDataException"/> on error.</summary>
    public static ControllerCapabilities Read(ReadOnlySpan<byte> source) =>
        TryRead(source, out var value, out var error) ? value : throw new NvmeDataException(error);

    /// <summary>Encodes the 8-byte little-endian property value.</summary>
    public void WriteTo(Span<byte> destination)
    {
        DataGuard.Destination(destination, Size, "CAP");
        BinaryPrimitives.WriteUInt64LittleEndian(destination, Value);
    }
}
