using System.Buffers;
using System.Buffers.Binary;
using System.Runtime.CompilerServices;

namespace ActorNvme.Protocol.Tcp;

/// <summary>Which side of the connection the framer parses for.</summary>
public enum PduDirection : byte
{
    /// <summary>The host receives controller-to-host PDUs.</summary>
    HostReceives,

    /// <summary>The controller receives host-to-controller PDUs.</summary>
    ControllerReceives,
}

/// <summary>Outcome of one <see cref="PduFramer.TryParse"/> call.</summary>
public enum FrameStatus : byte
{
    NeedMoreData,
    Frame,
    Error,
}

/// <summary>
/// What the framer enforces on one connection. Digests are the negotiated ones (both off until
/// ICResp); <see cref="MaxPduLength"/> bounds PLEN before any byte of the PDU body is awaited.
/// </summary>
public readonly record struct PduFramerOptions(PduDirection Direction, bool HeaderDigest, bool DataDigest, uint MaxPduLength)
{
    /// <summary>Default PLEN bound: a 4 MiB data PDU plus its header, padding and digests.</summary>
    public const uint DefaultMaxPduLength = (4 * 1024 * 1024) + 256;

    public static PduFramerOptions Host(uint maxPduLength = DefaultMaxPduLength) => new(PduDirection.HostReceives, false, false, maxPduLength);

    public static PduFramerOptions Controller(uint maxPduLength = DefaultMaxPduLength) => new(PduDirection.ControllerReceives, false, false, maxPduLength);

    public PduFramerOptions WithDigests(DigestOptions digests) =>
        this with { HeaderDigest = (digests & DigestOptions.Header) != 0, DataDigest = (digests & DigestOptions.Data) != 0 };
}

/// <summary>
/// Finds PDUs in a receive buffer. Honours HLEN, PDO padding and both digests, and validates every
/// header field against its type and the negotiated options before waiting for the body, so a
/// hostile PLEN is refused as soon as its 8 bytes arrive.
/// </summary>
public static class PduFramer
{
    private const int PduLengthFieldOffset = 4;
    private const int DataOffsetFieldOffset = 3;
    private const int HeaderLengthFieldOffset = 2;
    private const int FlagsFieldOffset = 1;

    public static FrameStatus TryParse(in ReadOnlySequence<byte> buffer, in PduFramerOptions options, out PduFrame frame, out PduFault fault)
    {
        frame = default;
        fault = default;
        CommonHeader common;
        var first = buffer.FirstSpan;
        if (first.Length >= CommonHeader.Size)
        {
            // The usual case: the common header lies in the first segment (a raw-socket buffer is one segment).
            CommonHeader.TryRead(first, out common);
        }
        else
        {
            if (buffer.Length < CommonHeader.Size)
            {
                return FrameStatus.NeedMoreData;
            }

            Span<byte> commonBytes = stackalloc byte[CommonHeader.Size];
            buffer.Slice(0, CommonHeader.Size).CopyTo(commonBytes);
            CommonHeader.TryRead(commonBytes, out common);
        }

        if (!Validate(common, options, out fault, out int dataOffset, out int dataLength))
        {
            return FrameStatus.Error;
        }

        // Length of the first segment first: the raw-socket buffer is one segment, and walking the sequence costs.
        if (first.Length < common.PduLength && buffer.Length < common.PduLength)
        {
            return FrameStatus.NeedMoreData;
        }

        // Slices of the buffer itself (the PDU starts at its offset 0): without digests, two slices per PDU.
        var header = buffer.Slice(0, common.HeaderLength);
        bool digests = PduSizes.CarriesDigests(common.Type);

        if (digests && options.HeaderDigest)
        {
            uint expected = Crc32C.Compute(header);
            uint received = ReadUInt32(buffer.Slice(common.HeaderLength, PduSizes.Digest));
            if (expected != received)
            {
                fault = new PduFault(PduError.HeaderDigestMismatch, received, common.HeaderLength, common.Type);
                return FrameStatus.Error;
            }
        }

        var data = dataLength > 0 ? buffer.Slice(dataOffset, dataLength) : ReadOnlySequence<byte>.Empty;
        bool dataDigestValid = true;
        if (dataLength > 0 && digests && options.DataDigest)
        {
            uint received = ReadUInt32(buffer.Slice(dataOffset + dataLength, PduSizes.Digest));
            dataDigestValid = Crc32C.Compute(data) == received;
        }

        frame = new PduFrame(common, header, data, dataDigestValid);
        return FrameStatus.Frame;
    }

    /// <summary>Checks a common header against its type and the options; computes where its data lies.</summary>
    public static bool Validate(in CommonHeader common, in PduFramerOptions options, out PduFault fault, out int dataOffset, out int dataLength)
    {
        dataOffset = 0;
        dataLength = 0;
        var type = common.Type;
        int expectedHeaderLength = PduSizes.HeaderLength(type);
        if (expectedHeaderLength == 0)
        {
            fault = new PduFault(PduError.UnknownPduType, (byte)type, 0, type);
            return false;
        }

        bool fromHost = PduSizes.IsHostToController(type);
        if (fromHost != (options.Direction == PduDirection.ControllerReceives))
        {
            fault = new PduFault(PduError.UnexpectedPduType, (byte)type, 0, type);
            return false;
        }

        if (common.HeaderLength != expectedHeaderLength)
        {
            fault = new PduFault(PduError.HeaderLengthMismatch, common.HeaderLength, HeaderLengthFieldOffset, type);
            return false;
        }

        if (common.PduLength > options.MaxPduLength)
        {
            fault = new PduFault(PduError.PduLengthTooLarge, common.PduLength, PduLengthFieldOffset, type);
            return false;
        }

        if (!ValidateFlags(common, options, out fault))
        {
            return false;
        }

        bool digests = PduSizes.CarriesDigests(type);
        int headerDigest = digests && options.HeaderDigest ? PduSizes.Digest : 0;
        int dataDigest = digests && options.DataDigest ? PduSizes.Digest : 0;
        long headerEnd = common.HeaderLength + headerDigest;
        if (common.PduLength < headerEnd)
        {
            fault = new PduFault(PduError.PduLengthTooSmall, common.PduLength, PduLengthFieldOffset, type);
            return false;
        }

        if (type is PduType.H2CTermReq or PduType.C2HTermReq)
        {
            // TermReq data follows the header directly; PDO is reserved.
            if (common.PduLength - headerEnd > PduSizes.MaxTermReqData)
            {
                fault = new PduFault(PduError.PduLengthTooLarge, common.PduLength, PduLengthFieldOffset, type);
                return false;
            }

            dataOffset = (int)headerEnd;
            dataLength = (int)(common.PduLength - headerEnd);
            return true;
        }

        if (!PduSizes.CarriesData(type))
        {
            if (common.PduLength != headerEnd)
            {
                fault = new PduFault(PduError.UnexpectedData, common.PduLength, PduLengthFieldOffset, type);
                return false;
            }

            return true;
        }

        if (common.PduLength == headerEnd)
        {
            // No data (e.g. a CapsuleCmd without in-capsule data); PDO carries no meaning then.
            return true;
        }

        if (common.DataOffset < headerEnd)
        {
            fault = new PduFault(PduError.DataOffsetInsideHeader, common.DataOffset, DataOffsetFieldOffset, type);
            return false;
        }

        if (common.DataOffset + dataDigest >= common.PduLength)
        {
            fault = new PduFault(PduError.DataOffsetBeyondPdu, common.DataOffset, DataOffsetFieldOffset, type);
            return false;
        }

        dataOffset = common.DataOffset;
        dataLength = (int)(common.PduLength - common.DataOffset - dataDigest);
        return true;
    }

    private static bool ValidateFlags(in CommonHeader common, in PduFramerOptions options, out PduFault fault)
    {
        fault = default;
        var type = common.Type;
        var flags = common.Flags;
        var allowed = type switch
        {
            PduType.C2HData => PduFlags.HeaderDigest | PduFlags.DataDigest | PduFlags.LastPdu | PduFlags.Success,
            PduType.H2CData => PduFlags.HeaderDigest | PduFlags.DataDigest | PduFlags.LastPdu,
            PduType.CapsuleCmd => PduFlags.HeaderDigest | PduFlags.DataDigest,
            PduType.CapsuleResp or PduType.R2T => PduFlags.HeaderDigest,
            _ => PduFlags.None,
        };

        if ((flags & ~allowed) != 0)
        {
            fault = new PduFault(PduError.InvalidFlags, (byte)flags, FlagsFieldOffset, type);
            return false;
        }

        if (!PduSizes.CarriesDigests(type))
        {
            return true;
        }

        bool headerFlag = (flags & PduFlags.HeaderDigest) != 0;
        bool dataFlag = (flags & PduFlags.DataDigest) != 0;
        bool hasData = common.PduLength > common.HeaderLength + (options.HeaderDigest ? PduSizes.Digest : 0);

        // DDGSTF is set only on PDUs that actually carry data.
        bool dataMismatch = PduSizes.CarriesData(type) && hasData ? dataFlag != options.DataDigest : dataFlag;
        if (headerFlag != options.HeaderDigest || dataMismatch)
        {
            fault = new PduFault(PduError.DigestFlagMismatch, (byte)flags, FlagsFieldOffset, type);
            return false;
        }

        return true;
    }

    private static uint ReadUInt32(in ReadOnlySequence<byte> bytes)
    {
        Span<byte> scratch = stackalloc byte[4];
        bytes.CopyTo(scratch);
        return BinaryPrimitives.ReadUInt32LittleEndian(scratch);
    }
}
