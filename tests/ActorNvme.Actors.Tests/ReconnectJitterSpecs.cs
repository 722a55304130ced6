using ActorNvme.Actors.Settings;
using Xunit;

namespace ActorNvme.Actors.Tests;

/// <summary>The spread on reconnect-delay that keeps thousands of lost controllers from reconnecting in lock-step.</summary>
public sealed class ReconnectJitterSpecs
{
    [Fact]
    public void Every_delay_lies_within_the_last_tenth_of_reconnect_delay_and_never_beyond_it()
    {
        var random = new Random(12);
        var delay = TimeSpan.FromSeconds(2);
        var delays = Enumerable.Range(0, 10_000).Select(_ => ReconnectJitter.Apply(delay, random)).ToList();

        Assert.All(delays, d => Assert.InRange(d, TimeSpan.FromSeconds(1.8), delay));
    }

    [Fact]
    public void Delays_are_spread_over_the_whole_window_not_bunched()
    {
        var random = new Random(34);
        var delay = TimeSpan.FromSeconds(2);
        var delays = Enumerable.Range(0, 10_000).Select(_ => ReconnectJitter.Apply(delay, random).TotalMilliseconds).ToList();

        // Ten buckets of 20 ms over 1800..2000 ms: each holds about a tenth (uniform), none is empty or holds most.
        var buckets = delays.GroupBy(ms => Math.Min(9, (int)((2000 - ms) / 20))).ToDictionary(g => g.Key, g => g.Count());
        Assert.Equal(10, buckets.Count);
        Assert.All(buckets.Values, n => Assert.InRange(n, 700, 1300));

        // Among 10,000 controllers no single instant (1 ms) gets more than a few percent.
        Assert.True(delays.GroupBy(ms => Math.Floor(ms)).Max(g => g.Count()) < 300);
    }

    [Fact]
    public void The_same_seed_gives_the_same_delays_and_a_zero_delay_stays_zero()
    {
        var first = new Random(5);
        var second = new Random(5);
        for (int i = 0; i < 50; i++)
        {
            Assert.Equal(ReconnectJitter.Apply(TimeSpan.FromSeconds(1), first), ReconnectJitter.Apply(TimeSpan.FromSeconds(1), second));
        }

        Assert.Equal(TimeSpan.Zero, ReconnectJitter.Apply(TimeSpan.Zero, new Random(1)));
    }
}
