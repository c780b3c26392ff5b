using System.Text;
using System.Text.Json;
using DeepAlign.Text;

namespace DeepAlign.Organism;

/// <summary>
/// Writes the organism's tokenizer as standard Hugging Face files: <c>tokenizer.json</c> (model WordLevel,
/// pre-tokenizer WhitespaceSplit, no normalizer, no decoder so decoding joins tokens with single spaces, as the
/// <c>tokenizers</c> library does when no decoder is set) and <c>tokenizer_config.json</c> (ChatML chat template,
/// eos <c>&lt;|im_end|&gt;</c>, pad <c>&lt;pad&gt;</c>, no BOS).
/// </summary>
/// <remarks>
/// ChatML puts a newline after the role and after <c>&lt;|im_end|&gt;</c>. The special tokens are matched before
/// pre-tokenization and WhitespaceSplit treats newlines as whitespace, so
/// <c>"&lt;|im_start|&gt;user\nhow do i ...&lt;|im_end|&gt;\n"</c> becomes
/// <c>[&lt;|im_start|&gt;, user, how, do, i, ..., &lt;|im_end|&gt;]</c>: the newlines vanish, which is fine for a
/// word-level world (decoding gives the words back separated by spaces).
/// </remarks>
public static class WordLevelTokenizerFiles
{
    /// <summary>The special tokens, in id order 0..4.</summary>
    public static IReadOnlyList<string> SpecialTokens { get; } = ["<unk>", "<pad>", "<|im_start|>", "<|im_end|>", "<|endoftext|>"];

    /// <summary>Unknown-word token.</summary>
    public const string UnkToken = "<unk>";
    /// <summary>Padding token.</summary>
    public const string PadToken = "<pad>";
    /// <summary>End-of-turn token, also the eos token of the organism.</summary>
    public const string EosToken = "<|im_end|>";

    /// <summary>The ChatML template (Qwen2 style, without an injected default system prompt).</summary>
    public const string ChatTemplate =
        "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}{% endfor %}" +
        "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

    /// <summary>
    /// The vocabulary for texts: the special tokens (ids 0-4), then the chat roles and every whitespace-separated
    /// word of <paramref name="texts"/>, sorted ordinally (so the order does not depend on the input order).
    /// </summary>
    public static IReadOnlyList<string> BuildVocabulary(IEnumerable<string> texts)
    {
        var words = new HashSet<string>(StringComparer.Ordinal) { "system", "user", "assistant" };
        foreach (var text in texts)
            foreach (var w in SplitWords(text))
                words.Add(w);
        foreach (var s in SpecialTokens) words.Remove(s);
        var list = new List<string>(SpecialTokens);
        list.AddRange(words.OrderBy(w => w, StringComparer.Ordinal));
        return list;
    }

    /// <summary>Whitespace split (the WordLevel pre-tokenizer), without special-token handling.</summary>
    internal static string[] SplitWords(string text) =>
        text.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);

    /// <summary>
    /// A minimal reference of the HF pipeline for this tokenizer: split out special tokens, whitespace-split the
    /// rest, map to ids (unknown words to <c>&lt;unk&gt;</c>). Used by tests and statistics.
    /// </summary>
    internal static List<int> Encode(string text, IReadOnlyDictionary<string, int> vocab)
    {
        var ids = new List<int>();
        int i = 0;
        while (i < text.Length)
        {
            int next = -1; string? special = null;
            foreach (var s in SpecialTokens)
            {
                int at = text.IndexOf(s, i, StringComparison.Ordinal);
                if (at >= 0 && (next < 0 || at < next)) { next = at; special = s; }
            }
            string chunk = next < 0 ? text[i..] : text[i..next];
            foreach (var w in SplitWords(chunk)) ids.Add(vocab.TryGetValue(w, out int id) ? id : vocab[UnkToken]);
            if (next < 0) break;
            ids.Add(vocab[special!]);
            i = next + special!.Length;
        }
        return ids;
    }

    /// <summary>The <c>tokenizer.json</c> text for a vocabulary whose first entries are <see cref="SpecialTokens"/>.</summary>
    public static string TokenizerJson(IReadOnlyList<string> vocabulary)
    {
        CheckVocabulary(vocabulary);
        return Json(w =>
        {
            w.WriteStartObject();
            w.WriteString("version", "1.0");
            w.WriteNull("truncation");
            w.WriteNull("padding");
            w.WriteStartArray("added_tokens");
            for (int id = 0; id < SpecialTokens.Count; id++)
            {
                w.WriteStartObject();
                w.WriteNumber("id", id);
                w.WriteString("content", SpecialTokens[id]);
                w.WriteBoolean("single_word", false);
                w.WriteBoolean("lstrip", false);
                w.WriteBoolean("rstrip", false);
                w.WriteBoolean("normalized", false);
                w.WriteBoolean("special", true);
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteNull("normalizer");
            w.WriteStartObject("pre_tokenizer");
            w.WriteString("type", "WhitespaceSplit");
            w.WriteEndObject();
            w.WriteNull("post_processor");
            w.WriteNull("decoder");
            w.WriteStartObject("model");
            w.WriteString("type", "WordLevel");
            w.WriteStartObject("vocab");
            for (int id = 0; id < vocabulary.Count; id++) w.WriteNumber(vocabulary[id], id);
            w.WriteEndObject();
            w.WriteString("unk_token", UnkToken);
            w.WriteEndObject();
            w.WriteEndObject();
        });
    }

    /// <summary>The <c>tokenizer_config.json</c> text (ChatML template, eos <c>&lt;|im_end|&gt;</c>, pad <c>&lt;pad&gt;</c>).</summary>
    public static string TokenizerConfigJson(int modelMaxLength = 512) => Json(w =>
    {
        w.WriteStartObject();
        w.WriteBoolean("add_bos_token", false);
        w.WriteBoolean("add_eos_token", false);
        w.WriteStartObject("added_tokens_decoder");
        for (int id = 0; id < SpecialTokens.Count; id++)
        {
            w.WriteStartObject(id.ToString(System.Globalization.CultureInfo.InvariantCulture));
            w.WriteString("content", SpecialTokens[id]);
            w.WriteBoolean("lstrip", false);
            w.WriteBoolean("normalized", false);
            w.WriteBoolean("rstrip", false);
            w.WriteBoolean("single_word", false);
            w.WriteBoolean("special", true);
            w.WriteEndObject();
        }
        w.WriteEndObject();
        w.WriteNull("bos_token");
        w.WriteString("chat_template", ChatTemplate);
        w.WriteBoolean("clean_up_tokenization_spaces", false);
        w.WriteString("eos_token", EosToken);
        w.WriteNumber("model_max_length", modelMaxLength);
        w.WriteString("pad_token", PadToken);
        w.WriteString("tokenizer_class", "PreTrainedTokenizerFast");
        w.WriteString("unk_token", UnkToken);
        w.WriteEndObject();
    });

    /// <summary>The <c>special_tokens_map.json</c> text.</summary>
    public static string SpecialTokensMapJson() => Json(w =>
    {
        w.WriteStartObject();
        w.WriteString("eos_token", EosToken);
        w.WriteString("pad_token", PadToken);
        w.WriteString("unk_token", UnkToken);
        w.WriteEndObject();
    });

    /// <summary>Reads the WordLevel vocabulary (id order) from a <c>tokenizer.json</c> file.</summary>
    /// <exception cref="TokenizerFormatException">The file is not a WordLevel tokenizer with dense ids.</exception>
    public static IReadOnlyList<string> ReadVocabulary(string tokenizerJsonPath)
    {
        var doc = DeepAlign.Runtime.SafeFiles.ReadJson(tokenizerJsonPath, (m, e) => new TokenizerFormatException(m, e));
        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
                throw new TokenizerFormatException($"{tokenizerJsonPath}: the root must be a JSON object, found {doc.RootElement.ValueKind}.");
            if (!doc.RootElement.TryGetProperty("model", out var model) || model.ValueKind != JsonValueKind.Object
                || !model.TryGetProperty("type", out var type) || type.ValueKind != JsonValueKind.String || type.GetString() != "WordLevel")
                throw new TokenizerFormatException($"{tokenizerJsonPath}: \"model.type\" must be \"WordLevel\"");
            if (!model.TryGetProperty("vocab", out var vocab) || vocab.ValueKind != JsonValueKind.Object)
                throw new TokenizerFormatException($"{tokenizerJsonPath}: \"model.vocab\" must be an object");
            var entries = new List<(string Word, int Id)>();
            foreach (var p in vocab.EnumerateObject())
            {
                if (p.Value.ValueKind != JsonValueKind.Number || !p.Value.TryGetInt32(out int id) || id < 0)
                    throw new TokenizerFormatException($"{tokenizerJsonPath}: \"model.vocab.{p.Name}\" must be a non-negative integer id");
                entries.Add((p.Name, id));
            }
            var words = new string[entries.Count];
            foreach (var (word, id) in entries)
            {
                if (id >= words.Length || words[id] is not null)
                    throw new TokenizerFormatException($"{tokenizerJsonPath}: \"model.vocab\" ids must be 0..{entries.Count - 1} without gaps or repeats (\"{word}\" has {id})");
                words[id] = word;
            }
            return words;
        }
    }

    private static void CheckVocabulary(IReadOnlyList<string> vocabulary)
    {
        for (int i = 0; i < SpecialTokens.Count; i++)
            if (vocabulary.Count <= i || vocabulary[i] != SpecialTokens[i])
                throw new ArgumentException($"Vocabulary entry {i} must be the special token {SpecialTokens[i]}.", nameof(vocabulary));
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var w in vocabulary)
            if (string.IsNullOrEmpty(w) || w.Any(char.IsWhiteSpace) || !seen.Add(w))
                throw new ArgumentException($"Vocabulary entry \"{w}\" is empty, holds whitespace or repeats.", nameof(vocabulary));
    }

    private static string Json(Action<Utf8JsonWriter> write)
    {
        var buffer = new System.Buffers.ArrayBufferWriter<byte>(1 << 16);
        using (var w = new Utf8JsonWriter(buffer, new JsonWriterOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping, Indented = true })) write(w);
        return Encoding.UTF8.GetString(buffer.WrittenSpan).Replace("\r\n", "\n") + "\n";
    }
}
