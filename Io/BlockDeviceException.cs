using ActorNvme.Protocol.Nvme;

namespace ActorNvme.Io;

/// <summary>Why a block-device operation failed.</summary>
public enum BlockDeviceErrorKind
{
    /// <summary>No path could take the I/O: none attached and the hold limit (io-hold-limit) is reached.</summary>
    PathUnavailable = 1,

    /// <summary>No path has been Live for fast-io-fail-timeout: I/O fails at once instead of waiting.</summary>
    FailFast = 2,

    /// <summary>The block device was deleted (its namespace was removed from the subsystem, its last path was removed, or ctrlr-loss-timeout expired); I/O in flight then ends with this too.</summary>
    Deleted = 3,

    /// <summary>The controller answered with an error status (see <see cref="BlockDeviceException.Status"/>), with DNR set or after io-retries retries.</summary>
    DeviceError = 4,

    /// <summary>More I/O is waiting for a free queue entry than the waiting line holds (io-hold-limit).</summary>
    Overloaded = 5,

    /// <summary>
    /// The I/O was in flight on a path that was lost, more often than io-path-loss-retries allows (a
    /// target that drops the connection on this I/O every time). For a write, the target may or may not
    /// have executed it.
    /// </summary>
    PathLost = 6,

    /// <summary>
    /// The namespace's reservation excludes this host (SCT 0, SC 83h): another host holds it, or preempted
    /// this host's registration (a new owner fencing this one off). Never retried: the same command fails
    /// again until the reservation changes, and a fenced writer must stop writing.
    /// </summary>
    ReservationConflict = 7,
}

/// <summary>A block-device operation that failed; <see cref="Kind"/> says why, the message says what in words.</summary>
public sealed class BlockDeviceException : Exception
{
    public BlockDeviceException(BlockDeviceErrorKind kind, string device, string message, NvmeStatus? status = null)
        : base($"{device}: {message}")
    {
        Kind = kind;
        Device = device;
        Status = status;
    }

    public BlockDeviceException()
        : this(BlockDeviceErrorKind.DeviceError, "unknown", "block device error")
    {
    }

    public BlockDeviceException(string message)
        : this(BlockDeviceErrorKind.DeviceError, "unknown", message)
    {
    }

    public BlockDeviceException(string message, Exception innerException)
        : base(message, innerException)
    {
        Kind = BlockDeviceErrorKind.DeviceError;
        Device = "unknown";
    }

    public BlockDeviceErrorKind Kind { get; }

    /// <summary>The block device's name (nvme0n1).</summary>
    public string Device { get; }

    /// <summary>The NVMe status of the last attempt, for <see cref="BlockDeviceErrorKind.DeviceError"/>.</summary>
    public NvmeStatus? Status { get; }
}
