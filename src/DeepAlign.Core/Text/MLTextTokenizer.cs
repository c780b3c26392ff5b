using System.Collections.Frozen;
using System.Text;
using Microsoft.ML.Tokenizers;

namespace DeepAlign.Text;

/// <summary>
/// Any <c>Microsoft.ML.Tokenizers</c> <see cref="Tokenizer"/> (for example <c>TiktokenTokenizer</c>, <c>LlamaTokenizer</c> over a
/// SentencePiece tokenizer.model, <c>BpeTokenizer</c>) as an <see cref="ITextTokenizer"/>, so every DeepAlign API that takes a
/// tokenizer (conversation encoding, generation, streaming, detection, training) accepts it. What the ML tokenizer does not
/// expose (vocabulary, special tokens, BOS/EOS) comes from <see cref="MLTextTokenizerOptions"/>.
/// </summary>
/// <remarks>
/// <para><b>Encoding:</b> special tokens (the options', the tokenizer's own <c>SpecialTokens</c>, and the BOS, EOS, pad and
/// unknown tokens) are found in the text first, leftmost and longest, as Hugging Face tokenizers do; the text between
/// them goes to the wrapped tokenizer, which must add nothing itself (for <c>SentencePieceTokenizer</c> and
/// <c>CodeGenTokenizer</c> its BOS/EOS switches are turned off per call; any other tokenizer that adds ids to every text is
/// rejected). BOS/EOS are added here, when asked and configured.</para>
/// <para><b>Decoding:</b> runs of ordinary ids are decoded by the wrapped tokenizer, special and added ids become their
/// text (special ones nothing with skipSpecialTokens). A run after a special token therefore starts as a fresh text for the
/// wrapped tokenizer (SentencePiece drops the leading "▁" space there). For a <c>SentencePieceTokenizer</c> with escaped
/// whitespace the runs are decoded here from the pieces, the way sentencepiece does ("▁" is a space, &lt;0xNN&gt; pieces are
/// bytes, the first piece loses its dummy-prefix space), because ML.Tokenizers 3.0.0 also drops a "▁" that follows leading
/// byte pieces, which would break streaming.</para>
/// <para><b>Tokens:</b> <see cref="GetVocabulary"/> is the vocabulary plus the special tokens. For a tiktoken vocabulary
/// read with <see cref="ReadTiktokenVocabulary(string)"/> the token strings are the GPT-2 byte-level strings that
/// Hugging Face tokenizer.json files use, so the map equals the matching tokenizer.json's and
/// <see cref="VocabularyCheck"/> can compare the two.</para>
/// <para>Thread-safe when the wrapped tokenizer is (the ML.Tokenizers tokenizers are).</para>
/// </remarks>
public sealed class MLTextTokenizer : ITextTokenizer
{
    private readonly Func<string, IReadOnlyList<int>> _encode;
    private readonly AddedTokenSplitter _splitter;
    private readonly FrozenDictionary<string, int> _tokenToId;
    private readonly string?[] _idToToken;
    private readonly FrozenSet<int> _verbatimIds;
    private readonly bool _decodeSentencePiece;

    /// <summary>Wraps <paramref name="tokenizer"/>.</summary>
    /// <param name="tokenizer">The ML.Tokenizers tokenizer.</param>
    /// <param name="options">Vocabulary, special tokens, BOS/EOS; null: all from the tokenizer where its type exposes them.</param>
    /// <exception cref="ArgumentException">The options are invalid, the tokenizer exposes no vocabulary and none is given
    /// (<see cref="MLTextTokenizerOptions.Vocabulary"/>), a named token is not in the vocabulary, a special token's id disagrees
    /// with the vocabulary, or the tokenizer adds ids to every text itself.</exception>
    public MLTextTokenizer(Tokenizer tokenizer, MLTextTokenizerOptions? options = null)
    {
        MLTokenizer = tokenizer ?? throw new ArgumentNullException(nameof(tokenizer));
        options ??= new MLTextTokenizerOptions();
        options.Validate();
        Options = options;

        var own = Describe(tokenizer);
        _encode = own.Encode;
        var vocabulary = options.Vocabulary ?? own.Vocabulary ?? throw new ArgumentException(
            $"{tokenizer.GetType().Name} does not expose its vocabulary; pass it as MLTextTokenizerOptions.Vocabulary (for a tiktoken file: MLTextTokenizer.ReadTiktokenVocabulary).",
            nameof(options));

        var map = new Dictionary<string, int>(vocabulary, StringComparer.Ordinal);
        var special = new Dictionary<string, int>(StringComparer.Ordinal);
        var added = new Dictionary<string, int>(StringComparer.Ordinal);
        void AddTokens(IReadOnlyDictionary<string, int>? tokens, string field, Dictionary<string, int> into)
        {
            if (tokens is null) return;
            foreach (var (token, id) in tokens)
            {
                if (token.Length == 0) continue;
                if (map.TryGetValue(token, out var existing) && existing != id)
                    throw new ArgumentException($"{field}: '{token}' has id {id} but the vocabulary gives it id {existing}.", nameof(options));
                map[token] = id;
                into[token] = id;
            }
        }
        AddTokens(own.SpecialTokens, $"{tokenizer.GetType().Name}.SpecialTokens", special);
        AddTokens(options.SpecialTokens, nameof(MLTextTokenizerOptions.SpecialTokens), special);
        AddTokens(options.AddedTokens, nameof(MLTextTokenizerOptions.AddedTokens), added);
        // AddedTokens says "not special" even for a token the tokenizer itself lists as special (tiktoken has one list).
        foreach (var token in added.Keys.ToList())
            if (options.SpecialTokens?.ContainsKey(token) == true) added.Remove(token);
            else special.Remove(token);
        if (map.Count == 0) throw new ArgumentException("The vocabulary is empty.", nameof(options));
        _tokenToId = map.ToFrozenDictionary(StringComparer.Ordinal);
        VocabSize = map.Values.Max() + 1;
        _idToToken = new string?[VocabSize];
        foreach (var (token, id) in vocabulary) _idToToken[id] ??= token;
        foreach (var (token, id) in special.Concat(added)) _idToToken[id] = token;

        int? Resolve(string? token, string field) =>
            token is null ? null
            : map.TryGetValue(token, out var id) ? id
            : throw new ArgumentException($"{field} '{token}' is not in the vocabulary.", nameof(options));
        BosToken = options.BosToken ?? own.BosToken;
        EosToken = options.EosToken ?? own.EosToken;
        PadToken = options.PadToken;
        BosTokenId = Resolve(BosToken, nameof(MLTextTokenizerOptions.BosToken));
        EosTokenId = Resolve(EosToken, nameof(MLTextTokenizerOptions.EosToken));
        PadTokenId = Resolve(PadToken, nameof(MLTextTokenizerOptions.PadToken));
        var unkId = own.UnknownToken is { } unk && map.TryGetValue(unk, out var u) ? u : (int?)null;

        AddsBosToken = options.AddBosToken ?? own.AddBos ?? false;
        AddsEosToken = options.AddEosToken ?? own.AddEos ?? false;
        if (AddsBosToken && BosTokenId is null)
            throw new ArgumentException("AddBosToken is true but there is no BOS token; set MLTextTokenizerOptions.BosToken.", nameof(options));
        if (AddsEosToken && EosTokenId is null)
            throw new ArgumentException("AddEosToken is true but there is no EOS token; set MLTextTokenizerOptions.EosToken.", nameof(options));

        var eos = new HashSet<int>();
        if (EosTokenId is int e) eos.Add(e);
        foreach (var id in options.AdditionalEosTokenIds)
            eos.Add(id < VocabSize && _idToToken[id] is not null ? id
                : throw new ArgumentException($"AdditionalEosTokenIds: id {id} is not in the vocabulary (size {VocabSize}).", nameof(options)));
        EosTokenIds = eos.ToFrozenSet();

        foreach (var (token, id) in new[] { (BosToken, BosTokenId), (EosToken, EosTokenId), (PadToken, PadTokenId), (own.UnknownToken, unkId) })
            if (token is not null && id is int i) special[token] = i;
        SpecialTokenIds = special.Values.ToFrozenSet();
        _verbatimIds = special.Values.Concat(added.Values).ToFrozenSet();
        _splitter = new AddedTokenSplitter(special.Select(p => new AddedTokenInfo(p.Value, p.Key, true, false, false))
            .Concat(added.Select(p => new AddedTokenInfo(p.Value, p.Key, false, false, false))));
        // ML.Tokenizers 3.0.0's SentencePiece decode drops a "▁" that follows leading byte pieces ([<0x09>, ▁, <0x0A>] gives
        // "\t\n"), which breaks streaming; such runs are decoded here the SentencePiece way instead (see Decode).
        _decodeSentencePiece = tokenizer is SentencePieceTokenizer { EscapeWhiteSpaces: true, TreatWhitespaceAsSuffix: false };

        // A tokenizer that adds BOS/EOS on its own shows them as tokens with empty ranges (or as ids for no text).
        var probe = _encode("");
        if (probe.Count == 0 && !own.SwitchesOffOwnBosEos)
            probe = tokenizer.EncodeToTokens("a", out _).Where(t => t.Offset.Start.Equals(t.Offset.End)).Select(t => t.Id).ToList();
        if (probe.Count != 0)
            throw new ArgumentException(
                $"{tokenizer.GetType().Name} adds {probe.Count} id(s) ({string.Join(", ", probe)}) to every text; create it without its own BOS/EOS (e.g. BpeOptions.BeginningOfSentenceToken = null) and set MLTextTokenizerOptions.BosToken/AddBosToken instead.",
                nameof(tokenizer));
    }

    /// <summary>The wrapped tokenizer.</summary>
    public Tokenizer MLTokenizer { get; }

    /// <summary>The options the tokenizer was created with.</summary>
    public MLTextTokenizerOptions Options { get; }

    /// <inheritdoc />
    public int VocabSize { get; }

    /// <inheritdoc />
    public int? BosTokenId { get; }

    /// <inheritdoc />
    public string? BosToken { get; }

    /// <inheritdoc />
    public int? EosTokenId { get; }

    /// <inheritdoc />
    public string? EosToken { get; }

    /// <summary>The padding token text, or null.</summary>
    public string? PadToken { get; }

    /// <inheritdoc />
    public IReadOnlySet<int> EosTokenIds { get; }

    /// <inheritdoc />
    public int? PadTokenId { get; }

    /// <inheritdoc />
    public bool AddsBosToken { get; }

    /// <summary>True when <see cref="Encode"/> with addSpecialTokens puts <see cref="EosTokenId"/> last.</summary>
    public bool AddsEosToken { get; }

    /// <inheritdoc />
    public IReadOnlySet<int> SpecialTokenIds { get; }

    /// <inheritdoc />
    public IReadOnlyList<int> Encode(string text, bool addSpecialTokens = false)
    {
        ArgumentNullException.ThrowIfNull(text);
        var ids = new List<int>(text.Length / 3 + 4);
        if (addSpecialTokens && AddsBosToken) ids.Add(BosTokenId!.Value);
        foreach (var section in _splitter.IsEmpty ? [new AddedTokenSplitter.Section(text, null, 0)] : _splitter.Split(text))
        {
            if (section.Token is { } tok) ids.Add(tok.Id);
            else if (section.Text.Length > 0) ids.AddRange(_encode(section.Text));
        }
        if (addSpecialTokens && AddsEosToken) ids.Add(EosTokenId!.Value);
        return ids;
    }

    /// <inheritdoc />
    /// <exception cref="ArgumentOutOfRangeException">An id is not in the vocabulary.</exception>
    public string Decode(IEnumerable<int> ids, bool skipSpecialTokens = false)
    {
        ArgumentNullException.ThrowIfNull(ids);
        var sb = new StringBuilder();
        var run = new List<int>();
        void Flush()
        {
            if (run.Count == 0) return;
            sb.Append(_decodeSentencePiece ? DecodeSentencePiece(run) : MLTokenizer.Decode(run));
            run.Clear();
        }
        foreach (var id in ids)
        {
            var token = IdToToken(id) ?? throw new ArgumentOutOfRangeException(nameof(ids), id, $"Token id {id} is outside the vocabulary of the {MLTokenizer.GetType().Name} (size {VocabSize}).");
            if (!_verbatimIds.Contains(id)) { run.Add(id); continue; }
            Flush();
            if (!skipSpecialTokens || !SpecialTokenIds.Contains(id)) sb.Append(token);
        }
        Flush();
        return sb.ToString();
    }

    /// <summary>
    /// SentencePiece decoding of a run of ordinary pieces, as sentencepiece's decoder does it: "▁" is a space, &lt;0xNN&gt;
    /// pieces are bytes (invalid UTF-8 becomes U+FFFD), and with a dummy prefix the run's first piece loses its leading "▁".
    /// </summary>
    private string DecodeSentencePiece(List<int> run)
    {
        var bytes = new List<byte>();
        foreach (var id in run)
        {
            var token = _idToToken[id]!;
            if (token.Length == 6 && token.StartsWith("<0x", StringComparison.Ordinal) && token[5] == '>'
                && byte.TryParse(token.AsSpan(3, 2), System.Globalization.NumberStyles.HexNumber, System.Globalization.CultureInfo.InvariantCulture, out var b))
            {
                bytes.Add(b);
                continue;
            }
            bytes.AddRange(Encoding.UTF8.GetBytes(token.Replace('▁', ' ')));
        }
        var text = Encoding.UTF8.GetString(bytes.ToArray());
        var sp = (SentencePieceTokenizer)MLTokenizer;
        return sp.AddDummyPrefix && _idToToken[run[0]]!.StartsWith('▁') ? text[1..] : text;
    }

    /// <inheritdoc />
    public IReadOnlyDictionary<string, int> GetVocabulary() => _tokenToId;

    /// <inheritdoc />
    public string? IdToToken(int id) => id >= 0 && id < _idToToken.Length ? _idToToken[id] : null;

    /// <inheritdoc />
    public int? TokenToId(string token) => token is not null && _tokenToId.TryGetValue(token, out var id) ? id : null;

    /// <summary>
    /// Reads a tiktoken vocabulary file (one <c>base64-bytes rank</c> pair per line, the format <c>TiktokenTokenizer</c> reads)
    /// into a token-to-id map whose token strings are the bytes in the GPT-2 byte-level alphabet (as in Hugging Face
    /// tokenizer.json files: a space is <c>Ġ</c>), for <see cref="MLTextTokenizerOptions.Vocabulary"/>.
    /// </summary>
    /// <param name="path">The .tiktoken file.</param>
    /// <exception cref="TokenizerFormatException">A line is malformed (the message names the file and line).</exception>
    public static IReadOnlyDictionary<string, int> ReadTiktokenVocabulary(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        using var stream = File.OpenRead(path);
        return ReadTiktokenVocabulary(stream, path);
    }

    /// <summary>Reads a tiktoken vocabulary from a stream (see <see cref="ReadTiktokenVocabulary(string)"/>).</summary>
    /// <param name="stream">The file content (UTF-8).</param>
    /// <param name="sourceName">Name used in error messages.</param>
    /// <exception cref="TokenizerFormatException">A line is malformed (the message names the source and line).</exception>
    public static IReadOnlyDictionary<string, int> ReadTiktokenVocabulary(Stream stream, string sourceName = "tiktoken vocabulary")
    {
        ArgumentNullException.ThrowIfNull(stream);
        var map = new Dictionary<string, int>(StringComparer.Ordinal);
        using var reader = new StreamReader(stream, Encoding.UTF8, detectEncodingFromByteOrderMarks: false, leaveOpen: true);
        var lineNumber = 0;
        for (var line = reader.ReadLine(); line is not null; line = reader.ReadLine())
        {
            lineNumber++;
            if (line.Length == 0) continue;
            var space = line.IndexOf(' ');
            byte[] bytes;
            int rank;
            try
            {
                if (space <= 0) throw new FormatException("expected 'base64 rank'");
                bytes = Convert.FromBase64String(line[..space]);
                rank = int.Parse(line.AsSpan(space + 1), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture);
            }
            catch (Exception e) when (e is FormatException or OverflowException)
            {
                throw new TokenizerFormatException($"{sourceName}: line {lineNumber} is not 'base64-bytes rank' ({e.Message}).", e);
            }
            var token = string.Create(bytes.Length, bytes, static (span, b) =>
            {
                for (var i = 0; i < b.Length; i++) span[i] = ByteLevelAlphabet.ByteToChar[b[i]];
            });
            if (!map.TryAdd(token, rank))
                throw new TokenizerFormatException($"{sourceName}: line {lineNumber} repeats the bytes of an earlier line.");
        }
        if (map.Count == 0) throw new TokenizerFormatException($"{sourceName}: no vocabulary lines.");
        return map;
    }

    private sealed record Known(
        IReadOnlyDictionary<string, int>? Vocabulary, IReadOnlyDictionary<string, int>? SpecialTokens, string? BosToken, string? EosToken,
        string? UnknownToken, bool? AddBos, bool? AddEos, Func<string, IReadOnlyList<int>> Encode, bool SwitchesOffOwnBosEos = false);

    /// <summary>What the tokenizer's own type exposes, and how to encode with its BOS/EOS off.</summary>
    private static Known Describe(Tokenizer t) => t switch
    {
        SentencePieceTokenizer sp => new(sp.Vocabulary, sp.SpecialTokens, sp.BeginningOfSentenceToken, sp.EndOfSentenceToken, sp.UnknownToken,
            sp.AddBeginningOfSentence, sp.AddEndOfSentence, s => sp.EncodeToIds(s, addBeginningOfSentence: false, addEndOfSentence: false), true),
        CodeGenTokenizer cg => new(cg.Vocabulary, cg.SpecialTokens, cg.BeginningOfSentenceToken, cg.EndOfSentenceToken, cg.UnknownToken,
            cg.AddBeginningOfSentence, cg.AddEndOfSentence, s => cg.EncodeToIds(s, cg.AddPrefixSpace, addBeginningOfSentence: false, addEndOfSentence: false), true),
        BpeTokenizer bpe => new(bpe.Vocabulary, bpe.SpecialTokens, bpe.BeginningOfSentenceToken, null, bpe.UnknownToken, null, null, s => bpe.EncodeToIds(s)),
        EnglishRobertaTokenizer roberta => new(roberta.Vocabulary, null, null, null, null, null, null, s => roberta.EncodeToIds(s)),
        TiktokenTokenizer tik => new(null, tik.SpecialTokens, null, null, null, null, null, s => tik.EncodeToIds(s)),
        WordPieceTokenizer wp => new(null, wp.SpecialTokens, null, null, wp.UnknownToken, null, null, s => wp.EncodeToIds(s)),
        _ => new(null, null, null, null, null, null, null, s => t.EncodeToIds(s)),
    };
}
