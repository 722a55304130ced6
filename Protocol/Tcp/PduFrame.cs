using System.Buffers;
using System.Runtime.CompilerServices;

namespace ActorNvme.Protocol.Tcp;

/// <summary>
/// One complete PDU found in a receive buffer. Slices the buffer and copies nothing; valid until the
/// reader advances past it.
/// </summary>
public readonly struct PduFrame
{
    public PduFrame(CommonHeader common, ReadOnlySequence<byte> header, ReadOnlySequence<byte> data, bool dataDigestValid)
    {
        Common = common;
        HeaderBytes = header;
        Data = data;
        DataDigestValid = dataDigestValid;
    }

    public CommonHeader Common { get; }

    public PduType Type => Common.Type;

    /// <summary>The whole PDU header (HLEN bytes, common header included).</summary>
    public ReadOnlySequence<byte> HeaderBytes { get; }

    /// <summary>The PDU data without padding or digest; empty when the PDU carries none.</summary>
    public ReadOnlySequence<byte> Data { get; }

    /// <summary>False when a data digest was negotiated and the data does not match it. Not fatal: it fails one command.</summary>
    public bool DataDigestValid { get; }

    /// <summary>Total length on the wire (PLEN): how far to advance the reader.</summary>
    public long Length => Common.PduLength;

    /// <summary>
    /// The header as one span: a slice of the buffer when contiguous, otherwise copied into
    /// <paramref name="scratch"/> (at least 128 bytes; stackalloc it).
    /// </summary>
    public ReadOnlySpan<byte> GetHeader(Span<byte> scratch)
    {
        var first = HeaderBytes.FirstSpan;
        if (first.Length >= HeaderBytes.Length)
        {
            return first[..(int)HeaderBytes.Length];
        }

        var target = scratch[..(int)HeaderBytes.Length];
        HeaderBytes.CopyTo(target);
        return target;
    }
}
