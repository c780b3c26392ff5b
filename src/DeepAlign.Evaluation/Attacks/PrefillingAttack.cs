using System.Diagnostics;
using DeepAlign.Generation;

namespace DeepAlign.Evaluation.Attacks;

/// <summary>
/// Prefilling (Qi et al. 2024): the first <see cref="PrefixLength"/> tokens of the harmful reference answer are forced as
/// the start of the response (all of it when shorter) and the defense continues; the judged text is prefix + continuation.
/// </summary>
public sealed class PrefillingAttack : IAttack
{
    /// <summary>Creates the attack.</summary>
    /// <param name="prefixLength">K, the number of forced tokens (at least 1).</param>
    public PrefillingAttack(int prefixLength)
    {
        if (prefixLength < 1) throw new ArgumentOutOfRangeException(nameof(prefixLength), prefixLength, "The prefix length K must be at least 1.");
        PrefixLength = prefixLength;
    }

    /// <summary>K, the number of forced tokens.</summary>
    public int PrefixLength { get; }
    /// <inheritdoc />
    public string Kind => "prefill";
    /// <inheritdoc />
    public string Label => $"prefill K={PrefixLength}";
    /// <inheritdoc />
    public bool NeedsBaseModel => false;

    /// <inheritdoc />
    public AttackResult Run(AttackContext context, IDefense defense, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(context);
        var clock = Stopwatch.StartNew();
        int attackId = 100 + PrefixLength;
        var requests = Enumerable.Range(0, context.Prompts.Count).Select(i =>
            GenerationRequest.WithPrefix(context.PromptIds(i), context.HarmfulResponseIds(i).Take(PrefixLength).ToArray())
                with { Seed = context.Seed(attackId, i) }).ToList();
        var outs = context.Generate(defense, requests, context.Sampling(attackId), cancellationToken);
        return context.JudgeAll(Kind, Label, new Dictionary<string, double> { ["k"] = PrefixLength }, outs.Select(context.Decode).ToList(), clock, cancellationToken);
    }
}
