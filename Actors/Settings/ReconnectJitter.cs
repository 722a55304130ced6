namespace ActorNvme.Actors.Settings;

/// <summary>
/// A small random spread on reconnect-delay, so that thousands of controllers lost together (a
/// target restart, a link flap) do not reconnect in lock-step. The spread only shortens the delay,
/// to between (1 - <see cref="Fraction"/>) × delay and delay: reconnect-delay stays the longest time
/// between attempts, and its rules against ctrlr-loss-timeout and fast-io-fail-timeout still hold.
/// </summary>
public static class ReconnectJitter
{
    /// <summary>The largest share of the delay taken off.</summary>
    public const double Fraction = 0.1;

    /// <summary><paramref name="delay"/> less a random share of at most <see cref="Fraction"/>, drawn from <paramref name="random"/>.</summary>
    public static TimeSpan Apply(TimeSpan delay, Random random)
    {
        ArgumentNullException.ThrowIfNull(random);
        if (delay <= TimeSpan.Zero)
        {
            return delay;
        }

        long cut = (long)(delay.Ticks * Fraction * random.NextDouble());
        return TimeSpan.FromTicks(delay.Ticks - cut);
    }
}
