using Xunit;

namespace ActorNvme.RealPeer.Tests.Harness;

/// <summary>
/// A fact that needs the Linux target with DH-HMAC-CHAP and TLS: the harness booted with
/// <c>ACTORNVME_NVMET_SUITE=trixie</c> (kernel 6.12 and tlshd), which reports them in
/// <c>ACTORNVME_NVMET_FEATURES</c>. <c>tests/shell/linux-auth-tls.sh</c> runs these; the 6.1 run of
/// <c>./test.sh</c> leaves them out.
/// </summary>
[AttributeUsage(AttributeTargets.Method, AllowMultiple = false)]
public sealed class LinuxSecurityPeerFactAttribute : FactAttribute
{
    public LinuxSecurityPeerFactAttribute()
    {
        Skip = SkipReason();
    }

    internal static string? SkipReason()
    {
        string features = Environment.GetEnvironmentVariable(LinuxTarget.FeaturesVariable) ?? string.Empty;
        return string.IsNullOrEmpty(Environment.GetEnvironmentVariable(LinuxTarget.ControlVariable))
            || !features.Split(' ').Contains("dhchap") || !features.Split(' ').Contains("tls")
            ? $"needs the Linux target with DH-HMAC-CHAP and TLS ({LinuxTarget.FeaturesVariable}='{features}'): "
                + "run tests/shell/linux-auth-tls.sh as root"
            : null;
    }
}

/// <summary>A theory with the same condition as <see cref="LinuxSecurityPeerFactAttribute"/>.</summary>
[AttributeUsage(AttributeTargets.Method, AllowMultiple = false)]
public sealed class LinuxSecurityPeerTheoryAttribute : TheoryAttribute
{
    public LinuxSecurityPeerTheoryAttribute()
    {
        Skip = LinuxSecurityPeerFactAttribute.SkipReason();
    }
}
