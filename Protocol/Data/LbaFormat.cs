using System.Runtime.CompilerServices;

namespace ActorNvme.Protocol.Data;

/// <summary>An LBA Format entry of Identify Namespace (4 bytes): MS, LBADS, RP.</summary>
/// <param name="MetadataSize">MS: metadata bytes per LBA.</param>
/// <param name="LbaDataSizeShift">LBADS: LBA data size as a power of two (9 is 512 bytes); 0 means the format is not available.</param>
/// <param name="RelativePerformance">RP (2 bits): 0 best .. 3 degraded.</param>
public readonly record struct LbaFormat(ushort MetadataSize, byte LbaDataSizeShift, byte RelativePerformance)
{
    /// <summary>Size of one entry in bytes.</summary>
    public const int Size = 4;

    /// <summary>Smallest and largest LBADS this library accepts for a format in use (512 B .. 64 KiB).</summary>
    public const int MinDataSizeShift = 9, MaxDataSizeShift = 16;
}

/// <summary>The 64 LBA format entries of Identify Namespace, held inline (no allocation).</summary>
[InlineArray(Capacity)]
public struct LbaFormatTable : IEquatable<LbaFormatTable>
{
    /// <summary>Number of entries (NVMe 2.0: up to 64).</summary>
    public const int Capacity = 64;

    private LbaFormat _element0;

    /// <summary>Equality of equal-valued operands.</summary>
    public static bool operator ==(LbaFormatTable left, LbaFormatTable right) => left.Equals(right);

    /// <summary>Inequality.</summary>
    public static bool operator !=(LbaFormatTable left, LbaFormatTable right) => !left.Equals(right);

    /// <inheritdoc/>
    public readonly bool Equals(LbaFormatTable other)
    {
        for (int i = 0; i < Capacity; i++)
        {
            if (this[i] != other[i])
            {
                return false;
            }
        }

        return true;
    }

    /// <inheritdoc/>
    public override readonly bool Equals(object? obj) => obj is LbaFormatTable other && Equals(other);

    /// <inheritdoc/>
    public override readonly int GetHashCode()
    {
        var hash = default(HashCode);
        for (int i = 0; i < Capacity; i++)
        {
            hash.Add(this[i]);
        }

        return hash.ToHashCode();
    }
}
