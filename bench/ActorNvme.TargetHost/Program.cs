using System.Globalization;
using ActorNvme.Target;

namespace ActorNvme.TargetHost;

/// <summary>
/// <c>ActorNvme.TargetHost [--address A] [--port P] [--nqn NQN] [--size BYTES] [--block-size 512|4096]
/// [--ram] [--queue-size N] [--queues N]</c>: one NVM subsystem with one namespace (null by default)
/// on NVMe/TCP, until Ctrl+C or SIGTERM.
/// </summary>
public static class Program
{
    public static async Task<int> Main(string[] args)
    {
        ArgumentNullException.ThrowIfNull(args);
        string address = "127.0.0.1";
        int port = 4420;
        string nqn = "nqn.2016-06.io.spdk:cnode1";
        long size = 1L << 30;
        int blockSize = 512;
        bool ram = false;
        int queueSize = 128;
        int queues = 8;
        try
        {
            for (int i = 0; i < args.Length; i++)
            {
                string Value() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"option {args[i]} needs a value");
                switch (args[i])
                {
                    case "--address": address = Value(); break;
                    case "--port": port = int.Parse(Value(), CultureInfo.InvariantCulture); break;
                    case "--nqn": nqn = Value(); break;
                    case "--size": size = long.Parse(Value(), CultureInfo.InvariantCulture); break;
                    case "--block-size": blockSize = int.Parse(Value(), CultureInfo.InvariantCulture); break;
                    case "--ram": ram = true; break;
                    case "--queue-size": queueSize = int.Parse(Value(), CultureInfo.InvariantCulture); break;
                    case "--queues": queues = int.Parse(Value(), CultureInfo.InvariantCulture); break;
                    default: throw new ArgumentException($"unknown option '{args[i]}'");
                }
            }
        }
        catch (Exception e) when (e is ArgumentException or FormatException or OverflowException)
        {
            await Console.Error.WriteLineAsync($"ActorNvme.TargetHost: {e.Message}").ConfigureAwait(false);
            return 2;
        }

        await using var target = new NvmeTarget(TargetOptions.Default with { MaxIoQueueSize = queueSize, MaxIoQueues = queues });
        var subsystem = target.AddSubsystem(nqn);
        subsystem.AddNamespace(ram ? NamespaceOptions.Ram(size, blockSize) : NamespaceOptions.Null(size, blockSize));
        var listener = target.ListenTcp(address, port);
        Console.WriteLine($"listening on {listener.Address}: {nqn}, {(ram ? "RAM" : "null")} namespace of {size} bytes in {blockSize}-byte blocks, I/O queues of {queueSize} entries (Ctrl+C stops)");

        var stopped = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        Console.CancelKeyPress += (_, e) =>
        {
            e.Cancel = true;
            stopped.TrySetResult();
        };
        AppDomain.CurrentDomain.ProcessExit += (_, _) => stopped.TrySetResult();
        await stopped.Task.ConfigureAwait(false);
        return 0;
    }
}
