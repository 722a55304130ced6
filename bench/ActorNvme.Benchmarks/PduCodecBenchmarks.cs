using System.Buffers;
using ActorNvme.Protocol.Nvme;
using ActorNvme.Protocol.Tcp;
using BenchmarkDotNet.Attributes;

namespace ActorNvme.Benchmarks;

/// <summary>Encode and decode of the PDUs on the I/O hot path; all must allocate nothing.</summary>
[MemoryDiagnoser]
public class PduCodecBenchmarks
{
    private readonly byte[] _buffer = new byte[8192];
    private readonly byte[] _capsuleCmd = new byte[128];
    private readonly byte[] _capsuleResp = new byte[64];
    private readonly byte[] _c2hData = new byte[4096 + 64];
    private readonly byte[] _payload = new byte[4096];
    private SubmissionQueueEntry _read;

    [Params(DigestOptions.None, DigestOptions.Both)]
    public DigestOptions Digests { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _read = NvmCommands.Read(1, 12345, 8);
        _read.CommandId = 17;
        _read.DataPointer = SglDescriptor.Transport(4096);
        PduWriter.WriteCapsuleCommand(_capsuleCmd, _read, default, Digests);
        PduWriter.WriteCapsuleResponse(_capsuleResp, new CompletionQueueEntry(0, 0, 1, 1, 17, NvmeStatus.Success), Digests);
        PduWriter.WriteDataPdu(_c2hData, PduType.C2HData, new DataPduHeader(17, 0, 0, 4096), _payload, Digests, last: true, success: true);
    }

    [Benchmark]
    public int EncodeCapsuleCmd() => PduWriter.WriteCapsuleCommand(_buffer, _read, default, Digests);

    [Benchmark]
    public ushort DecodeCapsuleCmd()
    {
        var options = PduFramerOptions.Controller().WithDigests(Digests);
        PduFramer.TryParse(new ReadOnlySequence<byte>(_capsuleCmd), options, out var frame, out _);
        Span<byte> scratch = stackalloc byte[128];
        return SubmissionQueueEntry.Read(frame.GetHeader(scratch)[CommonHeader.Size..]).CommandId;
    }

    [Benchmark]
    public int EncodeCapsuleResp() => PduWriter.WriteCapsuleResponse(_buffer, new CompletionQueueEntry(0, 0, 1, 1, 17, NvmeStatus.Success), Digests);

    [Benchmark]
    public ushort DecodeCapsuleResp()
    {
        var options = PduFramerOptions.Host().WithDigests(Digests);
        PduFramer.TryParse(new ReadOnlySequence<byte>(_capsuleResp), options, out var frame, out _);
        Span<byte> scratch = stackalloc byte[128];
        return CompletionQueueEntry.Read(frame.GetHeader(scratch)[CommonHeader.Size..]).CommandId;
    }

    [Benchmark]
    public int EncodeC2HDataHeader() =>
        PduWriter.WriteDataPduPrefix(_buffer, PduType.C2HData, new DataPduHeader(17, 0, 0, 4096), Digests, last: true, success: true);

    [Benchmark]
    public uint DecodeC2HData()
    {
        var options = PduFramerOptions.Host().WithDigests(Digests);
        PduFramer.TryParse(new ReadOnlySequence<byte>(_c2hData), options, out var frame, out _);
        Span<byte> scratch = stackalloc byte[128];
        return DataPduHeader.Read(frame.GetHeader(scratch)).DataLength;
    }
}
