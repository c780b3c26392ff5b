namespace DeepAlign.Text;

/// <summary>
/// Text to token ids and back, with the special tokens a chat model needs. Implemented by <see cref="HfTokenizer"/> and,
/// over any Microsoft.ML.Tokenizers tokenizer, by <see cref="MLTextTokenizer"/>; the rest of DeepAlign (chat templates,
/// generation, training data) depends only on this interface.
/// </summary>
public interface ITextTokenizer
{
    /// <summary>
    /// Number of ids the tokenizer can produce: the largest id (model vocabulary or added token) plus one. Compare
    /// this, not the model's logit width, when cutting logits to the tokenizer.
    /// </summary>
    int VocabSize { get; }

    /// <summary>Id of the beginning-of-sequence token, or null when the tokenizer has none.</summary>
    int? BosTokenId { get; }

    /// <summary>The beginning-of-sequence token text (e.g. <c>&lt;s&gt;</c>), or null.</summary>
    string? BosToken { get; }

    /// <summary>Id of the tokenizer's primary end-of-sequence token (tokenizer_config.json eos_token), or null.</summary>
    int? EosTokenId { get; }

    /// <summary>The end-of-sequence token text, or null.</summary>
    string? EosToken { get; }

    /// <summary>Every id that ends generation: the eos token plus generation_config.json eos_token_id(s).</summary>
    IReadOnlySet<int> EosTokenIds { get; }

    /// <summary>Id of the padding token, or null.</summary>
    int? PadTokenId { get; }

    /// <summary>True when <see cref="Encode"/> with addSpecialTokens puts <see cref="BosTokenId"/> first (tokenizer_config add_bos_token or the post-processor).</summary>
    bool AddsBosToken { get; }

    /// <summary>Ids of special tokens (removed by <see cref="Decode"/> with skipSpecialTokens).</summary>
    IReadOnlySet<int> SpecialTokenIds { get; }

    /// <summary>
    /// Encodes text. Special and added tokens written in the text (e.g. <c>&lt;|eot_id|&gt;</c>) are always
    /// recognised; <paramref name="addSpecialTokens"/> adds the tokenizer's BOS/EOS around the result.
    /// </summary>
    IReadOnlyList<int> Encode(string text, bool addSpecialTokens = false);

    /// <summary>Decodes ids to text (no clean-up of spaces); <paramref name="skipSpecialTokens"/> drops special tokens.</summary>
    string Decode(IEnumerable<int> ids, bool skipSpecialTokens = false);

    /// <summary>The full token-to-id map (model vocabulary plus added tokens). Two models share a tokenizer when these maps are equal.</summary>
    IReadOnlyDictionary<string, int> GetVocabulary();

    /// <summary>The token string of <paramref name="id"/>, or null for an id outside the vocabulary.</summary>
    string? IdToToken(int id);

    /// <summary>The id of <paramref name="token"/>, or null when it is not in the vocabulary.</summary>
    int? TokenToId(string token);
}
