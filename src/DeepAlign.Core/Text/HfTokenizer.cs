using System.Collections.Frozen;
using System.Text.Json;

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
    /// <exception cref="DirectoryNotFoundException">The folder does not exist.</exception>
    /// <exception cref="FileNotFoundException">tokenizer.json is missing.</exception>
    /// <exception cref="NotSupportedException">The file uses a model, normalizer, pre-tokenizer or decoder type that is not supported.</exception>
    public static HfTokenizer FromPretrained(string directory)
    {
        ArgumentException.ThrowIfNullOrEmpty(directory);
        if (!Directory.Exists(directory)) throw new DirectoryNotFoundException($"Model folder '{directory}' does not exist.");
        var tokenizerJson = Path.Combine(directory, TokenizerFileName);
        if (!File.Exists(tokenizerJson))
            throw new FileNotFoundException($"'{directory}' has no tokenizer.json (only Hugging Face fast-tokenizer files are supported).", tokenizerJson);
        var config = Path.Combine(directory, "tokenizer_config.json");
        var generation = Path.Combine(directory, "generation_config.json");
        return FromFiles(tokenizerJson, File.Exists(config) ? config : null, File.Exists(generation) ? generation : null);
    }

    /// <summary>Loads a tokenizer from explicit file paths (the config files may be null).</summary>
    public static HfTokenizer FromFiles(string tokenizerJsonPath, string? tokenizerConfigPath = null, string? generationConfigPath = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(tokenizerJsonPath);
        using var doc = ParseFile(tokenizerJsonPath);
        var root = doc.RootElement;
        var file = tokenizerJsonPath;
        if (!root.TryGetProperty("model", out var modelEl) || modelEl.ValueKind != JsonValueKind.Object)
            throw new TokenizerFormatException($"{file}: no 'model' object.");
        var model = TokenizerModel.FromJson(modelEl, file);
        var normalizer = TextNormalizer.FromJson(JsonHelpers.OptionalObject(root, "normalizer"), file);
        var preTokenizer = PreTokenizer.FromJson(JsonHelpers.OptionalObject(root, "pre_tokenizer"), file);
        var decoder = TokenDecoder.FromJson(JsonHelpers.OptionalObject(root, "decoder"), file);
        var post = PostProcessorInfo.FromJson(JsonHelpers.OptionalObject(root, "post_processor"), file);

        var added = new List<AddedTokenInfo>();
        if (root.TryGetProperty("added_tokens", out var addedEl) && addedEl.ValueKind == JsonValueKind.Array)
            foreach (var t in addedEl.EnumerateArray())
                added.Add(new AddedTokenInfo(t.GetProperty("id").GetInt32(), JsonHelpers.RequiredString(t, "content", file, "added_tokens[]"),
                    JsonHelpers.OptionalBool(t, "special") ?? false, JsonHelpers.OptionalBool(t, "lstrip") ?? false, JsonHelpers.OptionalBool(t, "rstrip") ?? false));

        var config = tokenizerConfigPath is null ? TokenizerConfigInfo.Empty : TokenizerConfigInfo.Read(tokenizerConfigPath);
        foreach (var t in config.AddedTokensDecoder)
            if (!added.Any(a => a.Id == t.Id || a.Content == t.Content)) added.Add(t);
        var genEos = generationConfigPath is null ? [] : ReadGenerationEos(generationConfigPath);
        var source = Path.GetDirectoryName(Path.GetFullPath(tokenizerJsonPath)) ?? tokenizerJsonPath;
        return new HfTokenizer(source, normalizer, preTokenizer, model, decoder, added, config, genEos, post);
    }

    internal static JsonDocument ParseFile(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"File '{path}' does not exist.", path);
        try
        {
            return JsonDocument.Parse(File.ReadAllBytes(path), new JsonDocumentOptions { AllowTrailingCommas = true, CommentHandling = JsonCommentHandling.Skip });
        }
        catch (JsonException ex)
        {
            throw new TokenizerFormatException($"{path}: invalid JSON at line {ex.LineNumber + 1}, byte {ex.BytePositionInLine}: {ex.Message}", ex);
        }
    }

    private static List<int> ReadGenerationEos(string path)
    {
        using var doc = ParseFile(path);
        var ids = new List<int>();
        if (doc.RootElement.TryGetProperty("eos_token_id", out var e))
        {
            if (e.ValueKind == JsonValueKind.Number) ids.Add(e.GetInt32());
            else if (e.ValueKind == JsonValueKind.Array) ids.AddRange(e.EnumerateArray().Select(x => x.GetInt32()));
        }
        return ids;
    }

    /// <inheritdoc />
    public IReadOnlyList<int> Encode(string text, bool addSpecialTokens = false)
    {
        ArgumentNullException.ThrowIfNull(text);
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
        return string.Concat(_decoder.DecodeChain(tokens, _addedTokenContents.Contains));
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
                foreach (var p in e.GetProperty("processors").EnumerateArray())
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
                foreach (var piece in e.GetProperty("single").EnumerateArray())
                {
                    if (piece.TryGetProperty("Sequence", out _)) { seenSequence = true; continue; }
                    if (piece.TryGetProperty("SpecialToken", out var st))
                    {
                        var id = JsonHelpers.RequiredString(st, "id", file, "post_processor.single[].SpecialToken");
                        var tokens = e.TryGetProperty("special_tokens", out var sp) && sp.TryGetProperty(id, out var spec) && spec.TryGetProperty("tokens", out var toks)
                            ? toks.EnumerateArray().Select(x => x.GetString()!).ToList()
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
                if (!int.TryParse(p.Name, out var id)) throw new TokenizerFormatException($"{path}: added_tokens_decoder key '{p.Name}' is not an integer id.");
                decoder.Add(new AddedTokenInfo(id, JsonHelpers.RequiredString(p.Value, "content", path, $"added_tokens_decoder.{p.Name}"),
                    JsonHelpers.OptionalBool(p.Value, "special") ?? false, JsonHelpers.OptionalBool(p.Value, "lstrip") ?? false, JsonHelpers.OptionalBool(p.Value, "rstrip") ?? false));
            }
        string? template = null;
        if (r.TryGetProperty("chat_template", out var ct))
        {
            if (ct.ValueKind == JsonValueKind.String) template = ct.GetString();
            else if (ct.ValueKind == JsonValueKind.Array)
                foreach (var t in ct.EnumerateArray())
                    if (JsonHelpers.OptionalString(t, "name") == "default") template = JsonHelpers.OptionalString(t, "template");
        }
        return new TokenizerConfigInfo(TokenText(r, "bos_token"), TokenText(r, "eos_token"), TokenText(r, "pad_token"), TokenText(r, "unk_token"),
            JsonHelpers.OptionalBool(r, "add_bos_token"), JsonHelpers.OptionalBool(r, "add_eos_token"), additional, decoder, template);
    }
}
