using DeepAlign.Data;
using DeepAlign.Evaluation;
using DeepAlign.Generation;
using DeepAlign.Method;
using DeepAlign.Models;
using DeepAlign.Text;

namespace DeepAlign.Organism.Experiment;

/// <summary>Invariants the organism experiment checks on the pinned pair before it reports results.</summary>
public static class PipelineInvariants
{
    /// <summary>
    /// Contrastive decoding with alpha = 0 and beta_cd = 0 must produce exactly the aligned model's ids on held-out
    /// harmful prompts with prefilling, greedy and with the attacks' sampling settings (temperature 0.9, top-p 0.6) and seeds.
    /// </summary>
    /// <param name="baseModel">The base model.</param>
    /// <param name="aligned">The aligned model.</param>
    /// <param name="text">The pair's conversation encoder.</param>
    /// <param name="harmful">Harmful items with <c>harmful_response</c>.</param>
    /// <param name="prefill">Forced prefix length.</param>
    /// <param name="maxRows">Rows checked at most.</param>
    /// <param name="maxNewTokens">New tokens per row.</param>
    public static AlphaZeroInvariantResult CheckAlphaZero(ICausalLanguageModel baseModel, ICausalLanguageModel aligned, ConversationEncoder text,
        IReadOnlyList<DatasetRecord> harmful, int prefill, int maxRows, int maxNewTokens)
    {
        ArgumentNullException.ThrowIfNull(harmful);
        using var reference = ScorerDefense.ForModel("aligned", aligned, text.VocabSize);
        using var zero = DefenseRoster.Contrastive("cd-zero", baseModel, aligned, text, ContrastiveRule.Full, new ConstantAlpha(0.0), 0.0);
        var requests = harmful.Take(maxRows).Select((item, i) => new GenerationRequest(text.PromptIds(item))
        {
            ForcedPrefixIds = text.ResponseIds(item.HarmfulResponse!).Take(prefill).ToArray(),
            Seed = 1000 + i,
        }).ToList();
        int greedy = 0, sampled = 0;
        foreach (var options in new[]
        {
            new GenerationOptions { MaxNewTokens = maxNewTokens },
            new GenerationOptions { MaxNewTokens = maxNewTokens, DoSample = true, Temperature = 0.9, TopP = 0.6, Seed = 7 },
        })
        {
            var a = new List<GeneratedSequence>();
            var c = new List<GeneratedSequence>();
            foreach (var chunk in requests.Chunk(32))
            {
                a.AddRange(reference.Generate(chunk, options));
                c.AddRange(zero.Generate(chunk, options));
            }
            int same = a.Zip(c).Count(p => p.First.GeneratedIds.SequenceEqual(p.Second.GeneratedIds));
            if (options.DoSample) sampled = same; else greedy = same;
        }
        return new AlphaZeroInvariantResult(requests.Count, greedy, sampled);
    }
}
