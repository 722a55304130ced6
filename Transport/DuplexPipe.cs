using System.IO.Pipelines;

namespace ActorNvme.Transport;

/// <summary>A reader and a writer made elsewhere, handed out together as one connection's pipe.</summary>
internal sealed class DuplexPipe(PipeReader input, PipeWriter output) : IDuplexPipe
{
    public PipeReader Input => input;

    public PipeWriter Output => output;
}
