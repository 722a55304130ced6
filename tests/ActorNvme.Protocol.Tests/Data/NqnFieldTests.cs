using System.Text;
using ActorNvme.Protocol.Data;

namespace ActorNvme.Protocol.Tests.Data;

/// <summary>An NQN field from the wire that hides text behind a NUL or is not UTF-8 must fail the NQN check, not name another subsystem.</summary>
public sealed class NqnFieldTests
{
    private static DiscoveryLogEntry EntryWithSubnqnBytes(byte[] nqn)
    {
        var bytes = new byte[DiscoveryLogEntry.Size];
        new DiscoveryLogEntry { TransportType = TransportType.Tcp, SubsystemType = SubsystemType.Nvm, TransportAddress = "127.0.0.1", TransportServiceId = "4420" }.WriteTo(bytes);
        nqn.CopyTo(bytes.AsSpan(256, DiscoveryLogEntry.SubsystemNqnLength));
        return DiscoveryLogEntry.Read(bytes);
    }

    [Fact]
    public void Text_hidden_after_a_NUL_is_kept_and_refused()
    {
        var entry = EntryWithSubnqnBytes(Encoding.ASCII.GetBytes("nqn.2016-06.io.example:a\0hidden"));

        Assert.Equal("nqn.2016-06.io.example:a\0hidden", entry.SubsystemNqn);
        Assert.False(Nqn.TryValidate(entry.SubsystemNqn, out var error, "SUBNQN"));
        Assert.Equal(DataErrorCode.NqnNotPrintable, error.Code);
    }

    [Fact]
    public void Bytes_that_are_not_UTF8_are_refused_with_their_index()
    {
        var entry = EntryWithSubnqnBytes([.. Encoding.ASCII.GetBytes("nqn.2016-06.io.example:"), 0xFF, 0xFE]);

        Assert.False(Nqn.TryValidate(entry.SubsystemNqn, out var error, "SUBNQN"));
        Assert.Equal(DataErrorCode.NqnNotUtf8, error.Code);
        Assert.Equal(23, error.Offset);
        Assert.Contains("not valid UTF-8", error.Describe(), StringComparison.Ordinal);
    }

    [Fact]
    public void A_NUL_padded_NQN_reads_as_before()
    {
        var entry = EntryWithSubnqnBytes(Encoding.ASCII.GetBytes("nqn.2016-06.io.example:ok"));

        Assert.Equal("nqn.2016-06.io.example:ok", entry.SubsystemNqn);
        Assert.True(Nqn.TryValidate(entry.SubsystemNqn, out _, "SUBNQN"));
    }
}
