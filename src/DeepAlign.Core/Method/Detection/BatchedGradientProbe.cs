using DeepAlign.Configuration;
using DeepAlign.Models;
using DeepAlign.Models.Common;
using DeepAlign.Runtime;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DeepAlign.Method.Detection;

/// <summary>
/// The gradient signal probe's per-position gradient norms for the built-in decoder (<see cref="DecoderOnlyCausalLM"/>
/// with plain projections), computed with one forward pass and a hand-written backward pass that carries all J
/// per-position cotangents at once as a batch, instead of J autograd backward passes.
/// </summary>
/// <remarks>
/// <para>Exact in exact arithmetic (the same quantity as <see cref="GradientSignalProbe.ReferenceSequenceNorms"/>, tested
/// within 1e-5): for loss k the gradient of a linear weight is <c>sum_t delta_kt x_t^T</c> whose squared norm is
/// <c>sum_tt' (delta_k delta_k^T)_tt' (X X^T)_tt'</c> (or the explicit product when the prefix is longer than the
/// input width); the output head's gradient is the rank-one <c>g_k h_k^T</c>; norm weights and biases are reduced
/// per row. A tied head adds the input-embedding rows and their cross term with the head part.</para>
/// <para>Causality: loss k only reaches positions up to its own, so rows are processed in chunks of
/// <see cref="RowsPerChunk"/> over the shortest prefix that covers them; in the last layer every position-wise part
/// (MLP, o_proj, q_proj, norms) is computed at each row's own position only. Computed in float32 from (upcast)
/// weights.</para>
/// <para>The backward runs from the last layer down to the first selected one (untied head) or to the embeddings (tied
/// head, whose embedding matrix is selected).</para>
/// </remarks>
internal sealed class BatchedGradientProbe : IDisposable
{
    /// <summary>Per-position rows carried through the backward at once (a test hook; 16 balances batching and causality).</summary>
    internal static int RowsPerChunk { get; set; } = 16;

    private sealed record Layer(Parameter Wq, Parameter? Bq, Parameter Wk, Parameter? Bk, Parameter Wv, Parameter? Bv, Parameter Wo, Parameter? Bo,
        Parameter Wg, Parameter? Bg, Parameter Wu, Parameter? Bu, Parameter Wd, Parameter? Bd, Parameter Ln1, Parameter Ln2);

    /// <summary>Activations of one decoder layer kept for the backward (single sequence, no batch axis).</summary>
    private sealed class Saved
    {
        public required Tensor R1, Xh1, N1, Qr, Kr, V, Probs, A, R2, Xh2, N2, G, U, Act, M;
    }

    private readonly CausalLMConfig _config;
    private readonly Device _device;
    private readonly Layer[] _layers;
    private readonly Parameter _embed, _head, _finalNorm;
    private readonly bool _tied;
    private readonly int _firstSelected, _firstBackward;
    private readonly RotaryEmbedding _rope;

    private BatchedGradientProbe(CausalLMConfig config, Device device, Layer[] layers, Parameter embed, Parameter head, Parameter finalNorm, bool tied, int firstSelected)
    {
        _config = config;
        _device = device;
        _layers = layers;
        _embed = embed;
        _head = head;
        _finalNorm = finalNorm;
        _tied = tied;
        _firstSelected = firstSelected;
        _firstBackward = tied ? 0 : firstSelected;
        _rope = new RotaryEmbedding(config, device);
    }

    /// <summary>
    /// A plan for <paramref name="model"/> when it is the built-in decoder with plain projections and the selection is
    /// exactly the last layers' parameters plus the head (the embedding when tied); null otherwise (the caller then
    /// uses the reference implementation).
    /// </summary>
    public static BatchedGradientProbe? TryCreate(ICausalLanguageModel model, IReadOnlyList<(string Name, Parameter Parameter)> selected)
    {
        if (model is not DecoderOnlyCausalLM || model.Config.ModelType is not ("llama" or "qwen2")) return null;
        var c = model.Config;
        var all = model.NamedParameters().ToDictionary(p => p.Name, p => p.Parameter, StringComparer.Ordinal);
        var used = new HashSet<string>(StringComparer.Ordinal);
        Parameter? Get(string name, bool required)
        {
            if (all.TryGetValue(name, out var p)) { used.Add(name); return p; }
            return required ? throw new KeyNotFoundException(name) : null;
        }
        try
        {
            var layers = new Layer[c.NumHiddenLayers];
            for (int i = 0; i < layers.Length; i++)
            {
                string a = $"model.layers.{i}.self_attn.", m = $"model.layers.{i}.mlp.", l = $"model.layers.{i}.";
                layers[i] = new Layer(
                    Get(a + "q_proj.weight", true)!, Get(a + "q_proj.bias", false), Get(a + "k_proj.weight", true)!, Get(a + "k_proj.bias", false),
                    Get(a + "v_proj.weight", true)!, Get(a + "v_proj.bias", false), Get(a + "o_proj.weight", true)!, Get(a + "o_proj.bias", false),
                    Get(m + "gate_proj.weight", true)!, Get(m + "gate_proj.bias", false), Get(m + "up_proj.weight", true)!, Get(m + "up_proj.bias", false),
                    Get(m + "down_proj.weight", true)!, Get(m + "down_proj.bias", false),
                    Get(l + "input_layernorm.weight", true)!, Get(l + "post_attention_layernorm.weight", true)!);
            }
            var embed = Get("model.embed_tokens.weight", true)!;
            var finalNorm = Get("model.norm.weight", true)!;
            var head = Get("lm_head.weight", false);
            if (used.Count != all.Count) return null; // adapters or other extra parameters: not the plain decoder
            bool tied = head is null;
            int first = Math.Max(0, c.NumHiddenLayers - LastLayersOf(selected, c.NumHiddenLayers));
            var expected = new HashSet<string>(StringComparer.Ordinal) { tied ? "model.embed_tokens.weight" : "lm_head.weight" };
            foreach (var name in all.Keys)
                if (name.StartsWith("model.layers.", StringComparison.Ordinal) && LayerOf(name) >= first) expected.Add(name);
            if (!expected.SetEquals(selected.Select(s => s.Name))) return null;
            return new BatchedGradientProbe(c, model.Device, layers, embed, head ?? embed, finalNorm, tied, first);
        }
        catch (KeyNotFoundException)
        {
            return null;
        }
    }

    private static int LayerOf(string name)
    {
        int start = "model.layers.".Length, end = name.IndexOf('.', start);
        return int.Parse(name.AsSpan(start, end - start), System.Globalization.CultureInfo.InvariantCulture);
    }

    private static int LastLayersOf(IReadOnlyList<(string Name, Parameter Parameter)> selected, int layers)
    {
        int min = layers;
        foreach (var (name, _) in selected)
            if (name.StartsWith("model.layers.", StringComparison.Ordinal)) min = Math.Min(min, LayerOf(name));
        return layers - min;
    }

    /// <summary>Gradient norms at positions 1..min(J, |y|) of one sequence (see the class remarks).</summary>
    public double[] SequenceNorms(ProfileInput input, int maxPositions, int? vocabSize)
    {
        int jn = Math.Min(maxPositions, input.ResponseIds.Count);
        if (jn == 0) return Array.Empty<double>();
        int p = input.PromptIds.Count;
        var ids = input.PromptIds.Concat(input.ResponseIds.Take(jn)).ToArray();
        int length = ids.Length - 1;
        int vocab = vocabSize ?? _config.VocabSize;
        if (vocab < 1 || vocab > _config.VocabSize)
            throw new ArgumentException($"vocabSize {vocab} must be between 1 and the logits width {_config.VocabSize}.", nameof(vocabSize));

        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        var inputIds = tensor(ids[..^1], ScalarType.Int64, _device);
        var targets = tensor(ids[p..], ScalarType.Int64, _device);
        using var start = 0L.ToScalar();
        using var stop = ((long)length).ToScalar();
        var positions = arange(start, stop, Scalars.One, dtype: ScalarType.Int64, device: _device).unsqueeze(0);
        var (cos4, sin4) = _rope.Tables(positions, ScalarType.Float32);
        var cos = cos4.view(length, -1);
        var sin = sin4.view(length, -1);

        // Forward, keeping what the backward needs from the first backward layer on.
        var rowsOfIds = _embed.index_select(0, inputIds);
        var x = rowsOfIds.dtype == ScalarType.Float32 ? rowsOfIds : rowsOfIds.to_type(ScalarType.Float32);
        var saved = new Saved?[_layers.Length];
        for (int l = 0; l < _layers.Length; l++)
        {
            var (next, s) = LayerForward(_layers[l], x, cos, sin);
            if (l >= _firstBackward) saved[l] = s;
            x = next;
        }
        var (rf, xhf) = NormStats(x);
        var hf = xhf.mul(F(_finalNorm));

        // Output head: logits at the probed positions, g_k = softmax - onehot (zero outside the tokenizer's vocabulary).
        var hk = hf.narrow(0, p - 1, jn);                                  // [jn, H]
        var headRows = F(_head).narrow(0, 0, vocab);                       // [vocab, H]
        var probs = hk.matmul(headRows.t()).softmax(-1);         // [jn, vocab]
        using var minusOne = (-1.0).ToScalar();
        var g = probs.scatter_add(1, targets.unsqueeze(1), full(new long[] { jn, 1 }, minusOne, ScalarType.Float32, _device));
        var total = g.mul(g).sum(1).mul(hk.mul(hk).sum(1));               // |g_k|^2 |h_k|^2
        var dhk = RmsNormBackward(g.matmul(headRows), xhf.narrow(0, p - 1, jn), rf.narrow(0, p - 1, jn), F(_finalNorm)); // [jn, H]
        Tensor? gFull = null;
        if (_tied)
            gFull = vocab == _config.VocabSize ? g
                : cat(new[] { g, zeros(new long[] { jn, _config.VocabSize - vocab }, ScalarType.Float32, _device) }, 1);

        var chunks = new List<Tensor>();
        int rows = Math.Max(1, RowsPerChunk);
        for (int k0 = 0; k0 < jn; k0 += rows)
        {
            using var chunkScope = NewDisposeScope();
            int c = Math.Min(rows, jn - k0);
            int prefix = p + k0 + c - 1;                                   // positions 0..prefix-1 reach these losses
            var sq = zeros(c, ScalarType.Float32, _device);
            using var first = ((long)(p - 1 + k0)).ToScalar();
            using var end = ((long)(p - 1 + k0 + c)).ToScalar();
            var rowPositions = arange(first, end, Scalars.One, dtype: ScalarType.Int64, device: _device);   // t_k of each row
            int last = _layers.Length - 1;
            // The last layer's cotangent sits at one position per row: its MLP, o_proj and queries are handled there only.
            var dOut = LastLayerBackward(_layers[last], saved[last]!, dhk.narrow(0, k0, c), rowPositions, prefix, cos, sin, last >= _firstSelected, ref sq);
            for (int l = last - 1; l >= _firstBackward; l--)
                dOut = LayerBackward(_layers[l], saved[l]!, dOut, prefix, cos.narrow(0, 0, prefix), sin.narrow(0, 0, prefix), l >= _firstSelected, ref sq);
            if (_tied)
            {
                // Input-embedding rows: ||sum_t e_{id_t} dE_t^T||^2 and the cross term 2 sum_t g_k[id_t] (h_k . dE_t).
                var idsPrefix = inputIds.narrow(0, 0, prefix);
                var same = idsPrefix.unsqueeze(1).eq(idsPrefix.unsqueeze(0)).to_type(ScalarType.Float32);
                sq = sq.add(dOut.matmul(dOut.transpose(1, 2)).mul(same).sum(new long[] { 1, 2 }), Scalars.One);
                var gAtIds = gFull!.narrow(0, k0, c).index_select(1, idsPrefix);            // [c, prefix]
                var hDotDe = dOut.mul(hk.narrow(0, k0, c).unsqueeze(1)).sum(-1);            // [c, prefix]
                sq = sq.add(gAtIds.mul(hDotDe).sum(1), Scalars.Two);
            }
            chunks.Add(sq.MoveToOuterDisposeScope());
        }
        total = total.add(cat(chunks, 0), Scalars.One);
        var norms = total.clamp_min(Scalars.ZeroDouble).sqrt().to_type(ScalarType.Float64).cpu();
        return norms.data<double>().ToArray();
    }

    private static Tensor F(Parameter p) => p.dtype == ScalarType.Float32 ? p : p.to_type(ScalarType.Float32);

    private static Tensor Linear(Tensor x, Parameter w, Parameter? b) =>
        nn.functional.linear(x, F(w), b is null ? null : F(b));

    /// <summary>rsqrt(mean(x^2) + eps) <c>[T, 1]</c> and the normalised x, as <c>RmsNorm</c> computes them in float32.</summary>
    private (Tensor R, Tensor Xh) NormStats(Tensor x)
    {
        using var eps = _config.RmsNormEps.ToScalar();
        var r = x.pow(Scalars.Two).mean(new long[] { -1 }, keepdim: true).add(eps, Scalars.One).rsqrt();
        return (r, x.mul(r));
    }

    /// <summary>d/dx of <c>w * x * r(x)</c> for cotangents <paramref name="dy"/> <c>[..., T, H]</c>: r (w dy - xh (xh . w dy) / H).</summary>
    private Tensor RmsNormBackward(Tensor dy, Tensor xh, Tensor r, Tensor w)
    {
        var dxh = dy.mul(w);
        using var minusInvH = (-1.0 / _config.HiddenSize).ToScalar();
        var dot = dxh.mul(xh).sum(-1, keepdim: true);
        return dxh.add(xh.mul(dot), minusInvH).mul(r);
    }

    private static Tensor Rope(Tensor x, Tensor cos, Tensor sin) => RotaryEmbedding.Apply(x, cos, sin);

    /// <summary>The transpose of <see cref="Rope"/>: dy cos + rotate_half^T(dy sin), rotate_half^T(z) = cat(z2, -z1).</summary>
    private static Tensor RopeBackward(Tensor dy, Tensor cos, Tensor sin)
    {
        long half = dy.shape[^1] / 2;
        var z = dy.mul(sin);
        var rotated = cat(new[] { z.narrow(-1, half, half), z.narrow(-1, 0, half).neg() }, -1);
        return dy.mul(cos).add(rotated, Scalars.One);
    }

    private (Tensor Output, Saved Saved) LayerForward(Layer w, Tensor x, Tensor cos, Tensor sin)
    {
        var c = _config;
        long t = x.shape[0];
        int heads = c.NumAttentionHeads, kvHeads = c.KeyValueHeads, d = c.HeadDim, groups = heads / kvHeads;
        var (r1, xh1) = NormStats(x);
        var n1 = xh1.mul(F(w.Ln1));
        var qr = Rope(Linear(n1, w.Wq, w.Bq).view(t, kvHeads, groups, d).permute(1, 2, 0, 3), cos, sin);   // [kv, G, T, D]
        var kr = Rope(Linear(n1, w.Wk, w.Bk).view(t, kvHeads, d).permute(1, 0, 2), cos, sin);              // [kv, T, D]
        var v = Linear(n1, w.Wv, w.Bv).view(t, kvHeads, d).permute(1, 0, 2);                                // [kv, T, D]
        using var scale = (1.0 / Math.Sqrt(d)).ToScalar();
        var scores = qr.matmul(kr.unsqueeze(1).transpose(-1, -2)).mul(scale);                              // [kv, G, T, T]
        var future = ones(new long[] { t, t }, ScalarType.Bool, _device).triu(1);
        var probs = scores.masked_fill(future, Scalars.NegativeInfinity).softmax(-1);
        var a = probs.matmul(v.unsqueeze(1)).permute(2, 0, 1, 3).reshape(t, heads * d);                    // [T, H*D]
        var h = x.add(Linear(a, w.Wo, w.Bo), Scalars.One);
        var (r2, xh2) = NormStats(h);
        var n2 = xh2.mul(F(w.Ln2));
        var gate = Linear(n2, w.Wg, w.Bg);
        var up = Linear(n2, w.Wu, w.Bu);
        var act = nn.functional.silu(gate);
        var m = act.mul(up);
        var output = h.add(Linear(m, w.Wd, w.Bd), Scalars.One);
        return (output, new Saved { R1 = r1, Xh1 = xh1, N1 = n1, Qr = qr, Kr = kr, V = v, Probs = probs, A = a, R2 = r2, Xh2 = xh2, N2 = n2, G = gate, U = up, Act = act, M = m });
    }

    /// <summary>Back through one layer for cotangents <c>[c, P, H]</c> over the first P positions; adds the selected
    /// parameters' squared gradient norms per row to <paramref name="sq"/>.</summary>
    private Tensor LayerBackward(Layer w, Saved s, Tensor dOut, int prefix, Tensor cos, Tensor sin, bool selected, ref Tensor sq)
    {
        var c = _config;
        long rows = dOut.shape[0];
        int heads = c.NumAttentionHeads, kvHeads = c.KeyValueHeads, d = c.HeadDim, groups = heads / kvHeads;
        Tensor P(Tensor t) => t.narrow(0, 0, prefix);

        // MLP: out = h + down(silu(gate(n2)) * up(n2)).
        var m = P(s.M);
        if (selected) sq = AddWeight(sq, dOut, m, w.Bd);
        var dm = dOut.matmul(F(w.Wd));
        var act = P(s.Act);
        var sig = P(s.G).sigmoid();
        // silu'(g) = sigmoid(g) (1 + g (1 - sigmoid(g))) = sigmoid(g) + silu(g) (1 - sigmoid(g)).
        var dsilu = sig.add(act.mul(sig.neg().add(Scalars.One, Scalars.One)), Scalars.One);
        var dg = dm.mul(P(s.U)).mul(dsilu);
        var du = dm.mul(act);
        var n2 = P(s.N2);
        if (selected) { sq = AddWeight(sq, dg, n2, w.Bg); sq = AddWeight(sq, du, n2, w.Bu); }
        var dn2 = dg.matmul(F(w.Wg)).add(du.matmul(F(w.Wu)), Scalars.One);
        var xh2 = P(s.Xh2);
        if (selected) sq = AddVector(sq, dn2.mul(xh2).sum(1));
        var dh = dOut.add(RmsNormBackward(dn2, xh2, P(s.R2), F(w.Ln2)), Scalars.One);

        // Attention: h = x + o(attend(rope(q(n1)), rope(k(n1)), v(n1))).
        if (selected) sq = AddWeight(sq, dh, P(s.A), w.Bo);
        var dA = dh.matmul(F(w.Wo)).view(rows, prefix, kvHeads, groups, d).permute(0, 2, 3, 1, 4);       // [c, kv, G, P, D]
        var probs = s.Probs.narrow(2, 0, prefix).narrow(3, 0, prefix);                                   // [kv, G, P, P]
        var v = s.V.narrow(1, 0, prefix).unsqueeze(1);                                                  // [kv, 1, P, D]
        var kr = s.Kr.narrow(1, 0, prefix).unsqueeze(1);
        var qr = s.Qr.narrow(2, 0, prefix);                                                             // [kv, G, P, D]
        var dP = dA.matmul(v.transpose(-1, -2));                                                       // [c, kv, G, P, P]
        var dv = probs.transpose(-1, -2).matmul(dA).sum(2);                                            // [c, kv, P, D]
        var dS = probs.mul(dP.add(dP.mul(probs).sum(-1, keepdim: true), Scalars.MinusOne));
        using var scale = (1.0 / Math.Sqrt(d)).ToScalar();
        var dq = RopeBackward(dS.matmul(kr).mul(scale), cos, sin).permute(0, 3, 1, 2, 4).reshape(rows, prefix, heads * d);
        var dk = RopeBackward(dS.transpose(-1, -2).matmul(qr).sum(2).mul(scale), cos, sin).permute(0, 2, 1, 3).reshape(rows, prefix, kvHeads * d);
        var dvf = dv.permute(0, 2, 1, 3).reshape(rows, prefix, kvHeads * d);
        var n1 = P(s.N1);
        if (selected) { sq = AddWeight(sq, dq, n1, w.Bq); sq = AddWeight(sq, dk, n1, w.Bk); sq = AddWeight(sq, dvf, n1, w.Bv); }
        var dn1 = dq.matmul(F(w.Wq)).add(dk.matmul(F(w.Wk)), Scalars.One).add(dvf.matmul(F(w.Wv)), Scalars.One);
        var xh1 = P(s.Xh1);
        if (selected) sq = AddVector(sq, dn1.mul(xh1).sum(1));
        return dh.add(RmsNormBackward(dn1, xh1, P(s.R1), F(w.Ln1)), Scalars.One);
    }

    /// <summary>
    /// The last layer for cotangents that are nonzero only at each row's own position <paramref name="positions"/>
    /// (<paramref name="dTop"/> <c>[c, H]</c>): everything position-wise (MLP, o_proj, q_proj, the norms) is computed at
    /// that position alone; only keys and values spread over the prefix. Returns the cotangents <c>[c, P, H]</c> of the
    /// layer's input, as <see cref="LayerBackward"/> would for the same one-position input.
    /// </summary>
    private Tensor LastLayerBackward(Layer w, Saved s, Tensor dTop, Tensor positions, int prefix, Tensor cosAll, Tensor sinAll, bool selected, ref Tensor sq)
    {
        var c = _config;
        long rows = dTop.shape[0];
        int heads = c.NumAttentionHeads, kvHeads = c.KeyValueHeads, d = c.HeadDim, groups = heads / kvHeads;
        Tensor At(Tensor t) => t.index_select(0, positions).unsqueeze(1);                                // [c, 1, ...]
        var dOut = dTop.unsqueeze(1);                                                                    // [c, 1, H]

        var m = At(s.M);
        if (selected) sq = AddLocal(sq, dOut, m, w.Bd);
        var dm = dOut.matmul(F(w.Wd));
        var act = At(s.Act);
        var sig = At(s.G).sigmoid();
        var dsilu = sig.add(act.mul(sig.neg().add(Scalars.One, Scalars.One)), Scalars.One);
        var dg = dm.mul(At(s.U)).mul(dsilu);
        var du = dm.mul(act);
        var n2 = At(s.N2);
        if (selected) { sq = AddLocal(sq, dg, n2, w.Bg); sq = AddLocal(sq, du, n2, w.Bu); }
        var dn2 = dg.matmul(F(w.Wg)).add(du.matmul(F(w.Wu)), Scalars.One);
        var xh2 = At(s.Xh2);
        if (selected) sq = AddVector(sq, dn2.mul(xh2).sum(1));
        var dh = dOut.add(RmsNormBackward(dn2, xh2, At(s.R2), F(w.Ln2)), Scalars.One);                  // [c, 1, H]

        if (selected) sq = AddLocal(sq, dh, At(s.A), w.Bo);
        var dA = dh.matmul(F(w.Wo)).view(rows, 1, kvHeads, groups, d).permute(0, 2, 3, 1, 4);           // [c, kv, G, 1, D]
        var probs = s.Probs.index_select(2, positions).narrow(3, 0, prefix).permute(2, 0, 1, 3).unsqueeze(3); // [c, kv, G, 1, P]
        var v = s.V.narrow(1, 0, prefix).unsqueeze(1);                                                  // [kv, 1, P, D]
        var kr = s.Kr.narrow(1, 0, prefix).unsqueeze(1);
        var qrRow = s.Qr.index_select(2, positions).permute(2, 0, 1, 3).unsqueeze(3);                    // [c, kv, G, 1, D]
        var dP = dA.matmul(v.transpose(-1, -2));                                                       // [c, kv, G, 1, P]
        var dv = probs.transpose(-1, -2).matmul(dA).sum(2);                                            // [c, kv, P, D]
        var dS = probs.mul(dP.add(dP.mul(probs).sum(-1, keepdim: true), Scalars.MinusOne));
        using var scale = (1.0 / Math.Sqrt(d)).ToScalar();
        var cosRow = cosAll.index_select(0, positions).view(rows, 1, 1, 1, d);
        var sinRow = sinAll.index_select(0, positions).view(rows, 1, 1, 1, d);
        var dq = RopeBackward(dS.matmul(kr).mul(scale), cosRow, sinRow).permute(0, 3, 1, 2, 4).reshape(rows, 1, heads * d);
        var cos = cosAll.narrow(0, 0, prefix);
        var sin = sinAll.narrow(0, 0, prefix);
        var dk = RopeBackward(dS.transpose(-1, -2).matmul(qrRow).sum(2).mul(scale), cos, sin).permute(0, 2, 1, 3).reshape(rows, prefix, kvHeads * d);
        var dvf = dv.permute(0, 2, 1, 3).reshape(rows, prefix, kvHeads * d);
        var n1 = s.N1.narrow(0, 0, prefix);
        if (selected) { sq = AddLocal(sq, dq, At(s.N1), w.Bq); sq = AddWeight(sq, dk, n1, w.Bk); sq = AddWeight(sq, dvf, n1, w.Bv); }
        // One-hot of each row's position over the prefix: scatters the single-position terms into [c, P, H].
        var onehot = nn.functional.one_hot(positions, prefix).to_type(ScalarType.Float32).unsqueeze(-1);  // [c, P, 1]
        var dn1 = dk.matmul(F(w.Wk)).add(dvf.matmul(F(w.Wv)), Scalars.One).add(onehot.mul(dq.matmul(F(w.Wq))), Scalars.One);
        var xh1 = s.Xh1.narrow(0, 0, prefix);
        if (selected) sq = AddVector(sq, dn1.mul(xh1).sum(1));
        return onehot.mul(dh).add(RmsNormBackward(dn1, xh1, s.R1.narrow(0, 0, prefix), F(w.Ln1)), Scalars.One);
    }

    /// <summary>Adds |delta_b|^2 |x_b|^2 (one position per row: <c>[c, 1, out]</c>, <c>[c, 1, in]</c>) and the bias's |delta_b|^2.</summary>
    private static Tensor AddLocal(Tensor sq, Tensor delta, Tensor x, Parameter? bias)
    {
        var dd = delta.mul(delta).sum(new long[] { 1, 2 });
        sq = sq.add(dd.mul(x.mul(x).sum(new long[] { 1, 2 })), Scalars.One);
        if (bias is not null) sq = sq.add(dd, Scalars.One);
        return sq;
    }

    /// <summary>Adds ||sum_t delta_t x_t^T||^2 (and the bias's ||sum_t delta_t||^2) per row.</summary>
    private static Tensor AddWeight(Tensor sq, Tensor delta, Tensor x, Parameter? bias)
    {
        long prefix = x.shape[0], inFeatures = x.shape[1];
        Tensor weight;
        if (prefix <= inFeatures)
        {
            var gram = x.matmul(x.t());                                          // [P, P], shared by every row
            weight = delta.matmul(delta.transpose(1, 2)).mul(gram).sum(new long[] { 1, 2 });
        }
        else
        {
            var grad = delta.transpose(1, 2).matmul(x);                          // [c, out, in]
            weight = grad.mul(grad).sum(new long[] { 1, 2 });
        }
        sq = sq.add(weight, Scalars.One);
        if (bias is not null) sq = AddVector(sq, delta.sum(1));
        return sq;
    }

    private static Tensor AddVector(Tensor sq, Tensor perRow) => sq.add(perRow.mul(perRow).sum(1), Scalars.One);

    public void Dispose() => _rope.Dispose();
}
