using System.Globalization;

namespace ActorNvme.Host.Demo;

/// <summary>One write a node printed as acknowledged: block <paramref name="Lba"/> now holds <paramref name="Stamp"/> (<c>node:sequence</c>).</summary>
internal readonly record struct LedgerAck(string Nqn, string Node, long Lba, string Stamp, TimeSpan At);

/// <summary>A new owner's read of every ledger block, before its first write.</summary>
internal readonly record struct LedgerReadback(string Nqn, string Node, IReadOnlyDictionary<long, string> Stamps, TimeSpan At);

/// <summary>
/// Whether an owner change lost an acknowledged write: each block a new owner read back must hold the last write
/// acknowledged before that read, a later write of the same writer, or the one write a writer had in flight when
/// it lost the device (its writes are one at a time, so that is its last acknowledged sequence plus one, and it
/// began writing only after it had read the block's acknowledged value back itself). An unacknowledged write may
/// land or not; only an acknowledged one must never be lost.
/// </summary>
internal static class LedgerAudit
{
    /// <summary>Checks the first read-back at or after <paramref name="since"/>, by a node other than <paramref name="except"/>, of each of <paramref name="nqns"/>.</summary>
    public static (int Subsystems, int Checked, int Lost, string Detail) Check(
        IReadOnlyList<LedgerAck> acks, IReadOnlyList<LedgerReadback> readbacks, IReadOnlyCollection<string> nqns, TimeSpan since, string except)
    {
        int subsystems = 0, checkedBlocks = 0, lost = 0;
        var missing = new List<string>();
        var losses = new List<string>();
        var perSubsystem = new List<string>();
        foreach (string nqn in nqns)
        {
            var readback = readbacks.FirstOrDefault(r => r.Nqn == nqn && r.Node != except && r.At >= since);
            if (readback.Stamps is null)
            {
                missing.Add(nqn);
                continue;
            }

            subsystems++;
            int checkedBefore = checkedBlocks;
            var lastAck = new Dictionary<long, (string Stamp, TimeSpan At)>();
            var lastSequence = new Dictionary<string, long>(StringComparer.Ordinal);
            foreach (var ack in acks)
            {
                // The reader's own first writes may share the read-back's millisecond; they come after it.
                if (ack.Nqn == nqn && (ack.At < readback.At || (ack.At == readback.At && ack.Node != readback.Node)))
                {
                    lastAck[ack.Lba] = (ack.Stamp, ack.At);
                    if (TryParse(ack.Stamp, out _, out long sequence))
                    {
                        lastSequence[ack.Node] = Math.Max(lastSequence.GetValueOrDefault(ack.Node), sequence);
                    }
                }
            }

            foreach (var (lba, expected) in lastAck)
            {
                checkedBlocks++;
                string got = readback.Stamps.GetValueOrDefault(lba, "missing");
                if (got != expected.Stamp && !LaterOfSameWriter(got, expected.Stamp) && !InFlightAfter(got, expected.At))
                {
                    lost++;
                    if (losses.Count < 5)
                    {
                        losses.Add($"{Short(nqn)} lba {lba}: acknowledged {expected.Stamp}, read {got}");
                    }
                }
            }

            perSubsystem.Add($"{Short(nqn)} {checkedBlocks - checkedBefore} by {readback.Node}");

            // The writer's next write after its last acknowledged one, begun after it read this subsystem back at or after the acknowledgement.
            bool InFlightAfter(string got, TimeSpan acknowledgedAt) =>
                TryParse(got, out string writer, out long sequence)
                && sequence == lastSequence.GetValueOrDefault(writer) + 1
                && readbacks.Any(r => r.Nqn == nqn && r.Node == writer && r.At >= acknowledgedAt && r.At <= readback.At);
        }

        string detail = $" ({string.Join(", ", perSubsystem.Order(StringComparer.Ordinal))})"
            + (missing.Count > 0 ? $"; no ledger read back for {missing.Count}" : string.Empty)
            + (losses.Count > 0 ? "; " + string.Join("; ", losses) : string.Empty);
        return (subsystems, checkedBlocks, lost, detail);
    }

    private static string Short(string nqn) => nqn[(nqn.LastIndexOf(':') + 1)..];

    private static bool LaterOfSameWriter(string got, string expected) =>
        TryParse(got, out string gotWriter, out long gotSequence) && TryParse(expected, out string expectedWriter, out long expectedSequence)
        && gotWriter == expectedWriter && gotSequence > expectedSequence;

    private static bool TryParse(string stamp, out string writer, out long sequence)
    {
        int colon = stamp.LastIndexOf(':');
        writer = colon > 0 ? stamp[..colon] : string.Empty;
        sequence = 0;
        return colon > 0 && long.TryParse(stamp.AsSpan(colon + 1), NumberStyles.None, CultureInfo.InvariantCulture, out sequence);
    }
}
