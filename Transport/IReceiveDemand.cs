namespace ActorNvme.Transport;

/// <summary>
/// What a connection whose receive can poll before it sleeps asks its owner: is an answer due?
/// Polling pays only while commands are outstanding; an idle queue pair should sleep at once.
/// </summary>
internal interface IReceiveDemand
{
    /// <summary>True while the owner waits for PDUs from the peer (commands outstanding).</summary>
    bool AwaitsData { get; }

    /// <summary>Completions received so far (for transport statistics).</summary>
    long CompletionsReceived { get; }

    /// <summary>Commands outstanding now (for transport statistics).</summary>
    int Outstanding { get; }
}

/// <summary>A connection that polls before it blocks, and polls only while its owner awaits data.</summary>
internal interface IDemandPacedConnection
{
    void SetReceiveDemand(IReceiveDemand demand);
}
