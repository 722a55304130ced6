namespace ActorNvme.Io.Tests;

/// <summary>Transport ← Io ← Actors: the data path runs without actors.</summary>
public sealed class LayeringTests
{
    [Fact]
    public void The_io_assembly_references_protocol_and_transport_but_neither_akka_nor_the_actors()
    {
        var references = typeof(BlockDevice).Assembly.GetReferencedAssemblies().Select(a => a.Name!).ToArray();
        Assert.Contains("ActorNvme.Transport", references);
        Assert.DoesNotContain(references, name => name.StartsWith("Akka", StringComparison.Ordinal));
        Assert.DoesNotContain("ActorNvme.Actors", references);
    }
}
