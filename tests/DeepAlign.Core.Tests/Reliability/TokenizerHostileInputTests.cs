using System.Diagnostics;
using System.Text;
using CsCheck;
using DeepAlign.Text;
using FluentAssertions;
using Xunit;

namespace DeepAlign.Core.Tests.Reliability;

/// <summary>tokenizer.json / tokenizer_config.json / generation_config.json from strangers: one typed error, bounded work.</summary>
public sealed class TokenizerHostileInputTests : IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("deepalign-hostile-tok-");
    private static string Seed(string file) => Path.Combine(AppContext.BaseDirectory, "Fixtures", "reliability", "bpe", file);

    public void Dispose() => _dir.Delete(recursive: true);

    private string Folder(string? tokenizerJson = null, string? config = null, string? generation = null)
    {
        var d = _dir.CreateSubdirectory(Guid.NewGuid().ToString("N")).FullName;
        File.WriteAllText(Path.Combine(d, "tokenizer.json"), tokenizerJson ?? File.ReadAllText(Seed("tokenizer.json")));
        File.WriteAllText(Path.Combine(d, "tokenizer_config.json"), config ?? File.ReadAllText(Seed("tokenizer_config.json")));
        File.WriteAllText(Path.Combine(d, "generation_config.json"), generation ?? File.ReadAllText(Seed("generation_config.json")));
        return d;
    }

    [Fact]
    public void The_seed_tokenizer_works()
    {
        var t = HfTokenizer.FromPretrained(Folder());
        t.Encode("abc ab", addSpecialTokens: true).Should().Equal(1, 8, 6, 7); // Split isolates the space: "abc", "Ġ", "ab"
        t.Decode([8, 6, 7]).Should().Be("abc ab");
        t.Decode([9, 4]).Should().Be(" ab");
        t.EosTokenIds.Should().BeEquivalentTo([2]);
    }

    [Fact]
    public void A_catastrophically_backtracking_regex_fails_typed_within_the_timeout_instead_of_hanging()
    {
        var json = File.ReadAllText(Seed("tokenizer.json")).Replace("\\\\s+|[^\\\\s]+", "(a+)+$");
        var t = HfTokenizer.FromPretrained(Folder(json), new TokenizerLimits { RegexMatchTimeout = TimeSpan.FromMilliseconds(200) });
        var sw = Stopwatch.StartNew();
        var act = () => t.Encode(new string('a', 5000) + "!");
        act.Should().Throw<TokenizerFormatException>().WithMessage("*(a+)+$*RegexMatchTimeout*");
        sw.Elapsed.Should().BeLessThan(TimeSpan.FromSeconds(10));
    }

    [Theory]
    [InlineData("\"d\": 10", "\"d\": 1000000000", "model.vocab")]
    [InlineData("\"d\": 10", "\"d\": -1", "model.vocab")]
    [InlineData("\"d\": 10", "\"d\": 1.5", "model.vocab")]
    [InlineData("\"d\": 10", "\"d\": \"ten\"", "model.vocab")]
    [InlineData("{\"id\": 2,", "{\"id\": -5,", "added_tokens[2].id")]
    [InlineData("{\"id\": 2,", "{\"id\": 99999999999,", "added_tokens[2].id")]
    [InlineData("{\"id\": 2,", "{\"id\": null,", "added_tokens[2].id")]
    [InlineData("[\"ab\", \"c\"]", "[\"ab\"]", "model.merges[1]")]
    [InlineData("[\"ab\", \"c\"]", "[1, 2]", "model.merges[1]")]
    [InlineData("[\"ab\", \"c\"]", "{}", "model.merges[1]")]
    [InlineData("\"a b\"", "\"\"", "model.merges[0]")]
    [InlineData("\"a b\"", "\"q r\"", "merge #0")]
    [InlineData("\"normalizers\": [", "\"normalizers\": 7, \"x\": [", "normalizers")]
    [InlineData("{\"String\": \"x\"}", "{\"String\": 5}", "pattern.String")]
    [InlineData("{\"Regex\": \"\\\\s+|[^\\\\s]+\"}", "{\"Regex\": \"(\"}", "cannot be compiled")]
    [InlineData("\"single\": [", "\"single\": {}, \"x\": [", "single")]
    [InlineData("\"tokens\": [\"<s>\"]", "\"tokens\": [1]", "tokens[0]")]
    [InlineData("\"type\": \"BPE\"", "\"type\": \"Unigram\"", "Unigram")]
    [InlineData("\"model\": {", "\"model\": [], \"x\": {", "model")]
    public void Malformed_tokenizer_json_gives_TokenizerFormatException_naming_the_file_and_path(string find, string replace, string fragment)
    {
        var json = File.ReadAllText(Seed("tokenizer.json"));
        json.Should().Contain(find);
        var dir = Folder(json.Replace(find, replace));
        var e = ((Action)(() => HfTokenizer.FromPretrained(dir))).Should().Throw<TokenizerFormatException>().Which;
        e.Message.Should().Contain(Path.Combine(dir, "tokenizer.json")).And.Contain(fragment);
    }

    [Theory]
    [InlineData("[1, 2]", "tokenizer.json", "root must be a JSON object")]
    [InlineData("\"just a string\"", "tokenizer.json", "root must be a JSON object")]
    [InlineData("{\"model\": {\"type\": \"WordLevel\", \"vocab\": {\"\\ud800\": 0}}}", "tokenizer.json", "lone UTF-16 surrogate")]
    [InlineData("[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]", "tokenizer.json", "depth")]
    public void Bad_json_text_gives_TokenizerFormatException(string text, string file, string fragment)
    {
        var dir = Folder(text);
        var e = ((Action)(() => HfTokenizer.FromPretrained(dir))).Should().Throw<TokenizerFormatException>().Which;
        e.Message.Should().Contain(file).And.Contain(fragment);
    }

    [Fact]
    public void Invalid_utf8_is_refused_with_line_and_byte()
    {
        var dir = Folder();
        var path = Path.Combine(dir, "tokenizer_config.json");
        var bytes = Encoding.UTF8.GetBytes("{\n  \"bos_token\": \"<s").Concat(new byte[] { 0xC3, 0x28 }).Concat(Encoding.UTF8.GetBytes(">\"}")).ToArray();
        File.WriteAllBytes(path, bytes);
        var e = ((Action)(() => HfTokenizer.FromPretrained(dir))).Should().Throw<TokenizerFormatException>().Which;
        e.Message.Should().Contain(path).And.Contain("invalid UTF-8 at line 2");
    }

    [Theory]
    [InlineData("{\"eos_token_id\": -3}", "generation_config.json", "eos_token_id")]
    [InlineData("{\"eos_token_id\": [2, \"x\"]}", "generation_config.json", "eos_token_id[1]")]
    [InlineData("[]", "generation_config.json", "root must be a JSON object")]
    public void Bad_generation_config_gives_TokenizerFormatException(string text, string file, string fragment)
    {
        var dir = Folder(generation: text);
        var e = ((Action)(() => HfTokenizer.FromPretrained(dir))).Should().Throw<TokenizerFormatException>().Which;
        e.Message.Should().Contain(file).And.Contain(fragment);
    }

    [Theory]
    [InlineData("{\"added_tokens_decoder\": {\"-1\": {\"content\": \"x\"}}}", "added_tokens_decoder")]
    [InlineData("{\"added_tokens_decoder\": {\"5\": \"x\"}}", "added_tokens_decoder.5")]
    [InlineData("7", "root must be a JSON object")]
    public void Bad_tokenizer_config_gives_TokenizerFormatException(string text, string fragment)
    {
        var dir = Folder(config: text);
        var e = ((Action)(() => HfTokenizer.FromPretrained(dir))).Should().Throw<TokenizerFormatException>().Which;
        e.Message.Should().Contain("tokenizer_config.json").And.Contain(fragment);
    }

    [Fact]
    public async Task A_fifo_in_place_of_tokenizer_json_is_refused_without_blocking()
    {
        if (!OperatingSystem.IsLinux()) return; // FIFOs via mkfifo: the Linux CI runs this.
        var dir = _dir.CreateSubdirectory("fifo").FullName;
        var fifo = Path.Combine(dir, "tokenizer.json");
        using (var p = Process.Start("mkfifo", fifo)) p.WaitForExit();
        var task = Task.Run(() => HfTokenizer.FromPretrained(dir));
        var finished = await Task.WhenAny(task, Task.Delay(TimeSpan.FromSeconds(20)));
        finished.Should().BeSameAs(task, "a FIFO must never be opened");
        var act = async () => await task;
        (await act.Should().ThrowAsync<TokenizerFormatException>()).Which.Message.Should().Contain("not a regular file");
    }

    [Fact]
    public void Property_mutated_tokenizer_files_load_or_fail_typed_and_loaded_ones_encode_or_fail_typed()
    {
        var seeds = new[] { "tokenizer.json", "tokenizer_config.json", "generation_config.json" }.Select(f => File.ReadAllText(Seed(f))).ToArray();
        var dir = _dir.CreateSubdirectory("prop").FullName;
        Gen.Select(Gen.Int[0, 2], Gen.Int[0, 1], Gen.Int, Gen.String[0, 40]).Sample((which, byteLevel, seed, text) =>
        {
            var r = new Random(seed);
            var files = seeds.ToArray();
            if (byteLevel == 0) files[which] = Hostile.MutateJson(files[which], r);
            File.WriteAllText(Path.Combine(dir, "tokenizer.json"), files[0]);
            File.WriteAllText(Path.Combine(dir, "tokenizer_config.json"), files[1]);
            File.WriteAllText(Path.Combine(dir, "generation_config.json"), files[2]);
            if (byteLevel == 1)
            {
                var name = new[] { "tokenizer.json", "tokenizer_config.json", "generation_config.json" }[which];
                File.WriteAllBytes(Path.Combine(dir, name), Hostile.MutateBytes(Encoding.UTF8.GetBytes(files[which]), r));
            }
            HfTokenizer? t = null;
            Hostile.OnlyTyped<TokenizerFormatException>(() => t = HfTokenizer.FromPretrained(dir, new TokenizerLimits { RegexMatchTimeout = TimeSpan.FromMilliseconds(250) }), $"load seed {seed}");
            if (t is null) return;
            Hostile.OnlyTyped<TokenizerFormatException>(() => t.Encode(text, addSpecialTokens: true), $"encode seed {seed}");
            Hostile.OnlyTyped<TokenizerFormatException>(() =>
            {
                var ids = t.Encode(text);
                t.Decode(ids.Where(i => i < t.VocabSize && t.IdToToken(i) is not null));
            }, $"decode seed {seed}");
        }, iter: 1500, threads: 1);
    }
}
