using FluentAssertions;
using TorchSharp;
using Xunit;

namespace DeepAlign.Tests.Runtime;

public class RuntimeLoadTests
{
    [Fact]
    public void A_tensor_op_runs()
    {
        using var a = torch.arange(6, dtype: torch.float32).reshape(2, 3);
        using var s = a.sum();
        s.item<float>().Should().Be(15f);
    }
}
