using Akka.TestKit;
using Xunit;

namespace ActorNvme.Actors.Tests;

/// <summary>Stepping a TestScheduler while the actors, on real threads, react between the steps.</summary>
public static class VirtualClock
{
    /// <summary>
    /// Advances <paramref name="clock"/> by <paramref name="step"/> until <paramref name="condition"/> holds,
    /// giving the actors up to <paramref name="settle"/> of real time after each step (a timer armed by a
    /// reaction is then fired by a later step). Fails past <paramref name="limit"/> of virtual time; returns
    /// the virtual time it took.
    /// </summary>
    public static TimeSpan AdvanceUntil(TestScheduler clock, Func<bool> condition, TimeSpan step, TimeSpan limit, TimeSpan settle)
    {
        var elapsed = TimeSpan.Zero;
        while (!condition())
        {
            Assert.True(elapsed < limit, $"condition not reached within {limit} of virtual time");
            clock.Advance(step);
            elapsed += step;
            var reacting = System.Diagnostics.Stopwatch.StartNew();
            while (!condition() && reacting.Elapsed < settle)
            {
                Thread.Sleep(10);
            }
        }

        return elapsed;
    }
}
