using System.Globalization;

namespace ActorNvme.Protocol.Data;

/// <summary>What was wrong with a data structure, by kind. See <see cref="DataError"/> for the details.</summary>
public enum DataErrorCode
{
    /// <summary>No error.</summary>
    None = 0,

    /// <summary>The input holds fewer bytes than the structure needs.</summary>
    SourceTooShort,

    /// <summary>The output buffer (or caller-provided list) is too small.</summary>
    DestinationTooShort,

    /// <summary>A field holds a value outside its allowed range.</summary>
    ValueOutOfRange,

    /// <summary>The discovery log header claims more records than this library accepts.</summary>
    DiscoveryLogTooManyRecords,

    /// <summary>The discovery log header claims more records than the data holds.</summary>
    DiscoveryLogTruncated,

    /// <summary>A record index beyond the records present was asked for.</summary>
    RecordIndexOutOfRange,

    /// <summary>NLBAF claims more LBA formats than the structure can hold.</summary>
    LbaFormatCountOutOfRange,

    /// <summary>FLBAS selects an LBA format beyond NLBAF.</summary>
    LbaFormatIndexOutOfRange,

    /// <summary>The LBA format in use has an LBADS outside 9..16.</summary>
    LbaDataSizeOutOfRange,

    /// <summary>A namespace identification descriptor's NIDL does not match its NIDT.</summary>
    DescriptorLengthMismatch,

    /// <summary>A namespace identification descriptor runs past the end of the data.</summary>
    DescriptorOverrun,

    /// <summary>A namespace identification descriptor type appears twice.</summary>
    DuplicateDescriptor,

    /// <summary>The ANA log claims more groups or namespaces than its data holds.</summary>
    AnaLogTruncated,

    /// <summary>The namespace list has more entries than allowed.</summary>
    NamespaceListTooLong,

    /// <summary>A namespace list holds an NSID that is not allowed there (0 or 0xFFFFFFFF).</summary>
    InvalidNamespaceId,

    /// <summary>An NQN is empty.</summary>
    NqnEmpty,

    /// <summary>An NQN is longer than 223 bytes of UTF-8.</summary>
    NqnTooLong,

    /// <summary>An NQN holds a control character.</summary>
    NqnNotPrintable,

    /// <summary>An NQN does not start with "nqn.".</summary>
    NqnBadPrefix,

    /// <summary>An NQN field holds no NUL terminator.</summary>
    NqnNotTerminated,

    /// <summary>An NQN's bytes are not valid UTF-8 (decoded as U+FFFD).</summary>
    NqnNotUtf8,

    /// <summary>A text field is longer than its wire field.</summary>
    TextTooLong,

    /// <summary>A text field holds a character outside printable ASCII.</summary>
    TextNotPrintable,
}

/// <summary>
/// A decode or encode failure: its <see cref="Code"/>, the <see cref="Field"/> it concerns, the bad
/// <see cref="Value"/>, the <see cref="Limit"/> it broke and the byte <see cref="Offset"/> where it was found.
/// Building one allocates nothing (field names are literals); <see cref="Describe"/> formats the message.
/// </summary>
public readonly record struct DataError(DataErrorCode Code, string Field, ulong Value, ulong Limit, long Offset = 0)
{
    /// <summary>The absence of an error.</summary>
    public static readonly DataError None = new(DataErrorCode.None, string.Empty, 0, 0);

    /// <summary>True when this is a real error.</summary>
    public bool IsError => Code != DataErrorCode.None;

    internal static DataError TooShort(string field, int actual, int needed) =>
        new(DataErrorCode.SourceTooShort, field, (ulong)actual, (ulong)needed);

    /// <summary>A sentence that names the problem and the values involved.</summary>
    public string Describe()
    {
        var c = CultureInfo.InvariantCulture;
        return Code switch
        {
            DataErrorCode.None => "no error",
            DataErrorCode.SourceTooShort => string.Format(c, "{0}: {1} bytes present, {2} needed", Field, Value, Limit),
            DataErrorCode.DestinationTooShort => string.Format(c, "{0}: destination holds {1}, {2} needed", Field, Value, Limit),
            DataErrorCode.ValueOutOfRange => string.Format(c, "{0}={1} (0x{1:x}) is out of range (maximum {2})", Field, Value, Limit),
            DataErrorCode.DiscoveryLogTooManyRecords => string.Format(c, "discovery log NUMREC={0} exceeds the maximum of {1} records", Value, Limit),
            DataErrorCode.DiscoveryLogTruncated => string.Format(c, "discovery log NUMREC={0} but only {1} records fit in the data", Value, Limit),
            DataErrorCode.RecordIndexOutOfRange => string.Format(c, "{0} index {1} is out of range ({2} records present)", Field, Value, Limit),
            DataErrorCode.LbaFormatCountOutOfRange => string.Format(c, "NLBAF={0} is out of range (maximum {1})", Value, Limit),
            DataErrorCode.LbaFormatIndexOutOfRange => string.Format(c, "FLBAS selects LBA format {0} but NLBAF allows 0..{1}", Value, Limit),
            DataErrorCode.LbaDataSizeOutOfRange => string.Format(c, "LBADS={0} of LBA format {1} is out of range 9..16", Value, Limit),
            DataErrorCode.DescriptorLengthMismatch => string.Format(c, "{0}={1} at offset {3}, expected {2}", Field, Value, Limit, Offset),
            DataErrorCode.DescriptorOverrun => string.Format(c, "{0}={1} at offset {3} runs past the end of the data ({2} bytes)", Field, Value, Limit, Offset),
            DataErrorCode.DuplicateDescriptor => string.Format(c, "{0} descriptor (NIDT={1}) appears twice, again at offset {2}", Field, Value, Offset),
            DataErrorCode.AnaLogTruncated => string.Format(c, "ANA log {0}={1} at offset {3} does not fit in the data ({2} bytes)", Field, Value, Limit, Offset),
            DataErrorCode.NamespaceListTooLong => string.Format(c, "{0}: {1} entries, at most {2} allowed", Field, Value, Limit),
            DataErrorCode.InvalidNamespaceId => string.Format(c, "{0}: NSID 0x{1:x} at offset {2} is not allowed", Field, Value, Offset),
            DataErrorCode.NqnEmpty => string.Format(c, "{0} is empty", Field),
            DataErrorCode.NqnTooLong => string.Format(c, "{0} is {1} bytes long, at most {2} allowed", Field, Value, Limit),
            DataErrorCode.NqnNotPrintable => string.Format(c, "{0} holds control character U+{1:X4} at index {2}", Field, Value, Offset),
            DataErrorCode.NqnBadPrefix => string.Format(c, "{0} does not start with \"nqn.\"", Field),
            DataErrorCode.NqnNotUtf8 => string.Format(c, "{0} is not valid UTF-8 (undecodable bytes at index {2})", Field, Value, Offset),
            DataErrorCode.NqnNotTerminated => string.Format(c, "{0} has no NUL terminator within its {1} bytes", Field, Limit),
            DataErrorCode.TextTooLong => string.Format(c, "{0} is {1} characters long, the field holds {2}", Field, Value, Limit),
            DataErrorCode.TextNotPrintable => string.Format(c, "{0} holds U+{1:X4} at index {2}, outside printable ASCII", Field, Value, Offset),
            _ => string.Format(c, "{0}: {1} (value {2}, limit {3}, offset {4})", Code, Field, Value, Limit, Offset),
        };
    }

    /// <inheritdoc/>
    public override string ToString() => Describe();
}
