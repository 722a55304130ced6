using System.Buffers;
using System.Diagnostics;
using System.IO.Pipelines;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using System.Threading.Tasks.Sources;

namespace ActorNvme.Transport.RawSocket;

/// <summary>
/// A <see cref="PipeReader"/> over one receive buffer. Two ways to wait:
/// <list type="bullet">
/// <item>On an <see cref="IoThread"/> (Linux): <see cref="ReadAsync"/> receives at once when the socket
/// has data and otherwise returns a pending read that the I/O thread completes (inline, running the read
/// loop on) when epoll reports data. An idle reader holds no buffer: it goes back to the pool.</item>
/// <item>Without one: it receives on the calling thread (a dedicated receive thread), blocking in poll().</item>
/// </list>
/// Only the thread running the read loop calls it; <see cref="CancelPendingRead"/> may come from any thread.
/// </summary>
internal sealed class SocketReader(Socket socket, int initialSize, long spinTicks, IoThread? ioThread = null) : PipeReader, IValueTaskSource<ReadResult>
{
    /// <summary>Pause between two receives that found nothing (about a microsecond): one system call per try, not a storm.</summary>
    private const int SpinIterationsPerTry = 20;

    private byte[] _buffer = ioThread is null ? new byte[initialSize] : [];
    private ManualResetValueTaskSourceCore<ReadResult> _pendingRead;
    private bool _pending;
    private bool _readable;
    private bool _spinning;
    private bool _filledLastTime;

    /// <summary>First buffer of a pooled reader: enough for the PDUs of a connect; a busy reader doubles it up to the configured size.</summary>
    private const int SmallBufferSize = 4096;
    private long _spinUntil;
    private int _start;      // first unconsumed byte
    private int _end;        // end of received data
    private int _examined;   // the reader looked at everything before this
    private bool _endOfStream;
    private volatile bool _canceled;

    private ReadOnlySequence<byte> Unconsumed => new(_buffer, _start, _end - _start);

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
            if (ioThread is not null)
            {
                return ReceiveOnIoThread();
            }

            Receive();
        }

        return new ValueTask<ReadResult>(new ReadResult(Unconsumed, isCanceled: _canceled, isCompleted: _endOfStream));
    }

    /// <summary>The same connection's writer: the I/O thread tells it when the socket is writable again.</summary>
    internal SocketWriter? Writer { get; set; }

    /// <summary>Token of this reader's registration with its I/O thread.</summary>
    internal ulong Token { get; set; }

    /// <summary>
    /// Receives what the socket holds now, or parks the read until the I/O thread sees data. Parking
    /// while nothing is unconsumed and nothing is due returns the buffer to the pool (idle costs no buffer).
    /// </summary>
    private ValueTask<ReadResult> ReceiveOnIoThread()
    {
        if (_readable && TryReceiveNow())
        {
            return new ValueTask<ReadResult>(new ReadResult(Unconsumed, isCanceled: false, isCompleted: _endOfStream));
        }

        bool awaitsData = AwaitsData();
        if (!awaitsData && _start == _end)
        {
            ReleaseBuffer();
        }

        if (spinTicks > 0 && awaitsData)
        {
            _spinUntil = Stopwatch.GetTimestamp() + spinTicks;
            if (!_spinning)
            {
                _spinning = true;
                ioThread!.Spin(this);
            }
        }

        _pendingRead.Reset();
        _pending = true;
        return new ValueTask<ReadResult>(this, _pendingRead.Version);
    }

    /// <summary>One non-blocking receive; false when the socket had nothing (would block). Throws on a socket error.</summary>
    private bool TryReceiveNow()
    {
        if (_buffer.Length == 0)
        {
            _buffer = TransportBufferPool.Rent(Math.Min(SmallBufferSize, initialSize));
        }

        MakeRoom();
        int room = _buffer.Length - _end;
        int received = socket.Receive(_buffer.AsSpan(_end), SocketFlags.None, out var error);
        if (error == SocketError.WouldBlock)
        {
            _readable = false;
            return false;
        }

        if (error != SocketError.Success)
        {
            throw new SocketException((int)error);
        }

        if (received == 0)
        {
            _endOfStream = true;
        }

        _filledLastTime = received == room;
        if (received != 0 && received < room)
        {
            // Drained: the next edge says when more arrives.
            _readable = false;
        }

        _end += received;
        return true;
    }

    private void ReleaseBuffer()
    {
        if (_buffer.Length != 0)
        {
            TransportBufferPool.Return(_buffer);
            _buffer = [];
            _start = _end = _examined = 0;
        }
    }

    /// <summary>On the I/O thread: epoll says the socket has data (or an end, or an error).</summary>
    internal void OnReadable()
    {
        _readable = true;
        CompletePending();
    }

    /// <summary>On the I/O thread: a cancel was posted; a parked read ends as canceled.</summary>
    internal void OnCancel() => CompletePending();

    /// <summary>On the I/O thread, while spinning: true to keep polling for this reader.</summary>
    internal bool StillSpinning(long now)
    {
        _spinning = _pending && now < _spinUntil && AwaitsData();
        return _spinning;
    }

    /// <summary>On the I/O thread, when the connection is gone: the buffer goes back to the pool.</summary>
    internal void OnDetached()
    {
        if (!_pending)
        {
            ReleaseBuffer();
        }
    }

    private void CompletePending()
    {
        if (!_pending)
        {
            return;
        }

        ReadResult result;
        try
        {
            if (_canceled)
            {
                _canceled = false;
                result = new ReadResult(Unconsumed, isCanceled: true, isCompleted: _endOfStream);
            }
            else if (!TryReceiveNow())
            {
                return;
            }
            else
            {
                result = new ReadResult(Unconsumed, isCanceled: false, isCompleted: _endOfStream);
            }
        }
        catch (Exception e)
        {
            _pending = false;
            _pendingRead.SetException(e);
            return;
        }

        // Runs the read loop's continuation inline, on this I/O thread.
        _pending = false;
        _pendingRead.SetResult(result);
    }

    ReadResult IValueTaskSource<ReadResult>.GetResult(short token) => _pendingRead.GetResult(token);

    ValueTaskSourceStatus IValueTaskSource<ReadResult>.GetStatus(short token) => _pendingRead.GetStatus(token);

    void IValueTaskSource<ReadResult>.OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
        _pendingRead.OnCompleted(continuation, state, token, flags);

    public override bool TryRead(out ReadResult result)
    {
        result = new ReadResult(Unconsumed, false, _endOfStream);
        return _end > _examined || _endOfStream;
    }

    public override void AdvanceTo(SequencePosition consumed) => AdvanceTo(consumed, consumed);

    public override void AdvanceTo(SequencePosition consumed, SequencePosition examined)
    {
        _start = consumed.GetInteger();
        _examined = examined.GetInteger();
        if (_start == _end)
        {
            _start = _end = _examined = 0;
        }
    }

    public override void CancelPendingRead()
    {
        _canceled = true;
        ioThread?.Post(OnCancel);
    }

    public override void Complete(Exception? exception = null)
    {
    }

    /// <summary>Set once, before the first read: polling is worth it only while the owner awaits answers.</summary>
    public IReceiveDemand? Demand { get; set; }

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
        // Pooled: a receive that filled the buffer says more was waiting; grow towards the configured size.
        bool growForMore = ioThread is not null && _filledLastTime && _buffer.Length < initialSize;
        if (!growForMore && _buffer.Length - _end >= _buffer.Length / 4)
        {
            return;
        }

        _filledLastTime = false;
        int unconsumed = _end - _start;
        bool grow = growForMore || unconsumed > _buffer.Length / 2;
        var target = !grow ? _buffer : ioThread is null ? new byte[_buffer.Length * 2] : TransportBufferPool.Rent(_buffer.Length * 2);
        Buffer.BlockCopy(_buffer, _start, target, 0, unconsumed);
        if (grow && ioThread is not null)
        {
            TransportBufferPool.Return(_buffer);
        }

        _buffer = target;
        _examined -= _start;
        _end = unconsumed;
        _start = 0;
    }
}
