using DeepAlign.Models;
using DeepAlign.Models.Lora;
using DeepAlign.Training;
using TorchSharp;
using TorchSharp.Modules;
using DeepAlign.Configuration;
using DeepAlign.Checkpoints;
using static TorchSharp.torch;

namespace DeepAlign.Tests.Training;

/// <summary>
/// A one-layer Llama-like toy (no RoPE; single-head causal attention; RMSNorm; gated SiLU MLP; q_proj bias) with
/// Hugging Face parameter names, identical to the model in tests/scripts/training/sft_reference.py. Lets the training
/// tests run without the Llama implementation.
/// </summary>
internal sealed class TinyLm : ICausalLanguageModel, ILinearLayerHost
{
    private const double Eps = 1e-6;
    private readonly Dictionary<string, Parameter> _params = new(StringComparer.Ordinal);
    private readonly Dictionary<string, nn.Module<Tensor, Tensor>> _linears = new(StringComparer.Ordinal);
    private static readonly string[] LinearNames =
    {
        "model.layers.0.self_attn.q_proj", "model.layers.0.self_attn.k_proj", "model.layers.0.self_attn.v_proj",
        "model.layers.0.self_attn.o_proj", "model.layers.0.mlp.gate_proj", "model.layers.0.mlp.up_proj",
        "model.layers.0.mlp.down_proj", "lm_head",
    };
    private static readonly string[] PlainNames =
    {
        "model.embed_tokens.weight", "model.layers.0.input_layernorm.weight", "model.layers.0.post_attention_layernorm.weight", "model.norm.weight",
    };

    public TinyLm(IReadOnlyDictionary<string, Tensor> weights, int vocab, int hidden)
    {
        Config = new CausalLMConfig { VocabSize = vocab, HiddenSize = hidden, NumHiddenLayers = 1, NumAttentionHeads = 1, IntermediateSize = 0, PadTokenId = 0 };
        foreach (var n in PlainNames) _params[n] = new Parameter(weights[n].clone(), requires_grad: true);
        foreach (var n in LinearNames)
        {
            var w = weights[n + ".weight"];
            bool hasBias = weights.ContainsKey(n + ".bias");
            var lin = nn.Linear(w.shape[1], w.shape[0], hasBias: hasBias);
            using (no_grad())
            {
                lin.weight!.copy_(w);
                if (hasBias) lin.bias!.copy_(weights[n + ".bias"]);
            }
            _linears[n] = lin;
        }
    }

    public static TinyLm FromFixture(string dir)
    {
        var w = TensorFile.Read(Path.Combine(dir, "model.safetensors"));
        var m = new TinyLm(w, (int)w["model.embed_tokens.weight"].shape[0], (int)w["model.embed_tokens.weight"].shape[1]);
        foreach (var t in w.Values) t.Dispose();
        return m;
    }

    public CausalLMConfig Config { get; }
    public Device Device => CPU;
    public ScalarType DType => ScalarType.Float32;
    public int VocabSize => Config.VocabSize;

    private Tensor Rms(Tensor x, string w) => x * (x.pow(2).mean(new long[] { -1 }, keepdim: true) + Eps).rsqrt() * _params[w];
    private Tensor L(string name, Tensor x) => _linears[name].forward(x);

    public Tensor Forward(Tensor inputIds, Tensor? attentionMask = null, KvCache? cache = null, bool lastPositionOnly = false)
    {
        if (cache is not null) throw new NotSupportedException("TinyLm has no cache.");
        using var scope = NewDisposeScope();
        long t = inputIds.shape[1];
        int h = Config.HiddenSize;
        var x = _params["model.embed_tokens.weight"].index_select(0, inputIds.reshape(-1)).reshape(inputIds.shape[0], t, h);
        var a = Rms(x, "model.layers.0.input_layernorm.weight");
        var q = L("model.layers.0.self_attn.q_proj", a);
        var k = L("model.layers.0.self_attn.k_proj", a);
        var v = L("model.layers.0.self_attn.v_proj", a);
        var s = q.matmul(k.transpose(1, 2)) / Math.Sqrt(h);
        var allowed = ones(t, t, dtype: ScalarType.Bool).tril().unsqueeze(0);
        if (attentionMask is not null) allowed = allowed.logical_and(attentionMask.eq(1).unsqueeze(1));
        s = s + allowed.logical_not().to(ScalarType.Float32) * -1e9;
        x = x + L("model.layers.0.self_attn.o_proj", s.softmax(-1).matmul(v));
        var r = Rms(x, "model.layers.0.post_attention_layernorm.weight");
        x = x + L("model.layers.0.mlp.down_proj", nn.functional.silu(L("model.layers.0.mlp.gate_proj", r)) * L("model.layers.0.mlp.up_proj", r));
        var logits = L("lm_head", Rms(x, "model.norm.weight"));
        if (lastPositionOnly) logits = logits.narrow(1, t - 1, 1);
        return logits.MoveToOuterDisposeScope();
    }

    public KvCache CreateCache(int batchSize, int capacity) => throw new NotSupportedException();

    public IEnumerable<(string Name, Parameter Parameter)> NamedParameters()
    {
        foreach (var n in PlainNames) yield return (n, _params[n]);
        foreach (var n in LinearNames)
            foreach (var (pn, p) in _linears[n].named_parameters())
                yield return ($"{n}.{pn}", p);
    }

    public IEnumerable<Parameter> TrainableParameters() => NamedParameters().Select(p => p.Parameter).Where(p => p.requires_grad);

    public void SetTrainingMode(bool training)
    {
        foreach (var l in _linears.Values) l.train(training);
    }

    public IEnumerable<(string Name, Linear Module)> NamedLinearLayers() =>
        LinearNames.Where(n => _linears[n] is Linear).Select(n => (n, (Linear)_linears[n])).ToArray();

    public void ReplaceLinear(string name, nn.Module<Tensor, Tensor> replacement)
    {
        if (!_linears.ContainsKey(name)) throw new ArgumentException($"No linear layer '{name}'.", nameof(name));
        _linears[name] = replacement;
    }

    public void Dispose()
    {
        foreach (var p in _params.Values) p.Dispose();
        foreach (var l in _linears.Values) l.Dispose();
    }
}
