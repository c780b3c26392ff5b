using Microsoft.ML.Tokenizers;

namespace DeepAlign.Text;

/// <summary>Conversions between <c>Microsoft.ML.Tokenizers</c> tokenizers and DeepAlign's <see cref="ITextTokenizer"/>.</summary>
public static class MLTokenizerExtensions
{
    /// <summary>
    /// <paramref name="tokenizer"/> as an <see cref="ITextTokenizer"/>: the wrapped <see cref="HfTokenizer"/> itself for an
    /// <see cref="MLTokenizerAdapter"/> (when no options are given), else a <see cref="MLTextTokenizer"/>.
    /// </summary>
    /// <param name="tokenizer">The ML.Tokenizers tokenizer.</param>
    /// <param name="options">Vocabulary, special tokens, BOS/EOS (see <see cref="MLTextTokenizerOptions"/>); null: from the tokenizer.</param>
    /// <exception cref="ArgumentException">See <see cref="MLTextTokenizer(Tokenizer, MLTextTokenizerOptions?)"/>.</exception>
    public static ITextTokenizer AsTextTokenizer(this Tokenizer tokenizer, MLTextTokenizerOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        return tokenizer is MLTokenizerAdapter adapter && options is null ? adapter.HfTokenizer : new MLTextTokenizer(tokenizer, options);
    }
}
