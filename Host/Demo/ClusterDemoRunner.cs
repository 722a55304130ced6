using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using ActorNvme.Host.ClusterNode;
using ActorNvme.Target;

namespace ActorNvme.Host.Demo;

/// <summary>What <c>actornvme demo --cluster</c> runs with.</summary>
public sealed record ClusterDemoOptions
{
    public int Nodes { get; init; } = 3;

    public int Subsystems { get; init; } = 8;

    /// <summary>No node may hold more subsystems than this once they are spread.</summary>
    public int MaxPerNode { get; init; } = 4;

    /// <summary>After a kill -9, the dead node's subsystems must be attached on the survivors within this.</summary>
    public TimeSpan TakeoverLimit { get; init; } = TimeSpan.FromSeconds(15);

    /// <summary>After a graceful leave, the leaving node's subsystems must be attached on the others within this.</summary>
    public TimeSpan HandoverLimit { get; init; } = TimeSpan.FromSeconds(3);

    /// <summary>Bound on each step that waits (start-up, spreading).</summary>
    public TimeSpan StepTimeout { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>The failure detector's pause and the split-brain resolver's stable-after of the demo's nodes.</summary>
    public TimeSpan FailureDetection { get; init; } = TimeSpan.FromSeconds(2);

    public bool Verbose { get; init; }
}

/// <summary>
/// The cluster demo: an in-process target with <see cref="ClusterDemoOptions.Subsystems"/> subsystems, three
/// <c>actornvme serve --cluster</c> processes on 127.0.0.1 each writing and verifying the block devices it
/// owns, the subsystems spread over them, one node killed with SIGKILL (its subsystems taken over by the
/// survivors), one node leaving gracefully with SIGTERM (its subsystems handed over, CC.SHN seen at the
/// target first), and at the target, at no time, two hosts doing I/O to one namespace. Exit code 0 only
/// when every step happened.
/// </summary>
public static class ClusterDemoRunner
{
    public const string NqnPrefix = "nqn.2016-06.io.actornvme:cluster-demo-";

    // The nodes' desired-state store: one of this run's own (the state directory's would bring an earlier
    // run's subsystems back), shared by the three node processes, removed at the end.
    private static readonly string DemoStore = Path.Combine(Path.GetTempPath(), $"actornvme-demo-{Environment.ProcessId.ToString(CultureInfo.InvariantCulture)}.db");

    public static async Task<int> RunAsync(ClusterDemoOptions options, TextWriter output, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(output);
        var clock = Stopwatch.StartNew();
        var steps = new List<(string Name, bool Passed, string Outcome, TimeSpan At)>();
        var view = new ClusterView(output, clock, options.Verbose);

        bool Record(string name, bool passed, string outcome)
        {
            steps.Add((name, passed, outcome, clock.Elapsed));
            view.Line($"{(passed ? "ok  " : "FAIL")} {name}: {outcome}");
            return passed;
        }

        output.WriteLine($"ActorNvme cluster demo: {options.Nodes} node processes on 127.0.0.1, one in-process NVMe/TCP target with {options.Subsystems} subsystems");

        await using var target = new NvmeTarget();
        var discovery = target.ListenTcp("127.0.0.1", 0);
        var nvmListener = target.ListenTcp("127.0.0.1", 0);
        var subsystems = new List<NvmSubsystem>();
        for (int i = 1; i <= options.Subsystems; i++)
        {
            var subsystem = target.AddSubsystem(new NvmSubsystemOptions($"{NqnPrefix}{i}") { LinkToAllListeners = false });
            subsystem.AddNamespace(NamespaceOptions.Ram(4L * 1024 * 1024));
            subsystem.Link(nvmListener);
            subsystems.Add(subsystem);
        }

        output.WriteLine($"  target: discovery on {discovery.Address}, subsystems {NqnPrefix}1..{options.Subsystems} on {nvmListener.Address}, one 4 MiB RAM namespace each");
        int[] ports = FreePorts(options.Nodes);
        string[] names = [.. Enumerable.Range(0, options.Nodes).Select(i => $"node-{(char)('a' + i)}")];
        string seed = $"127.0.0.1:{ports[0].ToString(CultureInfo.InvariantCulture)}";
        string hostNqn = $"nqn.2014-08.org.nvmexpress:uuid:{Guid.NewGuid()}";
        var nodes = new List<NodeProcess>();
        try
        {
            // 1. Three nodes; they place no subsystem before all have joined (min members).
            view.Line($"step 1: start {options.Nodes} nodes (seed {seed}), each with the cluster host NQN {hostNqn}");
            for (int i = 0; i < options.Nodes; i++)
            {
                nodes.Add(NodeProcess.Start(names[i], ports[i], seed, discovery.Address.ToString(), hostNqn, options, view));
            }

            // Placement starts as soon as the nodes' regions registered; one that registered late gets its share
            // from the coordinator's rebalancing (one shard per round), so the spread is waited for, not sampled.
            bool spread = await view.WaitAsync(
                v => v.AttachedCount == options.Subsystems && v.Owners().GroupBy(o => o.Value).All(g => g.Count() <= options.MaxPerNode),
                options.StepTimeout,
                cancellationToken).ConfigureAwait(false);
            spread = spread || view.AttachedCount == options.Subsystems;
            var owners = view.Owners();
            string placement = string.Join(", ", names.Select(n => $"{n} {owners.Count(o => o.Value == n)}"));
            var perNode = names.Select(n => owners.Count(o => o.Value == n)).ToArray();
            Record("spread", spread && perNode.All(c => c <= options.MaxPerNode) && target.Subsystems.All(s => s.ControllerCount == 1),
                spread ? $"{options.Subsystems} subsystems attached, each on one node: {placement}; controllers at the target per subsystem: {string.Join(" ", target.Subsystems.Select(s => s.ControllerCount))}" : $"only {view.AttachedCount} attached within {options.StepTimeout.TotalSeconds:0} s");
            if (!spread)
            {
                return Summarize(output, steps);
            }

            await Task.Delay(TimeSpan.FromSeconds(2), cancellationToken).ConfigureAwait(false); // the writers run

            // 2. kill -9 the non-seed node holding most subsystems.
            var victim = nodes.Skip(1).OrderByDescending(n => owners.Count(o => o.Value == n.Name)).First();
            var moved = owners.Where(o => o.Value == victim.Name).Select(o => o.Key).ToHashSet(StringComparer.Ordinal);
            view.Line($"step 2: kill -9 {victim.Name} (pid {victim.Pid}), owner of {moved.Count}: {Short(moved)}");
            var killedAt = clock.Elapsed;
            victim.Kill();
            view.NodeGone(victim.Name);
            bool takenOver = await view.WaitAsync(v => moved.All(nqn => v.AttachedOn(nqn) is { } n && n != victim.Name), options.StepTimeout, cancellationToken).ConfigureAwait(false);
            var takeover = view.LastAttachTime(moved) - killedAt;

            // Attached is a Live controller; its block device reaches the writers only once the fence holds.
            bool devicesUp = takenOver && await view.WaitAsync(v => moved.All(nqn => v.First("DeviceUp", nqn, killedAt, except: victim.Name) is not null), options.StepTimeout, cancellationToken).ConfigureAwait(false);
            var takeoverSteps = MoveSteps(view, moved, victim.Name, killedAt, victim.Address);
            var usable = takeoverSteps.Last;
            Record("takeover after kill -9", takenOver && devicesUp && usable <= options.TakeoverLimit,
                takenOver
                    ? $"{moved.Count} subsystem(s) attached on the survivors {takeover.TotalSeconds:0.00} s after the kill, their block devices fenced and handed to writers {(devicesUp ? $"{usable.TotalSeconds:0.00} s" : "never")} after it (limit {options.TakeoverLimit.TotalSeconds:0} s): {Placement(view, moved)}"
                    : $"not all taken over within {options.StepTimeout.TotalSeconds:0} s");
            Record("takeover steps", takeoverSteps.Complete, takeoverSteps.Text);

            await Task.Delay(TimeSpan.FromSeconds(1), cancellationToken).ConfigureAwait(false);

            // 3. Graceful leave of another non-seed node: handover with CC.SHN first.
            owners = view.Owners();
            var leaver = nodes.Skip(1).First(n => n != victim);
            var handed = owners.Where(o => o.Value == leaver.Name).Select(o => o.Key).ToHashSet(StringComparer.Ordinal);
            var shutdownsBefore = subsystems.ToDictionary(s => s.Nqn, s => s.ShutdownsRequested, StringComparer.Ordinal);
            view.Line($"step 3: SIGTERM {leaver.Name} (graceful leave), owner of {handed.Count}: {Short(handed)}");
            var leftAt = clock.Elapsed;
            leaver.Terminate();
            bool handedOver = await view.WaitAsync(v => handed.All(nqn => v.AttachedOn(nqn) is { } n && n != leaver.Name), options.StepTimeout, cancellationToken).ConfigureAwait(false);
            var handover = view.LastAttachTime(handed) - leftAt;
            var withoutShn = handed.Where(nqn => subsystems.First(s => s.Nqn == nqn).ShutdownsRequested <= shutdownsBefore[nqn]).ToArray();
            var notHandedOffFirst = handed.Where(nqn => !view.HandedOffBeforeAttach(nqn, leaver.Name)).ToArray();
            Record("handover after graceful leave", handedOver && handover <= options.HandoverLimit && withoutShn.Length == 0 && notHandedOffFirst.Length == 0,
                handedOver
                    ? $"{handed.Count} subsystem(s) attached on the others {handover.TotalSeconds:0.00} s after SIGTERM (limit {options.HandoverLimit.TotalSeconds:0} s); CC.SHN seen at the target for {handed.Count - withoutShn.Length}/{handed.Count}{(withoutShn.Length > 0 ? $" (missing: {Short(withoutShn)})" : string.Empty)}; handed off before the new attach: {handed.Count - notHandedOffFirst.Length}/{handed.Count}: {Placement(view, handed)}"
                    : $"not all handed over within {options.StepTimeout.TotalSeconds:0} s");
            bool handedUp = handedOver && await view.WaitAsync(v => handed.All(nqn => v.First("DeviceUp", nqn, leftAt, except: leaver.Name) is not null), options.StepTimeout, cancellationToken).ConfigureAwait(false);
            var handoverSteps = MoveSteps(view, handed, leaver.Name, leftAt, memberAddress: null);
            Record("handover steps", handedUp && handoverSteps.Complete, handoverSteps.Text);
            bool leaverExited = await leaver.WaitForExitAsync(TimeSpan.FromSeconds(30)).ConfigureAwait(false);
            Record("graceful exit", leaverExited && leaver.ExitCode == 0, leaverExited ? $"{leaver.Name} exited with {leaver.ExitCode}" : $"{leaver.Name} still running 30 s after SIGTERM");

            await Task.Delay(TimeSpan.FromSeconds(1), cancellationToken).ConfigureAwait(false);

            // 4. Single writer, as the target saw it; no acknowledged write lost across the owner changes (each new
            // owner read its subsystems' ledger back before its first write).
            var namespaces = subsystems.Select(s => (s.Nqn, Ns: s.FindNamespace(1))).ToArray();
            var peaks = namespaces.Select(n => n.Ns?.PeakConcurrentIoHosts ?? 0).ToArray();
            int overlaps = namespaces.Sum(n => n.Ns?.OverlappingIoHosts ?? 0);
            var writesByHost = namespaces.SelectMany(n => n.Ns?.WritesByHost ?? new Dictionary<string, long>()).GroupBy(p => p.Key)
                .Select(g => $"hostid {g.Key[(g.Key.LastIndexOf(' ') + 1)..][..8]}…: {g.Sum(p => p.Value)} writes to {g.Count()} namespace(s)");
            var shutdownsByHost = subsystems.SelectMany(s => s.ShutdownsByHost).GroupBy(p => p.Key).Select(g => $"{g.Key}: {g.Sum(p => p.Value)}");
            string firstOverlap = namespaces.SelectMany(n => n.Ns?.Overlaps ?? []).FirstOrDefault() is { } o ? $" (first: {o})" : string.Empty;
            Record("single writer at the target", peaks.All(p => p == 1) && overlaps == 0 && view.IoErrors == 0,
                $"most hosts doing I/O to one namespace at once, per subsystem: {string.Join(" ", peaks)}; hosts that began I/O to a namespace while another host's controller did: {overlaps}{firstOverlap}; writes per host at the target: {string.Join("; ", writesByHost)}; write-then-verify mismatches: {view.IoErrors}; CC.SHN per host NQN: {string.Join("; ", shutdownsByHost)}");
            var afterKill = view.LedgerCheck(moved, killedAt, victim.Name);
            var afterLeave = view.LedgerCheck(handed, leftAt, leaver.Name);
            Record("no acknowledged write lost", afterKill.Subsystems == moved.Count && afterLeave.Subsystems == handed.Count && afterKill.Checked > 0 && afterLeave.Checked > 0 && afterKill.Lost + afterLeave.Lost == 0,
                $"ledgers read back by the new owners before their first write: after the kill {afterKill.Subsystems}/{moved.Count} subsystem(s), {afterKill.Checked} acknowledged block(s) checked, {afterKill.Lost} lost{afterKill.Detail}; after the graceful leave {afterLeave.Subsystems}/{handed.Count}, {afterLeave.Checked} checked, {afterLeave.Lost} lost{afterLeave.Detail}");
            Record("all attached at the end", view.AttachedCount == options.Subsystems && view.Owners().Values.All(n => n == names[0]), $"{view.AttachedCount}/{options.Subsystems} on {string.Join(", ", view.Owners().Values.Distinct())}");
        }
        finally
        {
            foreach (var node in nodes)
            {
                await node.StopAsync().ConfigureAwait(false);
            }

            foreach (string file in new[] { DemoStore, DemoStore + "-journal", DemoStore + "-wal", DemoStore + "-shm" })
            {
                File.Delete(file);
            }
        }

        return Summarize(output, steps);
    }

    /// <summary>
    /// The steps of moving <paramref name="nqns"/> away from <paramref name="from"/>, from <paramref name="since"/>:
    /// the member's failure seen and acted on (after a crash: unreachable, downed by the split-brain resolver,
    /// removed), the old owner's handoff (after a graceful leave), then per subsystem on its new owner: entity
    /// started by its shard, desired state read from the store, connecting, controller Live, fence begun, fence
    /// held, block device handed to writers. Each as seconds after <paramref name="since"/> (first..last subsystem).
    /// Complete when every step happened for every subsystem, and for each its block device reached the writers
    /// only after its fence held.
    /// </summary>
    private static (bool Complete, string Text, TimeSpan Last) MoveSteps(ClusterView view, IReadOnlyCollection<string> nqns, string from, TimeSpan since, string? memberAddress)
    {
        var parts = new List<string>();
        bool complete = nqns.Count > 0;
        var last = TimeSpan.Zero;
        string Seconds(TimeSpan at) => (at - since).TotalSeconds.ToString("0.00", CultureInfo.InvariantCulture);

        if (memberAddress is not null)
        {
            foreach (var (name, change) in new[] { ("unreachable", "Unreachable"), ("downed by the split-brain resolver", "MemberDowned"), ("removed", "MemberRemoved") })
            {
                var at = view.First(change, "-", since, except: from, member: memberAddress);
                complete &= at is not null;
                parts.Add($"{name} {(at is { } a ? "+" + Seconds(a) : "never")}");
            }
        }
        else
        {
            var handedOff = nqns.Select(n => view.First("HandedOff", n, since, only: from)).ToArray();
            complete &= handedOff.All(a => a is not null);
            parts.Add($"handed off (CC.SHN) {Range(handedOff)}");
        }

        var byStep = new Dictionary<string, TimeSpan?[]>(StringComparer.Ordinal);
        foreach (var (name, change) in new[]
        {
            ("entity started", "EntityStarted"), ("desired state read", "EntityRecovered"), ("connecting", "Started"), ("controller Live", "Attached"),
            ("fence begun", "FenceBegin"), ("fenced", "Fenced"), ("block device up", "DeviceUp"),
        })
        {
            var times = nqns.Select(n => view.First(change, n, since, except: from)).ToArray();
            byStep[change] = times;
            complete &= times.All(a => a is not null);
            parts.Add($"{name} {Range(times)}");
            if (change == "DeviceUp" && times.All(a => a is not null))
            {
                last = times.Max(a => a!.Value) - since;
            }
        }

        // The fence begins when the Live controller lists the namespace, and the entity reports Attached right after
        // that; the block device must reach the writers only after the fence holds.
        var outOfOrder = nqns.Where((_, i) => !(byStep["FenceBegin"][i] <= byStep["Fenced"][i] && byStep["Fenced"][i] <= byStep["DeviceUp"][i])).ToArray();
        if (outOfOrder.Length > 0)
        {
            complete = false;
            parts.Add($"not fence begun → fenced → block device up in that order: {Short(outOfOrder)}");
        }

        return (complete, $"seconds after the {(memberAddress is null ? "SIGTERM" : "kill")}: {string.Join(", ", parts)}", last);

        string Range(TimeSpan?[] times) =>
            times.Any(a => a is null) ? $"missing for {times.Count(a => a is null)}/{times.Length}"
            : times.Min() == times.Max() ? "+" + Seconds(times.Min()!.Value)
            : $"+{Seconds(times.Min()!.Value)}..{Seconds(times.Max()!.Value)}";
    }

    private static int Summarize(TextWriter output, List<(string Name, bool Passed, string Outcome, TimeSpan At)> steps)
    {
        output.WriteLine();
        output.WriteLine("timeline:");
        foreach (var (name, passed, outcome, at) in steps)
        {
            output.WriteLine($"  {at.TotalSeconds,7:0.00} s  {(passed ? "ok  " : "FAIL")} {name}: {outcome}");
        }

        bool all = steps.Count > 0 && steps.All(s => s.Passed);
        output.WriteLine(all ? "cluster demo: every step happened" : "cluster demo: FAILED");
        return all ? 0 : 1;
    }

    private static string Short(IEnumerable<string> nqns) => string.Join(" ", nqns.Select(n => n[(n.LastIndexOf(':') + 1)..]).Order(StringComparer.Ordinal));

    private static string Placement(ClusterView view, IEnumerable<string> nqns) =>
        string.Join(", ", nqns.Order(StringComparer.Ordinal).Select(n => $"{n[(n.LastIndexOf(':') + 1)..]}→{view.AttachedOn(n)}"));

    private static int[] FreePorts(int count)
    {
        var listeners = Enumerable.Range(0, count).Select(_ =>
        {
            var l = new TcpListener(IPAddress.Loopback, 0);
            l.Start();
            return l;
        }).ToArray();
        int[] ports = [.. listeners.Select(l => ((IPEndPoint)l.LocalEndpoint).Port)];
        foreach (var l in listeners)
        {
            l.Stop();
        }

        return ports;
    }

    /// <summary>Ownership as the nodes' event lines tell it; the one place the demo's threads share state.</summary>
    private sealed class ClusterView(TextWriter output, Stopwatch clock, bool verbose)
    {
        private readonly Lock _sync = new();
        private readonly Dictionary<string, (string Node, bool Attached, TimeSpan At)> _owners = new(StringComparer.Ordinal);
        private readonly List<(string Nqn, string Node, string Change, string Detail, TimeSpan At)> _history = [];
        private readonly DateTimeOffset _startedAt = DateTimeOffset.UtcNow - clock.Elapsed;
        private readonly List<LedgerAck> _acks = [];
        private readonly List<LedgerReadback> _readbacks = [];
        private int _ioErrors;

        public int IoErrors => Volatile.Read(ref _ioErrors);

        public int AttachedCount
        {
            get
            {
                lock (_sync)
                {
                    return _owners.Values.Count(o => o.Attached);
                }
            }
        }

        public void Line(string text)
        {
            lock (_sync)
            {
                output.WriteLine($"{clock.Elapsed.TotalSeconds,7:0.00} s {text}");
                output.Flush();
            }
        }

        public Dictionary<string, string> Owners()
        {
            lock (_sync)
            {
                return _owners.Where(o => o.Value.Attached).ToDictionary(o => o.Key, o => o.Value.Node, StringComparer.Ordinal);
            }
        }

        public string? AttachedOn(string nqn)
        {
            lock (_sync)
            {
                return _owners.TryGetValue(nqn, out var o) && o.Attached ? o.Node : null;
            }
        }

        public TimeSpan LastAttachTime(IEnumerable<string> nqns)
        {
            lock (_sync)
            {
                return nqns.Select(n => _owners.TryGetValue(n, out var o) ? o.At : TimeSpan.Zero).DefaultIfEmpty(TimeSpan.Zero).Max();
            }
        }

        /// <summary>Whether <paramref name="from"/> reported the subsystem handed off (controllers shut down) before its latest attach elsewhere.</summary>
        public bool HandedOffBeforeAttach(string nqn, string from)
        {
            lock (_sync)
            {
                int attach = _history.FindLastIndex(h => h.Nqn == nqn && h.Change == "Attached" && h.Node != from);
                int handOff = _history.FindLastIndex(h => h.Nqn == nqn && h.Change == "HandedOff" && h.Node == from);
                return attach >= 0 && handOff >= 0 && handOff < attach;
            }
        }

        /// <summary>
        /// The first time, at or after <paramref name="since"/>, that a node other than <paramref name="except"/> (or
        /// only <paramref name="only"/>) reported <paramref name="change"/> for <paramref name="nqn"/> (or, with nqn "-", about the cluster member
        /// <paramref name="member"/>, by its address); null when none did.
        /// </summary>
        public TimeSpan? First(string change, string nqn, TimeSpan since, string? except = null, string? only = null, string? member = null)
        {
            lock (_sync)
            {
                foreach (var h in _history)
                {
                    if (h.Change == change && h.Nqn == nqn && h.At >= since && h.Node != except && (only is null || h.Node == only)
                        && (member is null || h.Detail == member || h.Detail.StartsWith(member + " ", StringComparison.Ordinal)))
                    {
                        return h.At;
                    }
                }

                return null;
            }
        }

        public void NodeGone(string node)
        {
            lock (_sync)
            {
                foreach (var nqn in _owners.Where(o => o.Value.Node == node).Select(o => o.Key).ToArray())
                {
                    _owners.Remove(nqn);
                }
            }
        }

        /// <summary>One line of a node's output.</summary>
        public void OnNodeLine(string node, string line)
        {
            if (line.StartsWith(ClusterNodeRunner.IoPrefix + "-ERROR", StringComparison.Ordinal))
            {
                Interlocked.Increment(ref _ioErrors);
                Line($"  {node}: {line}");
                return;
            }

            if (line.StartsWith(ClusterNodeRunner.IoPrefix + "-ACK ", StringComparison.Ordinal) || line.StartsWith(ClusterNodeRunner.IoPrefix + "-READBACK ", StringComparison.Ordinal))
            {
                OnLedgerLine(line);
                return;
            }

            if (!line.StartsWith(ClusterNodeRunner.EventPrefix + " ", StringComparison.Ordinal))
            {
                if (verbose)
                {
                    Line($"  [{node}] {line}");
                }

                return;
            }

            // CLUSTER-EVENT <unix ms> <node> <change> <subsystem NQN or -> <detail...>
            string[] parts = line.Split(' ', 6);
            if (parts.Length < 5)
            {
                return;
            }

            string change = parts[3], nqn = parts[4], from = parts[2];

            // The node's own time stamp (same machine, same clock): what the line says happened when it happened,
            // however late the pipe delivered it.
            var at = long.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out long unixMs)
                ? DateTimeOffset.FromUnixTimeMilliseconds(unixMs) - _startedAt
                : clock.Elapsed;
            lock (_sync)
            {
                _history.Add((nqn, from, change, parts.Length > 5 ? parts[5] : string.Empty, at));
                switch (change)
                {
                    case "Started":
                        _owners[nqn] = (from, false, at);
                        break;
                    case "Attached":
                        _owners[nqn] = (from, true, at);
                        break;
                    case "HandedOff" or "Detached" or "Lost":
                        if (_owners.TryGetValue(nqn, out var o) && o.Node == from)
                        {
                            _owners.Remove(nqn);
                        }

                        break;
                }

                output.WriteLine($"{at.TotalSeconds,7:0.00} s   {from}: {change}{(nqn == "-" ? string.Empty : " " + nqn[(nqn.LastIndexOf(':') + 1)..])}{(parts.Length > 5 ? " (" + parts[5] + ")" : string.Empty)}");
                output.Flush();
            }
        }

        // CLUSTER-IO-ACK <unix ms> <node> <nqn> <lba>=<node>:<seq> and CLUSTER-IO-READBACK <unix ms> <node> <nqn> <lba>=<stamp>...
        private void OnLedgerLine(string line)
        {
            string[] parts = line.Split(' ');
            if (parts.Length < 4 || !long.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out long unixMs))
            {
                return;
            }

            var at = DateTimeOffset.FromUnixTimeMilliseconds(unixMs) - _startedAt;
            var stamps = new Dictionary<long, string>();
            foreach (string entry in parts.AsSpan(4))
            {
                int eq = entry.IndexOf('=', StringComparison.Ordinal);
                if (eq > 0 && long.TryParse(entry.AsSpan(0, eq), NumberStyles.None, CultureInfo.InvariantCulture, out long lba))
                {
                    stamps[lba] = entry[(eq + 1)..];
                }
            }

            lock (_sync)
            {
                if (parts[0].EndsWith("-ACK", StringComparison.Ordinal))
                {
                    foreach (var (lba, stamp) in stamps)
                    {
                        _acks.Add(new LedgerAck(parts[3], parts[2], lba, stamp, at));
                    }
                }
                else
                {
                    _readbacks.Add(new LedgerReadback(parts[3], parts[2], stamps, at));
                }
            }
        }

        /// <summary>The ledgers read back at or after <paramref name="since"/> by nodes other than <paramref name="except"/>, audited (<see cref="LedgerAudit"/>).</summary>
        public (int Subsystems, int Checked, int Lost, string Detail) LedgerCheck(IReadOnlyCollection<string> nqns, TimeSpan since, string except)
        {
            lock (_sync)
            {
                return LedgerAudit.Check(_acks, _readbacks, nqns, since, except);
            }
        }

        public async Task<bool> WaitAsync(Func<ClusterView, bool> done, TimeSpan timeout, CancellationToken cancellationToken)
        {
            var deadline = Stopwatch.StartNew();
            while (!done(this))
            {
                if (deadline.Elapsed > timeout)
                {
                    return false;
                }

                await Task.Delay(50, cancellationToken).ConfigureAwait(false);
            }

            return true;
        }
    }

    /// <summary>One <c>actornvme serve --cluster</c> child process.</summary>
    private sealed class NodeProcess
    {
        private readonly Process _process;

        private NodeProcess(string name, int port, Process process)
        {
            Name = name;
            Address = $"akka.tcp://{ActorNvme.Cluster.NvmeClusterNodeOptions.SystemName}@127.0.0.1:{port.ToString(CultureInfo.InvariantCulture)}";
            _process = process;
        }

        public string Name { get; }

        /// <summary>The node's cluster address, as the others name it in their member events.</summary>
        public string Address { get; }

        public int Pid => _process.Id;

        public int ExitCode => _process.HasExited ? _process.ExitCode : -1;

        public static NodeProcess Start(string name, int port, string seed, string discovery, string hostNqn, ClusterDemoOptions options, ClusterView view)
        {
            var start = new ProcessStartInfo
            {
                FileName = Environment.ProcessPath ?? "dotnet",
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                UseShellExecute = false,
            };
            if (Path.GetFileNameWithoutExtension(start.FileName) == "dotnet")
            {
                start.ArgumentList.Add(typeof(ClusterDemoRunner).Assembly.Location);
            }

            string seconds = options.FailureDetection.TotalSeconds.ToString("0.###", CultureInfo.InvariantCulture);
            foreach (string arg in new[]
            {
                "serve", "--cluster", "--node-name", name, "--port", port.ToString(CultureInfo.InvariantCulture), "--seed-node", seed,
                "--discovery-address", discovery, "--min-members", options.Nodes.ToString(CultureInfo.InvariantCulture),
                "--stable-after", seconds, "--heartbeat-pause", seconds, "--reconcile-interval", "0.5", "--io-writer", "--host-nqn", hostNqn,
                "--cluster-store", "sqlite:" + DemoStore,
                "--rpc-socket", Path.Combine(Path.GetTempPath(), $"actornvme-{name}-{Environment.ProcessId.ToString(CultureInfo.InvariantCulture)}.sock"),
            })
            {
                start.ArgumentList.Add(arg);
            }

            if (options.Verbose)
            {
                start.ArgumentList.Add("--verbose");
            }

            // Every node the same host identity (NQN), each its own host id; no akka.hocon of the working directory.
            start.WorkingDirectory = Path.GetTempPath();
            var process = Process.Start(start) ?? throw new InvalidOperationException($"could not start {name}");
            var node = new NodeProcess(name, port, process);
            process.OutputDataReceived += (_, e) =>
            {
                if (e.Data is { } line)
                {
                    view.OnNodeLine(name, line);
                }
            };
            process.ErrorDataReceived += (_, e) =>
            {
                if (e.Data is { Length: > 0 } line)
                {
                    view.Line($"  [{name} stderr] {line}");
                }
            };
            process.BeginOutputReadLine();
            process.BeginErrorReadLine();
            return node;
        }

        public void Kill()
        {
            if (!_process.HasExited)
            {
                _process.Kill(); // SIGKILL: no leave, no CC.SHN, sockets closed by the kernel
            }
        }

        /// <summary>SIGTERM: the node leaves the cluster gracefully.</summary>
        public void Terminate()
        {
            if (!_process.HasExited)
            {
                using var kill = Process.Start(new ProcessStartInfo("kill", ["-TERM", _process.Id.ToString(CultureInfo.InvariantCulture)]) { UseShellExecute = false });
                kill?.WaitForExit(5000);
            }
        }

        public async Task<bool> WaitForExitAsync(TimeSpan timeout)
        {
            using var cancel = new CancellationTokenSource(timeout);
            try
            {
                await _process.WaitForExitAsync(cancel.Token).ConfigureAwait(false);
                return true;
            }
            catch (OperationCanceledException)
            {
                return false;
            }
        }

        public async Task StopAsync()
        {
            if (!_process.HasExited)
            {
                Terminate();
                if (!await WaitForExitAsync(TimeSpan.FromSeconds(20)).ConfigureAwait(false))
                {
                    _process.Kill(entireProcessTree: true);
                }
            }

            _process.Dispose();
        }
    }
}
