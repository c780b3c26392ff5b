using static TorchSharp.torch;

namespace DeepAlign.Training;

/// <summary>
/// Plain supervised fine-tuning: cross-entropy of the target tokens, a token-weighted mean over the accumulated
/// batch (docs/method.md section 0), log-softmax in float32. Logged term: <c>ce</c>.
/// </summary>
public sealed class SftObjective : ITrainingObjective
{
    /// <summary>Creates the objective.</summary>
    /// <param name="vocabularySize">When the model's logits are wider than the tokenizer, only the first this-many
    /// columns enter the softmax (docs/method.md section 0); null uses the full width.</param>
    public SftObjective(int? vocabularySize = null)
    {
        if (vocabularySize is <= 0) throw new ArgumentOutOfRangeException(nameof(vocabularySize), vocabularySize, "The vocabulary size must be positive.");
        VocabularySize = vocabularySize;
    }

    /// <summary>Columns of the logits that enter the softmax (null: all).</summary>
    public int? VocabularySize { get; }

    /// <inheritdoc />
    public string Name => "sft";

    /// <inheritdoc />
    public IReadOnlyList<string> RequiredTeachers => Array.Empty<string>();

    /// <inheritdoc />
    public TokenCounts CountTokens(TrainingBatch batch) => new(TokenCounts.DefaultGroup, batch.TargetCount);

    /// <inheritdoc />
    public ObjectiveOutput Compute(TrainingBatch batch, ObjectiveContext context)
    {
        using var logits = context.Student.Forward(batch.InputIds, batch.AttentionMask);
        var sum = TargetNegLogLikelihoodSum(logits, batch.InputIds, batch.TargetMask, VocabularySize);
        var loss = context.Normalize(sum);
        return new ObjectiveOutput { Loss = loss, Terms = new Dictionary<string, Tensor> { ["ce"] = loss.detach() } };
    }

    /// <summary>
    /// Sum over target tokens of -log p(token | prefix), with log-softmax in float32 over the first
    /// <paramref name="vocabularySize"/> columns; only the rows of target positions are normalised.
    /// </summary>
    /// <param name="logits">[batch, length, V] logits aligned with <paramref name="inputIds"/>.</param>
    /// <param name="inputIds">[batch, length] ids.</param>
    /// <param name="targetMask">[batch, length] bool: token t is a target predicted from position t - 1.</param>
    /// <param name="vocabularySize">Columns to keep, or null.</param>
    public static Tensor TargetNegLogLikelihoodSum(Tensor logits, Tensor inputIds, Tensor targetMask, int? vocabularySize = null)
    {
        long t = inputIds.shape[1];
        var mask = targetMask.narrow(1, 1, t - 1);                     // [B, T-1] targets at t = 1..T-1
        var predicting = logits.narrow(1, 0, t - 1);                     // logits at t - 1
        if (vocabularySize is int v && v < predicting.shape[2]) predicting = predicting.narrow(2, 0, v);
        var rows = predicting[mask];                                      // [N, V]
        var labels = inputIds.narrow(1, 1, t - 1)[mask];                 // [N]
        var logp = rows.to(ScalarType.Float32).log_softmax(-1);
        var picked = logp.gather(1, labels.unsqueeze(1)).squeeze(1);
        return picked.sum().neg();
    }
}
