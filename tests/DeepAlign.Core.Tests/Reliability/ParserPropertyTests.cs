using System.Text;
using CsCheck;
using DeepAlign.Checkpoints;
using DeepAlign.Data;
using DeepAlign.Evaluation.Judges;
using DeepAlign.Organism;
using DeepAlign.Text;
using DeepAlign.Text.Jinja;
using DeepAlign.Training;
using FluentAssertions;
using Xunit;
using static TorchSharp.torch;

namespace DeepAlign.Core.Tests.Reliability;

/// <summary>
/// Generated hostile inputs for every parser (CsCheck; a few hundred cases each, seconds in total): each input either
/// parses or fails with that format's typed exception. The long campaign is the fuzz harness (docs/reliability.md).
/// </summary>
public sealed class ParserPropertyTests : IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("deepalign-prop-");

    public void Dispose() => _dir.Delete(recursive: true);

    private string PathOf(string name) => Path.Combine(_dir.FullName, name);

    private static readonly string[] JinjaPieces =
    [
        "{{ ", " }}", "{% ", " %}", "if ", "for x in ", "endif", "endfor", "macro f(a)", "endmacro", "f(", ")", "(", "[", "]", "{", "}", ":", ",",
        "messages", "x", "loop.index", "range(", "10**9", "'a'", "*", "+", "~", "-", "//", "%", "**", "|", "length", "indent(", "tojson", "join",
        "replace(", "trim", "is ", "not ", "defined", "in ", "and ", "or ", "[::", "99999999999999999999", "1.5", "set ns = namespace(v=[])", "ns.v",
        "raise_exception('x')", "\n", "{#", "#}", "-", "true", "none", "else", "elif", "\\u", "'", "\"", "{%- ", " -%}",
    ];

    [Fact]
    public void Jinja_templates_built_from_hostile_pieces_render_or_fail_with_ChatTemplateException()
    {
        var limits = new JinjaLimits { MaxIterations = 100_000, MaxRangeLength = 100_000, MaxStringLength = 1_000_000, MaxStringWork = 10_000_000, MaxOutputLength = 1_000_000 };
        var vars = new Dictionary<string, object?>
        {
            ["messages"] = new List<object?> { new Dictionary<string, object?> { ["role"] = "user", ["content"] = "hi" } },
            ["x"] = "abc", ["add_generation_prompt"] = true,
        };
        Gen.Int[0, JinjaPieces.Length - 1].Array[1, 40].Sample(pieces =>
        {
            var template = string.Concat(pieces.Select(i => JinjaPieces[i]));
            Hostile.OnlyTyped<ChatTemplateException>(() => new JinjaTemplate(template, limits).Render(vars), $"template {template}");
        }, iter: 3000, threads: 1);
    }

    [Fact]
    public void Official_templates_with_mutations_render_or_fail_with_ChatTemplateException()
    {
        var seeds = Enum.GetValues<ChatFormat>().Where(f => f != ChatFormat.Auto).Select(ChatFormats.TemplateText).ToArray();
        var limits = new JinjaLimits { MaxIterations = 100_000, MaxStringLength = 1_000_000, MaxOutputLength = 1_000_000 };
        var messages = new List<object?>
        {
            new Dictionary<string, object?> { ["role"] = "system", ["content"] = "s" },
            new Dictionary<string, object?> { ["role"] = "user", ["content"] = "hi" },
        };
        Gen.Select(Gen.Int[0, seeds.Length - 1], Gen.Int).Sample((which, seed) =>
        {
            var bytes = Hostile.MutateBytes(Encoding.UTF8.GetBytes(seeds[which]), new Random(seed));
            var text = Encoding.UTF8.GetString(bytes);
            Hostile.OnlyTyped<ChatTemplateException>(() => new JinjaTemplate(text, limits).Render(new Dictionary<string, object?>
            {
                ["messages"] = messages, ["add_generation_prompt"] = true, ["bos_token"] = "<s>", ["eos_token"] = "</s>",
            }), $"format {which} seed {seed}");
        }, iter: 1500, threads: 1);
    }

    [Fact]
    public void Mutated_safetensors_files_open_and_load_or_fail_with_SafetensorsFormatException()
    {
        var seedPath = PathOf("seed.safetensors");
        using (var a = arange(6, dtype: ScalarType.Float32).reshape(2, 3))
        using (var b = ones(3, dtype: ScalarType.BFloat16))
            SafetensorsWriter.Save(seedPath, [("a.weight", a), ("b", b)]);
        var seed = File.ReadAllBytes(seedPath);
        var path = PathOf("m.safetensors");
        Gen.Int.Sample(n =>
        {
            File.WriteAllBytes(path, Hostile.MutateBytes(seed, new Random(n)));
            Hostile.OnlyTyped<CheckpointFormatException>(() =>
            {
                using var f = SafetensorsFile.Open(path);
                foreach (var t in f.Tensors)
                    if (t.ByteLength < 1 << 20) f.Load(t.Name).Dispose();
            }, $"safetensors seed {n}");
        }, iter: 1500, threads: 1);
    }

    [Fact]
    public void Mutated_jsonl_datasets_read_or_fail_with_DatasetFormatException()
    {
        var seed = string.Join("\n",
            """{"id": "a", "prompt": "p", "response": "r", "category": "c"}""",
            """{"system": "s", "prompt": "p", "safe_response": "no", "harmful_response": "yes"}""",
            """{"messages": [{"role": "user", "content": "u"}, {"role": "assistant", "content": "a"}, {"role": "user", "content": "b"}], "response": "r"}""",
            """{"prompt_ids": [1, 2], "response_ids": [3], "harmful_response_ids": [4]}""",
            """{"ids": [1, 2, 3], "mask": [0, 1, 1]}""") + "\n";
        var path = PathOf("d.jsonl");
        Gen.Int.Sample(n =>
        {
            var r = new Random(n);
            var lines = seed.Split('\n');
            var k = r.Next(lines.Length - 1);
            if (n % 2 == 0) lines[k] = Hostile.MutateJson(lines[k], r);
            var text = string.Join("\n", lines);
            File.WriteAllBytes(path, n % 2 == 0 ? Encoding.UTF8.GetBytes(text) : Hostile.MutateBytes(Encoding.UTF8.GetBytes(text), r));
            Hostile.OnlyTyped<DatasetFormatException>(() => { foreach (var rec in JsonlDatasetReader.StreamFile(path)) _ = rec.Texts().Count(); }, $"jsonl seed {n}");
        }, iter: 1500, threads: 1);
    }

    [Fact]
    public void Mutated_csv_datasets_read_or_fail_with_DatasetFormatException()
    {
        // The three CSV layouts with quoted commas, doubled quotes, line breaks and non-ASCII text, then byte or character
        // mutations (quotes and separators are what a CSV parser trips on): records or a DatasetFormatException, nothing else.
        string[] seeds =
        [
            "goal,target\r\n\"Explain, briefly\",\"Sure, here is \"\"it\"\"\"\r\n\"two\nlines\",ok\r\nÉcris 🙂,oui\r\n",
            "Behavior,FunctionalCategory,SemanticCategory,Tags,ContextString,BehaviorID\nb1,standard,illegal,,,id1\n\"b2, more\",contextual,cyber,context,\"ctx\nline \"\"q\"\"\",id2\n",
            "id,prompt,harmful_response,safe_response\nh1,\"p, q\",h,s\nh2,p2,\"x\ny\",\n",
        ];
        var path = PathOf("d.csv");
        const string specials = "\",\r\n\uFEFF ";
        Gen.Int.Sample(n =>
        {
            var r = new Random(n);
            var text = seeds[r.Next(seeds.Length)].ToCharArray().ToList();
            for (int m = r.Next(1, 4); m > 0; m--)
            {
                int at = r.Next(text.Count);
                switch (r.Next(3))
                {
                    case 0: text.Insert(at, specials[r.Next(specials.Length)]); break;
                    case 1: text.RemoveAt(at); break;
                    default: text[at] = specials[r.Next(specials.Length)]; break;
                }
            }
            var bytes = Encoding.UTF8.GetBytes(new string([.. text]));
            File.WriteAllBytes(path, n % 3 == 0 ? Hostile.MutateBytes(bytes, r) : bytes);
            Hostile.OnlyTyped<DatasetFormatException>(() => { foreach (var rec in DatasetReader.StreamFile(path)) _ = rec.Texts().Count(); }, $"csv seed {n}");
        }, iter: 1500, threads: 1);
    }

    [Fact]
    public void Mutated_judge_index_trainer_state_and_world_tokenizer_files_fail_typed()
    {
        var judge = """{"ignore_case": true, "refusal_markers": ["I can't"], "items": {"h1": {"markers": ["a", "b"], "min_markers": 2}}, "categories": {"c": {"markers": ["x"]}}}""";
        var index = """{"metadata": {"total_size": 24}, "weight_map": {"a.weight": "model-00001-of-00001.safetensors"}}""";
        var state = """{"format": 1, "step": 3, "optimizer_step": 3, "seed": 1, "objective": "sft", "data_position": {"draws": 6, "sources": [{"name": "t", "epoch": 0, "cursor": 6, "drawn": 6}]}, "torch_rng_state": null, "trainable_parameters": ["w"]}""";
        var world = WordLevelTokenizerFiles.TokenizerJson(WordLevelTokenizerFiles.BuildVocabulary(["a b user"]));
        var modelDir = _dir.CreateSubdirectory("model").FullName;
        using (var t = zeros(2, 3))
            SafetensorsWriter.Save(Path.Combine(modelDir, "model-00001-of-00001.safetensors"), [("a.weight", t)]);
        var checkpoint = _dir.CreateSubdirectory("ck").CreateSubdirectory("checkpoint-000003").FullName;
        Gen.Select(Gen.Int[0, 3], Gen.Int).Sample((which, n) =>
        {
            var r = new Random(n);
            string Mutate(string s) => n % 2 == 0 ? Hostile.MutateJson(s, r) : Encoding.UTF8.GetString(Hostile.MutateBytes(Encoding.UTF8.GetBytes(s), r));
            switch (which)
            {
                case 0:
                    File.WriteAllText(PathOf("judge.json"), Mutate(judge));
                    Hostile.OnlyTyped<JudgeSpecFormatException>(() => JudgeSpec.Read(PathOf("judge.json")), $"judge seed {n}");
                    break;
                case 1:
                    File.WriteAllText(Path.Combine(modelDir, "model.safetensors.index.json"), Mutate(index));
                    Hostile.OnlyTyped<CheckpointFormatException>(() => SafetensorsCheckpoint.Open(modelDir).Dispose(), $"index seed {n}");
                    break;
                case 2:
                    File.WriteAllText(Path.Combine(checkpoint, "trainer_state.json"), Mutate(state));
                    Hostile.OnlyTyped<CheckpointFormatException>(() => TrainingCheckpoints.StepOf(checkpoint), $"state seed {n}");
                    break;
                default:
                    File.WriteAllText(PathOf("tokenizer.json"), Mutate(world));
                    Hostile.OnlyTyped<TokenizerFormatException>(() => WordLevelTokenizerFiles.ReadVocabulary(PathOf("tokenizer.json")), $"world seed {n}");
                    break;
            }
        }, iter: 2000, threads: 1);
    }
}
