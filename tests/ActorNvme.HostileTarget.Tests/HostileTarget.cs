using System.Net;
using System.Net.Sockets;
using ActorNvme.Transport;

namespace ActorNvme.HostileTarget.Tests;

/// <summary>
/// A misbehaving NVMe/TCP target on 127.0.0.1: it answers just enough of NVMe/TCP to bring a host
/// controller Live (one NVM subsystem with one small RAM namespace, and a discovery controller whose
/// log lists it), except for the one step its <see cref="FaultMode"/> replaces or corrupts. Unlike
/// our Target, it does things a correct target never does: wrong PDUs, wrong ids, wrong lengths.
/// </summary>
public sealed class HostileTarget : IAsyncDisposable
{
    public const string SubsystemNqn = "nqn.2016-06.io.actornvme:hostile";
    public const int BlockSize = 512;
    public const int BlockCount = 2048;

    /// <summary>
    /// <see cref="FaultMode.StopsReadingWriteData"/>: this many whole-namespace writes are answered with R2Ts
    /// together, 16 MiB of data asked for: more than a host socket's send buffer (at most 4 MiB by default)
    /// and the target's 16 KiB receive buffer hold, so the host's send must wait for the target to read.
    /// </summary>
    public const int StalledWrites = 16;

    private const int StalledReceiveBufferSize = 16 * 1024;

    private readonly TaskCompletionSource _readingResumed = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private readonly TcpListener _listener;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _acceptLoop;
    private readonly List<Task> _connections = [];
    private int _faultsInjected;
    private int _connectionCount;
    private long _logGeneration = 1;

    public HostileTarget(FaultMode mode)
    {
        Mode = mode;
        _listener = new TcpListener(IPAddress.Loopback, 0);
        if (mode == FaultMode.StopsReadingWriteData)
        {
            // Set before listening, so that accepted sockets get it and their window stays small.
            _listener.Server.ReceiveBufferSize = StalledReceiveBufferSize;
        }

        _listener.Start();
        Address = new TransportAddress("127.0.0.1", ((IPEndPoint)_listener.LocalEndpoint).Port);
        _acceptLoop = AcceptAsync();
    }

    public FaultMode Mode { get; }

    public TransportAddress Address { get; }

    /// <summary>The namespace's blocks; only the connection of the single I/O queue touches them.</summary>
    internal byte[] Media { get; } = new byte[BlockSize * BlockCount];

    /// <summary>How many times the fault was applied: a test that never reached its fault proves nothing.</summary>
    public int FaultsInjected => Volatile.Read(ref _faultsInjected);

    public int ConnectionCount => Volatile.Read(ref _connectionCount);

    /// <summary>Unexpected failures of the target's own code (a bug of the test rig, not of the host).</summary>
    public IReadOnlyCollection<Exception> Failures => _failures;

    private readonly System.Collections.Concurrent.ConcurrentQueue<Exception> _failures = new();

    internal CancellationToken Stopping => _stop.Token;

    /// <summary>Completes when the test lets a connection that stopped reading read again.</summary>
    internal Task ReadingResumed => _readingResumed.Task;

    /// <summary>Lets the connection held by <see cref="FaultMode.StopsReadingWriteData"/> read again.</summary>
    public void ResumeReading() => _readingResumed.TrySetResult();

    internal void FaultApplied() => Interlocked.Increment(ref _faultsInjected);

    internal ulong NextLogGeneration() => (ulong)Interlocked.Increment(ref _logGeneration);

    internal ulong CurrentLogGeneration => (ulong)Volatile.Read(ref _logGeneration);

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Stop();
        Task[] connections;
        lock (_connections)
        {
            connections = [.. _connections];
        }

        try
        {
            await Task.WhenAll([_acceptLoop, .. connections]).WaitAsync(TimeSpan.FromSeconds(10));
        }
        catch (Exception) when (_stop.IsCancellationRequested)
        {
            // Connections end with cancellation or socket errors when stopped; each one's own failures were recorded.
        }

        _stop.Dispose();
    }

    private async Task AcceptAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            Socket socket;
            try
            {
                socket = await _listener.AcceptSocketAsync(_stop.Token);
            }
            catch (Exception) when (_stop.IsCancellationRequested)
            {
                return;
            }

            Interlocked.Increment(ref _connectionCount);
            var connection = new HostileConnection(this, socket);
            lock (_connections)
            {
                _connections.Add(ServeAsync(connection));
            }
        }
    }

    private async Task ServeAsync(HostileConnection connection)
    {
        try
        {
            await connection.RunAsync();
        }
        catch (Exception) when (_stop.IsCancellationRequested)
        {
            // stopped
        }
        catch (IOException)
        {
            // the host closed or reset the connection: its right
        }
        catch (SocketException)
        {
            // the same, seen by the socket
        }
        catch (HostClosedException)
        {
            // the same, seen by the reader
        }
        catch (Exception e)
        {
            _failures.Enqueue(e);
        }
        finally
        {
            await connection.DisposeAsync();
        }
    }
}

/// <summary>The host ended the connection while the target waited for a PDU.</summary>
public sealed class HostClosedException : Exception
{
    public HostClosedException()
        : base("the host closed the connection")
    {
    }

    public HostClosedException(string message)
        : base(message)
    {
    }

    public HostClosedException(string message, Exception inner)
        : base(message, inner)
    {
    }
}
