using System.Security.Cryptography;
using System.Text;
using ActorNvme.Protocol.Tls;
using Org.BouncyCastle.Tls;

namespace ActorNvme.Transport.Tls;

/// <summary>
/// The controller's end of NVMe/TCP over TLS 1.3 with a PSK: runs the server handshake on an accepted byte
/// stream, choosing the PSK from the identity the host offers (<c>NVMe0R0h hostnqn subnqn</c>) through
/// <paramref name="lookup"/> (null: no PSK for that pair). Identities that do not parse, name an unknown pair, or
/// whose hash does not fit the key's length are ignored, so the handshake fails for lack of a PSK.
/// </summary>
public sealed class TlsPskAcceptor(Func<string, string, NvmeTlsPsk?> lookup, TimeSpan handshakeTimeout)
{
    /// <summary>Runs the handshake; on failure the inbound stream is aborted and <see cref="ConnectionClosedException"/> (TlsHandshakeFailed or InitializationTimeout) thrown.</summary>
    public async Task<TlsPskConnection> AcceptAsync(INvmeConnection inbound, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(inbound);
        var protocol = new TlsServerProtocol(new DuplexPipeStream(inbound.Pipe));
        var server = new NvmeTlsPskServer(lookup);
        var handshake = Task.Run(() => protocol.Accept(server), CancellationToken.None);
        try
        {
            await handshake.WaitAsync(handshakeTimeout, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            var reason = e is TimeoutException
                ? new ConnectionClosed(CloseReason.InitializationTimeout, $"TLS handshake from {inbound.RemoteAddress}: no ClientHello within {handshakeTimeout.TotalSeconds:0.###} s")
                : new ConnectionClosed(CloseReason.TlsHandshakeFailed, $"TLS handshake from {inbound.RemoteAddress} failed: {(server.Offered.Count == 0 ? e.Message : $"no PSK matched the identities offered ({string.Join(", ", server.Offered)})")}", e);
            inbound.Abort(reason);
            try
            {
                await handshake.ConfigureAwait(false);
            }
            catch (Exception)
            {
                // Ended by the abort.
            }

            throw new ConnectionClosedException(reason);
        }

        return new TlsPskConnection(inbound, protocol, server.Chosen!.Value.Suite, server.Chosen.Value.Identity);
    }

    /// <summary>Parses <c>NVMe0R0h hostnqn subnqn</c> or <c>NVMe1R0h hostnqn subnqn digest</c> (h 1 or 2); false for anything else.</summary>
    public static bool TryParseIdentity(string identity, out NvmeTlsCipherSuite suite, out string hostNqn, out string subsystemNqn)
    {
        suite = default;
        hostNqn = subsystemNqn = string.Empty;
        if (!NvmeTlsPskIdentity.TryParse(identity, out var parsed))
        {
            return false;
        }

        (suite, hostNqn, subsystemNqn) = (parsed.Suite, parsed.HostNqn, parsed.SubsystemNqn);
        return true;
    }

    /// <summary>
    /// The TLS PSK for <paramref name="identity"/> under the configured <paramref name="psk"/>, or null when the identity
    /// does not fit it: another cipher suite, or (version 1) a PSK digest that is not the one the retained PSK gives.
    /// </summary>
    internal static byte[]? TlsPskFor(NvmeTlsPskIdentity identity, NvmeTlsPsk psk)
    {
        if (psk.CipherSuite != identity.Suite)
        {
            return null;
        }

        byte[] retained = psk.RetainedPsk(identity.HostNqn);
        try
        {
            if (identity.Version == 1)
            {
                string expected = NvmeTlsPskDerivation.PskDigest(retained, identity.Suite, identity.HostNqn, identity.SubsystemNqn);
                if (!CryptographicOperations.FixedTimeEquals(Encoding.ASCII.GetBytes(expected), Encoding.ASCII.GetBytes(identity.PskDigest!)))
                {
                    return null;
                }
            }

            return NvmeTlsPskDerivation.TlsPsk(retained, identity);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(retained);
        }
    }

    private sealed class NvmeTlsPskServer(Func<string, string, NvmeTlsPsk?> lookup) : AbstractTlsServer(new Org.BouncyCastle.Tls.Crypto.Impl.BC.BcTlsCrypto())
    {
        public List<string> Offered { get; } = [];

        public (NvmeTlsCipherSuite Suite, string Identity)? Chosen { get; private set; }

        protected override ProtocolVersion[] GetSupportedVersions() => ProtocolVersion.TLSv13.Only();

        protected override int[] GetSupportedCipherSuites() => [CipherSuite.TLS_AES_256_GCM_SHA384, CipherSuite.TLS_AES_128_GCM_SHA256];

        public override TlsCredentials? GetCredentials() => null;

        public override TlsPskExternal? GetExternalPsk(IList<PskIdentity> identities)
        {
            // The host may offer several; bound the work a hostile one can cause.
            foreach (var offered in identities.Take(8))
            {
                string identity;
                try
                {
                    identity = new UTF8Encoding(false, true).GetString(offered.Identity);
                }
                catch (DecoderFallbackException)
                {
                    continue;
                }

                Offered.Add(identity.Length > 100 ? identity[..100] + "..." : identity);
                if (!NvmeTlsPskIdentity.TryParse(identity, out var parsed) || lookup(parsed.HostNqn, parsed.SubsystemNqn) is not { } psk || TlsPskFor(parsed, psk) is not { } tlsPsk)
                {
                    continue;
                }

                var suite = parsed.Suite;
                try
                {
                    Chosen = (suite, identity);
                    int prf = suite == NvmeTlsCipherSuite.Aes256GcmSha384 ? PrfAlgorithm.tls13_hkdf_sha384 : PrfAlgorithm.tls13_hkdf_sha256;
                    return new BasicTlsPskExternal(offered.Identity, Crypto.CreateSecret(tlsPsk), prf);
                }
                finally
                {
                    CryptographicOperations.ZeroMemory(tlsPsk);
                }
            }

            return null;
        }
    }
}
