using System.Collections.Concurrent;
using System.Text;
using System.Text.Json;

namespace DeepAlign.Text;

/// <summary>The "model" stage of tokenizer.json: turns one pre-tokenized word into ids.</summary>
internal abstract class TokenizerModel
{
    /// <summary>Token string to id for the model's own vocabulary (added tokens excluded).</summary>
    public abstract IReadOnlyDictionary<string, int> Vocab { get; }

    /// <summary>Appends the ids of <paramref name="word"/> to <paramref name="output"/>.</summary>
    public abstract void EncodeWord(string word, List<int> output);

    /// <summary>
    /// <see cref="EncodeWord"/> that also appends, per token, the char index of <paramref name="word"/> up to which the
    /// token covers the word, and whether it stops inside a character (a byte-fallback byte before the character's last).
    /// The ids equal <see cref="EncodeWord"/>'s.
    /// </summary>
    public abstract void EncodeWordWithSpans(string word, List<int> output, List<(int End, bool Partial)> spans);

    public static TokenizerModel FromJson(JsonElement model, string file)
    {
        var type = JsonHelpers.OptionalString(model, "type");
        if (type is null)
            throw new TokenizerFormatException($"{file}: model has no 'type'.");
        return type switch
        {
            "BPE" => BpeModel.Create(model, file),
            "WordLevel" => WordLevelModel.Create(model, file),
            _ => throw new TokenizerFormatException($"{file}: model type '{type}' is not supported (supported: BPE, WordLevel)."),
        };
    }

    protected static Dictionary<string, int> ReadVocab(JsonElement model, string file)
    {
        if (!model.TryGetProperty("vocab", out var v) || v.ValueKind != JsonValueKind.Object)
            throw new TokenizerFormatException($"{file}: model.vocab must be an object mapping token to id.");
        var vocab = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var p in v.EnumerateObject()) vocab[p.Name] = JsonHelpers.TokenId(p.Value, file, $"model.vocab[{JsonHelpers.Abbreviate(JsonSerializer.Serialize(p.Name))}]");
        return vocab;
    }
}

/// <summary>WordLevel: each word is looked up whole; unknown words map to the unk token.</summary>
internal sealed class WordLevelModel : TokenizerModel
{
    private readonly Dictionary<string, int> _vocab;
    private readonly int? _unkId;
    private readonly string? _unkToken;
    private readonly string _file;

    private WordLevelModel(Dictionary<string, int> vocab, string? unkToken, string file)
    {
        _vocab = vocab;
        _unkToken = unkToken;
        _file = file;
        if (unkToken is not null)
            _unkId = vocab.TryGetValue(unkToken, out var id) ? id
                : throw new TokenizerFormatException($"{file}: model.unk_token '{unkToken}' is not in model.vocab.");
    }

    public override IReadOnlyDictionary<string, int> Vocab => _vocab;

    public static WordLevelModel Create(JsonElement model, string file) =>
        new(ReadVocab(model, file), JsonHelpers.OptionalString(model, "unk_token"), file);

    public override void EncodeWord(string word, List<int> output)
    {
        if (_vocab.TryGetValue(word, out var id)) output.Add(id);
        else if (_unkId is int u) output.Add(u);
        else throw new TokenizerFormatException($"{_file}: word '{JsonHelpers.Abbreviate(word)}' is not in the WordLevel vocabulary and the model has no unk_token.");
    }

    public override void EncodeWordWithSpans(string word, List<int> output, List<(int End, bool Partial)> spans)
    {
        var before = output.Count;
        EncodeWord(word, output);
        if (output.Count > before) spans.Add((word.Length, false));
    }
}

/// <summary>
/// Byte-pair encoding as in HF tokenizers: a word starts as one symbol per character (unknown characters become
/// &lt;0xNN&gt; byte tokens with byte_fallback, else unk), then the adjacent pair with the lowest merge rank is
/// merged repeatedly (ties: leftmost). ignore_merges: a word that is itself in the vocabulary is one token.
/// </summary>
internal sealed class BpeModel : TokenizerModel
{
    private readonly Dictionary<string, int> _vocab;
    private readonly Dictionary<long, (int Rank, int NewId)> _merges;
    private readonly bool _byteFallback;
    private readonly bool _ignoreMerges;
    private readonly bool _fuseUnk;
    private readonly int? _unkId;
    private readonly int[] _byteIds = new int[256];
    private readonly ConcurrentDictionary<string, int[]> _cache = new(StringComparer.Ordinal);
    private const int MaxCacheEntries = 200_000;
    private const int MaxCachedWordLength = 256;

    public override IReadOnlyDictionary<string, int> Vocab => _vocab;

    private BpeModel(Dictionary<string, int> vocab, Dictionary<long, (int, int)> merges, bool byteFallback, bool ignoreMerges, bool fuseUnk, int? unkId)
    {
        _vocab = vocab;
        _merges = merges;
        _byteFallback = byteFallback;
        _ignoreMerges = ignoreMerges;
        _fuseUnk = fuseUnk;
        _unkId = unkId;
        for (var b = 0; b < 256; b++)
            _byteIds[b] = vocab.TryGetValue($"<0x{b:X2}>", out var id) ? id : -1;
    }

    public static BpeModel Create(JsonElement model, string file)
    {
        if (model.TryGetProperty("dropout", out var d) && d.ValueKind == JsonValueKind.Number && d.TryGetDouble(out var dropout) && dropout > 0)
            throw new NotSupportedException($"{file}: BPE dropout is not supported (model.dropout = {d.GetDouble()}).");
        foreach (var affix in new[] { "continuing_subword_prefix", "end_of_word_suffix" })
            if (JsonHelpers.OptionalString(model, affix) is { Length: > 0 } value)
                throw new NotSupportedException($"{file}: BPE model.{affix} = '{value}' is not supported.");
        var vocab = ReadVocab(model, file);
        if (!model.TryGetProperty("merges", out var mergesEl) || mergesEl.ValueKind != JsonValueKind.Array)
            throw new TokenizerFormatException($"{file}: BPE model.merges must be an array.");
        var merges = new Dictionary<long, (int, int)>(mergesEl.GetArrayLength());
        var rank = 0;
        foreach (var m in mergesEl.EnumerateArray())
        {
            string left, right;
            if (m.ValueKind == JsonValueKind.Array)
            {
                if (m.GetArrayLength() != 2 || m[0].ValueKind != JsonValueKind.String || m[1].ValueKind != JsonValueKind.String)
                    throw new TokenizerFormatException($"{file}: model.merges[{rank}] must be a pair of strings, found {JsonHelpers.Abbreviate(m.GetRawText())}.");
                left = m[0].GetString()!;
                right = m[1].GetString()!;
            }
            else if (m.ValueKind != JsonValueKind.String)
                throw new TokenizerFormatException($"{file}: model.merges[{rank}] must be a string \"a b\" or a pair of strings, found {m.ValueKind}.");
            else
            {
                var s = m.GetString()!;
                if (s.Length < 2) throw new TokenizerFormatException($"{file}: model.merges[{rank}] '{s}' has no space separator.");
                var space = s.IndexOf(' ', 1); // the old format "a b": split at the first space that is not the first character
                if (space < 0) throw new TokenizerFormatException($"{file}: merge #{rank} '{s}' has no space separator.");
                left = s[..space];
                right = s[(space + 1)..];
            }
            if (!vocab.TryGetValue(left, out var l) || !vocab.TryGetValue(right, out var r) || !vocab.TryGetValue(left + right, out var n))
                throw new TokenizerFormatException($"{file}: merge #{rank} '{left} {right}' refers to a token that is not in model.vocab.");
            merges.TryAdd(Key(l, r), (rank, n));
            rank++;
        }
        var unkToken = JsonHelpers.OptionalString(model, "unk_token");
        int? unkId = null;
        if (unkToken is not null)
            unkId = vocab.TryGetValue(unkToken, out var u) ? u : throw new TokenizerFormatException($"{file}: model.unk_token '{unkToken}' is not in model.vocab.");
        return new BpeModel(vocab, merges, JsonHelpers.OptionalBool(model, "byte_fallback") ?? false,
            JsonHelpers.OptionalBool(model, "ignore_merges") ?? false, JsonHelpers.OptionalBool(model, "fuse_unk") ?? false, unkId);
    }

    private static long Key(int left, int right) => ((long)left << 32) | (uint)right;

    public override void EncodeWord(string word, List<int> output)
    {
        if (word.Length == 0) return;
        if (_ignoreMerges && _vocab.TryGetValue(word, out var whole)) { output.Add(whole); return; }
        if (_cache.TryGetValue(word, out var cached)) { output.AddRange(cached); return; }
        var ids = Bpe(word);
        if (word.Length <= MaxCachedWordLength)
        {
            if (_cache.Count >= MaxCacheEntries) _cache.Clear();
            _cache.TryAdd(word, ids);
        }
        output.AddRange(ids);
    }

    public override void EncodeWordWithSpans(string word, List<int> output, List<(int End, bool Partial)> spans)
    {
        if (word.Length == 0) return;
        if (_ignoreMerges && _vocab.TryGetValue(word, out var whole))
        {
            output.Add(whole);
            spans.Add((word.Length, false));
            return;
        }
        output.AddRange(Bpe(word, spans));
    }

    private int[] Bpe(string word, List<(int End, bool Partial)>? spans = null)
    {
        // Initial symbols: one per Unicode scalar (surrogate pairs kept together). With spans, each symbol also
        // records where in the word it ends and whether it ends inside a character (byte fallback).
        var ids = new List<int>(word.Length);
        var ends = spans is null ? null : new List<(int End, bool Partial)>(word.Length);
        var unkPending = false;
        for (var i = 0; i < word.Length;)
        {
            var len = char.IsHighSurrogate(word[i]) && i + 1 < word.Length && char.IsLowSurrogate(word[i + 1]) ? 2 : 1;
            var piece = word.Substring(i, len);
            var start = i;
            i += len;
            if (_vocab.TryGetValue(piece, out var id)) { ids.Add(id); ends?.Add((i, false)); unkPending = false; continue; }
            if (_byteFallback)
            {
                var bytes = Encoding.UTF8.GetBytes(piece);
                if (bytes.All(b => _byteIds[b] >= 0))
                {
                    for (var k = 0; k < bytes.Length; k++)
                    {
                        ids.Add(_byteIds[bytes[k]]);
                        ends?.Add(k == bytes.Length - 1 ? (i, false) : (start, true));
                    }
                    unkPending = false;
                    continue;
                }
            }
            if (_unkId is not int unk)
                throw new TokenizerFormatException($"character U+{(int)piece[0]:X4} is not in the BPE vocabulary and the model has neither byte_fallback tokens nor an unk_token.");
            if (_fuseUnk && unkPending)
            {
                if (ends is not null) ends[^1] = (i, false);
                continue;
            }
            ids.Add(unk);
            ends?.Add((i, false));
            unkPending = true;
        }
        var n = ids.Count;
        if (n < 2)
        {
            if (ends is not null) spans!.AddRange(ends);
            return ids.ToArray();
        }

        // Doubly linked symbols + a min-heap of candidate merges keyed by (rank, position).
        var sym = ids.ToArray();
        var prev = new int[n];
        var next = new int[n];
        var alive = new bool[n];
        for (var i = 0; i < n; i++) { prev[i] = i - 1; next[i] = i + 1 < n ? i + 1 : -1; alive[i] = true; }
        var heap = new PriorityQueue<(int Pos, int Left, int Right, int NewId), (int Rank, int Pos)>();
        void Push(int pos)
        {
            var nx = next[pos];
            if (nx < 0) return;
            if (_merges.TryGetValue(Key(sym[pos], sym[nx]), out var m))
                heap.Enqueue((pos, sym[pos], sym[nx], m.NewId), (m.Rank, pos));
        }
        for (var i = 0; i < n - 1; i++) Push(i);
        while (heap.TryDequeue(out var c, out _))
        {
            if (!alive[c.Pos] || sym[c.Pos] != c.Left) continue;
            var nx = next[c.Pos];
            if (nx < 0 || sym[nx] != c.Right) continue;
            sym[c.Pos] = c.NewId;
            if (ends is not null) ends[c.Pos] = ends[nx];
            alive[nx] = false;
            next[c.Pos] = next[nx];
            if (next[nx] >= 0) prev[next[nx]] = c.Pos;
            if (prev[c.Pos] >= 0) Push(prev[c.Pos]);
            Push(c.Pos);
        }
        var result = new List<int>(n);
        for (var i = 0; i >= 0; i = next[i])
        {
            result.Add(sym[i]);
            if (ends is not null) spans!.Add(ends[i]);
        }
        return result.ToArray();
    }
}
