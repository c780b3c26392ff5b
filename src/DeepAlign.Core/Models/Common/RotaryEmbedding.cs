using DeepAlign.Runtime;
using DeepAlign.Configuration;
using static TorchSharp.torch;

namespace DeepAlign.Models.Common;

/// <summary>
/// Rotary position embedding with Hugging Face's layout: frequency i rotates the pair (i, i + headDim/2)
/// (<c>rotate_half</c>), optional <c>llama3</c> frequency scaling (transformers' <c>_compute_llama3_parameters</c>).
/// </summary>
internal sealed class RotaryEmbedding : IDisposable
{
    private readonly Tensor _invFreq; // [headDim/2] float32 on the model device

    public RotaryEmbedding(CausalLMConfig config, Device device)
    {
        var inv = ComputeInverseFrequencies(config);
        _invFreq = tensor(inv, dtype: ScalarType.Float32, device: device).DetachFromDisposeScope();
    }

    /// <summary>The (possibly scaled) inverse frequencies, computed in float32 like transformers.</summary>
    internal static float[] ComputeInverseFrequencies(CausalLMConfig config)
    {
        int dim = config.HeadDim;
        var inv = new float[dim / 2];
        for (int i = 0; i < inv.Length; i++)
        {
            float exponent = (float)(2 * i) / dim;
            inv[i] = 1.0f / MathF.Pow((float)config.RopeTheta, exponent);
        }
        var scaling = config.RopeScaling;
        string? type = scaling?.EffectiveType;
        if (scaling is null || type is null || type == "default") return inv;
        if (type != "llama3")
            throw new NotSupportedException($"rope_scaling.rope_type '{type}' is not supported (only 'llama3' is).");

        double factor = scaling.Factor, low = scaling.LowFreqFactor, high = scaling.HighFreqFactor;
        double oldContext = scaling.OriginalMaxPositionEmbeddings;
        double lowFreqWavelen = oldContext / low;
        double highFreqWavelen = oldContext / high;
        for (int i = 0; i < inv.Length; i++)
        {
            float f = inv[i];
            float wavelen = 2f * MathF.PI / f;
            float scaled = wavelen > lowFreqWavelen ? (float)(f / factor) : f;
            bool medium = !(wavelen < highFreqWavelen) && !(wavelen > lowFreqWavelen);
            if (medium)
            {
                float smooth = (float)((oldContext / wavelen - low) / (high - low));
                scaled = (1 - smooth) * scaled / (float)factor + smooth * scaled;
            }
            inv[i] = scaled;
        }
        return inv;
    }

    /// <summary>cos and sin tables <c>[batch, 1, T, headDim]</c> for integer positions <c>[batch, T]</c>, in <paramref name="dtype"/>.</summary>
    public (Tensor Cos, Tensor Sin) Tables(Tensor positions, ScalarType dtype)
    {
        using var scope = NewDisposeScope();
        var freqs = positions.to_type(ScalarType.Float32).unsqueeze(-1) * _invFreq; // [B, T, D/2]
        var emb = cat(new[] { freqs, freqs }, -1).unsqueeze(1);                      // [B, 1, T, D]
        var cos = emb.cos();
        var sin = emb.sin();
        if (dtype != ScalarType.Float32) { cos = cos.to_type(dtype); sin = sin.to_type(dtype); }
        return (cos.MoveToOuterDisposeScope(), sin.MoveToOuterDisposeScope());
    }

    /// <summary>x * cos + rotate_half(x) * sin, with rotate_half(x) = cat(-x2, x1).</summary>
    public static Tensor Apply(Tensor x, Tensor cos, Tensor sin)
    {
        using var scope = NewDisposeScope();
        long half = x.shape[^1] / 2;
        var x1 = x.narrow(-1, 0, half);
        var x2 = x.narrow(-1, half, half);
        var rotated = cat(new[] { x2.neg(), x1 }, -1);
        return (x * cos).add(rotated * sin, Scalars.One).MoveToOuterDisposeScope();
    }

    public void Dispose() => _invFreq.Dispose();
}
