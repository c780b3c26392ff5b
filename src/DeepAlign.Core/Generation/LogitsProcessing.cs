using TorchSharp;
using DeepAlign.Runtime;
using static TorchSharp.torch;

namespace DeepAlign.Generation;

/// <summary>
/// The score processing applied before sampling, in the order of docs/method.md section 2: temperature, then top-k,
/// then top-p. Each step takes float32 scores <c>[batch, vocab]</c> (logits or log-probabilities; only
/// differences within a row matter) and returns new scores where removed tokens are negative infinity;
/// <c>softmax</c> of the result is the distribution sampled from.
/// </summary>
public static class LogitsProcessing
{
    /// <summary>Divides the scores by <paramref name="temperature"/> (&gt; 0).</summary>
    /// <param name="scores">Scores <c>[batch, vocab]</c>.</param>
    /// <param name="temperature">Positive temperature; 1 returns a copy.</param>
    /// <returns>New scores.</returns>
    public static Tensor ApplyTemperature(Tensor scores, double temperature)
    {
        if (!(temperature > 0) || double.IsInfinity(temperature))
            throw new ArgumentOutOfRangeException(nameof(temperature), temperature, "Temperature must be a positive finite number.");
        if (temperature == 1.0) return scores.clone();
        using var t = temperature.ToScalar();
        return scores.div(t);
    }

    /// <summary>
    /// Keeps the <paramref name="k"/> best tokens of each row; tokens tied with the k-th score are kept too
    /// (as in Hugging Face). <paramref name="k"/> = 0 or at least the vocabulary size returns a copy.
    /// </summary>
    /// <param name="scores">Scores <c>[batch, vocab]</c>.</param>
    /// <param name="k">Number of tokens to keep; 0 turns the filter off.</param>
    /// <returns>New scores.</returns>
    public static Tensor ApplyTopK(Tensor scores, int k)
    {
        if (k < 0) throw new ArgumentOutOfRangeException(nameof(k), k, "TopK must be 0 (off) or positive.");
        long vocab = scores.shape[^1];
        if (k == 0 || k >= vocab) return scores.clone();
        using var scope = NewDisposeScope();
        var (values, _) = scores.topk(k, dim: -1, largest: true, sorted: true);
        var kth = values.narrow(-1, k - 1, 1);
        return scores.masked_fill(scores.lt(kth), Scalars.NegativeInfinity).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Nucleus filter: in each row, sorts tokens by decreasing probability (<c>softmax</c> of the scores; ties in
    /// index order) and keeps the smallest prefix whose mass is at least <paramref name="p"/>, including the token
    /// that crosses <paramref name="p"/>; the best token is always kept. The cumulative mass is computed in float64.
    /// <paramref name="p"/> = 1 returns a copy.
    /// </summary>
    /// <param name="scores">Scores <c>[batch, vocab]</c>.</param>
    /// <param name="p">Mass to keep, in (0, 1].</param>
    /// <returns>New scores.</returns>
    public static Tensor ApplyTopP(Tensor scores, double p)
    {
        if (!(p > 0 && p <= 1)) throw new ArgumentOutOfRangeException(nameof(p), p, "TopP must lie in (0, 1].");
        if (p == 1.0) return scores.clone();
        using var scope = NewDisposeScope();
        var (sorted, order) = scores.sort(dim: -1, descending: true, stable: true);
        var probs = sorted.to(ScalarType.Float64).softmax(-1);
        var massBefore = probs.cumsum(-1).sub(probs);
        using var pScalar = p.ToScalar();
        var removeSorted = massBefore.ge(pScalar);
        removeSorted.select(-1, 0).fill_(Scalars.False);
        var remove = removeSorted.scatter(-1, order, removeSorted);
        return scores.masked_fill(remove, Scalars.NegativeInfinity).MoveToOuterDisposeScope();
    }

    /// <summary>Temperature, then top-k, then top-p, with the settings of <paramref name="options"/>.</summary>
    /// <param name="scores">float32 scores <c>[batch, vocab]</c>.</param>
    /// <param name="options">Sampling settings.</param>
    /// <returns>Filtered, temperature-scaled scores; <c>softmax</c> gives the sampling distribution.</returns>
    public static Tensor Process(Tensor scores, GenerationOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        return Process(scores, options.Temperature, options.TopK, options.TopP);
    }

    /// <summary>Temperature, then top-k, then top-p.</summary>
    /// <param name="scores">float32 scores <c>[batch, vocab]</c>.</param>
    /// <param name="temperature">Positive temperature.</param>
    /// <param name="topK">Tokens to keep (0 = off).</param>
    /// <param name="topP">Mass to keep (1 = off).</param>
    /// <returns>Filtered, temperature-scaled scores.</returns>
    public static Tensor Process(Tensor scores, double temperature, int topK, double topP)
    {
        ArgumentNullException.ThrowIfNull(scores);
        if (scores.dim() != 2) throw new ArgumentException($"Scores must be [batch, vocab]; got [{string.Join(", ", scores.shape)}].", nameof(scores));
        using var scaled = ApplyTemperature(scores, temperature);
        using var topKed = ApplyTopK(scaled, topK);
        return ApplyTopP(topKed, topP);
    }
}
