using Xunit;

// All tests share one guest, and some take its interface down: never run two at once.
[assembly: CollectionBehavior(DisableTestParallelization = true)]
