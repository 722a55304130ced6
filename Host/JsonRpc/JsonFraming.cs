using System.Text.Json;

namespace ActorNvme.Host.JsonRpc;

/// <summary>
/// Finds where one JSON value ends in a byte stream. SPDK's server and its rpc.py client send JSON
/// values back to back with no delimiter (a newline is optional), so a reader cannot split on lines:
/// it reads until one whole value has arrived.
/// </summary>
public static class JsonFraming
{
    /// <summary>The largest request or response accepted: anything longer is refused before it is parsed.</summary>
    public const int DefaultMaxMessageBytes = 1024 * 1024;

    /// <summary>
    /// When <paramref name="buffer"/> starts with one whole JSON object or array (after optional
    /// whitespace), returns true with its length, whitespace included. Returns false when more bytes are
    /// needed. Throws <see cref="JsonException"/> when the bytes cannot be the start of valid JSON.
    /// </summary>
    public static bool TryFindValue(ReadOnlySpan<byte> buffer, out int length)
    {
        length = 0;
        var reader = new Utf8JsonReader(buffer, isFinalBlock: false, state: default);
        if (!reader.Read())
        {
            return false;
        }

        if (reader.TokenType is not (JsonTokenType.StartObject or JsonTokenType.StartArray))
        {
            // A bare number or string has no end we can see in a stream; JSON-RPC never sends one.
            throw new JsonException($"a JSON-RPC message is an object, not a {reader.TokenType}");
        }

        if (!reader.TrySkip())
        {
            return false;
        }

        length = checked((int)reader.BytesConsumed);
        return true;
    }

    /// <summary>True when the buffer holds nothing but whitespace.</summary>
    public static bool IsBlank(ReadOnlySpan<byte> buffer)
    {
        foreach (byte b in buffer)
        {
            if (b is not ((byte)' ' or (byte)'\t' or (byte)'\r' or (byte)'\n'))
            {
                return false;
            }
        }

        return true;
    }
}
