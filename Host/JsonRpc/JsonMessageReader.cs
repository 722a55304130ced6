using System.Text.Json;

namespace ActorNvme.Host.JsonRpc;

/// <summary>Why the stream stopped yielding messages.</summary>
public enum JsonStreamFault
{
    None,
    TooLong,
    Malformed,
}

/// <summary>
/// Reads whole JSON values one after another from a stream, never holding more than
/// <c>maxMessageBytes</c> of an unfinished one. Single reader: one connection's read loop.
/// </summary>
public sealed class JsonMessageReader
{
    private readonly Stream _stream;
    private readonly int _maxMessageBytes;
    private byte[] _buffer;
    private int _start;
    private int _end;

    public JsonMessageReader(Stream stream, int maxMessageBytes = JsonFraming.DefaultMaxMessageBytes)
    {
        ArgumentNullException.ThrowIfNull(stream);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxMessageBytes, 64);
        _stream = stream;
        _maxMessageBytes = maxMessageBytes;
        _buffer = new byte[Math.Min(maxMessageBytes, 16 * 1024)];
    }

    /// <summary>What stopped the reader, once <see cref="ReadAsync"/> returned null.</summary>
    public JsonStreamFault Fault { get; private set; }

    /// <summary>The parser's complaint when <see cref="Fault"/> is <see cref="JsonStreamFault.Malformed"/>.</summary>
    public string? FaultDetail { get; private set; }

    /// <summary>
    /// The next whole value's bytes, or null at the end of the stream or on a fault (see
    /// <see cref="Fault"/>): after a fault the framing is lost, so the caller answers once and closes.
    /// </summary>
    public async ValueTask<ReadOnlyMemory<byte>?> ReadAsync(CancellationToken cancellationToken)
    {
        while (true)
        {
            var pending = _buffer.AsMemory(_start, _end - _start);
            if (!JsonFraming.IsBlank(pending.Span))
            {
                try
                {
                    if (JsonFraming.TryFindValue(pending.Span, out int length))
                    {
                        var message = pending[..length].ToArray();
                        _start += length;
                        return message;
                    }
                }
                catch (JsonException e)
                {
                    Fault = JsonStreamFault.Malformed;
                    FaultDetail = e.Message;
                    return null;
                }
            }
            else
            {
                _start = _end = 0; // only whitespace is pending: start over at the front
            }

            if (_end - _start >= _maxMessageBytes)
            {
                Fault = JsonStreamFault.TooLong;
                FaultDetail = $"message longer than {_maxMessageBytes} bytes";
                return null;
            }

            MakeRoom();
            int read = await _stream.ReadAsync(_buffer.AsMemory(_end), cancellationToken).ConfigureAwait(false);
            if (read == 0)
            {
                if (!JsonFraming.IsBlank(_buffer.AsSpan(_start, _end - _start)))
                {
                    Fault = JsonStreamFault.Malformed;
                    FaultDetail = "the stream ended inside a message";
                }

                return null;
            }

            _end += read;
        }
    }

    private void MakeRoom()
    {
        if (_start > 0)
        {
            Buffer.BlockCopy(_buffer, _start, _buffer, 0, _end - _start);
            _end -= _start;
            _start = 0;
        }

        if (_end == _buffer.Length)
        {
            // Grow, but never beyond one byte past the bound: that is enough to see a message is too long.
            int size = (int)Math.Min((long)_buffer.Length * 2, (long)_maxMessageBytes + 1);
            Array.Resize(ref _buffer, size);
        }
    }
}
