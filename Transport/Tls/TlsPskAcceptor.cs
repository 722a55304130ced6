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

    /// <summary>Parses <c>NVMe0R01 hostnqn subnqn</c> / <c>NVMe0R02 ...</c>; false for anything else.</summary>
    public static bool TryParseIdentity(string identity, out NvmeTlsCipherSuite suite, out string hostNqn, out string subsystemNqn)
    {
        suite = default;
        hostNqn = subsystemNqn = string.Empty;
        var parts = identity.Split(' ');
        if (parts.Length != 3 || parts[1].Length == 0 || parts[2].Length == 0 || parts[1].Length > 223 || parts[2].Length > 223)
        {
            return false;
        }

        switch (parts[0])
        {
            case "NVMe0R01": suite = NvmeTlsCipherSuite.Aes128GcmSha256; break;
            case "NVMe0R02": suite = NvmeTlsCipherSuite.Aes256GcmSha384; break;
            default: return false;
        }

        hostNqn = parts[1];
        subsystemNqn = parts[2];
        return true;
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
                if (!TryParseIdentity(identity, out var suite, out string hostNqn, out string subsystemNqn) || lookup(hostNqn, subsystemNqn) is not { } psk || psk.CipherSuite != suite)
                {
                    continue;
                }

                byte[] retained = psk.RetainedPsk(hostNqn);
                byte[] tlsPsk = NvmeTlsPskDerivation.TlsPsk(retained, identity, suite);
                try
                {
                    Chosen = (suite, identity);
                    int prf = suite == NvmeTlsCipherSuite.Aes256GcmSha384 ? PrfAlgorithm.tls13_hkdf_sha384 : PrfAlgorithm.tls13_hkdf_sha256;
                    return new BasicTlsPskExternal(offered.Identity, Crypto.CreateSecret(tlsPsk), prf);
                }
                finally
                {
                    CryptographicOperations.ZeroMemory(retained);
                    CryptographicOperations.ZeroMemory(tlsPsk);
                }
            }

            return null;
        }
    }
}
