using System.Buffers;
using System.Text;
using FsCheck.Xunit;

namespace ActorNvme.Protocol.Tests.Tcp;

public class Crc32CTests
{
    [Fact]
    public void Check_value_of_the_standard_string_is_E3069283()
    {
        // The catalogue check value of CRC-32C over "123456789".
        Assert.Equal(0xE3069283u, Crc32C.Compute(Encoding.ASCII.GetBytes("123456789")));
    }

    [Fact]
    public void Thirty_two_zero_bytes_digest_as_in_RFC3720()
    {
        // iSCSI (RFC 3720 B.4) uses the same CRC; 32 bytes of zeros give 0x8A9136AA.
        Assert.Equal(0x8A9136AAu, Crc32C.Compute(new byte[32]));
    }

    [Property]
    public bool Hardware_and_table_implementations_agree(byte[] data) =>
        Crc32C.Compute(data) == ~Crc32C.AppendPortable(0xFFFFFFFF, data);

    [Property]
    public bool Segmented_input_digests_like_contiguous_input(byte[] data, byte cut)
    {
        int split = data.Length == 0 ? 0 : cut % (data.Length + 1);
        var sequence = SequenceFactory.Split(data, split);
        return Crc32C.Compute(sequence) == Crc32C.Compute(data);
    }
}
