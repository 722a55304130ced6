using ActorNvme.Protocol.Data;
using ActorNvme.Protocol.Nvme;

namespace ActorNvme.Transport.BringUp;

/// <summary>
/// The normal shutdown of an enabled controller, without I/O: Property Set CC with SHN = normal
/// (the bring-up's CC otherwise unchanged), then CSTS until SHST says complete. Driven like
/// <see cref="ControllerBringUp"/>; the driver owns the deadline. A result carries nothing but success.
/// </summary>
public sealed class ControllerShutdown : IAdminScript
{
    private readonly ControllerConfiguration _configuration;
    private readonly TimeSpan _pollInterval;
    private readonly TimeSpan _timeout;
    private BringUpCommand? _outstanding;
    private bool _waiting;

    /// <param name="configuration">The CC the bring-up wrote (<see cref="ControllerBringUpResult.Configuration"/>).</param>
    /// <param name="pollInterval">Pause between two reads of CSTS.</param>
    /// <param name="timeout">How long SHST may take to say complete (handed to the driver with the first CSTS read).</param>
    public ControllerShutdown(ControllerConfiguration configuration, TimeSpan pollInterval, TimeSpan timeout)
    {
        _configuration = configuration;
        _pollInterval = pollInterval;
        _timeout = timeout;
    }

    public BringUpStep Step { get; private set; } = BringUpStep.PropertySetShutdown;

    public BringUpAction Start()
    {
        var cc = _configuration.WithShutdown(ShutdownNotification.Normal);
        return Submit(BringUpStep.PropertySetShutdown, "Property Set CC.SHN", FabricsCommands.PropertySet(ControllerConfiguration.Offset, cc.Value, eightBytes: false));
    }

    public BringUpAction OnCompletion(BringUpCompletion completion)
    {
        var command = _outstanding ?? throw new InvalidOperationException($"no shutdown command is outstanding (step {Step})");
        _outstanding = null;
        var status = completion.Entry.Status;
        if (!status.IsSuccess)
        {
            return Fail(command, BringUpFailureKind.Refused, status.ToString(CommandSet.Fabrics), status);
        }

        if (command.Step == BringUpStep.PropertySetShutdown)
        {
            return PollStatus(_timeout);
        }

        var csts = new ControllerStatus(completion.Entry.Dw0);
        if (csts.FatalStatus)
        {
            return Fail(command, BringUpFailureKind.ControllerFatal, $"the controller reports a fatal status (CSTS.CFS, CSTS 0x{csts.Value:x8})", null);
        }

        if (csts.ShutdownStatus == ShutdownStatus.Complete)
        {
            Step = BringUpStep.Done;
            return new BringUpAction.Succeeded(new ControllerBringUpResult(0, default, default, null, [], []) { Configuration = _configuration });
        }

        _waiting = true;
        return new BringUpAction.Wait(_pollInterval);
    }

    public BringUpAction PollAgain()
    {
        if (!_waiting)
        {
            throw new InvalidOperationException($"the shutdown is not waiting (step {Step})");
        }

        _waiting = false;
        return PollStatus(statusTimeout: null);
    }

    public BringUpAction.Failed Abandon(BringUpFailureKind kind, string detail)
    {
        var command = _outstanding ?? new BringUpCommand(Step, Step == BringUpStep.WaitForShutdown ? WaitDescription : Step.ToString(), default, default, 0);
        _outstanding = null;
        _waiting = false;
        return Fail(command, kind, detail, null);
    }

    private const string WaitDescription = "waiting for CSTS.SHST shutdown complete";

    private BringUpAction PollStatus(TimeSpan? statusTimeout) =>
        Submit(BringUpStep.WaitForShutdown, WaitDescription, FabricsCommands.PropertyGet(ControllerStatus.Offset, eightBytes: false), statusTimeout);

    private BringUpAction Submit(BringUpStep step, string description, SubmissionQueueEntry command, TimeSpan? statusTimeout = null)
    {
        Step = step;
        _outstanding = new BringUpCommand(step, description, command, default, 0);
        return new BringUpAction.Submit(_outstanding, statusTimeout);
    }

    private BringUpAction.Failed Fail(BringUpCommand command, BringUpFailureKind kind, string detail, NvmeStatus? status) =>
        new(new BringUpFailure(command.Step, command.Description, kind, status, detail));
}
