using Xunit.Abstractions;

namespace ActorNvme.HostileTarget.Tests;

// One class per area: xunit runs the classes in parallel, all in the one shared actor system, beside
// the healthy controller whose I/O must not notice any of it.

/// <summary>The handshake: a bad ICResp costs the connection attempt, with the field named.</summary>
public sealed class ICRespSpecs(ITestOutputHelper output)
{
    [Theory]
    [InlineData(FaultMode.IcRespWrongPfv, "PDU format version")]
    [InlineData(FaultMode.IcRespWrongType, "before ICResp")]
    [InlineData(FaultMode.IcRespHugeHeaderLength, "HLEN")]
    [InlineData(FaultMode.IcRespHugePduLength, "PLEN")]
    [InlineData(FaultMode.IcRespDigestMismatch, "digests")]
    [InlineData(FaultMode.IcRespNeverAnswers, "ICReq/ICResp")]
    [InlineData(FaultMode.IcRespCloses, "closed the connection")]
    public Task A_bad_ICResp_fails_the_attach(FaultMode mode, string names) => ModeRunner.AttachAsync(mode, Expect.ErrorOrLoss, output, names: names);
}

/// <summary>Fabrics Connect and the CC/CSTS handshake.</summary>
public sealed class ConnectSpecs(ITestOutputHelper output)
{
    [Theory]
    [InlineData(FaultMode.ConnectErrorStatus, "internal error")]
    [InlineData(FaultMode.ConnectDoNotRetry, "invalid host")]
    [InlineData(FaultMode.ConnectWrongControllerId, "reserved")]
    [InlineData(FaultMode.ConnectNeverAnswers, "Fabrics Connect")]
    [InlineData(FaultMode.ConnectAnswersWrongCid, "not outstanding")]
    [InlineData(FaultMode.CstsFatalStatus, "fatal status")]
    [InlineData(FaultMode.CstsNeverReady, "CSTS.RDY")]
    public Task A_bad_connect_or_enable_fails_the_attach(FaultMode mode, string names) => ModeRunner.AttachAsync(mode, Expect.ErrorOrLoss, output, names: names);
}

/// <summary>Identify data that is short, garbage or describes impossible namespaces.</summary>
public sealed class IdentifySpecs(ITestOutputHelper output)
{
    [Theory]
    [InlineData(FaultMode.IdentifyControllerShortData, "Identify Controller")]
    [InlineData(FaultMode.IdentifyControllerGarbage, "Identify Controller")]
    public Task Unusable_identify_controller_data_fails_the_attach(FaultMode mode, string names) => ModeRunner.AttachAsync(mode, Expect.ErrorOrLoss, output, names: names);

    [Theory]
    [InlineData(FaultMode.NamespaceZeroSize)]
    [InlineData(FaultMode.NamespaceBadLbaFormat)]
    public async Task An_unusable_namespace_is_skipped_and_the_controller_stays_up(FaultMode mode)
    {
        await ModeRunner.AttachAsync(mode, Expect.Survives, output);
        var rig = await HostileRig.GetAsync();
        string name = ModeRunner.NameOf(mode);
        Assert.DoesNotContain(rig.Seen.Devices, d => d.Device.Controller == name);
        if (mode == FaultMode.NamespaceBadLbaFormat)
        {
            // Skipped with the reason named, not silently.
            Assert.Contains(rig.Seen.Logs, l => l.LogSource.Contains($"/{name}/", StringComparison.Ordinal) && $"{l.Message}".Contains("namespace 1 skipped", StringComparison.Ordinal));
        }
    }

    [Fact]
    public Task A_full_active_namespace_list_is_walked_within_bounds() =>
        ModeRunner.AttachAsync(FaultMode.ActiveListHuge, Expect.ErrorOrSurvives, output);
}

/// <summary>Asynchronous events that come too often or name a log page nobody knows.</summary>
public sealed class AsyncEventSpecs(ITestOutputHelper output)
{
    [Theory]
    [InlineData(FaultMode.AerCompletesAtOnce)]
    [InlineData(FaultMode.AerUnknownLogPage)]
    public Task Strange_async_events_leave_the_controller_live(FaultMode mode) =>
        ModeRunner.AttachAsync(mode, Expect.Survives, output, io: true, observeLive: TimeSpan.FromSeconds(3));
}

/// <summary>C2HData and R2T that do not describe the transfer the host asked for.</summary>
public sealed class DataTransferSpecs(ITestOutputHelper output)
{
    [Theory]
    [InlineData(FaultMode.C2HDataShort, "data")]
    [InlineData(FaultMode.C2HDataGap, "DATAO")]
    [InlineData(FaultMode.C2HDataBeyondLength, "beyond")]
    [InlineData(FaultMode.C2HDataSuccessWithoutLast, "SUCCESS without LAST")]
    [InlineData(FaultMode.C2HDataUnknownCid, "not outstanding")]
    [InlineData(FaultMode.R2TForRead, "R2T")]
    [InlineData(FaultMode.R2TBeyondLength, "R2T")]
    public Task A_bad_transfer_fails_the_command_or_the_connection(FaultMode mode, string names) => ModeRunner.AttachAsync(mode, Expect.ErrorOrLoss, output, io: true, names: names);

    [Fact]
    public Task A_C2HTermReq_is_a_loss() => ModeRunner.AttachAsync(FaultMode.C2HTermReq, Expect.ErrorOrLoss, output, io: true, names: "C2HTermReq");

    /// <summary>The host's send waits for the socket without holding the I/O thread it shares with the healthy controller.</summary>
    [Fact]
    public Task A_target_that_stops_reading_write_data_holds_up_no_other_controller_and_loses_no_write() =>
        ModeRunner.AttachAsync(FaultMode.StopsReadingWriteData, Expect.Survives, output, io: true);
}

/// <summary>Completions for the wrong command, twice, with DNR, or with a nonsense SQ head.</summary>
public sealed class CompletionSpecs(ITestOutputHelper output)
{
    [Theory]
    [InlineData(FaultMode.CqeUnknownCid, "not outstanding")]
    [InlineData(FaultMode.CqeDuplicate, "")]
    [InlineData(FaultMode.CqeDoNotRetryStatus, "not retried (DNR)")]
    public Task A_bad_completion_fails_the_command_or_the_connection(FaultMode mode, string names) => ModeRunner.AttachAsync(mode, Expect.ErrorOrLoss, output, io: true, names: names);

    [Fact]
    public Task A_garbage_SQ_head_does_no_harm() => ModeRunner.AttachAsync(FaultMode.CqeSqHeadGarbage, Expect.ErrorOrSurvives, output, io: true);
}

/// <summary>Discovery log pages that lie, overflow or carry entries that must not be attached.</summary>
public sealed class DiscoveryLogSpecs(ITestOutputHelper output)
{
    [Fact]
    public Task A_generation_counter_that_keeps_moving_fails_the_read() =>
        ModeRunner.DiscoverAsync(FaultMode.LogGenctrChangesDuringRead, v => v.Warned("GENCTR") && v.LogReads == 0, "a warning naming GENCTR and no log taken", output);

    [Fact]
    public Task A_huge_record_count_fails_the_read() =>
        ModeRunner.DiscoverAsync(FaultMode.LogNumrecHuge, v => v.Warned("discovery log") && v.LogReads == 0, "a warning that the log is unusable and no log taken", output);

    [Theory]
    [InlineData(FaultMode.LogInvalidSubnqn)]
    [InlineData(FaultMode.LogNonUtf8Subnqn)]
    [InlineData(FaultMode.LogNulInSubnqn)]
    public Task An_entry_with_a_bad_subsystem_nqn_is_refused(FaultMode mode) =>
        ModeRunner.DiscoverAsync(mode, v => v.Info is { Subsystems.Count: 0 } && v.Warned("nqn"), "no subsystem attached and a warning naming the NQN", output);

    [Fact]
    public Task An_entry_with_a_bad_port_is_refused() =>
        ModeRunner.DiscoverAsync(FaultMode.LogBadPort, v => v.Info is { Subsystems.Count: 0 } && v.Warned("99999"), "no subsystem attached and a warning naming the port", output);

    [Fact]
    public Task The_current_discovery_subsystem_is_not_a_referral() =>
        ModeRunner.DiscoverAsync(FaultMode.LogCurrentDiscoverySubtype, v => v.LogReads >= 1 && v.Info is { Subsystems.Count: 0, Referrals.Count: 0 }, "the log read, nothing attached, no referral followed", output);

    [Fact]
    public Task An_unknown_subtype_is_ignored() =>
        ModeRunner.DiscoverAsync(FaultMode.LogUnknownSubtype, v => v.LogReads >= 1 && v.Info is { Subsystems.Count: 0, Referrals.Count: 0 }, "the log read, nothing attached, no referral followed", output);

    [Fact]
    public Task Two_thousand_records_are_read_or_refused_but_never_crash() =>
        ModeRunner.DiscoverAsync(
            FaultMode.Log2000Records,
            v => (v.LogReads >= 1 && v.Info is { Subsystems.Count: <= 1 }) || (v.LogReads == 0 && v.Warned("discovery log")),
            "either the log read with its one distinct subsystem attached once, or a warning that it is too large",
            output);
}
