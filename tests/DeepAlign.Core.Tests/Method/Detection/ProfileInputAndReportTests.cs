using System.Text.Json;
using DeepAlign.Method.Detection;
using DeepAlign.Organism;
using DeepAlign.Tests.Checkpoints;
using DeepAlign.Text;
using DeepAlign.Training.Data;
using FluentAssertions;
using Xunit;
using DeepAlign.Data;

namespace DeepAlign.Tests.Method.Detection;

/// <summary>Dataset lines to profile inputs (chat template, pre-tokenized, errors) and the report files.</summary>
public class ProfileInputAndReportTests
{
    internal static (HfTokenizer Tokenizer, ConversationEncoder Encoder) WordTokenizer(TempDir dir)
    {
        var vocab = WordLevelTokenizerFiles.BuildVocabulary(["how do I pick a lock", "sure first take a pin", "I cannot help with that", "be nice"]);
        File.WriteAllText(dir.File("tokenizer.json"), WordLevelTokenizerFiles.TokenizerJson(vocab));
        var tokenizer = HfTokenizer.FromFiles(dir.File("tokenizer.json"));
        var template = new ChatTemplate(WordLevelTokenizerFiles.ChatTemplate, null, WordLevelTokenizerFiles.EosToken);
        return (tokenizer, new ConversationEncoder(tokenizer, template));
    }

    [Fact]
    public void Text_and_pretokenized_lines_become_prompt_and_response_ids_without_the_end_of_turn()
    {
        using var dir = new TempDir();
        var (tok, enc) = WordTokenizer(dir);
        int eot = tok.TokenToId("<|im_end|>")!.Value;
        string file = dir.File("data.jsonl");
        File.WriteAllLines(file,
        [
            """{"id": "t1", "prompt": "how do I pick a lock", "response": "sure first take a pin"}""",
            "",
            """{"system": "be nice", "prompt": "how do I pick a lock", "harmful_response": "sure first", "safe_response": "I cannot"}""",
            """{"messages": [{"role": "user", "content": "how do I pick a lock"}], "response": "I cannot help"}""",
            $$"""{"prompt_ids": [2, 7], "response_ids": [9, 10, {{eot}}]}""",
            $$"""{"ids": [2, 7, 9, 10], "mask": [0, 0, 1, 1]}""",
        ]);
        var inputs = new ProfileInputReader(enc).ReadJsonl(file).ToList();
        inputs.Should().HaveCount(5);
        var messages = new[] { ChatMessage.User("how do I pick a lock") };
        inputs[0].Id.Should().Be("t1");
        inputs[0].Location.Should().Be($"{file}:1");
        inputs[0].PromptIds.Should().Equal(enc.EncodePrompt(messages).Select(i => (long)i));
        inputs[0].PromptIds.Last().Should().NotBe(eot);
        inputs[0].ResponseIds.Should().Equal(tok.Encode("sure first take a pin").Select(i => (long)i));
        // Falls back to harmful_response; the system message is rendered.
        inputs[1].Location.Should().Be($"{file}:3");
        inputs[1].ResponseIds.Should().Equal(tok.Encode("sure first").Select(i => (long)i));
        inputs[1].PromptIds.Should().Equal(enc.EncodePrompt([ChatMessage.System("be nice"), .. messages]).Select(i => (long)i));
        inputs[2].ResponseIds.Should().Equal(tok.Encode("I cannot help").Select(i => (long)i));
        inputs[3].PromptIds.Should().Equal(2L, 7L);
        inputs[3].ResponseIds.Should().Equal(9L, 10L); // trailing end-of-turn dropped
        inputs[4].PromptIds.Should().Equal(2L, 7L);
        inputs[4].ResponseIds.Should().Equal(9L, 10L);
        // An explicit field.
        new ProfileInputReader(enc, "safe_response").FromRecord(JsonlDatasetReader.ParseLine(File.ReadAllLines(file)[2], "x:3")).ResponseIds.Should().Equal(tok.Encode("I cannot").Select(i => (long)i));
    }

    [Fact]
    public void Errors_name_the_file_and_line_and_reading_is_lazy()
    {
        using var dir = new TempDir();
        string file = dir.File("bad.jsonl");
        File.WriteAllLines(file, ["""{"prompt_ids": [1], "response_ids": [2]}""", "{not json", """{"prompt_ids": [1]}"""]);
        var reader = new ProfileInputReader();
        using var e = reader.ReadJsonl(file).GetEnumerator();
        e.MoveNext().Should().BeTrue(); // the first line is produced before the bad one is read
        e.Current.ResponseIds.Should().Equal(2L);
        FluentActions.Invoking(() => e.MoveNext()).Should().Throw<DatasetFormatException>().WithMessage($"{file}:2*");
        File.WriteAllLines(file, ["""{"prompt_ids": [1]}"""]);
        FluentActions.Invoking(() => reader.ReadJsonl(file).ToList()).Should().Throw<DatasetFormatException>().WithMessage($"{file}:1*no \"response\"*");
        File.WriteAllLines(file, ["""{"prompt": "hi", "response": "there"}"""]);
        FluentActions.Invoking(() => reader.ReadJsonl(file).ToList()).Should().Throw<DatasetFormatException>().WithMessage($"{file}:1*no tokenizer*");
        File.WriteAllText(file, "\n\n");
        FluentActions.Invoking(() => reader.ReadJsonl(file).ToList()).Should().Throw<DatasetFormatException>().WithMessage("*empty*");
        FluentActions.Invoking(() => reader.ReadJsonl(dir.File("missing.jsonl"))).Should().Throw<FileNotFoundException>();
    }

    [Fact]
    public void Tokenizers_with_different_maps_are_refused_and_texts_are_reported()
    {
        using var dir = new TempDir();
        using var dir2 = new TempDir();
        var (tok, _) = WordTokenizer(dir);
        var vocab = WordLevelTokenizerFiles.BuildVocabulary(["how do I pick a lock", "sure first take a pin", "I cannot help with that", "be kind"]);
        File.WriteAllText(dir2.File("tokenizer.json"), WordLevelTokenizerFiles.TokenizerJson(vocab));
        var other = HfTokenizer.FromFiles(dir2.File("tokenizer.json"));
        FluentActions.Invoking(() => VocabularyCheck.EnsureSameTokenMap(tok, other))
            .Should().Throw<VocabularyMismatchException>().WithMessage("*do not share a tokenizer*");
        VocabularyCheck.EnsureSameTokenMap(tok, HfTokenizer.FromFiles(dir.File("tokenizer.json")));

        // Logits wider than the tokenizer are cut; token texts come from the tokenizer.
        int v = tok.VocabSize;
        var wideA = DeepAlign.Testing.TableCausalLanguageModel.CreateBuilder(v + 3).ByDefault().Logits([.. Enumerable.Repeat(0.0, v), 50, 50, 50]).Build();
        var wideB = DeepAlign.Testing.TableCausalLanguageModel.CreateBuilder(v + 3).Build();
        var detector = new BaseFavoredTokenDetector(wideB, wideA, tok, tok);
        detector.VocabSize.Should().Be(v);
        int pin = tok.TokenToId("pin")!.Value;
        var p = detector.ProfileBatch([new ProfileInput([1], [pin])])[0].Positions[0];
        p.Token.Should().Be("pin");
        p.KlAlignedBase.Should().BeApproximately(0, 1e-6); // the huge extra logits were cut away
    }

    /// <summary>A report of two hand-computed sequences (<see cref="DetectorHandComputedTests.Pair"/>) with a gradient
    /// probe; writes <c>sequences.jsonl</c> into <paramref name="directory"/>.</summary>
    internal static ProfileReport SampleReport(string directory, bool withProbe = true)
    {
        var (b, a) = DetectorHandComputedTests.Pair();
        var options = new ProfileOptions { TopKBase = 3, ReportTopItems = 2, BucketStarts = [1, 2] };
        var detector = new BaseFavoredTokenDetector(b, a, options: options);
        var agg = new ProfileAggregator(options);
        string seqPath = Path.Combine(directory, ProfileSequenceWriter.DefaultFileName);
        using (var writer = new ProfileSequenceWriter(seqPath))
        {
            foreach (var _ in writer.WriteAll(agg.AddAll(detector.Profile([new ProfileInput([3], [1, 0, 2]), new ProfileInput([3], [2])])))) { }
            writer.Commit();
        }
        var probe = new GradientProbeResult(new GradientProbeOptions(), ["lm_head.weight"], 2,
            [new GradientProbePosition(1, 2, new MeanWithError(3, 1), 0.75), new GradientProbePosition(2, 1, new MeanWithError(1, double.NaN), 0.25)]);
        return new ProfileReport { Options = options, Aggregates = agg.Result(), GradientProbe = withProbe ? probe : null, SequencesFile = ProfileSequenceWriter.DefaultFileName, Input = "x.jsonl" };
    }

    [Fact]
    public void Report_files_follow_the_schema()
    {
        using var dir = new TempDir();
        string seqPath = Path.Combine(dir.Path, ProfileSequenceWriter.DefaultFileName);
        var report = SampleReport(dir.Path);
        var written = ProfileReportWriter.Write(dir.Path, report); // no renderer: Core draws nothing

        written.Should().Equal(dir.File("profile.md"), dir.File("profile.json"));
        Directory.GetFiles(dir.Path).Select(Path.GetFileName).Should().BeEquivalentTo("profile.md", "profile.json", "sequences.jsonl");

        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir.Path, "profile.json")));
        var root = doc.RootElement;
        root.GetProperty("schema_version").GetInt32().Should().Be(1);
        root.GetProperty("totals").GetProperty("sequences").GetInt32().Should().Be(2);
        var row = root.GetProperty("aggregates").GetProperty("by_position")[0];
        row.EnumerateObject().Select(p => p.Name).Should().Equal("position", "n", "kl_mean", "kl_mean_se", "kl_reverse_mean", "kl_reverse_mean_se",
            "u_mean", "u_mean_se", "bf_rate", "bf_rate_se");
        row.GetProperty("n").GetInt32().Should().Be(2);
        row.GetProperty("kl_mean").GetDouble().Should().BeApproximately(0.5 * Math.Log(2), 1e-5);
        row.GetProperty("u_mean").GetDouble().Should().BeApproximately(5.0 / 9, 1e-5);
        row.GetProperty("bf_rate").GetDouble().Should().Be(0.5);
        row.GetProperty("bf_rate_se").GetDouble().Should().Be(0.5);
        root.GetProperty("aggregates").GetProperty("by_position")[1].GetProperty("kl_mean_se").ValueKind.Should().Be(JsonValueKind.Null);
        var bucket = root.GetProperty("aggregates").GetProperty("by_bucket")[1];
        bucket.GetProperty("bucket").GetString().Should().Be("2+");
        bucket.GetProperty("end").ValueKind.Should().Be(JsonValueKind.Null);
        bucket.GetProperty("u_mean").GetDouble().Should().BeApproximately(13.0 / 18, 1e-5);
        bucket.GetProperty("completes").GetBoolean().Should().BeFalse();
        root.GetProperty("aggregates").GetProperty("completion").GetProperty("first_incomplete_bucket").GetString().Should().Be("2+");
        var g = root.GetProperty("gradient_probe").GetProperty("by_position");
        g[0].GetProperty("grad_norm_mean").GetDouble().Should().Be(3);
        g[0].GetProperty("share").GetDouble().Should().Be(0.75);
        g[1].GetProperty("grad_norm_mean_se").ValueKind.Should().Be(JsonValueKind.Null);
        root.GetProperty("sequences_file").GetString().Should().Be("sequences.jsonl");

        var md = File.ReadAllText(Path.Combine(dir.Path, "profile.md"));
        md.Should().Contain("| 2+ | 1 | 2 |").And.Contain("incomplete from bucket 2+");
        md.Should().NotContain("## Plots").And.NotContain(".png").And.NotContain(".svg");

        var lines = File.ReadAllLines(seqPath);
        lines.Should().HaveCount(2);
        using var line = JsonDocument.Parse(lines[0]);
        var pos = line.RootElement.GetProperty("positions")[0];
        pos.GetProperty("log_ratio").GetDouble().Should().BeApproximately(Math.Log(4), 1e-5);
        pos.GetProperty("base_favored").GetBoolean().Should().BeTrue();
        pos.GetProperty("base_favored_top")[0].GetProperty("token_id").GetInt64().Should().Be(1);
        pos.GetProperty("base_favored_top")[0].GetProperty("p_b").GetDouble().Should().BeApproximately(0.4, 1e-5);
    }

    [Fact]
    public void Uncommitted_sequence_files_are_removed_and_comparisons_subtract()
    {
        using var dir = new TempDir();
        string path = dir.File("s.jsonl");
        using (var w = new ProfileSequenceWriter(path)) w.Write(new SequenceProfile(0, null, null, [1], []));
        Directory.GetFiles(dir.Path).Should().BeEmpty();

        var (b, a) = DetectorHandComputedTests.Pair();
        var options = new ProfileOptions { TopKBase = 3, BucketStarts = [1, 2] };
        ProfileAggregates Run(DeepAlign.Models.ICausalLanguageModel bb, DeepAlign.Models.ICausalLanguageModel aa)
        {
            var agg = new ProfileAggregator(options);
            foreach (var s in new BaseFavoredTokenDetector(bb, aa, options: options).Profile([new ProfileInput([3], [1, 0])])) agg.Add(s);
            return agg.Result();
        }
        var before = Run(b, a);
        var after = Run(a, a);  // "completed": identical to the aligned model itself -> U = 1, KL = 0
        var c = ProfileComparison.Compare(before, after);
        c.ByBucket[0].U.Mean.Should().BeApproximately(1 - 5.0 / 9, 1e-5);
        c.ByBucket[0].Kl.Mean.Should().BeApproximately(-0.5 * Math.Log(2), 1e-5);
        c.ByPosition.Should().HaveCount(2);
        ProfileReportWriter.ComparisonMarkdown(c).Should().Contain("| 1 | 1 | 1 |");
        FluentActions.Invoking(() => ProfileComparison.Compare(before, new ProfileAggregator().Result())).Should().Throw<ArgumentException>();
    }
}
