using System.Collections.Concurrent;
using Akka.Actor;

namespace ActorNvme.Actors.Connection;

/// <summary>What one owner (a controller actor) holds right now.</summary>
public readonly record struct Holdings(int Connections, int PendingCommands, int Timers)
{
    public bool IsEmpty => Connections == 0 && PendingCommands == 0 && Timers == 0;

    public override string ToString() => $"{Connections} connection(s), {PendingCommands} pending command(s), {Timers} timer(s)";
}

/// <summary>
/// A readable account of what every controller owns: open connections (counted by the connector
/// itself, so a leaked socket shows up even if its actor is gone), pending commands and active timers
/// (reported by the actor after each message and zeroed in PostStop; an owner holding nothing has no entry). Tests assert it is empty after
/// every stop. Thread-safe by construction (atomic updates of immutable values), no locks.
/// </summary>
public sealed class OwnershipLedger : IExtension
{
    private readonly ConcurrentDictionary<string, Holdings> _holdings = new(StringComparer.Ordinal);

    public static OwnershipLedger Get(ActorSystem system) => system.WithExtension<OwnershipLedger, OwnershipLedgerProvider>();

    public IReadOnlyDictionary<string, Holdings> Snapshot() =>
        _holdings.Where(pair => !pair.Value.IsEmpty).ToDictionary(pair => pair.Key, pair => pair.Value, StringComparer.Ordinal);

    public Holdings Of(string owner) => _holdings.TryGetValue(owner, out var holdings) ? holdings : default;

    public Holdings Total => _holdings.Values.Aggregate(default(Holdings), (sum, h) => new Holdings(sum.Connections + h.Connections, sum.PendingCommands + h.PendingCommands, sum.Timers + h.Timers));

    public void ConnectionOpened(string owner) => Update(owner, h => h with { Connections = h.Connections + 1 });

    public void ConnectionClosed(string owner) => Update(owner, h => h with { Connections = h.Connections - 1 });

    public void Report(string owner, int pendingCommands, int timers) => Update(owner, h => h with { PendingCommands = pendingCommands, Timers = timers });

    /// <summary>Number of owners with an entry (an owner holding nothing has none: the ledger stays bounded).</summary>
    public int Count => _holdings.Count;

    private void Update(string owner, Func<Holdings, Holdings> change)
    {
        var updated = _holdings.AddOrUpdate(owner, _ => change(default), (_, current) => change(current));
        if (updated.IsEmpty)
        {
            // Removed only if still empty: a concurrent update that made it non-empty keeps it.
            _holdings.TryRemove(new KeyValuePair<string, Holdings>(owner, default));
        }
    }
}

public sealed class OwnershipLedgerProvider : ExtensionIdProvider<OwnershipLedger>
{
    public override OwnershipLedger CreateExtension(ExtendedActorSystem system) => new();
}
