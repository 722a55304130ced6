using System.Globalization;
using ActorNvme.Transport;

namespace ActorNvme.Host.Perf;

/// <summary>The I/O pattern of a perf run (SPDK perf's -w).</summary>
internal enum PerfPattern
{
    Read,
    Write,
    RandRead,
    RandWrite,
    ReadWrite,
    RandReadWrite,
}

/// <summary>One -r argument: which controller and subsystem to drive.</summary>
/// <param name="Address">traddr and trsvcid.</param>
/// <param name="SubsystemNqn">subnqn.</param>
/// <param name="HostNqn">hostnqn, when given.</param>
/// <param name="NamespaceId">ns, when given (otherwise every namespace).</param>
/// <param name="Text">The argument as written, for messages.</param>
internal sealed record PerfTarget(TransportAddress Address, string SubsystemNqn, string? HostNqn, uint? NamespaceId, string Text)
{
    /// <summary>subnqn is the well-known discovery NQN: every NVM subsystem of its log is attached instead.</summary>
    public bool IsDiscovery => SubsystemNqn == ActorNvme.Protocol.Data.Nqn.Discovery;
}

/// <summary>A parsed, validated perf command line.</summary>
internal sealed record PerfOptions
{
    public required IReadOnlyList<PerfTarget> Targets { get; init; }

    /// <summary>-q: outstanding I/Os per namespace per core.</summary>
    public required int QueueDepth { get; init; }

    /// <summary>-o: bytes per I/O.</summary>
    public required int IoSize { get; init; }

    /// <summary>-w.</summary>
    public required PerfPattern Pattern { get; init; }

    /// <summary>-M: percentage of reads for rw/randrw.</summary>
    public int ReadPercent { get; init; }

    /// <summary>-t: seconds measured.</summary>
    public required double Seconds { get; init; }

    /// <summary>-a: seconds of warm-up before measuring.</summary>
    public double WarmupSeconds { get; init; }

    /// <summary>-P: I/O queue pairs per controller per core.</summary>
    public int QueuePairs { get; init; } = 1;

    /// <summary>-c: the cores named by a mask (0x3, or 3 as SPDK reads it) or a list ([0,1], [0-3]); empty when -c is not given.</summary>
    public IReadOnlyList<int> CoreList { get; init; } = [];

    /// <summary>Workers, one per core of -c (1 without -c): each gets -P queue pairs per controller and -q I/Os per namespace.</summary>
    public int Cores => Math.Max(1, CoreList.Count);

    /// <summary>--psk-path: a 0600 file holding a TLS PSK interchange string; set, every queue runs over TLS 1.3 (SPDK perf's -S ssl --psk-path).</summary>
    public string? PskPath { get; init; }

    /// <summary>-H / -I: header and data digests.</summary>
    public bool HeaderDigest { get; init; }

    public bool DataDigest { get; init; }

    /// <summary>--json: one JSON object on stdout instead of the table.</summary>
    public bool Json { get; init; }

    /// <summary>
    /// --spin's default: a benchmark measures like SPDK's perf, which always polls. The receive threads
    /// poll only while I/O is outstanding, so this spends a core only while the run keeps it busy.
    /// </summary>
    public const int DefaultReceiveSpinMicroseconds = 200;

    /// <summary>--spin: microseconds an I/O queue's receive thread polls for the next answer before it blocks (io-receive-spin).</summary>
    public int ReceiveSpinMicroseconds { get; init; } = DefaultReceiveSpinMicroseconds;

    /// <summary>-L: 0 none, 1 latency summary (percentiles) per device, 2 (-LL) also the histogram.</summary>
    public int LatencyTracking { get; init; }

    /// <summary>-Q N: continue on I/O errors and report every Nth one; null stops a loop's device after 1000 errors (the default).</summary>
    public int? ErrorReportInterval { get; init; }

    /// <summary>-s: I/O queue size in entries (io-queue-size); null sizes the queues for -q.</summary>
    public int? IoQueueSize { get; init; }

    /// <summary>True when any -r names the discovery subsystem: its log's NVM subsystems replace it before attaching.</summary>
    public bool NeedsDiscovery => Targets.Any(t => t.IsDiscovery);

    /// <summary>--bare: submit straight on the controller's I/O queue pairs, bypassing BlockDevice (to measure the runtime's cost).</summary>
    public bool Bare { get; init; }

    public bool IsRandom => Pattern is PerfPattern.RandRead or PerfPattern.RandWrite or PerfPattern.RandReadWrite;

    /// <summary>Percentage of I/Os that read.</summary>
    public int EffectiveReadPercent => Pattern switch
    {
        PerfPattern.Read or PerfPattern.RandRead => 100,
        PerfPattern.Write or PerfPattern.RandWrite => 0,
        _ => ReadPercent,
    };

    public string PatternName => Pattern switch
    {
        PerfPattern.Read => "read",
        PerfPattern.Write => "write",
        PerfPattern.RandRead => "randread",
        PerfPattern.RandWrite => "randwrite",
        PerfPattern.ReadWrite => "rw",
        _ => "randrw",
    };
}

/// <summary>A command-line mistake; the message names the option. Exit code 2.</summary>
internal sealed class PerfUsageException(string message) : Exception(message)
{
    public PerfUsageException()
        : this("invalid perf options")
    {
    }

    public PerfUsageException(string message, Exception innerException)
        : this(message + ": " + innerException.Message)
    {
    }
}

/// <summary>Parses SPDK perf's options (the subset that applies to an NVMe/TCP host).</summary>
internal static class PerfOptionParser
{
    private static readonly HashSet<string> TargetKeys = new(["trtype", "adrfam", "traddr", "trsvcid", "subnqn", "hostnqn", "ns"], StringComparer.OrdinalIgnoreCase);

    public const string Usage = """
        usage: actornvme perf -r 'trtype:TCP adrfam:IPv4 traddr:ADDR trsvcid:PORT subnqn:NQN' -q DEPTH -o BYTES -w PATTERN -t SECONDS [options]

          -r, --transport-id TRID   controller to drive (repeatable); keys trtype (TCP), adrfam (IPv4/IPv6),
                                    traddr, trsvcid, subnqn, optional hostnqn and ns (one namespace); with
                                    subnqn:nqn.2014-08.org.nvmexpress.discovery, every NVM subsystem the
                                    discovery log lists is driven
          -q, --io-depth N          outstanding I/Os per namespace per core
          -o, --io-size BYTES       bytes per I/O (a multiple of the block size; k/m suffixes allowed)
          -w, --io-pattern P        read, write, randread, randwrite, rw, randrw
          -M, --rwmixread PCT       percentage of reads for rw/randrw (0..100)
          -t, --time SEC            seconds to measure
          -a, --warmup-time SEC     seconds to run before measuring (default 0)
          -P, --num-qpairs N        I/O queue pairs per controller per core (default 1)
          -c, --core-mask MASK      cores, as SPDK reads them: a hex mask (0x3 or 3) or a list ([0,1], [0-3]);
                                    one worker per core, each with -P queue pairs and -q I/Os per namespace,
                                    its queue pairs' receive threads pinned to that core (default: one
                                    worker, not pinned)
          -H, --enable-tcp-hdgst    header digests
          -I, --enable-tcp-ddgst    data digests
              --psk-path FILE       NVMe/TCP over TLS 1.3 with the PSK interchange string in FILE (absolute,
                                    mode 0600); -S ssl is accepted and not needed
          -L, --enable-sw-latency-tracking
                                    print a latency summary (percentiles) per device; -LL also the histogram
          -Q, --continue-on-error N continue on I/O errors, reporting every Nth one (default: a loop stops
                                    its device after 1000 errors)
          -s, --io-queue-size N     entries per I/O queue (2..4096; default: enough for -q)
              --json                print one JSON object (iops, mibps, latency_us) instead of the table
              --spin US             while I/O is outstanding, receive threads poll up to US microseconds for
                                    the next answer before they block (io-receive-spin); SPDK perf always
                                    polls (default 200; 0 blocks at once: least CPU, a wake-up per answer)
              --bare                bypass BlockDevice: I/O straight on the queue pairs (compares the runtime's cost)
          -h, --help                this text
        """;

    public static PerfOptions? Parse(IReadOnlyList<string> args)
    {
        var targets = new List<PerfTarget>();
        int? depth = null;
        int? size = null;
        PerfPattern? pattern = null;
        int? readPercent = null;
        double? seconds = null;
        double warmup = 0;
        int queuePairs = 1;
        IReadOnlyList<int> cores = [];
        bool header = false, data = false, json = false, bare = false;
        int spin = PerfOptions.DefaultReceiveSpinMicroseconds;
        string? pskPath = null;
        int latency = 0;
        int? errorInterval = null;
        int? queueSize = null;

        for (int i = 0; i < args.Count; i++)
        {
            string arg = args[i];
            string name = arg;
            string? inline = null;
            if (arg.StartsWith("--", StringComparison.Ordinal) && arg.Contains('=', StringComparison.Ordinal))
            {
                name = arg[..arg.IndexOf('=', StringComparison.Ordinal)];
                inline = arg[(arg.IndexOf('=', StringComparison.Ordinal) + 1)..];
            }

            string Value()
            {
                if (inline is not null)
                {
                    return inline;
                }

                if (i + 1 >= args.Count)
                {
                    throw new PerfUsageException($"option {name} needs a value");
                }

                return args[++i];
            }

            switch (name)
            {
                case "-h" or "--help":
                    return null;
                case "-r" or "--transport-id":
                    targets.Add(ParseTarget(Value()));
                    break;
                case "-q" or "--io-depth":
                    depth = Integer(name, Value(), 1, 65536);
                    break;
                case "-o" or "--io-size":
                    size = Size(name, Value());
                    break;
                case "-w" or "--io-pattern":
                    pattern = ParsePattern(name, Value());
                    break;
                case "-M" or "--rwmixread":
                    readPercent = Integer(name, Value(), 0, 100);
                    break;
                case "-t" or "--time":
                    seconds = Seconds(name, Value(), allowZero: false);
                    break;
                case "-a" or "--warmup-time":
                    warmup = Seconds(name, Value(), allowZero: true);
                    break;
                case "-P" or "--num-qpairs":
                    queuePairs = Integer(name, Value(), 1, 256);
                    break;
                case "-c" or "--core-mask":
                    cores = ParseCores(name, Value());
                    break;
                case "-H" or "--enable-tcp-hdgst":
                    header = true;
                    break;
                case "-I" or "--enable-tcp-ddgst":
                    data = true;
                    break;
                case "--json":
                    json = true;
                    break;
                case "--bare":
                    bare = true;
                    break;
                case "--psk-path":
                    pskPath = Value();
                    break;
                case "-S" or "--default-sock-impl":
                    // SPDK perf needs -S ssl with --psk-path; here --psk-path alone decides.
                    if (Value() is not ("ssl" or "posix"))
                    {
                        throw new PerfUsageException($"option {name}: only ssl or posix");
                    }

                    break;
                case "-L" or "--enable-sw-latency-tracking":
                    latency = Math.Min(2, latency + 1);
                    break;
                case "-LL":
                    latency = 2;
                    break;
                case "-Q" or "--continue-on-error":
                    errorInterval = Integer(name, Value(), 1, int.MaxValue);
                    break;
                case "-s" or "--io-queue-size":
                    queueSize = Integer(name, Value(), 2, 4096);
                    break;
                case "--spin":
                    spin = Integer(name, Value(), 0, 10_000);
                    break;
                default:
                    throw new PerfUsageException($"unknown option '{arg}'");
            }
        }

        if (targets.Count == 0)
        {
            throw new PerfUsageException("missing -r (--transport-id): which controller to drive");
        }

        var missing = new[] { (depth is null, "-q (--io-depth)"), (size is null, "-o (--io-size)"), (pattern is null, "-w (--io-pattern)"), (seconds is null, "-t (--time)") }
            .Where(m => m.Item1).Select(m => m.Item2).ToArray();
        if (missing.Length > 0)
        {
            throw new PerfUsageException($"missing {string.Join(", ", missing)}");
        }

        if (pattern is PerfPattern.ReadWrite or PerfPattern.RandReadWrite && readPercent is null)
        {
            throw new PerfUsageException($"option -M (--rwmixread) is required with -w {(pattern == PerfPattern.ReadWrite ? "rw" : "randrw")}");
        }

        if (pattern is not (PerfPattern.ReadWrite or PerfPattern.RandReadWrite) && readPercent is not null)
        {
            throw new PerfUsageException("option -M (--rwmixread) only applies to -w rw or randrw");
        }

        if ((long)depth!.Value * Math.Max(1, cores.Count) > 65536)
        {
            throw new PerfUsageException($"option -q: {depth} per core on {cores.Count} cores is more than 65536 outstanding I/Os per namespace");
        }

        return new PerfOptions
        {
            Targets = targets,
            QueueDepth = depth.Value,
            IoSize = size!.Value,
            Pattern = pattern!.Value,
            ReadPercent = readPercent ?? 0,
            Seconds = seconds!.Value,
            WarmupSeconds = warmup,
            QueuePairs = queuePairs,
            CoreList = cores,
            HeaderDigest = header,
            DataDigest = data,
            Json = json,
            Bare = bare,
            ReceiveSpinMicroseconds = spin,
            PskPath = pskPath,
            LatencyTracking = latency,
            ErrorReportInterval = errorInterval,
            IoQueueSize = queueSize,
        };
    }

    /// <summary>Parses 'trtype:TCP adrfam:IPv4 traddr:127.0.0.1 trsvcid:4420 subnqn:NQN' (keys case-insensitive, '=' accepted for ':').</summary>
    public static PerfTarget ParseTarget(string text)
    {
        var pairs = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        foreach (var token in text.Split([' ', '\t'], StringSplitOptions.RemoveEmptyEntries))
        {
            int colon = token.IndexOfAny([':', '=']);
            if (colon <= 0)
            {
                throw new PerfUsageException($"option -r: '{token}' in '{text}' is not key:value");
            }

            string key = token[..colon];
            if (!TargetKeys.Contains(key))
            {
                throw new PerfUsageException($"option -r: unknown key '{key}' in '{text}' (known: trtype, adrfam, traddr, trsvcid, subnqn, hostnqn, ns)");
            }

            pairs[key] = token[(colon + 1)..];
        }

        string Get(string key) => pairs.TryGetValue(key, out var value) && value.Length > 0
            ? value
            : throw new PerfUsageException($"option -r: '{text}' has no {key}");

        string trtype = pairs.TryGetValue("trtype", out var t) ? t : "TCP";
        if (!trtype.Equals("TCP", StringComparison.OrdinalIgnoreCase))
        {
            throw new PerfUsageException($"option -r: trtype '{trtype}' is not supported; this host speaks TCP");
        }

        if (pairs.TryGetValue("adrfam", out var family) && !family.Equals("IPv4", StringComparison.OrdinalIgnoreCase) && !family.Equals("IPv6", StringComparison.OrdinalIgnoreCase))
        {
            throw new PerfUsageException($"option -r: adrfam '{family}' must be IPv4 or IPv6");
        }

        TransportAddress address;
        try
        {
            address = TransportAddress.Parse(Get("traddr"), Get("trsvcid"));
        }
        catch (ArgumentException e)
        {
            throw new PerfUsageException($"option -r: {e.Message}");
        }

        uint? nsid = null;
        if (pairs.TryGetValue("ns", out var ns))
        {
            nsid = uint.TryParse(ns, NumberStyles.None, CultureInfo.InvariantCulture, out uint value) && value > 0
                ? value
                : throw new PerfUsageException($"option -r: ns '{ns}' is not a namespace id (1 or more)");
        }

        return new PerfTarget(address, Get("subnqn"), pairs.GetValueOrDefault("hostnqn"), nsid, text);
    }

    private static int Integer(string option, string text, int min, int max) =>
        int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out int value) && value >= min && value <= max
            ? value
            : throw new PerfUsageException($"option {option}: '{text}' is not a whole number in {min}..{max}");

    private static double Seconds(string option, string text, bool allowZero) =>
        double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out double value) && (value > 0 || (allowZero && value == 0)) && value <= 86400
            ? value
            : throw new PerfUsageException($"option {option}: '{text}' is not a number of seconds ({(allowZero ? "0" : "more than 0")}..86400)");

    private static int Size(string option, string text)
    {
        string digits = text;
        long multiplier = 1;
        if (text.Length > 1 && char.ToLowerInvariant(text[^1]) is 'k' or 'm')
        {
            multiplier = char.ToLowerInvariant(text[^1]) == 'k' ? 1024 : 1024 * 1024;
            digits = text[..^1];
        }

        if (!long.TryParse(digits, NumberStyles.None, CultureInfo.InvariantCulture, out long value) || value * multiplier < 512 || value * multiplier > 64L * 1024 * 1024 || (value * multiplier) % 512 != 0)
        {
            throw new PerfUsageException($"option {option}: '{text}' is not a size of 512 bytes..64 MiB in whole 512-byte units");
        }

        return (int)(value * multiplier);
    }

    private static PerfPattern ParsePattern(string option, string text) => text.ToLowerInvariant() switch
    {
        "read" => PerfPattern.Read,
        "write" => PerfPattern.Write,
        "randread" => PerfPattern.RandRead,
        "randwrite" => PerfPattern.RandWrite,
        "rw" => PerfPattern.ReadWrite,
        "randrw" => PerfPattern.RandReadWrite,
        _ => throw new PerfUsageException($"option {option}: '{text}' is not one of read, write, randread, randwrite, rw, randrw"),
    };

    /// <summary>
    /// SPDK's core mask: hexadecimal with or without 0x ("0x3" and "3" are cores 0 and 1), or a list
    /// ("[0,1]", "[0-3]"). Sorted, without repeats.
    /// </summary>
    private static IReadOnlyList<int> ParseCores(string option, string text)
    {
        var cores = new SortedSet<int>();
        if (text.StartsWith('[') && text.EndsWith(']'))
        {
            foreach (var part in text[1..^1].Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            {
                var range = part.Split('-');
                if (range.Length is 1 or 2
                    && int.TryParse(range[0], NumberStyles.None, CultureInfo.InvariantCulture, out int first)
                    && int.TryParse(range[^1], NumberStyles.None, CultureInfo.InvariantCulture, out int last) && last >= first && last < 1024)
                {
                    for (int c = first; c <= last; c++)
                    {
                        cores.Add(c);
                    }
                }
                else
                {
                    throw new PerfUsageException($"option {option}: '{part}' in '{text}' is not a core or a range of cores");
                }
            }
        }
        else
        {
            string hex = text.StartsWith("0x", StringComparison.OrdinalIgnoreCase) ? text[2..] : text;
            if (hex.Length is 0 or > 16 || !ulong.TryParse(hex, NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out ulong mask))
            {
                throw new PerfUsageException($"option {option}: '{text}' is not a core mask (0x3) or a list ([0,1])");
            }

            for (int c = 0; c < 64; c++)
            {
                if ((mask & (1UL << c)) != 0)
                {
                    cores.Add(c);
                }
            }
        }

        return cores.Count is >= 1 and <= 256 ? [.. cores] : throw new PerfUsageException($"option {option}: '{text}' names {cores.Count} cores; 1..256 are possible");
    }
}
