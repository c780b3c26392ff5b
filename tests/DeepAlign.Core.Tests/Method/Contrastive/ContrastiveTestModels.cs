using DeepAlign.Generation;
using DeepAlign.Testing;
using DeepAlign.Tests.Generation;
using static TorchSharp.torch;

namespace DeepAlign.Tests.Method.Contrastive;

/// <summary>Models and helpers shared by the contrastive decoding tests.</summary>
internal static class ContrastiveTestModels
{
    /// <summary>p_a after the hand context: the aligned model.</summary>
    public static readonly double[] AlignedP = { 0.5, 0.3, 0.09, 0.08, 0.03 };

    /// <summary>p_b after the hand context: the base model (token 4 has tiny mass, so the full rule without cut loves it).</summary>
    public static readonly double[] BaseP = { 0.2, 0.5, 0.25, 0.0497, 0.0003 };

    /// <summary>A 5-token table model giving <paramref name="p"/> after <paramref name="context"/> and a fixed other distribution elsewhere.</summary>
    public static TableCausalLanguageModel Hand(double[] p, long[] context, int? eos = null) =>
        TableCausalLanguageModel.CreateBuilder(5)
            .ByDefault().Probabilities(0.1, 0.2, 0.3, 0.25, 0.15)
            .When(context).Probabilities(p)
            .WithSpecialTokens(eos: eos is { } e ? new[] { e } : null)
            .Build();

    /// <summary>A table model with pseudo-random logits per context, scaled by <paramref name="sharpness"/> (large: peaked) and salted.</summary>
    public static TableCausalLanguageModel Hashed(int vocab, float sharpness, long salt) =>
        TableCausalLanguageModel.CreateBuilder(vocab)
            .Otherwise(c => GenerationTestModels.HashLogits(c.Append(salt).ToArray(), vocab).Select(l => l * sharpness).ToArray())
            .Build();

    /// <summary>Records the scores the generator sees at each step (row-major copies) and optionally forces a token script.</summary>
    public sealed class RecordingForcer(IReadOnlyDictionary<int, long[]>? script = null) : ITokenForcer
    {
        /// <summary>Per step: (request index, response position, scores).</summary>
        public List<(int Row, int Position, float[] Scores)> Seen { get; } = new();

        public long?[]? Choose(Tensor scores, IReadOnlyList<ForcingRow> rows)
        {
            var data = scores.cpu().data<float>().ToArray();
            int v = (int)scores.shape[1];
            for (int i = 0; i < rows.Count; i++)
                Seen.Add((rows[i].Row, rows[i].ResponsePosition, data.AsSpan(i * v, v).ToArray()));
            if (script is null) return null;
            return rows.Select(r => script.TryGetValue(r.Row, out var s) && r.GeneratedIds.Count < s.Length ? s[r.GeneratedIds.Count] : (long?)null).ToArray();
        }
    }
}
