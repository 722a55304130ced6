using System.Globalization;
using System.Security.Cryptography;
using ActorNvme.RealPeer.Tests.Harness;
using ActorNvme.Target;
using Xunit;

namespace ActorNvme.RealPeer.Tests;

/// <summary>
/// The Linux kernel NVMe/TCP host (nvme-tcp in the QEMU guest) as the peer of our Target, which runs
/// in this test process on the harness's host-side address inside its network namespace.
/// </summary>
public sealed class OurTargetTests
{
    /// <summary>Our Target's port (discovery and I/O); test.sh has tshark dissect it too.</summary>
    public const int Port = 4430;

    private const string SubsystemNqn = "nqn.2024-01.io.actornvme:realpeer";
    private static readonly TimeSpan GuestTimeout = TimeSpan.FromSeconds(60);

    [RealPeerFact]
    public async Task Linux_host_discovers_connects_writes_with_dd_reads_back_identical_and_disconnects()
    {
        var guest = LinuxTarget.Current;
        await using var target = new NvmeTarget();
        var subsystem = target.AddSubsystem(SubsystemNqn);
        var ns = subsystem.AddNamespace(NamespaceOptions.Ram(16 * 1024 * 1024, 512));
        target.ListenTcp(guest.HostAddress.ToString(), Port);
        var created = new List<int>();
        try
        {
            // The discovery controller: the kernel keeps it until deleted (what nvme-cli calls persistent).
            int discovery = Connect(guest, DiscoverySubsystem.WellKnownNqn);
            created.Add(discovery);
            Assert.Equal(DiscoverySubsystem.WellKnownNqn, Sysfs(guest, discovery, "subsysnqn"));
            Assert.Equal(1, target.Discovery.ControllerCount);
            await WaitAsync(() => Sysfs(guest, discovery, "state") == "live", "the discovery controller to be live");

            var blockDevicesBefore = BlockDevices(guest);
            int nvm = Connect(guest, SubsystemNqn, ",hdr_digest,data_digest");
            created.Add(nvm);
            Assert.Equal(SubsystemNqn, Sysfs(guest, nvm, "subsysnqn"));
            Assert.Equal("tcp", Sysfs(guest, nvm, "transport"));
            Assert.Contains($"traddr={guest.HostAddress}", Sysfs(guest, nvm, "address"), StringComparison.Ordinal);
            string device = "";
            await WaitAsync(
                () =>
                {
                    device = BlockDevices(guest).Except(blockDevicesBefore).FirstOrDefault() ?? "";
                    return device.Length > 0;
                },
                "the namespace's block device");
            Assert.Equal(ns.BlockCount, long.Parse(guest.ExecChecked($"cat /sys/block/{device}/size", GuestTimeout).Trim(), CultureInfo.InvariantCulture));
            Assert.Equal(1, subsystem.ControllerCount);
            Assert.True(subsystem.GetControllers()[0].IoQueues >= 1);

            // 1 MiB of random data through the block device, then back with the page cache dropped.
            guest.ExecChecked("dd if=/dev/urandom of=/tmp/written bs=65536 count=16 2>/dev/null", GuestTimeout);
            guest.ExecChecked($"dd if=/tmp/written of=/dev/{device} bs=65536 conv=fsync 2>&1", GuestTimeout);
            string written = Md5(guest, "md5sum /tmp/written");
            guest.ExecChecked("sync; echo 3 > /proc/sys/vm/drop_caches", GuestTimeout);
            string readBack = Md5(guest, $"dd if=/dev/{device} bs=65536 count=16 2>/dev/null | md5sum");
            Assert.Equal(written, readBack);

            // And the bytes really are in our RAM namespace.
            var stored = new byte[1024 * 1024];
            ns.Read(0, stored);
            Assert.Equal(written, Convert.ToHexStringLower(MD5.HashData(stored)));

            Delete(guest, nvm);
            created.Remove(nvm);
            await WaitAsync(() => subsystem.ControllerCount == 0, "our target to see the controller go");
        }
        finally
        {
            foreach (int instance in created)
            {
                Delete(guest, instance);
            }
        }
    }

    [RealPeerFact]
    public async Task A_discovery_log_change_reaches_the_guests_discovery_controller_as_an_AEN()
    {
        var guest = LinuxTarget.Current;
        await using var target = new NvmeTarget();
        target.AddSubsystem(SubsystemNqn).AddNamespace(NamespaceOptions.Ram(1024 * 1024));
        target.ListenTcp(guest.HostAddress.ToString(), Port);

        // The kernel reports a discovery log change as a uevent (NVME_AEN=...); busybox's uevent applet records them.
        guest.ExecChecked("rm -f /tmp/uevents; setsid uevent sh -c 'env >> /tmp/uevents; echo >> /tmp/uevents' </dev/null >/dev/null 2>&1 &", GuestTimeout);
        int discovery = Connect(guest, DiscoverySubsystem.WellKnownNqn);
        try
        {
            // Wait until the host enabled the notice (Set Features 0x0B, bit 31) and has an AER outstanding.
            await WaitAsync(
                () => target.Discovery.GetControllers() is [var c] && (c.AsyncEventConfiguration & (1u << 31)) != 0 && c.OutstandingAsyncEventRequests > 0,
                "the guest's discovery controller to enable discovery log change notices and send an AER");
            ulong generation = target.DiscoveryGeneration;

            target.AddSubsystem("nqn.2024-01.io.actornvme:added");
            Assert.True(target.DiscoveryGeneration > generation);

            string events = "";
            await WaitAsync(
                () =>
                {
                    events = guest.Exec("cat /tmp/uevents", GuestTimeout).Output;
                    return events.Contains("NVME_AEN=0x70f002", StringComparison.Ordinal);
                },
                "the guest to report NVME_AEN=0x70f002");
            Assert.Contains($"nvme{discovery}", events, StringComparison.Ordinal);

            // Having handled it, the host asks for the next event.
            await WaitAsync(() => target.Discovery.GetControllers() is [var c] && c.OutstandingAsyncEventRequests > 0, "the guest to send its next AER");
        }
        finally
        {
            Delete(guest, discovery);
            guest.Exec("killall uevent", GuestTimeout);
        }
    }

    /// <summary>Writes a connect option string to /dev/nvme-fabrics; returns the new controller's instance (nvmeN).</summary>
    private static int Connect(LinuxTarget guest, string nqn, string extraOptions = "")
    {
        string options = $"transport=tcp,traddr={guest.HostAddress},trsvcid={Port},nqn={nqn}{extraOptions}";
        string answer = guest.ExecChecked($"exec 3<>/dev/nvme-fabrics && printf '%s' '{options}' >&3 && cat <&3", GuestTimeout).Trim();
        // "instance=N,cntlid=M"
        var instance = answer.Split(',')[0];
        Assert.StartsWith("instance=", instance, StringComparison.Ordinal);
        return int.Parse(instance["instance=".Length..], CultureInfo.InvariantCulture);
    }

    private static void Delete(LinuxTarget guest, int instance) =>
        guest.Exec($"[ -e /sys/class/nvme/nvme{instance}/delete_controller ] && echo 1 > /sys/class/nvme/nvme{instance}/delete_controller", GuestTimeout);

    private static string Sysfs(LinuxTarget guest, int instance, string attribute) =>
        guest.ExecChecked($"cat /sys/class/nvme/nvme{instance}/{attribute}", GuestTimeout).Trim();

    /// <summary>NVMe block devices with a /dev node (not the hidden per-path disks of native multipath, nvmeXcYnZ).</summary>
    private static List<string> BlockDevices(LinuxTarget guest) =>
        [.. guest.Exec("for d in /sys/block/nvme*; do n=${d##*/}; [ -b /dev/$n ] && echo $n; done", GuestTimeout).Output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)];

    private static string Md5(LinuxTarget guest, string command) =>
        guest.ExecChecked(command, GuestTimeout).Trim().Split(' ')[0];

    private static async Task WaitAsync(Func<bool> condition, string what)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while (!condition())
        {
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"timed out waiting for {what}");
            }

            await Task.Delay(200);
        }
    }
}
