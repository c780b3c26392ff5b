namespace DeepAlign.Text;

/// <summary>
/// The one check that two models share a token-to-id map (docs/method-formulas.md, "Conventions": compare the maps, not
/// the vocabulary sizes; logits wider than the tokenizer are cut to it before the softmax).
/// </summary>
public static class VocabularyCheck
{
    /// <summary>Throws when two tokenizers map some token to different ids (or one has a token the other lacks).</summary>
    /// <param name="first">The first tokenizer (e.g. the aligned model's).</param>
    /// <param name="second">The second tokenizer (e.g. the base model's).</param>
    /// <param name="firstName">Name of the first side in the message.</param>
    /// <param name="secondName">Name of the second side in the message.</param>
    /// <exception cref="VocabularyMismatchException">The maps differ; the message names the first difference.</exception>
    public static void EnsureSameTokenMap(ITextTokenizer first, ITextTokenizer second, string firstName = "aligned", string secondName = "base")
    {
        ArgumentNullException.ThrowIfNull(first);
        ArgumentNullException.ThrowIfNull(second);
        var a = first.GetVocabulary();
        var b = second.GetVocabulary();
        foreach (var (token, id) in a)
        {
            if (!b.TryGetValue(token, out var other))
                throw new VocabularyMismatchException($"The models do not share a tokenizer: token '{token}' (id {id} in the {firstName} tokenizer) is missing from the {secondName} tokenizer.");
            if (other != id)
                throw new VocabularyMismatchException($"The models do not share a tokenizer: token '{token}' has id {id} in the {firstName} tokenizer but {other} in the {secondName} tokenizer.");
        }
        if (b.Count != a.Count)
        {
            var extra = b.Keys.First(k => !a.ContainsKey(k));
            throw new VocabularyMismatchException($"The models do not share a tokenizer: token '{extra}' (id {b[extra]} in the {secondName} tokenizer) is missing from the {firstName} tokenizer.");
        }
    }

    /// <summary>
    /// Throws when two model folders do not share a token-to-id map. Both folders need <c>tokenizer.json</c>, or neither
    /// (pre-tokenized use, where only the logits widths can be compared, which the callers do).
    /// </summary>
    /// <param name="firstDirectory">The first model folder (e.g. the aligned model).</param>
    /// <param name="secondDirectory">The second model folder (e.g. the base model).</param>
    /// <exception cref="VocabularyMismatchException">Only one folder has a tokenizer, or the maps differ.</exception>
    public static void EnsureSameTokenMap(string firstDirectory, string secondDirectory)
    {
        ArgumentException.ThrowIfNullOrEmpty(firstDirectory);
        ArgumentException.ThrowIfNullOrEmpty(secondDirectory);
        bool a = File.Exists(Path.Combine(firstDirectory, HfTokenizer.TokenizerFileName)), b = File.Exists(Path.Combine(secondDirectory, HfTokenizer.TokenizerFileName));
        if (a != b)
            throw new VocabularyMismatchException($"Only one of {firstDirectory} and {secondDirectory} has a {HfTokenizer.TokenizerFileName}; the pair must share one token-to-id map.");
        if (!a) return;
        EnsureSameTokenMap(HfTokenizer.FromPretrained(firstDirectory), HfTokenizer.FromPretrained(secondDirectory), firstDirectory, secondDirectory);
    }
}
