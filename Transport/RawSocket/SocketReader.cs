using System.Buffers;
using System.Diagnostics;
using System.IO.Pipelines;
using System.Net.Sockets;
using System.Runtime.CompilerServices;

namespace ActorNvme.Transport.RawSocket;

/// <summary>
/// A <see cref="PipeReader"/> over one array: <see cref="ReadAsync"/> receives on the calling
/// thread (the connection's dedicated receive thread) and always completes synchronously. Only that
/// thread calls it; <see cref="CancelPendingRead"/> may come from any thread.
/// </summary>
internal sealed class SocketReader(Socket socket, int initialSize, long spinTicks) : PipeReader
{
    /// <summary>Pause between two receives that found nothing (about a microsecond): one system call per try, not a storm.</summary>
    private const int SpinIterationsPerTry = 20;

    private byte[] _buffer = new byte[initialSize];
    private int _start;      // first unconsumed byte
    private int _end;        // end of received data
    private int _examined;   // the reader looked at everything before this
    private bool _endOfStream;
    private volatile bool _canceled;

    private ReadOnlySequence<byte> Unconsumed => new(_buffer, _start, _end - _start);

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public override ValueTask<ReadResult> ReadAsync(CancellationToken cancellationToken = default)
    {
        if (_canceled)
        {
            _canceled = false;
            return new ValueTask<ReadResult>(new ReadResult(Unconsumed, isCanceled: true, isCompleted: _endOfStream));
        }

        // Receive only when the reader has seen everything buffered: it asked for more.
        if (_examined >= _end && !_endOfStream)
        {
            Receive();
        }

        return new ValueTask<ReadResult>(new ReadResult(Unconsumed, isCanceled: _canceled, isCompleted: _endOfStream));
    }

    public override bool TryRead(out ReadResult result)
    {
        result = new ReadResult(Unconsumed, false, _endOfStream);
        return _end > _examined || _endOfStream;
    }

    public override void AdvanceTo(SequencePosition consumed) => AdvanceTo(consumed, consumed);

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public override void AdvanceTo(SequencePosition consumed, SequencePosition examined)
    {
        _start = consumed.GetInteger();
        _examined = examined.GetInteger();
        if (_start == _end)
        {
            _start = _end = _examined = 0;
        }
    }

    public override void CancelPendingRead() => _canceled = true;

    public override void Complete(Exception? exception = null)
    {
    }

    /// <summary>Set once, before the first read: polling is worth it only while the owner awaits answers.</summary>
    public IReceiveDemand? Demand { get; set; }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void Receive()
    {
        MakeRoom();

        // Spin-then-block: while answers are due, try the socket for up to spinTicks before sleeping
        // in poll(). A sleeping thread costs a wake-up per burst (the largest part of a QD1 round trip
        // on a virtual machine, and at deep queues it lets completions pile up into one convoy);
        // an idle queue pair (nothing outstanding) sleeps at once and costs nothing.
        long spinUntil = spinTicks > 0 && AwaitsData() ? Stopwatch.GetTimestamp() + spinTicks : 0;
        if (spinUntil == 0)
        {
            // Not spinning: wait in poll() first. It returns at once when data is there; when it
            // is not (every I/O at low queue depth), this skips a receive that would only say
            // "would block": two system calls per wake-up instead of three.
            socket.Poll(-1, SelectMode.SelectRead);
        }

        while (true)
        {
            int received = socket.Receive(_buffer.AsSpan(_end), SocketFlags.None, out var error);
            if (error == SocketError.Success)
            {
                if (received == 0)
                {
                    _endOfStream = true;
                }

                _end += received;
                return;
            }

            if (error != SocketError.WouldBlock)
            {
                throw new SocketException((int)error);
            }

            if (_canceled)
            {
                return;
            }

            if (spinUntil != 0 && Stopwatch.GetTimestamp() < spinUntil && AwaitsData())
            {
                Thread.SpinWait(SpinIterationsPerTry);
                continue;
            }

            spinUntil = 0;
            socket.Poll(-1, SelectMode.SelectRead);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private bool AwaitsData() => Demand?.AwaitsData ?? true;

    /// <summary>
    /// Keeps at least a quarter of the buffer free for the next receive: moves unconsumed bytes to
    /// the front, and doubles the buffer when a partly received PDU fills more than half of it (its
    /// PLEN was already checked against the queue pair's bound, so growth is bounded too).
    /// </summary>
    private void MakeRoom()
    {
        if (_buffer.Length - _end >= _buffer.Length / 4)
        {
            return;
        }

        int unconsumed = _end - _start;
        var target = unconsumed > _buffer.Length / 2 ? new byte[_buffer.Length * 2] : _buffer;
        Buffer.BlockCopy(_buffer, _start, target, 0, unconsumed);
        _buffer = target;
        _examined -= _start;
        _end = unconsumed;
        _start = 0;
    }
}
