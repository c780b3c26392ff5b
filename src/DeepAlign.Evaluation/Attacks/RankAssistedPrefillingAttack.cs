using System.Diagnostics;
using DeepAlign.Generation;

namespace DeepAlign.Evaluation.Attacks;

/// <summary>
/// Rank-assisted prefilling (after PRESTO, 2025): for the first <see cref="Steps"/> steps the attacker forces, among the
/// defense's top <see cref="TopR"/> tokens, the harmful reference's next token if it is there, else the one the base
/// model rates highest (<see cref="RankAssistedForcer"/>); then the defense continues on its own. Needs the base model.
/// </summary>
public sealed class RankAssistedPrefillingAttack : IAttack
{
    private const int AttackId = 2;

    /// <summary>Creates the attack.</summary>
    /// <param name="steps">Choices overridden per row (default 10).</param>
    /// <param name="topR">Size of the defense's candidate set (default 20).</param>
    public RankAssistedPrefillingAttack(int steps = 10, int topR = 20)
    {
        if (steps < 1) throw new ArgumentOutOfRangeException(nameof(steps), steps, "steps must be at least 1.");
        if (topR < 1) throw new ArgumentOutOfRangeException(nameof(topR), topR, "topR must be at least 1.");
        Steps = steps;
        TopR = topR;
    }

    /// <summary>Choices overridden per row.</summary>
    public int Steps { get; }
    /// <summary>Size of the defense's candidate set.</summary>
    public int TopR { get; }
    /// <inheritdoc />
    public string Kind => "rank_assisted";
    /// <inheritdoc />
    public string Label => $"rank-assisted K={Steps} R={TopR}";
    /// <inheritdoc />
    public bool NeedsBaseModel => true;

    /// <inheritdoc />
    public AttackResult Run(AttackContext context, IDefense defense, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(defense);
        var baseModel = context.BaseModel ?? throw new InvalidOperationException("The rank-assisted prefilling attack needs the base model (AttackContext.BaseModel).");
        var clock = Stopwatch.StartNew();
        int n = context.Prompts.Count, batch = context.Options.BatchSize;
        var texts = new List<string>(n);
        int fromReference = 0, fromBase = 0;
        for (int start = 0; start < n; start += batch)
        {
            int count = Math.Min(batch, n - start);
            var requests = Enumerable.Range(start, count).Select(i => new GenerationRequest(context.PromptIds(i)) { Seed = context.Seed(AttackId, i) }).ToList();
            var forcer = new RankAssistedForcer(baseModel, Enumerable.Range(start, count).Select(context.HarmfulResponseIds).ToList(),
                Steps, TopR, context.Encoder.PadId);
            var outs = defense.Generate(requests, context.Sampling(AttackId) with { TokenForcer = forcer }, cancellationToken);
            texts.AddRange(outs.Select(context.Decode));
            fromReference += forcer.ForcedFromReference;
            fromBase += forcer.ForcedFromBase;
        }
        int forced = Math.Max(1, fromReference + fromBase);
        return context.JudgeAll(Kind, Label,
            new Dictionary<string, double>
            {
                ["k"] = Steps, ["r"] = TopR, ["forced_from_reference_share"] = (double)fromReference / forced,
                // The counts behind the share, so that sharded runs merge it exactly (AttackPartialReport).
                ["forced_from_reference"] = fromReference, ["forced_from_base"] = fromBase,
            },
            texts, clock, cancellationToken);
    }
}
