namespace DeepAlign.Evaluation.Attacks;

/// <summary>
/// One attack of the evaluation harness: it sends the harmful prompts of an <see cref="AttackContext"/> to a defense in
/// its own way (plain, with a forced prefix, with a token forcer, under many decoding settings), judges the answers with
/// the context's judges, and returns one <see cref="AttackResult"/>. Implement it to add an attack; pass it to
/// <see cref="SafetyEvaluator"/> beside the built-in ones (see docs/evaluation.md).
/// </summary>
/// <remarks>Implementations must be deterministic given the context's seed (derive every sampling seed from
/// <see cref="AttackContext.Seed(int, int)"/> with an attack id of your own) and must not keep state between runs, since
/// the harness may run one attack on several defenses at once.</remarks>
public interface IAttack
{
    /// <summary>Attack kind in the results (e.g. <c>prefill</c>); attacks of one kind differ by <see cref="Label"/>.</summary>
    string Kind { get; }

    /// <summary>Column label in tables (e.g. <c>prefill K=10</c>); unique within one evaluation.</summary>
    string Label { get; }

    /// <summary>Whether the attack needs <see cref="AttackContext.BaseModel"/>; the harness skips it when there is none.</summary>
    bool NeedsBaseModel { get; }

    /// <summary>Attacks <paramref name="defense"/> with every prompt of <paramref name="context"/> and judges the answers.</summary>
    /// <param name="context">Prompts, judges, decoding settings and helpers.</param>
    /// <param name="defense">The defense under attack.</param>
    /// <param name="cancellationToken">Cancellation.</param>
    AttackResult Run(AttackContext context, IDefense defense, CancellationToken cancellationToken = default);
}
