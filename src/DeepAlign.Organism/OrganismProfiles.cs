using DeepAlign.Method.Detection;
using DeepAlign.Models;
using DeepAlign.Data;
using DeepAlign.Text;

namespace DeepAlign.Organism;

/// <summary>The incompleteness profiles the organism's claims are read from (docs/method.md section 1).</summary>
public static class OrganismProfiles
{
    /// <summary>
    /// Profiles <paramref name="model"/> against <paramref name="baseModel"/> by teacher forcing on harmful prompts with
    /// their harmful reference answers (the first <paramref name="maxItems"/> items that have one), aggregated per
    /// position and bucket.
    /// </summary>
    /// <param name="baseModel">The base model.</param>
    /// <param name="model">The model compared with it (the aligned model, or a retrained defense).</param>
    /// <param name="text">Tokenizer and chat template shared by both.</param>
    /// <param name="harmful">Harmful items with <c>harmful_response</c>.</param>
    /// <param name="maxItems">Items used at most.</param>
    /// <param name="options">Detector settings (docs/method.md defaults when null).</param>
    /// <param name="cancellationToken">Cancellation.</param>
    /// <returns>The aggregated profile.</returns>
    public static ProfileAggregates HarmfulReferences(ICausalLanguageModel baseModel, ICausalLanguageModel model, ConversationEncoder text,
        IReadOnlyList<DatasetRecord> harmful, int maxItems, ProfileOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(text);
        ArgumentNullException.ThrowIfNull(harmful);
        if (maxItems < 1) throw new ArgumentOutOfRangeException(nameof(maxItems), maxItems, "At least one item is needed.");
        options = (options ?? new ProfileOptions()).Validate();
        var detector = new BaseFavoredTokenDetector(baseModel, model, text.Tokenizer, null, options);
        var aggregator = new ProfileAggregator(options);
        var inputs = harmful.Where(i => i.HarmfulResponse is not null).Take(maxItems)
            .Select(i => new ProfileInput(text.PromptIds(i), text.ResponseIds(i.HarmfulResponse!)));
        foreach (var _ in aggregator.AddAll(detector.Profile(inputs, cancellationToken: cancellationToken))) { }
        return aggregator.Result();
    }
}
