using DeepAlign.Runtime;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DeepAlign.Models.Common;

/// <summary>
/// Root-mean-square layer norm as Hugging Face's <c>LlamaRMSNorm</c>: normalise in float32, cast back to the input
/// dtype, then multiply by <c>weight</c>.
/// </summary>
internal sealed class RmsNorm : nn.Module<Tensor, Tensor>
{
#pragma warning disable IDE1006 // HF parameter names
    private readonly Parameter weight;
#pragma warning restore IDE1006
    private readonly double _eps;

    public RmsNorm(long size, double eps, Device device, ScalarType dtype) : base(nameof(RmsNorm))
    {
        weight = new Parameter(ones(size, dtype: dtype, device: device));
        _eps = eps;
        RegisterComponents();
    }

    public Parameter Weight => weight;

    /// <summary>The epsilon added to the mean square.</summary>
    public double Eps => _eps;

    public override Tensor forward(Tensor input)
    {
        using var scope = NewDisposeScope();
        var x = input.dtype == ScalarType.Float32 ? input : input.to_type(ScalarType.Float32);
        using var eps = _eps.ToScalar(); // explicit and reachable for the native call (Runtime/Scalars.cs)
        var variance = x.pow(Scalars.Two).mean(new long[] { -1 }, keepdim: true);
        var normed = x * variance.add(eps, Scalars.One).rsqrt();
        var result = weight * (input.dtype == ScalarType.Float32 ? normed : normed.to_type(input.dtype));
        return result.MoveToOuterDisposeScope();
    }
}

/// <summary>Token embedding table with the Hugging Face parameter name <c>weight</c> (no initialisation cost on load).</summary>
internal sealed class TokenEmbedding : nn.Module<Tensor, Tensor>
{
#pragma warning disable IDE1006
    private readonly Parameter weight;
#pragma warning restore IDE1006

    public TokenEmbedding(long vocab, long hidden, Device device, ScalarType dtype) : base(nameof(TokenEmbedding))
    {
        weight = new Parameter(empty(vocab, hidden, dtype: dtype, device: device));
        RegisterComponents();
    }

    public Parameter Weight => weight;

    public override Tensor forward(Tensor ids)
    {
        using var flat = ids.reshape(-1);
        using var rows = MetaFallback.IndexSelect(weight, 0, flat);
        return rows.view(ids.shape[0], ids.shape[1], weight.shape[1]);
    }
}
