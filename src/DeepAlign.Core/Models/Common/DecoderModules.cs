using DeepAlign.Runtime;
using TorchSharp.Modules;
using DeepAlign.Configuration;
using static TorchSharp.torch;

#pragma warning disable IDE1006 // Field names are Hugging Face checkpoint keys on purpose.

namespace DeepAlign.Models.Common;

/// <summary>Bias switches that distinguish the families built on the shared decoder.</summary>
/// <param name="QkvBias">Bias on q/k/v projections (Qwen2 always; Llama with <c>attention_bias</c>).</param>
/// <param name="OutputBias">Bias on o_proj (Llama with <c>attention_bias</c>).</param>
/// <param name="MlpBias">Bias on gate/up/down projections (Llama with <c>mlp_bias</c>).</param>
internal sealed record DecoderArchitecture(bool QkvBias, bool OutputBias, bool MlpBias);

/// <summary>A module whose projection layers can be swapped (for LoRA and similar wrappers).</summary>
internal interface ILinearHost
{
    IEnumerable<(string Name, nn.Module<Tensor, Tensor> Module)> Projections();
    void Replace(string name, nn.Module<Tensor, Tensor> replacement);
}

internal static class LinearFactory
{
    /// <summary>A Linear layer with uninitialised weights (they are loaded or initialised afterwards).</summary>
    public static Linear Create(long input, long output, bool bias, Device device, ScalarType dtype) =>
        nn.Linear(new Parameter(empty(output, input, dtype: dtype, device: device)),
                  bias ? new Parameter(empty(output, dtype: dtype, device: device)) : null);

    public static void Swap(nn.Module owner, string name, nn.Module<Tensor, Tensor> replacement)
    {
        owner.register_module(name, null!);
        owner.register_module(name, replacement);
    }
}

/// <summary><c>self_attn</c>: q/k/v/o projections with RoPE, GQA and an optional cache.</summary>
internal sealed class DecoderAttention : nn.Module, ILinearHost
{
    private nn.Module<Tensor, Tensor> q_proj;
    private nn.Module<Tensor, Tensor> k_proj;
    private nn.Module<Tensor, Tensor> v_proj;
    private nn.Module<Tensor, Tensor> o_proj;
    private readonly int _heads, _kvHeads, _headDim, _layerIndex;
    private readonly double _dropout;

    public DecoderAttention(CausalLMConfig c, DecoderArchitecture arch, int layerIndex, Device device, ScalarType dtype) : base("self_attn")
    {
        _heads = c.NumAttentionHeads;
        _kvHeads = c.KeyValueHeads;
        _headDim = c.HeadDim;
        _layerIndex = layerIndex;
        _dropout = c.AttentionDropout;
        q_proj = LinearFactory.Create(c.HiddenSize, _heads * _headDim, arch.QkvBias, device, dtype);
        k_proj = LinearFactory.Create(c.HiddenSize, _kvHeads * _headDim, arch.QkvBias, device, dtype);
        v_proj = LinearFactory.Create(c.HiddenSize, _kvHeads * _headDim, arch.QkvBias, device, dtype);
        o_proj = LinearFactory.Create(_heads * _headDim, c.HiddenSize, arch.OutputBias, device, dtype);
        RegisterComponents();
    }

    public Tensor Forward(Tensor x, Tensor cos, Tensor sin, Tensor? mask, KvCache? cache)
    {
        using var scope = NewDisposeScope();
        long b = x.shape[0], t = x.shape[1];
        var q = q_proj.call(x).view(b, t, _heads, _headDim).transpose(1, 2);
        var k = k_proj.call(x).view(b, t, _kvHeads, _headDim).transpose(1, 2);
        var v = v_proj.call(x).view(b, t, _kvHeads, _headDim).transpose(1, 2);
        q = RotaryEmbedding.Apply(q, cos, sin);
        k = RotaryEmbedding.Apply(k, cos, sin);
        if (cache is not null) (k, v) = cache.Append(_layerIndex, k, v);
        var attended = Attention.Attend(q, k, v, mask, training ? _dropout : 0.0);
        return o_proj.call(attended).MoveToOuterDisposeScope();
    }

    public IEnumerable<(string Name, nn.Module<Tensor, Tensor> Module)> Projections()
    {
        yield return ("q_proj", q_proj);
        yield return ("k_proj", k_proj);
        yield return ("v_proj", v_proj);
        yield return ("o_proj", o_proj);
    }

    public void Replace(string name, nn.Module<Tensor, Tensor> replacement)
    {
        switch (name)
        {
            case "q_proj": q_proj = replacement; break;
            case "k_proj": k_proj = replacement; break;
            case "v_proj": v_proj = replacement; break;
            case "o_proj": o_proj = replacement; break;
            default: throw new ArgumentException($"self_attn has no projection named '{name}'.", nameof(name));
        }
        LinearFactory.Swap(this, name, replacement);
    }
}

/// <summary><c>mlp</c>: down(silu(gate(x)) * up(x)).</summary>
internal sealed class GatedMlp : nn.Module<Tensor, Tensor>, ILinearHost
{
    private nn.Module<Tensor, Tensor> gate_proj;
    private nn.Module<Tensor, Tensor> up_proj;
    private nn.Module<Tensor, Tensor> down_proj;

    public GatedMlp(CausalLMConfig c, DecoderArchitecture arch, Device device, ScalarType dtype) : base("mlp")
    {
        gate_proj = LinearFactory.Create(c.HiddenSize, c.IntermediateSize, arch.MlpBias, device, dtype);
        up_proj = LinearFactory.Create(c.HiddenSize, c.IntermediateSize, arch.MlpBias, device, dtype);
        down_proj = LinearFactory.Create(c.IntermediateSize, c.HiddenSize, arch.MlpBias, device, dtype);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var gated = nn.functional.silu(gate_proj.call(x)).mul_(up_proj.call(x));
        return down_proj.call(gated).MoveToOuterDisposeScope();
    }

    public IEnumerable<(string Name, nn.Module<Tensor, Tensor> Module)> Projections()
    {
        yield return ("gate_proj", gate_proj);
        yield return ("up_proj", up_proj);
        yield return ("down_proj", down_proj);
    }

    public void Replace(string name, nn.Module<Tensor, Tensor> replacement)
    {
        switch (name)
        {
            case "gate_proj": gate_proj = replacement; break;
            case "up_proj": up_proj = replacement; break;
            case "down_proj": down_proj = replacement; break;
            default: throw new ArgumentException($"mlp has no projection named '{name}'.", nameof(name));
        }
        LinearFactory.Swap(this, name, replacement);
    }
}

/// <summary>One pre-norm decoder layer: x + attn(norm(x)), then h + mlp(norm(h)).</summary>
internal sealed class DecoderLayer : nn.Module
{
    private readonly RmsNorm input_layernorm;
    private readonly DecoderAttention self_attn;
    private readonly RmsNorm post_attention_layernorm;
    private readonly GatedMlp mlp;

    public DecoderLayer(CausalLMConfig c, DecoderArchitecture arch, int index, Device device, ScalarType dtype) : base("layer")
    {
        input_layernorm = new RmsNorm(c.HiddenSize, c.RmsNormEps, device, dtype);
        self_attn = new DecoderAttention(c, arch, index, device, dtype);
        post_attention_layernorm = new RmsNorm(c.HiddenSize, c.RmsNormEps, device, dtype);
        mlp = new GatedMlp(c, arch, device, dtype);
        RegisterComponents();
    }

    public DecoderAttention SelfAttention => self_attn;
    public GatedMlp Mlp => mlp;
    public RmsNorm InputNorm => input_layernorm;
    public RmsNorm PostAttentionNorm => post_attention_layernorm;

    public Tensor Forward(Tensor x, Tensor cos, Tensor sin, Tensor? mask, KvCache? cache)
    {
        using var scope = NewDisposeScope();
        // add(.., Scalars.One) is `+` without TorchSharp's implicit alpha Scalar (Runtime/Scalars.cs).
        var h = x.add(self_attn.Forward(input_layernorm.call(x), cos, sin, mask, cache), Scalars.One);
        var output = h.add(mlp.call(post_attention_layernorm.call(h)), Scalars.One);
        return output.MoveToOuterDisposeScope();
    }
}

/// <summary>The <c>model</c> sub-tree: embed_tokens, layers.N, norm.</summary>
internal sealed class DecoderBackbone : nn.Module
{
    private readonly TokenEmbedding embed_tokens;
    private readonly ModuleList<DecoderLayer> layers;
    private readonly RmsNorm norm;

    public DecoderBackbone(CausalLMConfig c, DecoderArchitecture arch, Device device, ScalarType dtype) : base("model")
    {
        embed_tokens = new TokenEmbedding(c.VocabSize, c.HiddenSize, device, dtype);
        layers = new ModuleList<DecoderLayer>();
        for (int i = 0; i < c.NumHiddenLayers; i++) layers.Add(new DecoderLayer(c, arch, i, device, dtype));
        norm = new RmsNorm(c.HiddenSize, c.RmsNormEps, device, dtype);
        RegisterComponents();
    }

    public TokenEmbedding EmbedTokens => embed_tokens;
    public IList<DecoderLayer> Layers => layers;
    public RmsNorm Norm => norm;
}

/// <summary>The root of the parameter tree: <c>model</c> and, when not tied, <c>lm_head</c>.</summary>
internal sealed class CausalLMRoot : nn.Module
{
    private readonly DecoderBackbone model;
    private readonly Linear? lm_head;

    public CausalLMRoot(CausalLMConfig c, DecoderArchitecture arch, Device device, ScalarType dtype) : base("root")
    {
        model = new DecoderBackbone(c, arch, device, dtype);
        if (!c.TieWordEmbeddings) lm_head = LinearFactory.Create(c.HiddenSize, c.VocabSize, false, device, dtype);
        RegisterComponents();
    }

    public DecoderBackbone Model => model;
    public Linear? LmHead => lm_head;
}
