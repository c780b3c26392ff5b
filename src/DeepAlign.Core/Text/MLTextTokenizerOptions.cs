namespace DeepAlign.Text;

/// <summary>
/// What a <see cref="MLTextTokenizer"/> needs that a <c>Microsoft.ML.Tokenizers</c> <c>Tokenizer</c> does not always say: the
/// vocabulary, the added/special tokens, BOS/EOS/pad and whether BOS/EOS are added. Every field is optional where the
/// wrapped tokenizer's type exposes the value (see each field). Immutable; <see cref="Validate"/> checks it.
/// </summary>
public sealed record MLTextTokenizerOptions
{
    /// <summary>
    /// The full token-to-id map. Null (default): the tokenizer's own <c>Vocabulary</c>, which
    /// <c>SentencePieceTokenizer</c>/<c>LlamaTokenizer</c>, <c>BpeTokenizer</c>, <c>CodeGenTokenizer</c>/<c>Phi2Tokenizer</c> and
    /// <c>EnglishRobertaTokenizer</c> expose; <c>TiktokenTokenizer</c>, <c>WordPieceTokenizer</c>/<c>BertTokenizer</c> and other types
    /// do not, so pass it (for a tiktoken file, <see cref="MLTextTokenizer.ReadTiktokenVocabulary(string)"/>).
    /// </summary>
    public IReadOnlyDictionary<string, int>? Vocabulary { get; init; }

    /// <summary>
    /// Added and special tokens (token to id), added to the tokenizer's own <c>SpecialTokens</c>. They are recognised in text
    /// before the wrapped tokenizer sees it (leftmost, longest match, as Hugging Face tokenizers do), decode to their text, and
    /// are dropped by <c>Decode(ids, skipSpecialTokens: true)</c>. Null (default): only the tokenizer's own and the BOS, EOS,
    /// pad and unknown tokens.
    /// </summary>
    public IReadOnlyDictionary<string, int>? SpecialTokens { get; init; }

    /// <summary>
    /// Added tokens that are not special (Hugging Face added_tokens with <c>"special": false</c>, e.g. Qwen3's
    /// <c>&lt;think&gt;</c>): recognised in text and decoded to their text like <see cref="SpecialTokens"/>, but kept by
    /// <c>Decode(ids, skipSpecialTokens: true)</c>. Null (default): none.
    /// </summary>
    public IReadOnlyDictionary<string, int>? AddedTokens { get; init; }

    /// <summary>The beginning-of-sequence token. Null (default): the tokenizer's own (SentencePiece, CodeGen, BPE), else none.</summary>
    public string? BosToken { get; init; }

    /// <summary>The end-of-sequence token. Null (default): the tokenizer's own (SentencePiece, CodeGen), else none.</summary>
    public string? EosToken { get; init; }

    /// <summary>The padding token. Null (default): none.</summary>
    public string? PadToken { get; init; }

    /// <summary>
    /// Whether <c>Encode(text, addSpecialTokens: true)</c> puts the BOS first. Null (default): the tokenizer's own setting
    /// (SentencePiece, CodeGen), else false. True needs a BOS token.
    /// </summary>
    public bool? AddBosToken { get; init; }

    /// <summary>Whether <c>Encode(text, addSpecialTokens: true)</c> puts the EOS last. Null (default): the tokenizer's own setting (SentencePiece, CodeGen), else false.</summary>
    public bool? AddEosToken { get; init; }

    /// <summary>More ids that end generation besides the EOS (generation_config.json <c>eos_token_id</c>). Default none.</summary>
    public IReadOnlyList<int> AdditionalEosTokenIds { get; init; } = [];

    /// <summary>Throws <see cref="ArgumentException"/> naming the bad field.</summary>
    public void Validate()
    {
        if (Vocabulary is not null)
        {
            if (Vocabulary.Count == 0) throw new ArgumentException("Vocabulary must not be empty.", nameof(Vocabulary));
            foreach (var (token, id) in Vocabulary)
                if (id < 0) throw new ArgumentException($"Vocabulary maps '{token}' to the negative id {id}.", nameof(Vocabulary));
        }
        if (SpecialTokens is not null)
            foreach (var (token, id) in SpecialTokens)
            {
                if (string.IsNullOrEmpty(token)) throw new ArgumentException("SpecialTokens must not contain an empty token.", nameof(SpecialTokens));
                if (id < 0) throw new ArgumentException($"SpecialTokens maps '{token}' to the negative id {id}.", nameof(SpecialTokens));
            }
        if (AddedTokens is not null)
            foreach (var (token, id) in AddedTokens)
            {
                if (string.IsNullOrEmpty(token)) throw new ArgumentException("AddedTokens must not contain an empty token.", nameof(AddedTokens));
                if (id < 0) throw new ArgumentException($"AddedTokens maps '{token}' to the negative id {id}.", nameof(AddedTokens));
            }
        if (BosToken is "") throw new ArgumentException("BosToken must not be empty (null: none).", nameof(BosToken));
        if (EosToken is "") throw new ArgumentException("EosToken must not be empty (null: none).", nameof(EosToken));
        if (PadToken is "") throw new ArgumentException("PadToken must not be empty (null: none).", nameof(PadToken));
        ArgumentNullException.ThrowIfNull(AdditionalEosTokenIds, nameof(AdditionalEosTokenIds));
        foreach (var id in AdditionalEosTokenIds)
            if (id < 0) throw new ArgumentException($"AdditionalEosTokenIds contains the negative id {id}.", nameof(AdditionalEosTokenIds));
    }
}
