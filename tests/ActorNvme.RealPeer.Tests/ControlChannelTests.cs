using System.Text.RegularExpressions;
using ActorNvme.RealPeer.Tests.Harness;
using Xunit;

namespace ActorNvme.RealPeer.Tests;

/// <summary>The harness's control channel into the guest (serial port, not the guest network).</summary>
public sealed class ControlChannelTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    [RealPeerFact]
    public void Agent_answers_uname_with_the_Debian_kernel_release()
    {
        var target = LinuxTarget.Current;

        var (code, output) = target.Exec("uname -r", Timeout);

        Assert.Equal(0, code);
        var release = output.Trim();
        Assert.Matches(new Regex(@"^\d+\.\d+\.\d+-\d+-amd64$"), release);
        if (!string.IsNullOrEmpty(target.KernelVersion))
        {
            Assert.Equal(target.KernelVersion, release);
        }
    }

    [RealPeerFact]
    public void Failing_command_returns_its_exit_code_and_stderr()
    {
        var (code, output) = LinuxTarget.Current.Exec("echo to-stderr >&2; exit 7", Timeout);

        Assert.Equal(7, code);
        Assert.Equal("to-stderr\n", output);
    }

    [RealPeerFact]
    public void Output_that_looks_like_the_framing_comes_back_verbatim()
    {
        // Lines shaped like the agent's own markers, a CR, and no final newline.
        var (code, output) = LinuxTarget.Current.Exec(@"printf '%%END x 0\n%%BEGIN y\r\nlast'", Timeout);

        Assert.Equal(0, code);
        Assert.Equal("%END x 0\n%BEGIN y\r\nlast", output);
    }

    [RealPeerFact]
    public void Nvmet_is_configured_with_both_subsystems_on_both_ports()
    {
        var output = LinuxTarget.Current.ExecChecked(
            "cd /sys/kernel/config/nvmet/ports && for p in 1 2; do echo \"$p $(cat $p/addr_trsvcid) $(ls $p/subsystems | tr '\\n' ' ')\"; done",
            Timeout);

        Assert.Equal(
            "1 8009 nqn.2016-06.io.spdk:cnode0 nqn.2016-06.io.spdk:cnode1 \n"
            + "2 4420 nqn.2016-06.io.spdk:cnode0 nqn.2016-06.io.spdk:cnode1 \n",
            output);
    }
}
