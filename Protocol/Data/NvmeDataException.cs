namespace ActorNvme.Protocol.Data;

/// <summary>Thrown by the throwing conveniences (<c>Read</c>, encoders) with the <see cref="DataError"/> that stopped them.</summary>
public sealed class NvmeDataException : Exception
{
    /// <summary>Creates an exception without a specific error.</summary>
    public NvmeDataException()
    {
    }

    /// <summary>Creates an exception with a message.</summary>
    public NvmeDataException(string message)
        : base(message)
    {
    }

    /// <summary>Creates an exception with a message and a cause.</summary>
    public NvmeDataException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    /// <summary>Creates an exception from a data error; its message is <see cref="DataError.Describe"/>.</summary>
    public NvmeDataException(DataError error)
        : base(error.Describe()) => Error = error;

    /// <summary>The error, or <see cref="DataError.None"/> when created from a bare message.</summary>
    public DataError Error { get; } = DataError.None;

    internal static NvmeDataException OutOfRange(string field, ulong value, ulong max) =>
        new(new DataError(DataErrorCode.ValueOutOfRange, field, value, max));
}
