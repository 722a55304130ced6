using Xunit;

namespace ActorNvme.RealPeer.Tests.Harness;

/// <summary>
/// A fact that needs the Linux NVMe/TCP target started by <c>scripts/nvmet-qemu/nvmet.sh</c>.
/// Skipped, with the reason, when the harness's variables are not set (a plain <c>dotnet test</c>);
/// <c>./test.sh</c> runs these inside the harness and fails when any of them is skipped.
/// </summary>
[AttributeUsage(AttributeTargets.Method, AllowMultiple = false)]
public sealed class RealPeerFactAttribute : FactAttribute
{
    public RealPeerFactAttribute()
    {
        if (string.IsNullOrEmpty(Environment.GetEnvironmentVariable(LinuxTarget.ControlVariable)))
        {
            Skip = $"needs the Linux NVMe/TCP target in QEMU: {LinuxTarget.ControlVariable} is unset; run "
                + "'scripts/nvmet-qemu/nvmet.sh with -- dotnet test tests/ActorNvme.RealPeer.Tests' as root "
                + "(./test.sh does)";
        }
    }
}
