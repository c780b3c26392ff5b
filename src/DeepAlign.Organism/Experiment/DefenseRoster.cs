using DeepAlign.Evaluation;
using DeepAlign.Method;
using DeepAlign.Method.Contrastive;
using DeepAlign.Method.SafeDecoding;
using DeepAlign.Models;
using DeepAlign.Text;
using TorchSharp;

namespace DeepAlign.Organism.Experiment;

/// <summary>The defenses the organism experiment evaluates side by side, and how each is built.</summary>
public static class DefenseRoster
{
    /// <summary>The contrastive decoding defenses: one per rule and alpha schedule, beta_cd 0.1 (docs/method-formulas.md defaults).</summary>
    public static IReadOnlyList<(string Name, ContrastiveRule Rule, IAlphaSchedule Alpha)> ContrastiveVariants { get; } =
    [
        ("cd-full", ContrastiveRule.Full, new ConstantAlpha(1.0)),
        ("cd-base-favored", ContrastiveRule.BaseFavoredOnly, new ConstantAlpha(1.0)),
        ("cd-ramp", ContrastiveRule.Full, new LinearRampAlpha()),
        ("cd-incompleteness", ContrastiveRule.Full, new IncompletenessDrivenAlpha(2.0)),
    ];

    /// <summary>A contrastive decoding defense over the pair, logits cut to the tokenizer's vocabulary.</summary>
    /// <param name="name">Name in tables.</param>
    /// <param name="baseModel">The base model.</param>
    /// <param name="aligned">The aligned model.</param>
    /// <param name="text">The pair's conversation encoder.</param>
    /// <param name="rule">Contrastive rule.</param>
    /// <param name="alpha">Alpha schedule.</param>
    /// <param name="beta">Plausibility cut beta_cd.</param>
    public static ScorerDefense Contrastive(string name, ICausalLanguageModel baseModel, ICausalLanguageModel aligned,
        ConversationEncoder text, ContrastiveRule rule, IAlphaSchedule alpha, double beta)
    {
        ArgumentNullException.ThrowIfNull(text);
        var options = new ContrastiveDecoderOptions { Rule = rule, Alpha = alpha, PlausibilityBeta = beta, VocabSize = text.VocabSize }.Validate();
        var scorer = new ContrastiveScorer(aligned, baseModel, options);
        var stops = aligned.Config.EosTokenIds?.Select(i => (long)i).ToArray() ?? (text.EndOfTurnId is int eot ? [eot] : []);
        return new ScorerDefense(name, scorer, stops, text.PadId, scorer);
    }

    /// <summary>Name of the SafeDecoding defense in tables.</summary>
    public const string SafeDecodingName = "safedecoding";

    /// <summary>
    /// SafeDecoding (Xu et al., ACL 2024; docs/safedecoding.md) over the aligned model with a safety expert, at the
    /// library's defaults (m = 2, c = 5, alpha = 3; forced prefix tokens count toward m), logits cut to the tokenizer.
    /// </summary>
    /// <param name="name">Name in tables.</param>
    /// <param name="aligned">The aligned (original) model.</param>
    /// <param name="expert">The safety expert (owned by the returned defense).</param>
    /// <param name="text">The pair's conversation encoder.</param>
    public static ScorerDefense SafeDecoding(string name, ICausalLanguageModel aligned, ICausalLanguageModel expert, ConversationEncoder text)
    {
        ArgumentNullException.ThrowIfNull(text);
        ArgumentNullException.ThrowIfNull(expert);
        var scorer = new SafeDecodingScorer(aligned, expert, new SafeDecodingOptions { VocabSize = text.VocabSize });
        var stops = aligned.Config.EosTokenIds?.Select(i => (long)i).ToArray() ?? (text.EndOfTurnId is int eot ? [eot] : []);
        return new ScorerDefense(name, scorer, stops, text.PadId, expert as IDisposable);
    }

    /// <summary>
    /// The defenses evaluated side by side: the aligned model, contrastive decoding (each rule and schedule), SafeDecoding
    /// (when an expert folder is given), and the retrained models (loaded from their folders; owned by the returned defenses).
    /// </summary>
    /// <param name="baseModel">The base model.</param>
    /// <param name="aligned">The aligned model.</param>
    /// <param name="text">The pair's conversation encoder.</param>
    /// <param name="trained">Retrained defenses by name and folder.</param>
    /// <param name="safeDecodingExpert">Folder of SafeDecoding's safety expert (the organism uses the augmentation
    /// model); null: no SafeDecoding row.</param>
    public static List<IDefense> Create(ICausalLanguageModel baseModel, ICausalLanguageModel aligned, ConversationEncoder text,
        IReadOnlyList<(string Name, string Directory)> trained, string? safeDecodingExpert = null)
    {
        ArgumentNullException.ThrowIfNull(trained);
        var list = new List<IDefense> { ScorerDefense.ForModel("aligned", aligned, text.VocabSize) };
        foreach (var (name, rule, alpha) in ContrastiveVariants)
            list.Add(Contrastive(name, baseModel, aligned, text, rule, alpha, 0.1));
        if (safeDecodingExpert is not null)
            list.Add(SafeDecoding(SafeDecodingName, aligned, CausalLanguageModel.FromPretrained(safeDecodingExpert, torch.CPU), text));
        foreach (var (name, dir) in trained)
            list.Add(ScorerDefense.ForModel(name, CausalLanguageModel.FromPretrained(dir, torch.CPU), text.VocabSize, ownsModel: true));
        return list;
    }
}
