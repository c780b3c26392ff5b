using System.Collections.Frozen;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace DeepAlign.Text;

/// <summary>
/// A tokenizer loaded from a Hugging Face model folder (tokenizer.json, tokenizer_config.json and, if present,
/// generation_config.json). Supports byte-level BPE (Llama-3, Qwen2/2.5/3), SentencePiece-style BPE with byte
/// fallback (Llama-2, Mistral) and WordLevel vocabularies; anything else throws <see cref="NotSupportedException"/>
/// naming the unsupported part. Instances are immutable and thread-safe.
/// </summary>
public sealed class HfTokenizer : ITextTokenizer
{
    private readonly TextNormalizer? _normalizer;
    private readonly PreTokenizer? _preTokenizer;
    private readonly TokenizerModel _model;
    private readonly TokenDecoder? _decoder;
    private readonly AddedTokenSplitter _splitter;
    private readonly FrozenDictionary<string, int> _tokenToId;
    private readonly string?[] _idToToken;
    private readonly FrozenSet<string> _addedTokenContents;
    private readonly int[] _prefixIds;
    private readonly int[] _suffixIds;

    private HfTokenizer(string source, TextNormalizer? normalizer, PreTokenizer? preTokenizer, TokenizerModel model, TokenDecoder? decoder,
        List<AddedTokenInfo> addedTokens, TokenizerConfigInfo config, IEnumerable<int> generationEosIds, PostProcessorInfo post)
    {
        Source = source;
        _normalizer = normalizer;
        _preTokenizer = preTokenizer;
        _model = model;
        _decoder = decoder;
        _splitter = new AddedTokenSplitter(addedTokens);

        var map = new Dictionary<string, int>(model.Vocab, StringComparer.Ordinal);
        foreach (var t in addedTokens) map[t.Content] = t.Id;
        _tokenToId = map.ToFrozenDictionary(StringComparer.Ordinal);
        var maxId = map.Count == 0 ? -1 : map.Values.Max();
        var maxVocabulary = TokenizerLoadScope.Current.MaxVocabularySize;
        if (maxId >= maxVocabulary)
            throw new TokenizerFormatException($"{source}: token id {maxId} is beyond TokenizerLimits.MaxVocabularySize ({maxVocabulary}).");
        _idToToken = new string?[maxId + 1];
        foreach (var (tok, id) in model.Vocab) _idToToken[id] = tok;
        foreach (var t in addedTokens) _idToToken[t.Id] = t.Content;
        VocabSize = maxId + 1;
        _addedTokenContents = addedTokens.Select(t => t.Content).ToFrozenSet(StringComparer.Ordinal);

        BosToken = config.BosToken;
        EosToken = config.EosToken;
        PadToken = config.PadToken;
        BosTokenId = LookUp(config.BosToken);
        EosTokenId = LookUp(config.EosToken);
        PadTokenId = LookUp(config.PadToken);
        UnkTokenId = LookUp(config.UnkToken);
        var eos = new HashSet<int>(generationEosIds);
        if (EosTokenId is int e) eos.Add(e);
        EosTokenIds = eos.ToFrozenSet();

        var special = new HashSet<int>(addedTokens.Where(t => t.Special).Select(t => t.Id));
        foreach (var s in config.AdditionalSpecialTokens.Append(config.BosToken).Append(config.EosToken).Append(config.PadToken).Append(config.UnkToken))
            if (LookUp(s) is int id) special.Add(id);
        SpecialTokenIds = special.ToFrozenSet();

        ChatTemplate = config.ChatTemplate;
        // BOS/EOS for addSpecialTokens: tokenizer_config.json add_bos_token/add_eos_token when present (as
        // transformers' Llama tokenizers do), otherwise the tokenizer.json post_processor template.
        var prefix = new List<int>();
        var suffix = new List<int>();
        if (config.AddBosToken is not null || config.AddEosToken is not null)
        {
            if (config.AddBosToken == true && BosTokenId is int b) prefix.Add(b);
            if (config.AddEosToken == true && EosTokenId is int e2) suffix.Add(e2);
        }
        else
        {
            prefix.AddRange(post.Prefix.Select(t => LookUp(t) ?? throw new TokenizerFormatException($"{source}: post_processor token '{t}' is not in the vocabulary.")));
            suffix.AddRange(post.Suffix.Select(t => LookUp(t) ?? throw new TokenizerFormatException($"{source}: post_processor token '{t}' is not in the vocabulary.")));
        }
        _prefixIds = prefix.ToArray();
        _suffixIds = suffix.ToArray();
        AddsBosToken = BosTokenId is int bb && _prefixIds.Contains(bb);
    }

    private int? LookUp(string? token) => token is not null && _tokenToId.TryGetValue(token, out var id) ? id : null;

    /// <summary>Where the tokenizer was loaded from (the folder or tokenizer.json path), for messages.</summary>
    public string Source { get; }

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

    /// <inheritdoc />
    public IReadOnlySet<int> EosTokenIds { get; }

    /// <inheritdoc />
    public int? PadTokenId { get; }

    /// <summary>The padding token text, or null.</summary>
    public string? PadToken { get; }

    /// <summary>Id of the unknown token, or null (byte-level vocabularies have none).</summary>
    public int? UnkTokenId { get; }

    /// <inheritdoc />
    public IReadOnlySet<int> SpecialTokenIds { get; }

    /// <summary>The chat_template from tokenizer_config.json (the "default" one when several are named), or null.</summary>
    public string? ChatTemplate { get; }

    /// <inheritdoc />
    public bool AddsBosToken { get; }

    /// <summary>File name of the tokenizer in a Hugging Face model folder.</summary>
    public const string TokenizerFileName = "tokenizer.json";

    /// <summary>
    /// Loads the tokenizer of a Hugging Face model folder: tokenizer.json (required), tokenizer_config.json and
    /// generation_config.json (optional).
    /// </summary>
    /// <param name="directory">The model folder.</param>
    /// <param name="limits">Bounds on the files (regex timeout, vocabulary size); null: <see cref="TokenizerLimits.Default"/>.</param>
    /// <exception cref="DirectoryNotFoundException">The folder does not exist.</exception>
    /// <exception cref="FileNotFoundException">tokenizer.json is missing.</exception>
    /// <exception cref="TokenizerFormatException">A file is malformed or uses a model, normalizer, pre-tokenizer or decoder type that is
    /// not supported (the message names the file and the JSON path).</exception>
    public static HfTokenizer FromPretrained(string directory, TokenizerLimits? limits = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(directory);
        if (!Directory.Exists(directory)) throw new DirectoryNotFoundException($"Model folder '{directory}' does not exist.");
        var tokenizerJson = Path.Combine(directory, TokenizerFileName);
        if (!File.Exists(tokenizerJson))
            throw new FileNotFoundException($"'{directory}' has no tokenizer.json (only Hugging Face fast-tokenizer files are supported).", tokenizerJson);
        var config = Path.Combine(directory, "tokenizer_config.json");
        var generation = Path.Combine(directory, "generation_config.json");
        return FromFiles(tokenizerJson, File.Exists(config) ? config : null, File.Exists(generation) ? generation : null, limits);
    }

    /// <summary>Loads a tokenizer from explicit file paths (the config files may be null).</summary>
    /// <param name="tokenizerJsonPath">The tokenizer.json file.</param>
    /// <param name="tokenizerConfigPath">The tokenizer_config.json file, or null.</param>
    /// <param name="generationConfigPath">The generation_config.json file, or null.</param>
    /// <param name="limits">Bounds on the files; null: <see cref="TokenizerLimits.Default"/>.</param>
    /// <exception cref="FileNotFoundException">A named file is missing.</exception>
    /// <exception cref="TokenizerFormatException">A file is malformed or unsupported (the message names the file and the JSON path).</exception>
    public static HfTokenizer FromFiles(string tokenizerJsonPath, string? tokenizerConfigPath = null, string? generationConfigPath = null, TokenizerLimits? limits = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(tokenizerJsonPath);
        limits ??= TokenizerLimits.Default;
        limits.Validate();
        using var scope = TokenizerLoadScope.Enter(limits);
        return Typed(tokenizerJsonPath, () => Load(tokenizerJsonPath, tokenizerConfigPath, generationConfigPath, limits));
    }

    /// <summary>
    /// Runs one parse step of a tokenizer file and turns the BCL exceptions a malformed file can cause (wrong JSON kinds,
    /// missing keys, out-of-range numbers, unsupported types) into <see cref="TokenizerFormatException"/> naming the file.
    /// </summary>
    internal static T Typed<T>(string file, Func<T> step)
    {
        try
        {
            return step();
        }
        catch (Exception e) when (e is InvalidOperationException or KeyNotFoundException or InvalidCastException or IndexOutOfRangeException
                                      or ArgumentException or OverflowException or NotSupportedException or RegexMatchTimeoutException
                                      or InsufficientExecutionStackException
                                  || (e is FormatException && e is not TokenizerFormatException))
        {
            var message = e.Message.StartsWith(file, StringComparison.Ordinal) ? e.Message : $"{file}: {e.Message}";
            throw new TokenizerFormatException(message, e);
        }
    }

    private static HfTokenizer Load(string tokenizerJsonPath, string? tokenizerConfigPath, string? generationConfigPath, TokenizerLimits limits)
    {
        using var doc = ParseFile(tokenizerJsonPath);
        var root = doc.RootElement;
        var file = tokenizerJsonPath;
        if (root.ValueKind != JsonValueKind.Object)
            throw new TokenizerFormatException($"{file}: the root must be a JSON object, found {root.ValueKind}.");
        if (!root.TryGetProperty("model", out var modelEl) || modelEl.ValueKind != JsonValueKind.Object)
            throw new TokenizerFormatException($"{file}: no 'model' object.");
        var model = TokenizerModel.FromJson(modelEl, file);
        var normalizer = TextNormalizer.FromJson(JsonHelpers.OptionalObject(root, "normalizer"), file);
        var preTokenizer = PreTokenizer.FromJson(JsonHelpers.OptionalObject(root, "pre_tokenizer"), file);
        var decoder = TokenDecoder.FromJson(JsonHelpers.OptionalObject(root, "decoder"), file);
        var post = PostProcessorInfo.FromJson(JsonHelpers.OptionalObject(root, "post_processor"), file);

        var added = new List<AddedTokenInfo>();
        if (root.TryGetProperty("added_tokens", out var addedEl) && addedEl.ValueKind == JsonValueKind.Array)
        {
            var k = 0;
            foreach (var t in addedEl.EnumerateArray())
            {
                var where = $"added_tokens[{k++}]";
                if (t.ValueKind != JsonValueKind.Object) throw new TokenizerFormatException($"{file}: {where} must be an object, found {t.ValueKind}.");
                added.Add(new AddedTokenInfo(JsonHelpers.RequiredTokenId(t, "id", file, where), JsonHelpers.RequiredString(t, "content", file, where),
                    JsonHelpers.OptionalBool(t, "special") ?? false, JsonHelpers.OptionalBool(t, "lstrip") ?? false, JsonHelpers.OptionalBool(t, "rstrip") ?? false));
            }
        }

        var config = tokenizerConfigPath is null ? TokenizerConfigInfo.Empty : Typed(tokenizerConfigPath, () => TokenizerConfigInfo.Read(tokenizerConfigPath));
        foreach (var t in config.AddedTokensDecoder)
            if (!added.Any(a => a.Id == t.Id || a.Content == t.Content)) added.Add(t);
        var genEos = generationConfigPath is null ? [] : Typed(generationConfigPath, () => ReadGenerationEos(generationConfigPath));
        var source = Path.GetDirectoryName(Path.GetFullPath(tokenizerJsonPath)) ?? tokenizerJsonPath;
        return new HfTokenizer(source, normalizer, preTokenizer, model, decoder, added, config, genEos, post);
    }

    internal static JsonDocument ParseFile(string path) =>
        DeepAlign.Runtime.SafeFiles.ReadJson(path, (m, e) => new TokenizerFormatException(m, e), allowCommentsAndTrailingCommas: true);

    private static List<int> ReadGenerationEos(string path)
    {
        using var doc = ParseFile(path);
        var ids = new List<int>();
        if (doc.RootElement.ValueKind != JsonValueKind.Object)
            throw new TokenizerFormatException($"{path}: the root must be a JSON object, found {doc.RootElement.ValueKind}.");
        if (doc.RootElement.TryGetProperty("eos_token_id", out var e))
        {
            if (e.ValueKind == JsonValueKind.Number) ids.Add(JsonHelpers.TokenId(e, path, "eos_token_id"));
            else if (e.ValueKind == JsonValueKind.Array)
            {
                var k = 0;
                foreach (var x in e.EnumerateArray()) ids.Add(JsonHelpers.TokenId(x, path, $"eos_token_id[{k++}]"));
            }
        }
        return ids;
    }

    /// <inheritdoc />
    /// <exception cref="TokenizerFormatException">A tokenizer.json regex exceeded <see cref="TokenizerLimits.RegexMatchTimeout"/> on this text, or the
    /// vocabulary cannot represent a character (no unk token and no byte fallback).</exception>
    public IReadOnlyList<int> Encode(string text, bool addSpecialTokens = false)
    {
        ArgumentNullException.ThrowIfNull(text);
        try
        {
            return EncodeCore(text, addSpecialTokens);
        }
        catch (RegexMatchTimeoutException e)
        {
            throw new TokenizerFormatException(
                $"{Source}: the tokenizer.json regex '{e.Pattern}' took longer than {e.MatchTimeout.TotalSeconds:0.###} s on this text (TokenizerLimits.RegexMatchTimeout); the pattern backtracks catastrophically.", e);
        }
    }

    private List<int> EncodeCore(string text, bool addSpecialTokens)
    {
        var ids = new List<int>(text.Length / 3 + 4);
        if (addSpecialTokens) ids.AddRange(_prefixIds);
        var pieces = new List<string>();
        foreach (var section in _splitter.IsEmpty ? [new AddedTokenSplitter.Section(text, null, 0)] : _splitter.Split(text))
        {
            if (section.Token is { } tok) { ids.Add(tok.Id); continue; }
            if (section.Text.Length == 0) continue;
            var normalized = _normalizer?.Normalize(section.Text) ?? section.Text;
            if (normalized.Length == 0) continue;
            pieces.Clear();
            pieces.Add(normalized);
            _preTokenizer?.PreTokenize(pieces, section.Offset == 0);
            foreach (var piece in pieces) _model.EncodeWord(piece, ids);
        }
        if (addSpecialTokens) ids.AddRange(_suffixIds);
        return ids;
    }

    /// <summary>
    /// <see cref="Encode"/> with, for every token, the range of <paramref name="text"/> it came from (the rule is in
    /// docs/text.md, "Offsets"): added tokens own their text, BOS/EOS added by <paramref name="addSpecialTokens"/> have
    /// empty ranges at the start/end, and a character split over several tokens belongs to the token that completes it.
    /// </summary>
    internal List<TokenOffset> EncodeWithOffsets(string text, bool addSpecialTokens)
    {
        ArgumentNullException.ThrowIfNull(text);
        try
        {
            var result = new List<TokenOffset>(text.Length / 3 + 4);
            if (addSpecialTokens) foreach (var id in _prefixIds) result.Add(new TokenOffset(id, 0, 0, true));
            var pieces = new List<AlignedText>();
            foreach (var section in _splitter.IsEmpty ? [new AddedTokenSplitter.Section(text, null, 0)] : _splitter.Split(text))
            {
                if (section.Token is { } tok) { result.Add(new TokenOffset(tok.Id, section.Offset, section.Offset + tok.Content.Length, true)); continue; }
                if (section.Text.Length == 0) continue;
                var aligned = AlignedText.Identity(section.Text, section.Offset);
                var normalized = _normalizer?.NormalizeAligned(aligned) ?? aligned;
                if (normalized.Length == 0) continue;
                pieces.Clear();
                pieces.Add(normalized);
                _preTokenizer?.PreTokenizeAligned(pieces, section.Offset == 0);
                TokenOffsetAssigner.Assign(pieces, _model, result);
            }
            if (addSpecialTokens) foreach (var id in _suffixIds) result.Add(new TokenOffset(id, text.Length, text.Length, true));
            return result;
        }
        catch (RegexMatchTimeoutException e)
        {
            throw new TokenizerFormatException(
                $"{Source}: the tokenizer.json regex '{e.Pattern}' took longer than {e.MatchTimeout.TotalSeconds:0.###} s on this text (TokenizerLimits.RegexMatchTimeout); the pattern backtracks catastrophically.", e);
        }
    }

    /// <summary>
    /// This tokenizer as a <c>Microsoft.ML.Tokenizers</c> <see cref="Microsoft.ML.Tokenizers.Tokenizer"/> (ids, tokens with offsets into the input,
    /// counts, index by token count, decode), for ML.NET and other code written against that contract.
    /// </summary>
    /// <param name="addSpecialTokens">Whether every encode adds the tokenizer's BOS/EOS (as <see cref="Encode"/> with addSpecialTokens does).</param>
    public MLTokenizerAdapter AsMLTokenizer(bool addSpecialTokens = false) => new(this, addSpecialTokens);

    /// <inheritdoc />
    public string Decode(IEnumerable<int> ids, bool skipSpecialTokens = false)
    {
        ArgumentNullException.ThrowIfNull(ids);
        var tokens = new List<string>();
        foreach (var id in ids)
        {
            if (skipSpecialTokens && SpecialTokenIds.Contains(id)) continue;
            tokens.Add(IdToToken(id) ?? throw new ArgumentOutOfRangeException(nameof(ids), id, $"Token id {id} is outside the vocabulary of {Source} (size {VocabSize})."));
        }
        if (tokens.Count == 0) return "";
        if (_decoder is null) return string.Join(' ', tokens);
        try
        {
            return string.Concat(_decoder.DecodeChain(tokens, _addedTokenContents.Contains));
        }
        catch (RegexMatchTimeoutException e)
        {
            throw new TokenizerFormatException($"{Source}: the tokenizer.json decoder regex '{e.Pattern}' took longer than {e.MatchTimeout.TotalSeconds:0.###} s (TokenizerLimits.RegexMatchTimeout).", e);
        }
    }

    /// <inheritdoc />
    public IReadOnlyDictionary<string, int> GetVocabulary() => _tokenToId;

    /// <inheritdoc />
    public string? IdToToken(int id) => id >= 0 && id < _idToToken.Length ? _idToToken[id] : null;

    /// <inheritdoc />
    public int? TokenToId(string token) => LookUp(token);
}

/// <summary>The special tokens the tokenizer.json post_processor puts around a single sequence.</summary>
internal sealed record PostProcessorInfo(IReadOnlyList<string> Prefix, IReadOnlyList<string> Suffix)
{
    public static PostProcessorInfo FromJson(JsonElement? element, string file)
    {
        if (element is not { } e) return new([], []);
        var type = JsonHelpers.OptionalString(e, "type");
        switch (type)
        {
            case "ByteLevel":
                return new([], []);
            case "Sequence":
            {
                var prefix = new List<string>();
                var suffix = new List<string>();
                foreach (var p in JsonHelpers.RequiredArray(e, "processors", file, "post_processor.Sequence"))
                {
                    var inner = FromJson(p, file);
                    prefix.AddRange(inner.Prefix);
                    suffix.AddRange(inner.Suffix);
                }
                return new(prefix, suffix);
            }
            case "TemplateProcessing":
            {
                var prefix = new List<string>();
                var suffix = new List<string>();
                var seenSequence = false;
                foreach (var piece in JsonHelpers.RequiredArray(e, "single", file, "post_processor.TemplateProcessing"))
                {
                    if (piece.ValueKind != JsonValueKind.Object) throw new TokenizerFormatException($"{file}: post_processor.single entries must be objects, found {piece.ValueKind}.");
                    if (piece.TryGetProperty("Sequence", out _)) { seenSequence = true; continue; }
                    if (piece.TryGetProperty("SpecialToken", out var st))
                    {
                        var id = JsonHelpers.RequiredString(st, "id", file, "post_processor.single[].SpecialToken");
                        var tokens = e.TryGetProperty("special_tokens", out var sp) && sp.ValueKind == JsonValueKind.Object && sp.TryGetProperty(id, out var spec)
                                     && spec.ValueKind == JsonValueKind.Object && spec.TryGetProperty("tokens", out var toks)
                            ? JsonHelpers.StringArray(toks, file, $"post_processor.special_tokens.{id}.tokens")
                            : [id];
                        (seenSequence ? suffix : prefix).AddRange(tokens);
                    }
                }
                return new(prefix, suffix);
            }
            default:
                throw new NotSupportedException($"{file}: post_processor type '{type}' is not supported (supported: TemplateProcessing, ByteLevel, Sequence).");
        }
    }
}

/// <summary>The parts of tokenizer_config.json the tokenizer and chat templates use.</summary>
internal sealed record TokenizerConfigInfo(
    string? BosToken, string? EosToken, string? PadToken, string? UnkToken, bool? AddBosToken, bool? AddEosToken,
    IReadOnlyList<string> AdditionalSpecialTokens, IReadOnlyList<AddedTokenInfo> AddedTokensDecoder, string? ChatTemplate)
{
    public static readonly TokenizerConfigInfo Empty = new(null, null, null, null, null, null, [], [], null);

    public static TokenizerConfigInfo Read(string path)
    {
        using var doc = HfTokenizer.ParseFile(path);
        var r = doc.RootElement;
        if (r.ValueKind != JsonValueKind.Object)
            throw new TokenizerFormatException($"{path}: the root must be a JSON object, found {r.ValueKind}.");
        static string? TokenText(JsonElement r, string name) =>
            !r.TryGetProperty(name, out var v) ? null
            : v.ValueKind == JsonValueKind.String ? v.GetString()
            : v.ValueKind == JsonValueKind.Object ? JsonHelpers.OptionalString(v, "content")
            : null;
        var additional = new List<string>();
        if (r.TryGetProperty("additional_special_tokens", out var ast) && ast.ValueKind == JsonValueKind.Array)
            foreach (var a in ast.EnumerateArray())
                if ((a.ValueKind == JsonValueKind.String ? a.GetString() : a.ValueKind == JsonValueKind.Object ? JsonHelpers.OptionalString(a, "content") : null) is { } s)
                    additional.Add(s);
        var decoder = new List<AddedTokenInfo>();
        if (JsonHelpers.OptionalObject(r, "added_tokens_decoder") is { } atd)
            foreach (var p in atd.EnumerateObject())
            {
                if (!int.TryParse(p.Name, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var id))
                    throw new TokenizerFormatException($"{path}: added_tokens_decoder key '{p.Name}' is not a non-negative integer id.");
                if (p.Value.ValueKind != JsonValueKind.Object) throw new TokenizerFormatException($"{path}: added_tokens_decoder.{p.Name} must be an object, found {p.Value.ValueKind}.");
                decoder.Add(new AddedTokenInfo(id, JsonHelpers.RequiredString(p.Value, "content", path, $"added_tokens_decoder.{p.Name}"),
                    JsonHelpers.OptionalBool(p.Value, "special") ?? false, JsonHelpers.OptionalBool(p.Value, "lstrip") ?? false, JsonHelpers.OptionalBool(p.Value, "rstrip") ?? false));
            }
        string? template = null;
        if (r.TryGetProperty("chat_template", out var ct))
        {
            if (ct.ValueKind == JsonValueKind.String) template = ct.GetString();
            else if (ct.ValueKind == JsonValueKind.Array)
                foreach (var t in ct.EnumerateArray())
                    if (t.ValueKind == JsonValueKind.Object && JsonHelpers.OptionalString(t, "name") == "default") template = JsonHelpers.OptionalString(t, "template");
        }
        return new TokenizerConfigInfo(TokenText(r, "bos_token"), TokenText(r, "eos_token"), TokenText(r, "pad_token"), TokenText(r, "unk_token"),
            JsonHelpers.OptionalBool(r, "add_bos_token"), JsonHelpers.OptionalBool(r, "add_eos_token"), additional, decoder, template);
    }
}
