namespace ActorNvme.Host;

public static class Program
{
    public static int Main(string[] args)
    {
        Console.Error.WriteLine("actornvme: no command is implemented yet in this build.");
        return 2;
    }
}
