namespace ActorNvme.Host.JsonRpc;

/// <summary>
/// The error codes a client sees: JSON-RPC 2.0's own, SPDK's "invalid state", and SPDK's habit of
/// answering a failed operation with the negative errno of the cause.
/// </summary>
public static class JsonRpcErrorCodes
{
    /// <summary>SPDK: the method exists but is not callable in the current state (before or after framework_start_init).</summary>
    public const int InvalidState = -1;

    public const int ParseError = -32700;
    public const int InvalidRequest = -32600;
    public const int MethodNotFound = -32601;
    public const int InvalidParams = -32602;
    public const int InternalError = -32603;

    /// <summary>-EPERM: the operation is not permitted now (SPDK's bdev_nvme_set_options once controllers exist).</summary>
    public const int NotPermitted = -1;

    /// <summary>-ENOENT: no such discovery service.</summary>
    public const int NoEntry = -2;

    /// <summary>-EIO: the operation failed on the wire.</summary>
    public const int IoError = -5;

    /// <summary>-EACCES: the target refused the host's authentication (as SPDK's host reports it).</summary>
    public const int AccessDenied = -13;

    /// <summary>-EEXIST: the name is taken.</summary>
    public const int Exists = -17;

    /// <summary>-ENODEV: no such controller or block device.</summary>
    public const int NoDevice = -19;

    /// <summary>-EINVAL.</summary>
    public const int Invalid = -22;

    /// <summary>-ENOTSUP: a value SPDK defines that ActorNvme cannot honour.</summary>
    public const int NotSupported = -95;

    /// <summary>-ECONNREFUSED: nothing listens at the address.</summary>
    public const int ConnectionRefused = -111;

    /// <summary>-EALREADY: a controller of that name already has this path.</summary>
    public const int Already = -114;

    /// <summary>-ETIMEDOUT: waiting for attach (or another bounded wait) ran out.</summary>
    public const int TimedOut = -110;
}

/// <summary>A JSON-RPC error to send back: the handler throws it, the server answers with it.</summary>
public sealed class JsonRpcException : Exception
{
    public JsonRpcException(int code, string message)
        : base(message)
    {
        Code = code;
    }

    public JsonRpcException()
        : this(JsonRpcErrorCodes.InternalError, "internal error")
    {
    }

    public JsonRpcException(string message)
        : this(JsonRpcErrorCodes.InternalError, message)
    {
    }

    public JsonRpcException(string message, Exception innerException)
        : base(message, innerException)
    {
        Code = JsonRpcErrorCodes.InternalError;
    }

    public int Code { get; }

    /// <summary>The request's shape is wrong (unknown or missing parameter, wrong JSON type): -32602, as SPDK's decoders answer.</summary>
    public static JsonRpcException InvalidParams(string message) => new(JsonRpcErrorCodes.InvalidParams, message);

    /// <summary>A parameter's value is wrong (out of range, not one of the choices, rules broken): -EINVAL, as SPDK answers.</summary>
    public static JsonRpcException InvalidValue(string message) => new(JsonRpcErrorCodes.Invalid, $"Invalid argument: {message}");

    /// <summary>A value SPDK defines that ActorNvme cannot honour: -ENOTSUP, naming it as "not supported: name=value".</summary>
    public static JsonRpcException NotSupported(string method, string name, string value, string why) =>
        new(JsonRpcErrorCodes.NotSupported, $"{method}: not supported: {name}={value} ({why})");
}
