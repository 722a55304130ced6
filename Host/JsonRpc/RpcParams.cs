using System.Globalization;
using System.Text.Json;

namespace ActorNvme.Host.JsonRpc;

/// <summary>
/// A method's "params" object, checked the way SPDK's decoders check it: an object (or absent), no
/// name the method does not know, each value of the declared type. A request of the wrong shape
/// (unknown or missing parameter, wrong JSON type) is an Invalid params error (-32602); a value of the
/// right type but wrong (out of range, empty, not a port) is -EINVAL. Every message names the parameter.
/// </summary>
public sealed class RpcParams
{
    /// <summary>The longest string parameter accepted (SPDK's TRADDR field is 256 bytes; NQNs 223).</summary>
    public const int MaxStringLength = 4096;

    private readonly Dictionary<string, JsonElement> _values;

    private RpcParams(string method, Dictionary<string, JsonElement> values)
    {
        Method = method;
        _values = values;
    }

    public string Method { get; }

    /// <summary>Names present in the request.</summary>
    public IReadOnlyCollection<string> Names => _values.Keys;

    public bool IsEmpty => _values.Count == 0;

    public static RpcParams Empty(string method) => new(method, new Dictionary<string, JsonElement>(StringComparer.Ordinal));

    /// <summary>Checks <paramref name="parameters"/> against the names <paramref name="known"/> to the method.</summary>
    public static RpcParams Parse(string method, JsonElement? parameters, IReadOnlyCollection<string> known)
    {
        ArgumentNullException.ThrowIfNull(known);
        var values = new Dictionary<string, JsonElement>(StringComparer.Ordinal);
        if (parameters is not { } element || element.ValueKind is JsonValueKind.Null or JsonValueKind.Undefined)
        {
            return new RpcParams(method, values);
        }

        if (element.ValueKind != JsonValueKind.Object)
        {
            throw JsonRpcException.InvalidParams($"{method}: params must be an object, not {Describe(element)}");
        }

        foreach (var property in element.EnumerateObject())
        {
            if (known.Count == 0)
            {
                throw JsonRpcException.InvalidParams($"{method} method requires no parameters (got '{property.Name}')");
            }

            if (!known.Contains(property.Name))
            {
                throw JsonRpcException.InvalidParams($"{method}: unknown parameter '{property.Name}'");
            }

            if (!values.TryAdd(property.Name, property.Value))
            {
                throw JsonRpcException.InvalidParams($"{method}: parameter '{property.Name}' given twice");
            }
        }

        return new RpcParams(method, values);
    }

    public bool Has(string name) => _values.ContainsKey(name);

    public string RequiredString(string name, int maxLength = MaxStringLength) =>
        OptionalString(name, maxLength) ?? throw JsonRpcException.InvalidParams($"{Method}: missing required parameter '{name}'");

    public string? OptionalString(string name, int maxLength = MaxStringLength)
    {
        if (!_values.TryGetValue(name, out var value) || value.ValueKind == JsonValueKind.Null)
        {
            return null;
        }

        if (value.ValueKind != JsonValueKind.String)
        {
            throw Wrong(name, "a string", value);
        }

        string text = value.GetString()!;
        if (text.Length > maxLength)
        {
            throw JsonRpcException.InvalidValue($"{Method}: parameter '{name}' is longer than {maxLength} characters");
        }

        return text;
    }

    /// <summary>A string that must be non-empty when given.</summary>
    public string? OptionalNonEmptyString(string name, int maxLength = MaxStringLength)
    {
        string? text = OptionalString(name, maxLength);
        if (text is not null && string.IsNullOrWhiteSpace(text))
        {
            throw JsonRpcException.InvalidValue($"{Method}: parameter '{name}' must not be empty");
        }

        return text;
    }

    public string RequiredNonEmptyString(string name, int maxLength = MaxStringLength) =>
        OptionalNonEmptyString(name, maxLength) ?? throw JsonRpcException.InvalidParams($"{Method}: missing required parameter '{name}'");

    public bool? OptionalBool(string name)
    {
        if (!_values.TryGetValue(name, out var value) || value.ValueKind == JsonValueKind.Null)
        {
            return null;
        }

        return value.ValueKind switch
        {
            JsonValueKind.True => true,
            JsonValueKind.False => false,
            _ => throw Wrong(name, "a boolean", value),
        };
    }

    public long? OptionalInt64(string name, long min = long.MinValue, long max = long.MaxValue)
    {
        if (!_values.TryGetValue(name, out var value) || value.ValueKind == JsonValueKind.Null)
        {
            return null;
        }

        if (value.ValueKind != JsonValueKind.Number || !value.TryGetInt64(out long number))
        {
            throw Wrong(name, "an integer", value);
        }

        if (number < min || number > max)
        {
            throw JsonRpcException.InvalidValue($"{Method}: parameter '{name}' is {number}, outside {min.ToString(CultureInfo.InvariantCulture)}..{max.ToString(CultureInfo.InvariantCulture)}");
        }

        return number;
    }

    public long RequiredInt64(string name, long min = long.MinValue, long max = long.MaxValue) =>
        OptionalInt64(name, min, max) ?? throw JsonRpcException.InvalidParams($"{Method}: missing required parameter '{name}'");

    /// <summary>A TCP port given as SPDK gives it (a string, "4420") or as a number.</summary>
    public int? OptionalPort(string name, int min = 1)
    {
        if (!_values.TryGetValue(name, out var value) || value.ValueKind == JsonValueKind.Null)
        {
            return null;
        }

        int port;
        if (value.ValueKind == JsonValueKind.String)
        {
            if (!int.TryParse(value.GetString(), NumberStyles.None, CultureInfo.InvariantCulture, out port))
            {
                throw JsonRpcException.InvalidValue($"{Method}: parameter '{name}' must be a TCP port, not '{Truncate(value.GetString()!)}'");
            }
        }
        else if (value.ValueKind != JsonValueKind.Number || !value.TryGetInt32(out port))
        {
            throw Wrong(name, "a TCP port (a string or a number)", value);
        }

        if (port < min || port > 65535)
        {
            throw JsonRpcException.InvalidValue($"{Method}: parameter '{name}' is {port}, not a TCP port ({min}..65535)");
        }

        return port;
    }

    public int RequiredPort(string name, int min = 1) =>
        OptionalPort(name, min) ?? throw JsonRpcException.InvalidParams($"{Method}: missing required parameter '{name}'");

    /// <summary>A parameter SPDK defines that ActorNvme cannot honour: absent, null or SPDK's default is accepted, anything else is -ENOTSUP.</summary>
    public void RequireDefault(string name, bool spdkDefault, string why)
    {
        if (OptionalBool(name) is { } value && value != spdkDefault)
        {
            throw JsonRpcException.NotSupported(Method, name, value ? "true" : "false", why);
        }
    }

    /// <inheritdoc cref="RequireDefault(string, bool, string)"/>
    public void RequireDefault(string name, long spdkDefault, string why, long min = long.MinValue, long max = long.MaxValue)
    {
        if (OptionalInt64(name, min, max) is { } value && value != spdkDefault)
        {
            throw JsonRpcException.NotSupported(Method, name, value.ToString(CultureInfo.InvariantCulture), why);
        }
    }

    /// <inheritdoc cref="RequireDefault(string, bool, string)"/>
    public void RequireAbsent(string name, string why, int maxLength = MaxStringLength)
    {
        if (OptionalString(name, maxLength) is { } value)
        {
            throw JsonRpcException.NotSupported(Method, name, Truncate(value), why);
        }
    }

    /// <summary>An object parameter (SPDK's multipath_opts), or null when absent.</summary>
    public RpcParams? OptionalObject(string name, IReadOnlyCollection<string> known)
    {
        if (!_values.TryGetValue(name, out var value) || value.ValueKind == JsonValueKind.Null)
        {
            return null;
        }

        if (value.ValueKind != JsonValueKind.Object)
        {
            throw Wrong(name, "an object", value);
        }

        return Parse($"{Method}: {name}", value, known);
    }

    /// <summary>An array of strings (SPDK's dhchap_digests), or null when absent.</summary>
    public IReadOnlyList<string>? OptionalStringArray(string name, int maxItems = 64, int maxLength = 64)
    {
        if (!_values.TryGetValue(name, out var value) || value.ValueKind == JsonValueKind.Null)
        {
            return null;
        }

        if (value.ValueKind != JsonValueKind.Array)
        {
            throw Wrong(name, "an array of strings", value);
        }

        var items = new List<string>();
        foreach (var item in value.EnumerateArray())
        {
            if (item.ValueKind != JsonValueKind.String)
            {
                throw Wrong(name, "an array of strings", item);
            }

            string text = item.GetString()!;
            if (items.Count >= maxItems || text.Length > maxLength)
            {
                throw JsonRpcException.InvalidValue($"{Method}: parameter '{name}' holds more than {maxItems} items or an item longer than {maxLength} characters");
            }

            items.Add(text);
        }

        return items;
    }

    /// <summary>Checks that a parameter SPDK defines, but which does not apply here, at least has a JSON scalar value.</summary>
    public void AcceptAny(string name)
    {
        if (_values.TryGetValue(name, out var value) && value.ValueKind is JsonValueKind.Object or JsonValueKind.Array && name is not ("dhchap_digests" or "dhchap_dhgroups"))
        {
            throw Wrong(name, "a scalar value", value);
        }
    }

    private JsonRpcException Wrong(string name, string expected, JsonElement value) =>
        JsonRpcException.InvalidParams($"{Method}: parameter '{name}' must be {expected}, not {Describe(value)}");

    private static string Truncate(string text) => text.Length <= 64 ? text : text[..64] + "...";

    private static string Describe(JsonElement value) => value.ValueKind switch
    {
        JsonValueKind.String => "a string",
        JsonValueKind.Number => "a number",
        JsonValueKind.True or JsonValueKind.False => "a boolean",
        JsonValueKind.Array => "an array",
        JsonValueKind.Object => "an object",
        _ => "null",
    };
}
