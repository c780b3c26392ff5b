using DeepAlign.Runtime;
using FluentAssertions;
using TorchSharp;
using Xunit;

namespace DeepAlign.Tests.Runtime;

/// <summary>Thread defaults: intra-op threads = max(1, cores / workers), set and capped without oversubscribing.</summary>
public class TorchThreadsTests
{
    [Theory]
    [InlineData(1, 2, 2)]
    [InlineData(2, 2, 1)]
    [InlineData(3, 2, 1)]
    [InlineData(2, 8, 4)]
    [InlineData(3, 8, 2)]
    [InlineData(1, 1, 1)]
    public void Default_threads_are_cores_divided_by_workers_and_at_least_one(int workers, int cores, int expected)
    {
        TorchThreads.DefaultIntraOpThreads(workers, cores).Should().Be(expected);
        if (workers <= cores) (workers * TorchThreads.DefaultIntraOpThreads(workers, cores)).Should().BeLessThanOrEqualTo(cores);
    }

    [Fact]
    public void Invalid_counts_are_rejected_with_the_parameter_name()
    {
        FluentActions.Invoking(() => TorchThreads.DefaultIntraOpThreads(0)).Should().Throw<ArgumentOutOfRangeException>().WithParameterName("workers");
        FluentActions.Invoking(() => TorchThreads.DefaultIntraOpThreads(1, 0)).Should().Throw<ArgumentOutOfRangeException>().WithParameterName("cores");
        FluentActions.Invoking(() => TorchThreads.Configure(1, 0)).Should().Throw<ArgumentOutOfRangeException>().WithParameterName("intraOpThreads");
    }

    [Fact]
    public void Configure_sets_libtorch_threads_and_cap_restores_the_previous_count()
    {
        int before = torch.get_num_threads();
        try
        {
            int set = TorchThreads.Configure(workers: 1);
            set.Should().Be(Math.Max(1, Environment.ProcessorCount));
            torch.get_num_threads().Should().Be(set);
            TorchThreads.ConfiguredIntraOpThreads.Should().Be(set);

            TorchThreads.Configure(intraOpThreads: 3).Should().Be(3);
            torch.get_num_threads().Should().Be(3);
            using (TorchThreads.CapForWorkers(Environment.ProcessorCount * 2))
                torch.get_num_threads().Should().Be(1, "more workers than cores leave one thread each");
            torch.get_num_threads().Should().Be(3);

            torch.set_num_threads(1);
            using (TorchThreads.CapForWorkers(1))
                torch.get_num_threads().Should().Be(1, "a cap never raises the count");
            torch.get_num_threads().Should().Be(1);
        }
        finally
        {
            torch.set_num_threads(before);
        }
    }

    [Fact]
    public void Passive_waits_are_not_claimed_once_libtorch_is_loaded()
    {
        torch.get_num_threads(); // libtorch (and its OpenMP runtime) is loaded now
        if (Environment.GetEnvironmentVariable("OMP_WAIT_POLICY") is null)
        {
            TorchThreads.PreferPassiveWaits().Should().BeFalse("the policy is read when the OpenMP runtime loads");
            Environment.GetEnvironmentVariable("OMP_WAIT_POLICY").Should().BeNull();
        }
    }
}
