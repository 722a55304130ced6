namespace ActorNvme.Protocol.Data;

/// <summary>Log page identifiers (LID) of Get Log Page.</summary>
public enum LogPageId : byte
{
    /// <summary>Supported log pages.</summary>
    SupportedLogPages = 0x00,

    /// <summary>Error information.</summary>
    ErrorInformation = 0x01,

    /// <summary>SMART / health information.</summary>
    SmartHealth = 0x02,

    /// <summary>Firmware slot information.</summary>
    FirmwareSlot = 0x03,

    /// <summary>Changed namespace list.</summary>
    ChangedNamespaceList = 0x04,

    /// <summary>Commands supported and effects.</summary>
    CommandsSupportedAndEffects = 0x05,

    /// <summary>Asymmetric namespace access.</summary>
    AsymmetricNamespaceAccess = 0x0C,

    /// <summary>Discovery (fabrics discovery controllers).</summary>
    Discovery = 0x70,

    /// <summary>Reservation notification.</summary>
    ReservationNotification = 0x80,
}

/// <summary>Controller or namespace structure (CNS) values of Identify.</summary>
public enum IdentifyCns : byte
{
    /// <summary>Identify Namespace for the NSID.</summary>
    Namespace = 0x00,

    /// <summary>Identify Controller.</summary>
    Controller = 0x01,

    /// <summary>Active namespace ID list (NSIDs greater than the NSID).</summary>
    ActiveNamespaceList = 0x02,

    /// <summary>Namespace identification descriptor list for the NSID.</summary>
    NamespaceIdentificationDescriptors = 0x03,
}
