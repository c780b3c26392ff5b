using System.Diagnostics;
using DeepAlign.Generation;

namespace DeepAlign.Evaluation.Attacks;

/// <summary>The harmful prompts sent as they are, sampled with the attack settings (temperature 0.9, top-p 0.6 by default).</summary>
public sealed class PlainRequestAttack : IAttack
{
    private const int AttackId = 1;

    /// <inheritdoc />
    public string Kind => "plain";
    /// <inheritdoc />
    public string Label => "plain";
    /// <inheritdoc />
    public bool NeedsBaseModel => false;

    /// <inheritdoc />
    public AttackResult Run(AttackContext context, IDefense defense, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(context);
        var clock = Stopwatch.StartNew();
        var requests = Enumerable.Range(0, context.Prompts.Count)
            .Select(i => new GenerationRequest(context.PromptIds(i)) { Seed = context.Seed(AttackId, i) }).ToList();
        var outs = context.Generate(defense, requests, context.Sampling(AttackId), cancellationToken);
        return context.JudgeAll(Kind, Label, new Dictionary<string, double>(), outs.Select(context.Decode).ToList(), clock, cancellationToken);
    }
}
