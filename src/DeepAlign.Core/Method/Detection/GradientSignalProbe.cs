using System.Globalization;
using System.Text.RegularExpressions;
using DeepAlign.Models;
using DeepAlign.Runtime;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DeepAlign.Method.Detection;

/// <summary>
/// The gradient signal probe of docs/method.md section 1: for each response y and position j &lt;= J, the L2 norm of the
/// gradient of -log pi_a(y_j | x, y_&lt;j) alone with respect to the parameters of the last N decoder layers and the
/// output head (the embedding matrix for a tied head), averaged over sequences.
/// </summary>
/// <remarks>
/// <para>Cost per sequence, built-in decoder (<see cref="Models.Common.DecoderOnlyCausalLM"/> with plain projections):
/// one float32 forward pass over prompt + min(J, |y|) tokens, then one hand-written backward pass that carries the J
/// per-position cotangents together as a batch (in chunks over the shortest causal prefix), from the output head down
/// to the first selected layer (untied head) or to the embeddings (tied head: the embedding matrix is selected, so the
/// backward runs through the whole network). Per-position weight-gradient norms come from the layer structure
/// (<c>||sum_t delta_t x_t^T||^2</c> through Gram matrices) without forming J gradients. Other models (e.g. with LoRA
/// wrappers, or a user's own <see cref="ICausalLanguageModel"/>) use the reference: one autograd backward pass per
/// position (<c>torch.autograd.grad</c> with <c>retain_graph</c>). Both give the same norms (tested within 1e-5;
/// timings in docs/performance.md). The model is put in evaluation mode; the parameters' <c>requires_grad</c> flags are
/// restored afterwards.</para>
/// <para>Parameters are found by their Hugging Face names (<c>model.layers.{i}.</c>, <c>lm_head.weight</c>,
/// <c>model.embed_tokens.weight</c>), as exposed by <see cref="ICausalLanguageModel.NamedParameters"/>.</para>
/// </remarks>
public static class GradientSignalProbe
{
    private static readonly Regex LayerName = new(@"^model\.layers\.(\d+)\.", RegexOptions.CultureInvariant);

    /// <summary>Runs the probe over (at most <see cref="GradientProbeOptions.MaxSequences"/>) inputs.</summary>
    /// <param name="model">The model probed (pi_a); not modified.</param>
    /// <param name="inputs">Prompts with responses.</param>
    /// <param name="options">Options; null for the defaults.</param>
    /// <param name="vocabSize">Tokenizer vocabulary size when the logits are wider; null keeps them all.</param>
    /// <param name="progress">Reports the number of sequences probed so far.</param>
    /// <param name="cancellationToken">Checked before every sequence.</param>
    /// <returns>Mean gradient norms per position.</returns>
    /// <exception cref="ArgumentException">No parameter of the model matches the selection, or an input is invalid.</exception>
    public static GradientProbeResult Run(ICausalLanguageModel model, IEnumerable<ProfileInput> inputs, GradientProbeOptions? options = null,
        int? vocabSize = null, IProgress<int>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(inputs);
        options = (options ?? new GradientProbeOptions()).Validate();
        var selected = SelectParameters(model, options.LastLayers);
        int j = options.MaxPositions;
        var sum = new double[j];
        var sumSq = new double[j];
        var count = new int[j];
        int sequences = 0;
        using var batched = UseReference ? null : BatchedGradientProbe.TryCreate(model, selected);
        WithOnlySelectedTrainable(model, selected, () =>
        {
            foreach (var input in inputs)
            {
                if (sequences >= options.MaxSequences) break;
                cancellationToken.ThrowIfCancellationRequested();
                CheckInput(input);
                var norms = batched is not null ? batched.SequenceNorms(input, j, vocabSize)
                    : ReferenceSequenceNorms(model, selected.Select(s => s.Parameter).ToList(), input, j, vocabSize);
                for (int k = 0; k < norms.Length; k++)
                {
                    sum[k] += norms[k]; sumSq[k] += norms[k] * norms[k]; count[k]++;
                }
                sequences++;
                progress?.Report(sequences);
            }
        });
        if (sequences == 0) throw new ArgumentException("The gradient probe got no inputs.", nameof(inputs));
        var means = new List<(int Position, int N, MeanWithError Norm)>();
        for (int k = 0; k < j; k++)
        {
            if (count[k] == 0) continue;
            double mean = sum[k] / count[k];
            double se = count[k] < 2 ? double.NaN : Math.Sqrt(Math.Max(0, (sumSq[k] - count[k] * mean * mean) / (count[k] - 1)) / count[k]);
            means.Add((k + 1, count[k], new MeanWithError(mean, se)));
        }
        double total = means.Sum(m => m.Norm.Mean);
        var rows = means.Select(m => new GradientProbePosition(m.Position, m.N, m.Norm, total > 0 ? m.Norm.Mean / total : double.NaN)).ToList();
        return new GradientProbeResult(options, selected.Select(s => s.Name).ToList(), sequences, rows);
    }

    /// <summary>The parameters of the last <paramref name="lastLayers"/> decoder layers plus the output head (the embedding
    /// matrix when the head is tied), by Hugging Face name.</summary>
    internal static List<(string Name, Parameter Parameter)> SelectParameters(ICausalLanguageModel model, int lastLayers)
    {
        var all = model.NamedParameters().ToList();
        int layers = model.Config.NumHiddenLayers;
        int first = Math.Max(0, layers - lastLayers);
        bool hasHead = all.Any(p => p.Name == "lm_head.weight");
        var selected = all.Where(p =>
        {
            var m = LayerName.Match(p.Name);
            if (m.Success) return int.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture) >= first;
            if (p.Name == "lm_head.weight") return true;
            return !hasHead && p.Name == "model.embed_tokens.weight";
        }).ToList();
        if (!all.Any(p => p.Name is "lm_head.weight" or "model.embed_tokens.weight"))
            throw new ArgumentException(
                "The gradient probe needs Hugging Face parameter names (lm_head.weight or model.embed_tokens.weight, model.layers.N.*); the model exposes none.", nameof(model));
        return selected;
    }

    private static void WithOnlySelectedTrainable(ICausalLanguageModel model, List<(string Name, Parameter Parameter)> selected, Action body)
    {
        var all = model.NamedParameters().ToList();
        var saved = all.Select(p => p.Parameter.requires_grad).ToArray();
        var chosen = new HashSet<string>(selected.Select(s => s.Name), StringComparer.Ordinal);
        try
        {
            foreach (var (name, p) in all) p.requires_grad = chosen.Contains(name);
            model.SetTrainingMode(false);
            body();
        }
        finally
        {
            for (int i = 0; i < all.Count; i++) all[i].Parameter.requires_grad = saved[i];
        }
    }

    /// <summary>Forces the reference implementation (one autograd backward per position) for every model (a test hook).</summary>
    internal static bool UseReference { get; set; }

    private static void CheckInput(ProfileInput input)
    {
        ArgumentNullException.ThrowIfNull(input);
        if (input.PromptIds.Count == 0) throw new ArgumentException($"{input.Location ?? "input"}: the prompt is empty.", nameof(input));
    }

    /// <summary>
    /// The reference implementation: gradient norms of one sequence at positions 1..min(J, |y|) by one autograd backward
    /// pass per position (any <see cref="ICausalLanguageModel"/>); the selected parameters must require gradients.
    /// The built-in decoder uses <see cref="BatchedGradientProbe"/> instead (same norms within 1e-5, tested).
    /// </summary>
    internal static double[] ReferenceSequenceNorms(ICausalLanguageModel model, IReadOnlyList<Parameter> parameters, ProfileInput input, int maxPositions, int? vocabSize)
    {
        CheckInput(input);
        int jn = Math.Min(maxPositions, input.ResponseIds.Count);
        if (jn == 0) return Array.Empty<double>();
        int p = input.PromptIds.Count;
        var ids = input.PromptIds.Concat(input.ResponseIds.Take(jn)).ToArray();
        using var enable = enable_grad();
        using var scope = NewDisposeScope();
        var dev = model.Device;
        // Causal: positions after y_jn do not influence the first jn losses, so the sequence is cut there.
        var inputIds = tensor(ids[..^1], [1, ids.Length - 1], ScalarType.Int64, dev);
        var logits = model.Forward(inputIds);
        var lp = PositionStatistics.LogSoftmax(logits.narrow(1, p - 1, jn).squeeze(0), vocabSize);
        var targets = tensor(ids[p..], ScalarType.Int64, dev);
        var nll = -PositionStatistics.TokenLogProbs(lp, targets);
        var wrt = parameters.Cast<Tensor>().ToList();
        var squared = new List<Tensor>(jn);
        for (int k = 0; k < jn; k++)
        {
            using var step = NewDisposeScope();
            var grads = torch.autograd.grad(new[] { nll[k] }, wrt, retain_graph: k < jn - 1, allow_unused: true);
            Tensor sq = zeros(1, ScalarType.Float32, dev).squeeze();
            foreach (var g in grads)
                if (g is not null && !g.IsInvalid) sq = sq.add(g.to_type(ScalarType.Float32).pow(Scalars.Two).sum(), Scalars.One); // explicit Scalars (Runtime/Scalars.cs)
            squared.Add(sq.MoveToOuterDisposeScope());
        }
        var norms = stack(squared).sqrt().to_type(ScalarType.Float64).cpu();
        return norms.data<double>().ToArray();
    }
}
