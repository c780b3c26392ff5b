namespace DeepAlign.Training;

/// <summary>
/// Settings of <see cref="DpoObjective"/>. Defaults are TRL's <c>DPOConfig</c> (beta 0.1, sigmoid loss, no label
/// smoothing, dropout disabled); see docs/training.md, "DPO".
/// </summary>
public sealed record DpoOptions
{
    /// <summary>beta: the strength of the implicit KL constraint to the reference (higher stays closer). Default 0.1 (TRL, and Rafailov et al.'s usual value).</summary>
    public double Beta { get; init; } = 0.1;

    /// <summary>The loss. Default <see cref="DpoLossType.Sigmoid"/>.</summary>
    public DpoLossType LossType { get; init; } = DpoLossType.Sigmoid;

    /// <summary>
    /// Label smoothing eps of the sigmoid loss (conservative DPO: the probability that a preference label is flipped),
    /// in [0, 0.5). Default 0 (plain DPO). Not defined for IPO (must stay 0).
    /// </summary>
    public double LabelSmoothing { get; init; }

    /// <summary>
    /// Run the policy forward passes with dropout disabled (in evaluation mode), as TRL's <c>disable_dropout = True</c>:
    /// the objective switches the student to evaluation mode before its forward, so it stays there for the run. With
    /// dropout the policy and the reference would differ at step 0 even when they are the same weights. Default true.
    /// </summary>
    public bool DisableDropout { get; init; } = true;

    /// <summary>When the model's logits are wider than the tokenizer, only the first this-many columns enter the log-softmax; null (default) uses the full width.</summary>
    public int? VocabularySize { get; init; }

    /// <summary>Throws <see cref="ArgumentException"/> naming the first invalid field.</summary>
    /// <returns>This instance.</returns>
    public DpoOptions Validate()
    {
        static void Fail(string field, object? value, string rule) => throw new ArgumentException($"DpoOptions.{field} = {value}: {rule}.", field);
        if (!(Beta > 0) || double.IsInfinity(Beta)) Fail(nameof(Beta), Beta, "must be a positive finite number");
        if (!Enum.IsDefined(LossType)) Fail(nameof(LossType), (int)LossType, "is not a known loss type (Sigmoid or Ipo)");
        if (!(LabelSmoothing >= 0 && LabelSmoothing < 0.5)) Fail(nameof(LabelSmoothing), LabelSmoothing, "must be in [0, 0.5)");
        if (LossType == DpoLossType.Ipo && LabelSmoothing != 0) Fail(nameof(LabelSmoothing), LabelSmoothing, "label smoothing applies to the sigmoid loss only; it must be 0 with IPO");
        if (VocabularySize is <= 0) Fail(nameof(VocabularySize), VocabularySize, "must be positive (or null for the full width)");
        return this;
    }
}
