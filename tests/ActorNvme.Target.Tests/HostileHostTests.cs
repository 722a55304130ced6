using System.Buffers.Binary;
using ActorNvme.Protocol.Nvme;
using ActorNvme.Protocol.Tcp;

namespace ActorNvme.Target.Tests;

public sealed class HostileHostTests
{
    public static TheoryData<string, string> Cases()
    {
        var data = new TheoryData<string, string>();
        foreach (var transport in new[] { "memory", "tcp" })
        {
            foreach (var name in new[] { "huge PLEN", "unknown PDU type", "HLEN mismatch", "PDU before ICReq", "header digest", "controller PDU type", "H2CData unknown TTAG", "second ICReq" })
            {
                data.Add(transport, name);
            }
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task A_hostile_host_gets_a_C2HTermReq_and_only_its_connection_closes(string transport, string attack)
    {
        await using var t = TestTarget.Create(transport);
        await using var bystander = await t.ConnectAsync();
        await bystander.SetUpAdminAsync(TestTarget.Nqn);

        await using var hostile = await t.ConnectAsync();
        (TermReqError Status, uint Information) expected;
        switch (attack)
        {
            case "PDU before ICReq":
                await SendCommonHeaderAsync(hostile, PduType.CapsuleCmd, 72, 72);
                expected = (TermReqError.PduSequenceError, 0);
                break;
            case "huge PLEN":
                await hostile.InitializeAsync();
                await SendCommonHeaderAsync(hostile, PduType.CapsuleCmd, 72, 0x7FFF_FFF0);
                expected = (TermReqError.DataTransferOutOfRange, 4);
                break;
            case "unknown PDU type":
                await hostile.InitializeAsync();
                await SendCommonHeaderAsync(hostile, (PduType)0x0F, 24, 24);
                expected = (TermReqError.InvalidHeaderField, 0);
                break;
            case "HLEN mismatch":
                await hostile.InitializeAsync();
                await SendCommonHeaderAsync(hostile, PduType.CapsuleCmd, 64, 72);
                expected = (TermReqError.InvalidHeaderField, 2);
                break;
            case "controller PDU type":
                await hostile.InitializeAsync();
                await SendCommonHeaderAsync(hostile, PduType.CapsuleResp, 24, 24);
                expected = (TermReqError.PduSequenceError, 0);
                break;
            case "header digest":
                await hostile.InitializeAsync(DigestOptions.Header);
                var pdu = new byte[128];
                var sqe = AdminCommands.KeepAlive();
                int length = PduWriter.WriteCapsuleCommand(pdu, sqe, [], DigestOptions.Header);
                pdu[length - 1] ^= 0xFF;
                await hostile.SendAsync(pdu.AsMemory(0, length));
                expected = (TermReqError.HeaderDigestError, 72);
                break;
            case "H2CData unknown TTAG":
                await hostile.InitializeAsync();
                var h2c = new byte[64];
                int n = PduWriter.WriteDataPdu(h2c, PduType.H2CData, new DataPduHeader(1, 77, 0, 4), new byte[4], DigestOptions.None, last: true);
                await hostile.SendAsync(h2c.AsMemory(0, n));
                expected = (TermReqError.InvalidHeaderField, 10);
                break;
            default: // second ICReq
                await hostile.InitializeAsync();
                var icreq = new byte[ICReq.Size];
                new ICReq(0, 0, DigestOptions.None, 0).WriteTo(icreq);
                await hostile.SendAsync(icreq);
                expected = (TermReqError.PduSequenceError, 0);
                break;
        }

        var (end, pdus) = await hostile.ReceiveUntilClosedAsync();
        Assert.NotEqual(ReceiveKind.Timeout, end);
        var term = Assert.Single(pdus);
        Assert.Equal(PduType.C2HTermReq, term.Type);
        Assert.Equal(expected, (term.TermReq.Status, term.TermReq.ErrorInformation));
        Assert.True(term.Data.Length >= CommonHeader.Size, "the offending header comes back with the TermReq");

        Assert.True((await bystander.CommandAsync(AdminCommands.KeepAlive())).Status.IsSuccess);
        Assert.Equal(1, t.Subsystem.ControllerCount);
    }

    [Fact]
    public async Task A_host_TermReq_closes_its_connection()
    {
        await using var t = TestTarget.Create();
        await using var client = await t.ConnectAsync();
        await client.SetUpAdminAsync(TestTarget.Nqn);
        var term = new byte[PduSizes.TermReqHeader];
        new TermReq(TermReqError.PduSequenceError, 0).WriteTo(term, PduType.H2CTermReq, []);
        await client.SendAsync(term);
        var (end, pdus) = await client.ReceiveUntilClosedAsync();
        Assert.NotEqual(ReceiveKind.Timeout, end);
        Assert.Empty(pdus);
        Assert.Equal(0, t.Subsystem.ControllerCount);
    }

    [Fact]
    public async Task H2CData_past_the_R2T_window_is_out_of_range()
    {
        await using var t = TestTarget.Create();
        var (admin, io, _) = await t.ConnectIoAsync();
        await using var _a = admin;
        await using var _i = io;
        var write = await io.SendCommandAsync(NvmCommands.Write(1, 0, 1), h2cData: new byte[512]);
        var r2t = await io.ReceiveAsync();
        Assert.Equal(PduType.R2T, r2t.Type);
        var h2c = new byte[2048];
        int n = PduWriter.WriteDataPdu(h2c, PduType.H2CData, new DataPduHeader(write.CommandId, r2t.R2T.TransferTag, 0, 1024), new byte[1024], DigestOptions.None, last: true);
        await io.SendAsync(h2c.AsMemory(0, n));
        var (end, pdus) = await io.ReceiveUntilClosedAsync();
        Assert.NotEqual(ReceiveKind.Timeout, end);
        Assert.Equal(TermReqError.DataTransferOutOfRange, Assert.Single(pdus).TermReq.Status);
        Assert.True((await admin.CommandAsync(AdminCommands.KeepAlive())).Status.IsSuccess);
    }

    private static async Task SendCommonHeaderAsync(RawClient client, PduType type, byte headerLength, uint pduLength)
    {
        var bytes = new byte[Math.Max((int)Math.Min(pduLength, 256u), 8)];
        new CommonHeader(type, PduFlags.None, headerLength, 0, pduLength).WriteTo(bytes);
        BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(4), pduLength);
        await client.SendAsync(bytes);
    }
}
