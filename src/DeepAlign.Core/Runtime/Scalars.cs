using System.Reflection;
using TorchSharp;
using static TorchSharp.torch;

namespace DeepAlign.Runtime;

/// <summary>
/// Cached TorchSharp <see cref="Scalar"/> constants for library hot paths.
/// </summary>
/// <remarks>
/// Why: in TorchSharp 0.107 an implicitly converted Scalar (<c>t.sub_(1)</c>, <c>t + 1e-6</c>, <c>masked_fill(m, 0.0)</c>,
/// and hidden ones such as <c>a + b</c> between tensors, which is <c>add(b, alpha: 1)</c>) is unreachable as soon as its
/// native handle has been read, so a garbage collection during the native call can run its finalizer and free the
/// c10::Scalar while libtorch still reads it (crashes such as "toDouble at c10/core/Scalar.h"; dotnet/TorchSharp#1434,
/// #1496). Dispose scopes do not track Scalars. Rule (docs/troubleshooting.md): no implicit Scalars in library code;
/// pass one of these static (always reachable, never disposed, read-only so shareable across threads) constants, or
/// for run-time values <c>using var s = value.ToScalar();</c> around the call. The value types match the literals they
/// replace (integral for <c>1</c>, double for <c>1.0</c>) so type promotion and results are unchanged.
/// The test Runtime/ImplicitScalarAuditTests enforces the rule from the compiled IL.
/// </remarks>
internal static class Scalars
{
    /// <summary>Integral 0 (as the literal <c>0</c>).</summary>
    public static readonly Scalar Zero = 0L.ToScalar();

    /// <summary>Integral 1 (as the literal <c>1</c>); also the <c>alpha</c> of a plain tensor addition.</summary>
    public static readonly Scalar One = 1L.ToScalar();

    /// <summary>Integral 2 (as the literal <c>2</c>).</summary>
    public static readonly Scalar Two = 2L.ToScalar();

    /// <summary>Integral -1 (as the literal <c>-1</c>).</summary>
    public static readonly Scalar MinusOne = (-1L).ToScalar();

    /// <summary>Double 0.0 (as the literal <c>0.0</c>).</summary>
    public static readonly Scalar ZeroDouble = 0.0.ToScalar();

    /// <summary>Double 1.0 (as the literal <c>1.0</c>).</summary>
    public static readonly Scalar OneDouble = 1.0.ToScalar();

    /// <summary>Double 2.0 (as the literal <c>2.0</c>).</summary>
    public static readonly Scalar TwoDouble = 2.0.ToScalar();

    /// <summary>Double 20.0, the default softplus threshold.</summary>
    public static readonly Scalar Twenty = 20.0.ToScalar();

    /// <summary>false (bool), e.g. for <c>fill_</c> on masks.</summary>
    public static readonly Scalar False = false.ToScalar();

    /// <summary>Double negative infinity.</summary>
    public static readonly Scalar NegativeInfinity = double.NegativeInfinity.ToScalar();

    // TorchSharp 0.107's public softplus(double beta, double threshold) converts both to implicit Scalars; the
    // Scalar-taking overload it forwards to (Tensor.softplus1) is private. Bound once; null if a TorchSharp version
    // renames it (then the public overload is used).
    internal static readonly Func<Tensor, Scalar, Scalar, Tensor>? ScalarSoftplus =
        typeof(Tensor).GetMethod("softplus1", BindingFlags.Instance | BindingFlags.NonPublic, [typeof(Scalar), typeof(Scalar)])
            ?.CreateDelegate<Func<Tensor, Scalar, Scalar, Tensor>>();

    /// <summary>
    /// <c>nn.functional.softplus(x)</c> (beta 1, threshold 20: same native op and values) without implicit Scalars.
    /// </summary>
    public static Tensor Softplus(Tensor x) => ScalarSoftplus is { } f ? f(x, OneDouble, Twenty) : nn.functional.softplus(x);
}
