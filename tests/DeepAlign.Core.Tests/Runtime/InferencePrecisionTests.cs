using DeepAlign.Runtime;
using FluentAssertions;
using TorchSharp;
using Xunit;

namespace DeepAlign.Tests.Runtime;

/// <summary>The inference dtype default follows the CPU's bfloat16 support as the kernel reports it in /proc/cpuinfo.</summary>
public class InferencePrecisionTests
{
    [Fact]
    public void Cpu_default_is_bfloat16_exactly_when_the_cpu_has_native_bfloat16()
    {
        if (!File.Exists("/proc/cpuinfo") || !System.Runtime.Intrinsics.X86.X86Base.IsSupported) return; // the independent reference below is Linux x86's
        var flags = File.ReadLines("/proc/cpuinfo").First(l => l.StartsWith("flags", StringComparison.Ordinal)).Split(' ', '\t');
        bool native = flags.Contains("avx512_bf16") || flags.Contains("amx_bf16");
        InferencePrecision.CpuHasNativeBFloat16.Should().Be(native);
        InferencePrecision.DefaultFor(torch.CPU).Should().Be(native ? torch.ScalarType.BFloat16 : torch.ScalarType.Float32);
    }
}
