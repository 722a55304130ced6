using System.Buffers.Binary;

namespace ActorNvme.Protocol.Data;

/// <summary>CC.SHN: shutdown notification.</summary>
public enum ShutdownNotification : byte
{
    /// <summary>No notification.</summary>
    None = 0,

    /// <summary>Normal shutdown.</summary>
    Normal = 1,

    /// <summary>Abrupt shutdown.</summary>
    Abrupt = 2,
}

/// <summary>
/// CC, the Controller Configuration property (offset 0x14, 4 bytes). Holds the raw <see cref="Value"/>;
/// fields are views of its bits and their <c>init</c> accessors set them.
/// </summary>
public readonly record struct ControllerConfiguration
{
    /// <summary>Register offset.</summary>
    public const uint Offset = ControllerRegister.Configuration;

    /// <summary>Property size in bytes.</summary>
    public const int Size = 4;

    /// <summary>Creates the register from its raw value.</summary>
    public ControllerConfiguration(uint value) => Value = value;

    /// <summary>The raw value.</summary>
    public uint Value { get; init; }

    /// <summary>
    /// What a host writes to an NVMe over Fabrics controller before enabling it: the NVM command set,
    /// 64-byte submission and 16-byte completion queue entries (the only sizes fabrics allow), EN and SHN clear.
    /// </summary>
    public static ControllerConfiguration ForFabrics => new() { CommandSet = 0, IoSubmissionQueueEntrySize = 6, IoCompletionQueueEntrySize = 4 };

    /// <summary>This configuration with EN set.</summary>
    public ControllerConfiguration Enabled => this with { Enable = true };

    /// <summary>This configuration with SHN set to <paramref name="notification"/>.</summary>
    public ControllerConfiguration WithShutdown(ShutdownNotification notification) => this with { ShutdownNotification = notification };

    /// <summary>EN, bit 0: enable.</summary>
    public bool Enable
    {
        get => Bits.Get(Value, 0, 1) != 0;
        init => Value = Bits.Set(Value, 0, 1, value ? 1UL : 0UL, "CC.EN");
    }

    /// <summary>CSS, bits 6:4: I/O command set selected (0 NVM, 6 all supported I/O command sets, 7 admin only).</summary>
    public byte CommandSet
    {
        get => (byte)Bits.Get(Value, 4, 3);
        init => Value = Bits.Set(Value, 4, 3, value, "CC.CSS");
    }

    /// <summary>MPS, bits 10:7: memory page size (2 ^ (12 + MPS)).</summary>
    public byte MemoryPageSize
    {
        get => (byte)Bits.Get(Value, 7, 4);
        init => Value = Bits.Set(Value, 7, 4, value, "CC.MPS");
    }

    /// <summary>AMS, bits 13:11: arbitration mechanism selected.</summary>
    public byte ArbitrationMechanism
    {
        get => (byte)Bits.Get(Value, 11, 3);
        init => Value = Bits.Set(Value, 11, 3, value, "CC.AMS");
    }

    /// <summary>SHN, bits 15:14: shutdown notification.</summary>
    public ShutdownNotification ShutdownNotification
    {
        get => (ShutdownNotification)Bits.Get(Value, 14, 2);
        init => Value = Bits.Set(Value, 14, 2, (ulong)value, "CC.SHN");
    }

    /// <summary>IOSQES, bits 19:16: I/O submission queue entry size (2 ^ n bytes; 6 for 64).</summary>
    public byte IoSubmissionQueueEntrySize
    {
        get => (byte)Bits.Get(Value, 16, 4);
        init => Value = Bits.Set(Value, 16, 4, value, "CC.IOSQES");
    }

    /// <summary>IOCQES, bits 23:20: I/O completion queue entry size (2 ^ n bytes; 4 for 16).</summary>
    public byte IoCompletionQueueEntrySize
    {
        get => (byte)Bits.Get(Value, 20, 4);
        init => Value = Bits.Set(Value, 20, 4, value, "CC.IOCQES");
    }

    /// <summary>Decodes the 4-byte little-endian value.</summary>
    public static bool TryRead(ReadOnlySpan<byte> source, out ControllerConfiguration value, out DataError error)
    {
        if (source.Length < Size)
        {
            value = default;
            error = DataError.TooShort("CC", source.Length, Size);
            return false;
        }

        value = new ControllerConfiguration(BinaryPrimitives.ReadUInt32LittleEndian(source));
        error = DataError.None;
        return true;
    }

    /// <summary>Decodes, throwing <see cref="NvmeDataException"/> on error.</summary>
    public static ControllerConfiguration Read(ReadOnlySpan<byte> source) =>
        TryRead(source, out var value, out var error) ? value : throw new NvmeDataException(error);

    /// <summary>Encodes the 4-byte little-endian value.</summary>
    public void WriteTo(Span<byte> destination)
    {
        DataGuard.Destination(destination, Size, "CC");
        BinaryPrimitives.WriteUInt32LittleEndian(destination, Value);
    }
}
