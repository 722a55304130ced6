using System.Runtime.InteropServices;

namespace ActorNvme.Transport.RawSocket;

/// <summary>Pins the calling thread to one core (Linux); elsewhere, or when the core is not allowed, it stays where it is.</summary>
internal static class ThreadAffinity
{
    private const int MaxCores = 1024;

    /// <summary>True when the calling thread now runs only on <paramref name="core"/>.</summary>
    public static bool TryPinCurrentThread(int core)
    {
        if (!OperatingSystem.IsLinux() || core is < 0 or >= MaxCores)
        {
            return false;
        }

        var mask = new ulong[MaxCores / 64];
        mask[core / 64] = 1UL << (core % 64);
        try
        {
            // pid 0: the calling thread.
            return SetAffinity(0, mask.Length * sizeof(ulong), mask) == 0;
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            return false;
        }
    }

    [DllImport("libc.so.6", EntryPoint = "sched_setaffinity", SetLastError = true)]
    private static extern int SetAffinity(int pid, nint maskSize, ulong[] mask);
}
