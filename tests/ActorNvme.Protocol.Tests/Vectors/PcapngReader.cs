using System.Buffers.Binary;
using System.Net;

namespace ActorNvme.Protocol.Tests.Vectors;

/// <summary>One end of a TCP connection.</summary>
internal readonly record struct TcpEndpoint(IPAddress Address, int Port)
{
    public static TcpEndpoint Parse(string address, int port) => new(IPAddress.Parse(address), port);

    public override string ToString() => $"{Address}:{Port}";
}

/// <summary>One captured TCP segment with its direction.</summary>
internal sealed record TcpSegment(int PacketNumber, TcpEndpoint Source, TcpEndpoint Destination, uint Sequence, bool Syn, bool Fin, byte[] Payload);

/// <summary>
/// A minimal pcapng reader for golden-vector tests: Section Header, Interface Description and Enhanced
/// Packet blocks (other blocks are skipped); Ethernet II (optionally 802.1Q tagged) → IPv4 → TCP. Every
/// length is checked against the bytes present; malformed input throws <see cref="InvalidDataException"/>.
/// </summary>
internal static class PcapngReader
{
    private const uint SectionHeaderBlock = 0x0A0D0D0A;
    private const uint InterfaceDescriptionBlock = 0x00000001;
    private const uint EnhancedPacketBlock = 0x00000006;
    private const uint ByteOrderMagic = 0x1A2B3C4D;
    private const ushort LinkTypeEthernet = 1;

    /// <summary>Every TCP segment of the file, in capture order (segments without payload included).</summary>
    public static IReadOnlyList<TcpSegment> ReadTcpSegments(ReadOnlySpan<byte> file)
    {
        var segments = new List<TcpSegment>();
        var linkTypes = new List<ushort>();
        bool bigEndian = false;
        int offset = 0;
        int packetNumber = 0;
        while (offset + 12 <= file.Length)
        {
            uint type = ReadU32(file[offset..], bigEndian);
            if (type == SectionHeaderBlock)
            {
                uint magic = BinaryPrimitives.ReadUInt32LittleEndian(file[(offset + 8)..]);
                bigEndian = magic != ByteOrderMagic;
                if (bigEndian && BinaryPrimitives.ReadUInt32BigEndian(file[(offset + 8)..]) != ByteOrderMagic)
                {
                    throw new InvalidDataException($"bad byte-order magic 0x{magic:x8} at offset {offset}");
                }

                linkTypes.Clear();
            }

            uint length = ReadU32(file[(offset + 4)..], bigEndian);
            if (length < 12 || length % 4 != 0 || length > file.Length - offset)
            {
                throw new InvalidDataException($"block at offset {offset} has bad length {length}");
            }

            var body = file.Slice(offset + 8, (int)length - 12);
            if (type == InterfaceDescriptionBlock)
            {
                linkTypes.Add(ReadU16(body, bigEndian));
            }
            else if (type == EnhancedPacketBlock)
            {
                packetNumber++;
                uint interfaceId = ReadU32(body, bigEndian);
                uint captured = ReadU32(body[12..], bigEndian);
                if (interfaceId >= linkTypes.Count || captured > body.Length - 20)
                {
                    throw new InvalidDataException($"packet {packetNumber}: bad interface {interfaceId} or captured length {captured}");
                }

                if (linkTypes[(int)interfaceId] == LinkTypeEthernet)
                {
                    var segment = ParseEthernet(packetNumber, body.Slice(20, (int)captured));
                    if (segment is not null)
                    {
                        segments.Add(segment);
                    }
                }
            }

            offset += (int)length;
        }

        return segments;
    }

    /// <summary>
    /// Reassembles each direction's byte stream by sequence number: data before the stream's current end
    /// (retransmits, overlaps) is dropped; a gap throws.
    /// </summary>
    public static IReadOnlyDictionary<(TcpEndpoint From, TcpEndpoint To), byte[]> ReassembleStreams(IEnumerable<TcpSegment> segments)
    {
        var result = new Dictionary<(TcpEndpoint, TcpEndpoint), byte[]>();
        foreach (var direction in segments.GroupBy(s => (s.Source, s.Destination)))
        {
            var list = direction.ToList();
            var syn = list.FirstOrDefault(s => s.Syn);
            uint initial = syn is not null ? syn.Sequence + 1 : list.Where(s => s.Payload.Length > 0).Select(s => s.Sequence).DefaultIfEmpty().First();
            using var stream = new MemoryStream();
            foreach (var segment in list.Where(s => s.Payload.Length > 0).OrderBy(s => unchecked(s.Sequence - initial)))
            {
                long relative = unchecked(segment.Sequence - initial);
                long end = relative + segment.Payload.Length;
                if (end <= stream.Length)
                {
                    continue;
                }

                if (relative > stream.Length)
                {
                    throw new InvalidDataException($"{direction.Key.Source} -> {direction.Key.Destination}: gap of {relative - stream.Length} bytes before packet {segment.PacketNumber}");
                }

                stream.Write(segment.Payload, (int)(stream.Length - relative), (int)(end - stream.Length));
            }

            result[direction.Key] = stream.ToArray();
        }

        return result;
    }

    /// <summary>The reassembled stream from <paramref name="from"/> to <paramref name="to"/> in the file at <paramref name="path"/>.</summary>
    public static byte[] ReadStream(string path, TcpEndpoint from, TcpEndpoint to)
    {
        var streams = ReassembleStreams(ReadTcpSegments(File.ReadAllBytes(path)));
        return streams.TryGetValue((from, to), out var bytes)
            ? bytes
            : throw new InvalidDataException($"no TCP stream {from} -> {to} in {Path.GetFileName(path)}");
    }

    private static TcpSegment? ParseEthernet(int packetNumber, ReadOnlySpan<byte> frame)
    {
        if (frame.Length < 14)
        {
            return null;
        }

        int offset = 12;
        ushort etherType = BinaryPrimitives.ReadUInt16BigEndian(frame[offset..]);
        if (etherType == 0x8100 && frame.Length >= 18)
        {
            offset += 4;
            etherType = BinaryPrimitives.ReadUInt16BigEndian(frame[offset..]);
        }

        return etherType == 0x0800 ? ParseIPv4(packetNumber, frame[(offset + 2)..]) : null;
    }

    private static TcpSegment? ParseIPv4(int packetNumber, ReadOnlySpan<byte> packet)
    {
        if (packet.Length < 20 || packet[0] >> 4 != 4)
        {
            return null;
        }

        int headerLength = (packet[0] & 0xF) * 4;
        int totalLength = BinaryPrimitives.ReadUInt16BigEndian(packet[2..]);
        if (headerLength < 20 || totalLength < headerLength || totalLength > packet.Length)
        {
            throw new InvalidDataException($"packet {packetNumber}: bad IPv4 lengths (IHL {headerLength}, total {totalLength}, captured {packet.Length})");
        }

        if (packet[9] != 6)
        {
            return null;
        }

        var source = new IPAddress(packet.Slice(12, 4));
        var destination = new IPAddress(packet.Slice(16, 4));
        var tcp = packet[headerLength..totalLength];
        if (tcp.Length < 20)
        {
            throw new InvalidDataException($"packet {packetNumber}: TCP header truncated ({tcp.Length} bytes)");
        }

        int dataOffset = (tcp[12] >> 4) * 4;
        if (dataOffset < 20 || dataOffset > tcp.Length)
        {
            throw new InvalidDataException($"packet {packetNumber}: bad TCP data offset {dataOffset}");
        }

        byte flags = tcp[13];
        return new TcpSegment(
            packetNumber,
            new TcpEndpoint(source, BinaryPrimitives.ReadUInt16BigEndian(tcp)),
            new TcpEndpoint(destination, BinaryPrimitives.ReadUInt16BigEndian(tcp[2..])),
            BinaryPrimitives.ReadUInt32BigEndian(tcp[4..]),
            Syn: (flags & 0x02) != 0,
            Fin: (flags & 0x01) != 0,
            tcp[dataOffset..].ToArray());
    }

    private static uint ReadU32(ReadOnlySpan<byte> s, bool bigEndian) =>
        bigEndian ? BinaryPrimitives.ReadUInt32BigEndian(s) : BinaryPrimitives.ReadUInt32LittleEndian(s);

    private static ushort ReadU16(ReadOnlySpan<byte> s, bool bigEndian) =>
        bigEndian ? BinaryPrimitives.ReadUInt16BigEndian(s) : BinaryPrimitives.ReadUInt16LittleEndian(s);
}
