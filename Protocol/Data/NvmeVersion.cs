using System.Buffers.Binary;
using System.Globalization;

namespace ActorNvme.Protocol.Data;

/// <summary>VS, the Version property (offset 0x08, 4 bytes), also the VER field of Identify Controller.</summary>
public readonly record struct NvmeVersion
{
    /// <summary>Register offset.</summary>
    public const uint Offset = ControllerRegister.Version;

    /// <summary>Property size in bytes.</summary>
    public const int Size = 4;

    /// <summary>Creates the version from its raw value.</summary>
    public NvmeVersion(uint value) => Value = value;

    /// <summary>Creates the version from its parts.</summary>
    public NvmeVersion(ushort major, byte minor, byte tertiary) => Value = ((uint)major << 16) | ((uint)minor << 8) | tertiary;

    /// <summary>The raw value: MJR in bits 31:16, MNR 15:8, TER 7:0.</summary>
    public uint Value { get; init; }

    /// <summary>MJR: major version.</summary>
    public ushort Major => (ushort)(Value >> 16);

    /// <summary>MNR: minor version.</summary>
    public byte Minor => (byte)(Value >> 8);

    /// <summary>TER: tertiary version.</summary>
    public byte Tertiary => (byte)Value;

    /// <summary>NVMe 1.3.0, the version Linux targets report.</summary>
    public static NvmeVersion V1_3_0 => new(1, 3, 0);

    /// <summary>NVMe 1.4.0.</summary>
    public static NvmeVersion V1_4_0 => new(1, 4, 0);

    /// <summary>NVMe 2.0.0.</summary>
    public static NvmeVersion V2_0_0 => new(2, 0, 0);

    /// <summary>Decodes the 4-byte little-endian value.</summary>
    public static bool TryRead(ReadOnlySpan<byte> source, out NvmeVersion value, out DataError error)
    {
        if (source.Length < Size)
        {
            value = default;
            error = DataError.TooShort("VS", source.Length, Size);
            return false;
        }

        value = new NvmeVersion(BinaryPrimitives.ReadUInt32LittleEndian(source));
        error = DataError.None;
        return true;
    }

    /// <summary>Decodes, throwing <see cref="NvmeDataException"/> on error.</summary>
    public static NvmeVersion Read(ReadOnlySpan<byte> source) =>
        TryRead(source, out var value, out var error) ? value : throw new NvmeDataException(error);

    /// <summary>Encodes the 4-byte little-endian value.</summary>
    public void WriteTo(Span<byte> destination)
    {
        DataGuard.Destination(destination, Size, "VS");
        BinaryPrimitives.WriteUInt32LittleEndian(destination, Value);
    }

    /// <summary>"major.minor.tertiary".</summary>
    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"{Major}.{Minor}.{Tertiary}");
}
