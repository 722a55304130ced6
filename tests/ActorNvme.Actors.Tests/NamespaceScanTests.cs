using ActorNvme.Actors.Controller;
using ActorNvme.Protocol.Data;
using ActorNvme.Protocol.Nvme;

namespace ActorNvme.Actors.Tests;

/// <summary>
/// The namespace scan a Namespace Attribute Changed notice starts, driven by hand: which commands it
/// sends, how it pages through the active list, and what it makes of wrong or hostile answers.
/// </summary>
public sealed class NamespaceScanTests
{
    private static NamespaceInfo Known(uint nsid, ulong blocks = 2048) => new(nsid, 512, blocks, 0, 0, Guid.Empty);

    [Fact]
    public void A_full_page_of_1024_is_followed_by_the_page_after_its_last_nsid_and_only_new_namespaces_are_identified()
    {
        var known = Enumerable.Range(1, 1024).Select(i => Known((uint)i)).ToArray();
        var scan = new NamespaceScan(known, maxNamespaceId: 4096);

        var step = Submitted(scan.Start());
        Assert.Equal((byte)AdminOpcode.GetLogPage, step.Command.Opcode);
        Assert.Equal((uint)LogPageId.ChangedNamespaceList, step.Command.Cdw10 & 0xFF);
        Assert.Equal(0u, step.Command.Cdw10 & (1u << 15)); // read without RAE: the next change may be reported

        step = Submitted(scan.OnCompletion(Ok(), ChangedList(1025), false));
        Assert.Equal((uint)IdentifyCns.ActiveNamespaceList, step.Command.Cdw10 & 0xFF);
        Assert.Equal(0u, step.Command.NamespaceId);

        step = Submitted(scan.OnCompletion(Ok(), ActivePage(Enumerable.Range(1, 1024)), false));
        Assert.Equal((uint)IdentifyCns.ActiveNamespaceList, step.Command.Cdw10 & 0xFF);
        Assert.Equal(1024u, step.Command.NamespaceId);

        step = Submitted(scan.OnCompletion(Ok(), ActivePage([1025]), false));
        Assert.Equal((uint)IdentifyCns.Namespace, step.Command.Cdw10 & 0xFF);
        Assert.Equal(1025u, step.Command.NamespaceId);

        step = Submitted(scan.OnCompletion(Ok(), IdentifyOf(4096), false));
        Assert.Equal((uint)IdentifyCns.NamespaceIdentificationDescriptors, step.Command.Cdw10 & 0xFF);

        var done = Assert.IsType<NamespaceScanStep.Done>(scan.OnCompletion(Ok(), new byte[NamespaceIdentifiers.Size], false));
        Assert.Equal(1025, done.Namespaces.Count);
        Assert.Equal(4096UL, done.Namespaces[^1].BlockCount);
        Assert.Equal([1025u], scan.Changed);
    }

    [Fact]
    public void A_namespace_listed_as_changed_is_identified_again_and_keeps_its_identity_when_only_its_size_changed()
    {
        var scan = new NamespaceScan([Known(1), Known(2)], maxNamespaceId: 1024);
        Submitted(scan.Start());
        Submitted(scan.OnCompletion(Ok(), ChangedList(2), false));
        var step = Submitted(scan.OnCompletion(Ok(), ActivePage([1, 2]), false));
        Assert.Equal(2u, step.Command.NamespaceId);

        var done = Assert.IsType<NamespaceScanStep.Done>(scan.OnCompletion(Ok(), IdentifyOf(8192), false));
        Assert.Equal([2048UL, 8192UL], done.Namespaces.Select(n => n.BlockCount).ToArray());
    }

    [Fact]
    public void A_namespace_missing_from_the_active_list_is_gone_and_an_unreadable_changed_list_means_identify_all_again()
    {
        var scan = new NamespaceScan([Known(1), Known(2), Known(3)], maxNamespaceId: 1024);
        Submitted(scan.Start());
        var step = Submitted(scan.OnCompletion(new CompletionQueueEntry(0, 0, 0, 0, 0, NvmeStatus.Generic(GenericStatus.InternalError)), default, false));
        step = Submitted(scan.OnCompletion(Ok(), ActivePage([1, 3]), false));
        Assert.Equal(1u, step.Command.NamespaceId);
        step = Submitted(scan.OnCompletion(Ok(), IdentifyOf(2048), false));
        Assert.Equal(3u, step.Command.NamespaceId);

        // Namespace 3 now answers as inactive (NSZE 0): not a namespace to expose.
        var done = Assert.IsType<NamespaceScanStep.Done>(scan.OnCompletion(Ok(), IdentifyOf(0), false));
        Assert.Equal([1u], done.Namespaces.Select(n => n.NamespaceId).ToArray());
    }

    [Theory]
    [InlineData(new uint[] { 3, 2 })]
    [InlineData(new uint[] { 1, 1 })]
    [InlineData(new uint[] { 1, 5000 })]
    public void An_active_list_out_of_order_or_beyond_nn_fails_the_scan(uint[] page)
    {
        var scan = new NamespaceScan([Known(1)], maxNamespaceId: 1024);
        Submitted(scan.Start());
        Submitted(scan.OnCompletion(Ok(), ChangedList(), false));
        var failed = Assert.IsType<NamespaceScanStep.Failed>(scan.OnCompletion(Ok(), ActivePage(page), false));
        Assert.Contains("increasing order", failed.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void A_second_page_that_does_not_go_on_from_the_first_fails_the_scan()
    {
        var scan = new NamespaceScan([], maxNamespaceId: 0);
        Submitted(scan.Start());
        Submitted(scan.OnCompletion(Ok(), ChangedList(), false));
        Submitted(scan.OnCompletion(Ok(), ActivePage(Enumerable.Range(1, 1024)), false));
        Assert.IsType<NamespaceScanStep.Failed>(scan.OnCompletion(Ok(), ActivePage([5]), false));
    }

    [Fact]
    public void An_active_list_that_never_ends_is_cut_off()
    {
        var scan = new NamespaceScan([], maxNamespaceId: 0);
        Submitted(scan.Start());
        var step = scan.OnCompletion(Ok(), ChangedList(), false);
        uint next = 1;
        int pages = 0;
        while (step is NamespaceScanStep.Submit)
        {
            step = scan.OnCompletion(Ok(), ActivePage(Enumerable.Range((int)next, 1024)), false);
            next += 1024;
            pages++;
            Assert.True(pages < 1000, "the scan kept asking for pages");
        }

        var failed = Assert.IsType<NamespaceScanStep.Failed>(step);
        Assert.Contains("pages", failed.Reason, StringComparison.Ordinal);
    }

    private static NamespaceScanStep.Submit Submitted(NamespaceScanStep step) => Assert.IsType<NamespaceScanStep.Submit>(step);

    private static CompletionQueueEntry Ok() => new(0, 0, 0, 0, 0, NvmeStatus.Success);

    private static byte[] ChangedList(params uint[] ids)
    {
        var data = new byte[ChangedNamespaceList.Size];
        ChangedNamespaceList.WriteTo(ids, data);
        return data;
    }

    private static byte[] ActivePage(IEnumerable<int> ids) => ActivePage(ids.Select(i => (uint)i).ToArray());

    private static byte[] ActivePage(uint[] ids)
    {
        // Written by hand: the encoder refuses the disorder these tests need.
        var data = new byte[ActiveNamespaceList.Size];
        for (int i = 0; i < ids.Length; i++)
        {
            System.Buffers.Binary.BinaryPrimitives.WriteUInt32LittleEndian(data.AsSpan(i * 4), ids[i]);
        }

        return data;
    }

    private static byte[] IdentifyOf(ulong blocks)
    {
        var data = new byte[IdentifyNamespace.Size];
        var formats = new LbaFormatTable();
        formats[0] = new LbaFormat(0, 9, 0);
        new IdentifyNamespace { NamespaceSize = blocks, NamespaceCapacity = blocks, NamespaceUtilization = blocks, LbaFormats = formats }.WriteTo(data);
        return data;
    }
}
