using DeepAlign.Models.Common;
using DeepAlign.Runtime;
using FluentAssertions;
using Xunit;
using TorchSharp;
using static TorchSharp.torch;

namespace DeepAlign.Tests.Runtime;

/// <summary>
/// Enforces the rule of docs/troubleshooting.md ("TorchSharp implicit Scalars and the garbage collector") on the
/// compiled library: no implicit Scalar conversion and no call to a TorchSharp member that makes one internally.
/// </summary>
public sealed class ImplicitScalarAuditTests
{
    /// <summary>Code allowed to keep implicit Scalars, by outermost type name prefix (none: the whole library is converted).</summary>
    private static readonly string[] NotYetConverted = [];

    [Fact]
    public void Library_code_creates_no_implicit_scalars()
    {
        var sites = ImplicitScalarAudit.FindSites(typeof(DecoderOnlyCausalLM).Assembly,
                t => t.FullName is { } name && !NotYetConverted.Any(p => name.StartsWith(p, StringComparison.Ordinal)))
            // Scalars.Softplus falls back to the public overload only if the Scalar overload cannot be bound (tested below).
            .Where(s => !(s.Type == typeof(Scalars).FullName && s.Method == nameof(Scalars.Softplus)));
        sites.Select(s => s.ToString()).Should().BeEmpty(
            "every Scalar passed to native code must stay reachable during the call: use DeepAlign.Runtime.Scalars or `using var s = value.ToScalar();`, and add(x, Scalars.One) for tensor + tensor");
    }

    [Fact]
    public void Scalar_softplus_is_bound_and_equals_the_public_softplus()
    {
        Scalars.ScalarSoftplus.Should().NotBeNull("TorchSharp's private softplus1(Scalar, Scalar) must exist in the pinned version");
        using var x = tensor(new[] { -30f, -2.5f, -1e-3f, 0f, 0.7f, 19.99f, 20f, 20.01f, 45f }).requires_grad_(true);
        using var expected = nn.functional.softplus(x);
        using var actual = Scalars.Softplus(x);
        actual.data<float>().ToArray().Should().Equal(expected.data<float>().ToArray());
        using var gradExpected = autograd.grad(new[] { expected.sum() }, new[] { x })[0];
        using var gradActual = autograd.grad(new[] { actual.sum() }, new[] { x })[0];
        gradActual.data<float>().ToArray().Should().Equal(gradExpected.data<float>().ToArray());
    }

    [Fact]
    public void Audit_finds_direct_and_hidden_implicit_scalars()
    {
        // The detector must be able to fail: this class's own samples contain each kind of site.
        var sites = ImplicitScalarAudit.FindSites(typeof(ImplicitScalarAuditTests).Assembly, t => t == typeof(ImplicitScalarAuditTests));
        string Callees(string method) => string.Join(" | ", sites.Where(s => s.Method == $"{nameof(Samples)}.{method}").Select(s => s.Callee));
        Callees(nameof(Samples.DirectConversion)).Should().Contain("Scalar.op_Implicit(Double)");
        Callees(nameof(Samples.InlineToScalar)).Should().Contain("ToScalar(Double)");
        Callees(nameof(Samples.TensorPlusTensor)).Should().Contain("Tensor.op_Addition(Tensor, Tensor)");
        Callees(nameof(Samples.TensorTimesDouble)).Should().Contain("Tensor.op_Multiply(Tensor, Double)");
        Callees(nameof(Samples.Square)).Should().Contain("Tensor.square()");
        Callees(nameof(Samples.TwoArgumentArange)).Should().Contain("torch.arange(Scalar, Scalar");
        sites.Should().NotContain(s => s.Method == $"{nameof(Samples)}.{nameof(Samples.Safe)}");
    }

    /// <summary>Never run; compiled only for the audit's self-test.</summary>
    private static class Samples
    {
        public static Tensor DirectConversion(Tensor t) => t.masked_fill(t.isnan(), 0.0);
        public static Tensor InlineToScalar(Tensor t) => t.mul(2.5.ToScalar());
        public static Tensor TensorPlusTensor(Tensor a, Tensor b) => a + b;
        public static Tensor TensorTimesDouble(Tensor t) => t * 2.0;
        public static Tensor Square(Tensor t) => t.square();
        public static Tensor TwoArgumentArange(Scalar start, Scalar stop) => arange(start, stop);

        public static Tensor Safe(Tensor a, Tensor b, double eps)
        {
            using var e = eps.ToScalar();
            return a.add(b, DeepAlign.Runtime.Scalars.One).add(e, DeepAlign.Runtime.Scalars.One).pow(DeepAlign.Runtime.Scalars.Two) - b;
        }
    }
}
