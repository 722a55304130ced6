namespace ActorNvme.Protocol.Data;

/// <summary>CNTRLTYPE of Identify Controller.</summary>
public enum ControllerType : byte
{
    /// <summary>Not reported (controllers before NVMe 1.4).</summary>
    NotReported = 0,

    /// <summary>I/O controller.</summary>
    Io = 1,

    /// <summary>Discovery controller.</summary>
    Discovery = 2,

    /// <summary>Administrative controller.</summary>
    Administrative = 3,
}
