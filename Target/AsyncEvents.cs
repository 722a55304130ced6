using ActorNvme.Protocol.Data;

namespace ActorNvme.Target;

/// <summary>The notices this target reports, as AER completion dword 0 values, and the configuration bit enabling each.</summary>
internal static class AsyncEvents
{
    public static readonly uint NamespaceAttributeChanged = Notice(AsyncEventNotice.NamespaceAttributeChanged, LogPageId.ChangedNamespaceList);
    public static readonly uint AnaChange = Notice(AsyncEventNotice.AnaChange, LogPageId.AsymmetricNamespaceAccess);
    public static readonly uint DiscoveryLogChange = Notice(AsyncEventNotice.DiscoveryLogPageChange, LogPageId.Discovery); // 0x0070F002, as nvmet

    public static uint ConfigBitOf(uint dw0) => (LogPageId)AsyncEventCompletion.FromDword0(dw0).LogPageId switch
    {
        LogPageId.ChangedNamespaceList => (uint)AsyncEventConfiguration.NamespaceAttributeNotices,
        LogPageId.AsymmetricNamespaceAccess => (uint)AsyncEventConfiguration.AnaChangeNotices,
        LogPageId.Discovery => (uint)AsyncEventConfiguration.DiscoveryLogChangeNotices,
        _ => 0,
    };

    /// <summary>The configuration bit whose notices reading <paramref name="logPage"/> (without RAE) unmasks.</summary>
    public static uint ConfigBitOfLog(LogPageId logPage) => logPage switch
    {
        LogPageId.ChangedNamespaceList => (uint)AsyncEventConfiguration.NamespaceAttributeNotices,
        LogPageId.AsymmetricNamespaceAccess => (uint)AsyncEventConfiguration.AnaChangeNotices,
        LogPageId.Discovery => (uint)AsyncEventConfiguration.DiscoveryLogChangeNotices,
        _ => 0,
    };

    private static uint Notice(AsyncEventNotice notice, LogPageId logPage) => AsyncEventCompletion.ForNotice(notice, (byte)logPage).ToDword0();
}
