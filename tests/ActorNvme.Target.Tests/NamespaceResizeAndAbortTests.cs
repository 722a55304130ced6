using System.Buffers.Binary;
using ActorNvme.Protocol.Data;
using ActorNvme.Protocol.Nvme;

namespace ActorNvme.Target.Tests;

/// <summary>A namespace resized at run time (with its notice), and the Abort command against commands a slow backend holds.</summary>
public sealed class NamespaceResizeAndAbortTests
{
    [Fact]
    public async Task A_resized_namespace_reports_its_new_size_lists_itself_as_changed_and_raises_the_notice()
    {
        await using var t = TestTarget.Create();
        await using var client = await t.ConnectAsync();
        await client.SetUpAdminAsync(TestTarget.Nqn);
        Assert.True((await client.CommandAsync(AdminCommands.SetAsyncEventConfiguration((uint)AsyncEventConfiguration.NamespaceAttributeNotices))).Status.IsSuccess);
        await client.SendCommandAsync(AdminCommands.AsynchronousEventRequest());

        Assert.True(t.Subsystem.ResizeNamespace(1, 2L * TestTarget.NamespaceSize));
        var notice = await client.WaitUnsolicitedAsync(RawClient.Deadline);
        Assert.NotNull(notice);
        var asyncEvent = AsyncEventCompletion.FromDword0(notice.Value.Dw0);
        Assert.Equal(AsyncEventNotice.NamespaceAttributeChanged, asyncEvent.Notice);

        var changed = await client.GetLogPageAsync((byte)LogPageId.ChangedNamespaceList, 4096);
        Assert.Equal([1u], ChangedNamespaceList.Read(changed.Data, out _));
        var identify = await client.IdentifyAsync(0, 1);
        Assert.Equal(2UL * TestTarget.NamespaceSize / 512, BinaryPrimitives.ReadUInt64LittleEndian(identify.Data));

        Assert.False(t.Subsystem.ResizeNamespace(9, TestTarget.NamespaceSize));
    }

    [Fact]
    public async Task Blocks_past_the_old_end_of_a_grown_namespace_read_as_zeros_and_keep_what_is_written()
    {
        await using var t = TestTarget.Create();
        var (admin, io, _) = await t.ConnectIoAsync();
        await using var _a = admin;
        await using var _i = io;
        ulong pastOldEnd = TestTarget.NamespaceSize / 512 + 100;
        Assert.False((await io.ReadAsync(1, pastOldEnd, 1, 512)).Status.IsSuccess);

        t.Subsystem.ResizeNamespace(1, 4L * TestTarget.NamespaceSize);
        var fresh = await io.ReadAsync(1, pastOldEnd, 1, 512);
        Assert.True(fresh.Status.IsSuccess, fresh.Status.ToString());
        Assert.All(fresh.Data, b => Assert.Equal(0, b));
        var data = new byte[512];
        new Random(7).NextBytes(data);
        Assert.True((await io.WriteAsync(1, pastOldEnd, data, 512, inCapsule: true)).Status.IsSuccess);
        Assert.Equal(data, (await io.ReadAsync(1, pastOldEnd, 1, 512)).Data);
    }

    [Fact]
    public async Task Abort_stops_a_read_the_slow_backend_holds_and_says_not_aborted_for_one_it_does_not()
    {
        await using var t = TestTarget.Create();
        var (admin, io, _) = await t.ConnectIoAsync();
        await using var _a = admin;
        await using var _i = io;

        t.Faults.DelayIoExecution(t.Listener, TimeSpan.FromHours(1));
        var read = NvmCommands.Read(1, 0, 1);
        read.DataPointer = SglDescriptor.Transport(512);
        var sent = await io.SendCommandAsync(read);
        var deadline = DateTime.UtcNow + RawClient.Deadline;
        while (t.Faults.DelayedReadsPending == 0 && DateTime.UtcNow < deadline)
        {
            await Task.Delay(10);
        }

        var abort = await admin.CommandAsync(AdminCommands.Abort(1, sent.CommandId));
        Assert.True(abort.Status.IsSuccess);
        Assert.Equal(0u, abort.Completion.Dw0 & 1); // aborted
        var aborted = await io.ReceiveCompletionAsync(sent.CommandId);
        Assert.Equal(NvmeStatus.Generic(GenericStatus.AbortRequested), aborted.Status.WithoutPhase);
        Assert.Equal(0, t.Faults.DelayedReadsPending);
        Assert.Equal(1, t.Faults.AbortedCommands);

        // Nothing of that id waits any more, and no queue 9 exists: "not aborted" both times.
        Assert.Equal(1u, (await admin.CommandAsync(AdminCommands.Abort(1, sent.CommandId))).Completion.Dw0 & 1);
        Assert.Equal(1u, (await admin.CommandAsync(AdminCommands.Abort(9, 1))).Completion.Dw0 & 1);
        Assert.Equal(3, t.Faults.AbortRequests);
    }
}
