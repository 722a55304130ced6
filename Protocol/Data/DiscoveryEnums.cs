namespace ActorNvme.Protocol.Data;

/// <summary>TRTYPE: transport type of a discovery log entry.</summary>
public enum TransportType : byte
{
    /// <summary>Reserved / not specified.</summary>
    Unspecified = 0,

    /// <summary>RDMA.</summary>
    Rdma = 1,

    /// <summary>Fibre Channel.</summary>
    FibreChannel = 2,

    /// <summary>TCP.</summary>
    Tcp = 3,

    /// <summary>Intra-host transport (loop).</summary>
    Loop = 254,
}

/// <summary>ADRFAM: address family of a discovery log entry.</summary>
public enum NvmeAddressFamily : byte
{
    /// <summary>Reserved / not specified.</summary>
    Unspecified = 0,

    /// <summary>IPv4.</summary>
    IPv4 = 1,

    /// <summary>IPv6.</summary>
    IPv6 = 2,

    /// <summary>InfiniBand.</summary>
    InfiniBand = 3,

    /// <summary>Fibre Channel.</summary>
    FibreChannel = 4,

    /// <summary>Intra-host (loop).</summary>
    IntraHost = 254,
}

/// <summary>SUBTYPE: subsystem type of a discovery log entry.</summary>
public enum SubsystemType : byte
{
    /// <summary>Reserved / not specified.</summary>
    Unspecified = 0,

    /// <summary>A referral to another discovery subsystem.</summary>
    DiscoveryReferral = 1,

    /// <summary>An NVM subsystem.</summary>
    Nvm = 2,

    /// <summary>The discovery subsystem that returned this log page.</summary>
    CurrentDiscovery = 3,
}

/// <summary>TREQ: transport requirements. Bits 1:0 are the secure channel requirement (a 2-bit value).</summary>
[Flags]
public enum TransportRequirements : byte
{
    /// <summary>Secure channel not specified; SQ flow control disable not supported.</summary>
    None = 0,

    /// <summary>Bits 1:0 = 01b: a secure channel is required.</summary>
    SecureChannelRequired = 0x1,

    /// <summary>Bits 1:0 = 10b: a secure channel is not required.</summary>
    SecureChannelNotRequired = 0x2,

    /// <summary>Bit 2: the controller can disable SQ flow control (SQHD reporting).</summary>
    SqFlowControlDisableSupported = 0x4,
}

/// <summary>EFLAGS: entry flags of a discovery log entry.</summary>
[Flags]
public enum DiscoveryEntryFlags : ushort
{
    /// <summary>No flags.</summary>
    None = 0,

    /// <summary>Bit 0 (DUPRETINFO): duplicate returned information.</summary>
    DuplicateReturnedInformation = 0x1,

    /// <summary>Bit 1 (EPCSD): explicit persistent connection support for discovery.</summary>
    ExplicitPersistentConnection = 0x2,

    /// <summary>Bit 2 (NCC): no CDC connectivity.</summary>
    NoCdcConnectivity = 0x4,
}

/// <summary>SECTYPE, the first byte of TSAS for NVMe/TCP: security type.</summary>
public enum TcpSecurityType : byte
{
    /// <summary>No security.</summary>
    None = 0,

    /// <summary>TLS 1.2.</summary>
    Tls12 = 1,

    /// <summary>TLS 1.3.</summary>
    Tls13 = 2,
}
