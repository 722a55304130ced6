using ActorNvme.Protocol.Auth;

namespace ActorNvme.Target;

/// <summary>
/// What a host must prove on every queue of a subsystem (DH-HMAC-CHAP, as SPDK's <c>nvmf_subsystem_add_host
/// --dhchap-key [--dhchap-ctrlr-key]</c> or nvmet's <c>dhchap_key</c> / <c>dhchap_ctrl_key</c>): the host's DHHC-1
/// secret; optionally the controller's, used when the host asks the controller to prove itself; the hashes and
/// DH groups the controller may choose (null: all of them; it picks the strongest the host offers).
/// </summary>
public sealed record DhChapHostKeys(string HostKey, string? ControllerKey = null)
{
    public IReadOnlyList<DhChapHashId>? Hashes { get; init; }

    public IReadOnlyList<DhChapGroupId>? Groups { get; init; }

    /// <summary>Throws <see cref="FormatException"/> or <see cref="ArgumentException"/> naming what is wrong (never the secret).</summary>
    internal void Validate(string what)
    {
        DhChapSecret.Parse(HostKey, $"{what}: host key").Dispose();
        if (ControllerKey is not null)
        {
            DhChapSecret.Parse(ControllerKey, $"{what}: controller key").Dispose();
        }

        if (Hashes is { Count: 0 } || Hashes?.Any(h => !DhChapHashes.IsDefined((byte)h)) == true)
        {
            throw new ArgumentException($"{what}: the allowed hashes must be a non-empty list of sha256, sha384, sha512");
        }

        if (Groups is { Count: 0 } || Groups?.Any(g => !DhChapGroups.IsDefined((byte)g)) == true)
        {
            throw new ArgumentException($"{what}: the allowed DH groups must be a non-empty list of null, ffdhe2048 ... ffdhe8192");
        }
    }

    // The secrets are not part of the text form: records print their members otherwise.
    public override string ToString() => $"DH-HMAC-CHAP keys ({(ControllerKey is null ? "host key" : "host and controller keys")})";
}

/// <summary>One queue's DH-HMAC-CHAP: the controller exchange and the secrets it uses, zeroed when the queue is done with them.</summary>
internal sealed class QueueAuthentication : IDisposable
{
    private readonly DhChapSecret _hostSecret;
    private readonly DhChapSecret? _controllerSecret;

    public QueueAuthentication(DhChapHostKeys keys, string hostNqn, string subsystemNqn)
    {
        Keys = keys;
        _hostSecret = DhChapSecret.Parse(keys.HostKey);
        _controllerSecret = keys.ControllerKey is null ? null : DhChapSecret.Parse(keys.ControllerKey);
        Exchange = new DhChapControllerExchange(_hostSecret, _controllerSecret, hostNqn, subsystemNqn, keys.Hashes, keys.Groups);
    }

    public DhChapControllerExchange Exchange { get; }

    /// <summary>The keys this queue's transactions check (the target's at its Connect, or at its last re-authentication).</summary>
    public DhChapHostKeys Keys { get; }

    private volatile bool _queueAuthenticated;

    /// <summary>Commands other than authentication may run: a transaction has succeeded on this queue (a re-authentication in progress keeps it). Read by the authentication timer too.</summary>
    public bool QueueAuthenticated
    {
        get => _queueAuthenticated;
        set => _queueAuthenticated = value;
    }

    /// <summary>The successful transactions logged so far (owned by the queue's read loop).</summary>
    public int LoggedSuccesses { get; set; }

    public void Dispose()
    {
        _hostSecret.Dispose();
        _controllerSecret?.Dispose();
    }
}
