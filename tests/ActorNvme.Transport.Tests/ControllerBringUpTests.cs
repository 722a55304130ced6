using ActorNvme.Protocol.Data;
using ActorNvme.Protocol.Nvme;
using ActorNvme.Transport.BringUp;

namespace ActorNvme.Transport.Tests;

/// <summary>The sans-I/O bring-up script, answered by a scripted controller in memory.</summary>
public sealed class ControllerBringUpTests
{
    private const string SubsystemNqn = "nqn.2016-06.io.actornvme:bring-up";
    private const string HostNqn = "nqn.2014-08.org.nvmexpress:uuid:00000000-0000-0000-0000-000000000042";
    private static readonly Guid NamespaceUuid = new("11111111-2222-3333-4444-555555555555");

    /// <summary>Answers each bring-up command the way a controller would; tests change one answer.</summary>
    private sealed class ScriptedController
    {
        public ushort ControllerId { get; init; } = 7;

        public ControllerCapabilities Capabilities { get; init; } = new() { MaxQueueEntries = 127, Timeout = 20, CommandSets = 1 };

        public int PollsBeforeReady { get; set; }

        public uint StatusWhenReady { get; init; } = 1;

        public uint AsyncEventsSupported { get; init; } = (uint)(AsyncEventConfiguration.NamespaceAttributeNotices | AsyncEventConfiguration.DiscoveryLogChangeNotices);

        public uint[] Namespaces { get; init; } = [1, 2];

        public ushort QueuesGranted { get; init; } = 4;

        public List<BringUpCommand> Seen { get; } = [];

        public uint? ConfigurationWritten { get; private set; }

        /// <summary>A step to refuse, and with which status.</summary>
        public (BringUpStep Step, NvmeStatus Status)? Refuse { get; init; }

        /// <summary>Replaces the data of one step's answer.</summary>
        public (BringUpStep Step, byte[] Data)? DataOverride { get; init; }

        public BringUpCompletion Answer(BringUpCommand command)
        {
            Seen.Add(command);
            var sqe = command.Command;
            if (Refuse is { } refuse && refuse.Step == command.Step)
            {
                return Completion(0, 0, refuse.Status);
            }

            byte[] data = [];
            uint dw0 = 0, dw1 = 0;
            switch (command.Step)
            {
                case BringUpStep.FabricsConnect:
                    dw0 = ControllerId;
                    break;
                case BringUpStep.PropertyGetCapabilities:
                    dw0 = (uint)Capabilities.Value;
                    dw1 = (uint)(Capabilities.Value >> 32);
                    break;
                case BringUpStep.PropertyGetVersion:
                    dw0 = NvmeVersion.V1_4_0.Value;
                    break;
                case BringUpStep.PropertySetEnable:
                    ConfigurationWritten = (uint)FabricsCommands.PropertyValue(sqe);
                    break;
                case BringUpStep.WaitForReady:
                    dw0 = PollsBeforeReady-- > 0 ? 0 : StatusWhenReady;
                    break;
                case BringUpStep.IdentifyController:
                    data = new byte[IdentifyController.Size];
                    new IdentifyController { ControllerId = ControllerId, OptionalAsyncEvents = AsyncEventsSupported, AsyncEventRequestLimit = 3 }.WriteTo(data);
                    break;
                case BringUpStep.ActiveNamespaceList:
                    data = new byte[ActiveNamespaceList.Size];
                    ActiveNamespaceList.WriteTo(Namespaces, data);
                    break;
                case BringUpStep.IdentifyNamespace:
                    data = new byte[IdentifyNamespace.Size];
                    var formats = new LbaFormatTable();
                    formats[0] = new LbaFormat(0, 12, 0);
                    new IdentifyNamespace { NamespaceSize = 1000 + sqe.NamespaceId, NamespaceCapacity = 1000, LbaFormats = formats }.WriteTo(data);
                    break;
                case BringUpStep.NamespaceDescriptors:
                    data = new byte[NamespaceIdentifiers.Size];
                    new NamespaceIdentifiers { Uuid = NamespaceUuid }.WriteTo(data);
                    break;
                case BringUpStep.NumberOfQueues:
                    dw0 = (uint)((QueuesGranted - 1) | ((QueuesGranted - 1) << 16));
                    break;
            }

            if (DataOverride is { } replaced && replaced.Step == command.Step)
            {
                data = replaced.Data;
            }

            return new BringUpCompletion(Completion(dw0, dw1, NvmeStatus.Success).Entry, data);
        }

        private static BringUpCompletion Completion(uint dw0, uint dw1, NvmeStatus status) => new(new CompletionQueueEntry(dw0, dw1, 0, 0, 1, status), ReadOnlyMemory<byte>.Empty);
    }

    private static BringUpOptions NvmOptions(string subsystemNqn = SubsystemNqn) =>
        new(new FabricsConnectParameters(Guid.NewGuid(), subsystemNqn, HostNqn) { KeepAliveMilliseconds = 10_000 }, 32)
        {
            IdentifyNamespaces = true,
            WantedAsyncEvents = AsyncEventConfiguration.NamespaceAttributeNotices | AsyncEventConfiguration.AnaChangeNotices,
            IoQueues = 8,
            MinimumReadyTimeout = TimeSpan.FromSeconds(1),
        };

    /// <summary>A driver without a clock: answers every command, polls again at once after every Wait.</summary>
    private static BringUpAction Run(ControllerBringUp machine, ScriptedController controller, int maxActions = 200)
    {
        var action = machine.Start();
        for (int i = 0; i < maxActions; i++)
        {
            action = action switch
            {
                BringUpAction.Submit submit => machine.OnCompletion(controller.Answer(submit.Command)),
                BringUpAction.Wait => machine.PollAgain(),
                _ => action,
            };
            if (action is BringUpAction.Succeeded or BringUpAction.Failed)
            {
                return action;
            }
        }

        throw new InvalidOperationException("the bring-up did not end");
    }

    [Fact]
    public void An_NVM_controller_comes_up_with_its_namespaces_queues_and_the_CC_of_the_register_type()
    {
        var controller = new ScriptedController { PollsBeforeReady = 2 };
        var result = Assert.IsType<BringUpAction.Succeeded>(Run(new ControllerBringUp(NvmOptions()), controller)).Result;

        Assert.Equal(
            [
                BringUpStep.FabricsConnect, BringUpStep.PropertyGetCapabilities, BringUpStep.PropertyGetVersion, BringUpStep.PropertySetEnable,
                BringUpStep.WaitForReady, BringUpStep.WaitForReady, BringUpStep.WaitForReady,
                BringUpStep.IdentifyController, BringUpStep.ActiveNamespaceList,
                BringUpStep.IdentifyNamespace, BringUpStep.NamespaceDescriptors, BringUpStep.IdentifyNamespace, BringUpStep.NamespaceDescriptors,
                BringUpStep.AsyncEventConfiguration, BringUpStep.NumberOfQueues,
            ],
            controller.Seen.Select(c => c.Step));
        var cc = new ControllerConfiguration(controller.ConfigurationWritten!.Value);
        Assert.True(cc.Enable);
        Assert.Equal(6, cc.IoSubmissionQueueEntrySize);
        Assert.Equal(4, cc.IoCompletionQueueEntrySize);
        Assert.Equal(ShutdownNotification.None, cc.ShutdownNotification);
        Assert.Equal(cc, result.Configuration);

        Assert.Equal(7, result.ControllerId);
        Assert.Equal(controller.Capabilities, result.Capabilities);
        Assert.Equal(NvmeVersion.V1_4_0, result.Version);
        Assert.Equal((ushort)7, result.Identify!.Value.ControllerId);
        Assert.Equal([1u, 2u], result.Namespaces.Select(n => n.NamespaceId));
        Assert.All(result.Namespaces, n => Assert.Equal(4096, n.BlockSize));
        Assert.Equal(1002ul, result.Namespaces[1].BlockCount);
        Assert.All(result.Namespaces, n => Assert.Equal(NamespaceUuid, n.Uuid));
        Assert.Equal(AsyncEventConfiguration.NamespaceAttributeNotices, result.EnabledAsyncEvents); // ANA wanted, not supported
        Assert.Equal(4, result.GrantedIoQueues);
        Assert.Equal(TimeSpan.FromSeconds(5), result.KeepAliveInterval);
        Assert.Empty(result.Warnings);
    }

    [Fact]
    public void The_Connect_command_carries_the_admin_queue_size_KATO_and_the_NQNs()
    {
        var machine = new ControllerBringUp(NvmOptions());
        var connect = Assert.IsType<BringUpAction.Submit>(machine.Start()).Command;
        Assert.Equal(0, FabricsCommands.ConnectQueueId(connect.Command));
        Assert.Equal(32, FabricsCommands.ConnectQueueSize(connect.Command));
        Assert.Equal(10_000u, FabricsCommands.ConnectKeepAlive(connect.Command));
        var data = ConnectData.Read(connect.DataOut.Span);
        Assert.Equal(SubsystemNqn, data.SubsystemNqn);
        Assert.Equal(HostNqn, data.HostNqn);
        Assert.Equal(ConnectData.DynamicControllerId, data.ControllerId);
    }

    [Theory]
    [InlineData(BringUpStep.FabricsConnect, "Fabrics Connect to " + SubsystemNqn)]
    [InlineData(BringUpStep.PropertyGetCapabilities, "Property Get CAP")]
    [InlineData(BringUpStep.PropertyGetVersion, "Property Get VS")]
    [InlineData(BringUpStep.PropertySetEnable, "Property Set CC.EN")]
    [InlineData(BringUpStep.WaitForReady, "CSTS.RDY")]
    [InlineData(BringUpStep.IdentifyController, "Identify Controller")]
    [InlineData(BringUpStep.ActiveNamespaceList, "Identify active namespace list")]
    [InlineData(BringUpStep.IdentifyNamespace, "Identify Namespace 1")]
    public void A_refused_step_fails_the_bring_up_naming_the_step_and_the_status(BringUpStep step, string named)
    {
        var status = NvmeStatus.Generic(GenericStatus.InternalError, doNotRetry: true);
        var controller = new ScriptedController { Refuse = (step, status) };
        var failure = Assert.IsType<BringUpAction.Failed>(Run(new ControllerBringUp(NvmOptions()), controller)).Failure;

        Assert.Equal(step, failure.Step);
        Assert.Equal(BringUpFailureKind.Refused, failure.Kind);
        Assert.Equal(status, failure.Status);
        Assert.Contains(named, failure.Description, StringComparison.Ordinal);
        Assert.Contains(named, failure.ToString(), StringComparison.Ordinal);
        Assert.Contains("refused", failure.ToString(), StringComparison.Ordinal);
        Assert.Equal(step, controller.Seen[^1].Step); // nothing is sent after the refusal
    }

    [Theory]
    [InlineData(BringUpStep.AsyncEventConfiguration)]
    [InlineData(BringUpStep.NumberOfQueues)]
    [InlineData(BringUpStep.NamespaceDescriptors)]
    public void Optional_steps_refused_leave_the_controller_usable_with_a_warning(BringUpStep step)
    {
        var controller = new ScriptedController { Refuse = (step, NvmeStatus.Generic(GenericStatus.InvalidField, true)) };
        var result = Assert.IsType<BringUpAction.Succeeded>(Run(new ControllerBringUp(NvmOptions()), controller)).Result;

        switch (step)
        {
            case BringUpStep.AsyncEventConfiguration:
                Assert.Equal(AsyncEventConfiguration.None, result.EnabledAsyncEvents);
                Assert.Contains(result.Warnings, w => w.Contains("asynchronous event configuration", StringComparison.Ordinal));
                break;
            case BringUpStep.NumberOfQueues:
                Assert.Equal(0, result.GrantedIoQueues);
                Assert.Contains(result.Warnings, w => w.Contains("number of queues", StringComparison.Ordinal));
                break;
            default:
                Assert.All(result.Namespaces, n => Assert.Equal(Guid.Empty, n.Uuid));
                Assert.Equal(2, result.Namespaces.Count);
                break;
        }
    }

    [Fact]
    public void CSTS_CFS_while_waiting_for_RDY_is_a_fatal_controller_status()
    {
        var controller = new ScriptedController { PollsBeforeReady = 0, StatusWhenReady = 0b10 };
        var failure = Assert.IsType<BringUpAction.Failed>(Run(new ControllerBringUp(NvmOptions()), controller)).Failure;

        Assert.Equal(BringUpStep.WaitForReady, failure.Step);
        Assert.Equal(BringUpFailureKind.ControllerFatal, failure.Kind);
        Assert.Contains("CSTS.CFS", failure.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public void The_RDY_deadline_is_the_drivers_CAP_TO_or_the_minimum_and_its_expiry_names_the_step()
    {
        var controller = new ScriptedController { PollsBeforeReady = int.MaxValue, Capabilities = new() { MaxQueueEntries = 31, Timeout = 20 } };
        var machine = new ControllerBringUp(NvmOptions() with { ReadyPollInterval = TimeSpan.FromMilliseconds(25) });
        var action = machine.Start();
        while (action is BringUpAction.Submit { Command.Step: not BringUpStep.WaitForReady } submit)
        {
            action = machine.OnCompletion(controller.Answer(submit.Command));
        }

        var firstPoll = Assert.IsType<BringUpAction.Submit>(action);
        Assert.Equal(TimeSpan.FromSeconds(10), firstPoll.StatusTimeout); // CAP.TO 20 x 500 ms beats the 1 s minimum

        var wait = Assert.IsType<BringUpAction.Wait>(machine.OnCompletion(controller.Answer(firstPoll.Command)));
        Assert.Equal(TimeSpan.FromMilliseconds(25), wait.Delay);
        var secondPoll = Assert.IsType<BringUpAction.Submit>(machine.PollAgain());
        Assert.Null(secondPoll.StatusTimeout); // the deadline is not pushed back by each poll
        Assert.IsType<BringUpAction.Wait>(machine.OnCompletion(controller.Answer(secondPoll.Command)));

        // The driver's clock says the deadline passed.
        var failure = machine.Abandon(BringUpFailureKind.StatusTimeout, "not ready in 10 s").Failure;
        Assert.Equal(BringUpStep.WaitForReady, failure.Step);
        Assert.Equal(BringUpFailureKind.StatusTimeout, failure.Kind);
        Assert.Contains("CSTS.RDY", failure.ToString(), StringComparison.Ordinal);
        Assert.Throws<InvalidOperationException>(() => machine.PollAgain());
    }

    [Fact]
    public void A_small_CAP_TO_still_gets_the_minimum_ready_timeout()
    {
        var controller = new ScriptedController { Capabilities = new() { MaxQueueEntries = 31, Timeout = 0 } };
        var machine = new ControllerBringUp(NvmOptions());
        var action = machine.Start();
        while (action is BringUpAction.Submit { Command.Step: not BringUpStep.WaitForReady } submit)
        {
            action = machine.OnCompletion(controller.Answer(submit.Command));
        }

        Assert.Equal(TimeSpan.FromSeconds(1), Assert.IsType<BringUpAction.Submit>(action).StatusTimeout);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(100)]
    [InlineData(4095)]
    public void A_short_Identify_Controller_fails_clearly(int length)
    {
        var controller = new ScriptedController { DataOverride = (BringUpStep.IdentifyController, new byte[length]) };
        var failure = Assert.IsType<BringUpAction.Failed>(Run(new ControllerBringUp(NvmOptions()), controller)).Failure;

        Assert.Equal(BringUpStep.IdentifyController, failure.Step);
        Assert.Equal(BringUpFailureKind.UnusableData, failure.Kind);
        Assert.Contains("Identify Controller", failure.ToString(), StringComparison.Ordinal);
        Assert.Contains(length.ToString(System.Globalization.CultureInfo.InvariantCulture), failure.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public void A_garbage_active_namespace_list_fails_clearly()
    {
        var garbage = new byte[ActiveNamespaceList.Size];
        new Random(7).NextBytes(garbage);
        var controller = new ScriptedController { DataOverride = (BringUpStep.ActiveNamespaceList, garbage) };
        var failure = Assert.IsType<BringUpAction.Failed>(Run(new ControllerBringUp(NvmOptions()), controller)).Failure;

        Assert.Equal(BringUpStep.ActiveNamespaceList, failure.Step);
        Assert.Equal(BringUpFailureKind.UnusableData, failure.Kind);
    }

    [Fact]
    public void A_short_active_namespace_list_fails_clearly()
    {
        var controller = new ScriptedController { DataOverride = (BringUpStep.ActiveNamespaceList, new byte[12]) };
        var failure = Assert.IsType<BringUpAction.Failed>(Run(new ControllerBringUp(NvmOptions()), controller)).Failure;

        Assert.Equal(BringUpStep.ActiveNamespaceList, failure.Step);
        Assert.Equal(BringUpFailureKind.UnusableData, failure.Kind);
    }

    [Fact]
    public void A_garbage_Identify_Namespace_skips_that_namespace_with_a_warning()
    {
        var garbage = new byte[IdentifyNamespace.Size];
        Array.Fill(garbage, (byte)0xFF);
        var controller = new ScriptedController { DataOverride = (BringUpStep.IdentifyNamespace, garbage) };
        var result = Assert.IsType<BringUpAction.Succeeded>(Run(new ControllerBringUp(NvmOptions()), controller)).Result;

        Assert.Empty(result.Namespaces);
        Assert.Equal(2, result.Warnings.Count(w => w.Contains("skipped", StringComparison.Ordinal)));
    }

    [Fact]
    public void A_data_digest_error_on_Identify_fails_naming_the_step()
    {
        var machine = new ControllerBringUp(NvmOptions());
        var controller = new ScriptedController();
        var action = machine.Start();
        while (action is BringUpAction.Submit submit)
        {
            var answer = controller.Answer(submit.Command);
            action = machine.OnCompletion(submit.Command.Step == BringUpStep.IdentifyController ? answer with { DataDigestError = true } : answer);
        }

        var failure = Assert.IsType<BringUpAction.Failed>(action).Failure;
        Assert.Equal(BringUpStep.IdentifyController, failure.Step);
        Assert.Equal(BringUpFailureKind.DataDigestError, failure.Kind);
    }

    [Fact]
    public void An_invalid_subsystem_NQN_fails_before_anything_is_sent()
    {
        var machine = new ControllerBringUp(NvmOptions("not-an-nqn"));
        var failure = Assert.IsType<BringUpAction.Failed>(machine.Start()).Failure;

        Assert.Equal(BringUpStep.FabricsConnect, failure.Step);
        Assert.Equal(BringUpFailureKind.InvalidRequest, failure.Kind);
        Assert.Contains("not-an-nqn", failure.ToString(), StringComparison.Ordinal);
        Assert.Null(machine.Outstanding);
    }

    [Fact]
    public void A_discovery_controller_stops_after_Identify_when_nothing_else_is_asked()
    {
        var options = new BringUpOptions(new FabricsConnectParameters(Guid.NewGuid(), Nqn.Discovery, HostNqn), 32)
        {
            WantedAsyncEvents = AsyncEventConfiguration.DiscoveryLogChangeNotices,
        };
        var controller = new ScriptedController();
        var result = Assert.IsType<BringUpAction.Succeeded>(Run(new ControllerBringUp(options), controller)).Result;

        Assert.Equal(BringUpStep.AsyncEventConfiguration, controller.Seen[^1].Step);
        Assert.DoesNotContain(controller.Seen, c => c.Step is BringUpStep.ActiveNamespaceList or BringUpStep.NumberOfQueues);
        Assert.Equal(AsyncEventConfiguration.DiscoveryLogChangeNotices, result.EnabledAsyncEvents);
        Assert.Equal(TimeSpan.Zero, result.KeepAliveInterval);
    }

    [Fact]
    public void Goal_ready_stops_at_CSTS_RDY()
    {
        var controller = new ScriptedController();
        var result = Assert.IsType<BringUpAction.Succeeded>(Run(new ControllerBringUp(NvmOptions() with { Goal = BringUpGoal.Ready }), controller)).Result;

        Assert.Equal(BringUpStep.WaitForReady, controller.Seen[^1].Step);
        Assert.Null(result.Identify);
    }

    [Fact]
    public void A_completion_nobody_waits_for_is_a_driver_error_not_a_step()
    {
        var machine = new ControllerBringUp(NvmOptions());
        Assert.Throws<InvalidOperationException>(() => machine.OnCompletion(default));
    }

    [Fact]
    public void Shutdown_writes_the_bring_up_CC_with_SHN_and_waits_for_SHST_complete()
    {
        var configuration = ControllerConfiguration.ForFabrics.Enabled;
        var shutdown = new ControllerShutdown(configuration, TimeSpan.FromMilliseconds(5), TimeSpan.FromSeconds(1));
        var set = Assert.IsType<BringUpAction.Submit>(shutdown.Start()).Command;
        var written = new ControllerConfiguration((uint)FabricsCommands.PropertyValue(set.Command));
        Assert.Equal(ShutdownNotification.Normal, written.ShutdownNotification);
        Assert.True(written.Enable);
        Assert.Equal(6, written.IoSubmissionQueueEntrySize);

        var ok = new CompletionQueueEntry(0, 0, 0, 0, 1, NvmeStatus.Success);
        var poll = Assert.IsType<BringUpAction.Submit>(shutdown.OnCompletion(new BringUpCompletion(ok, default))).Command;
        Assert.Equal(BringUpStep.WaitForShutdown, poll.Step);
        var occurring = new ControllerStatus { Ready = true, ShutdownStatus = ShutdownStatus.Occurring };
        Assert.IsType<BringUpAction.Wait>(shutdown.OnCompletion(new BringUpCompletion(ok with { Dw0 = occurring.Value }, default)));
        poll = Assert.IsType<BringUpAction.Submit>(shutdown.PollAgain()).Command;
        var complete = new ControllerStatus { ShutdownStatus = ShutdownStatus.Complete };
        Assert.IsType<BringUpAction.Succeeded>(shutdown.OnCompletion(new BringUpCompletion(ok with { Dw0 = complete.Value }, default)));
    }
}
