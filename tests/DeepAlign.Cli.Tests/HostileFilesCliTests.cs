using System.Text.Json.Nodes;
using DeepAlign.Cli.Commands;
using DeepAlign.Tests.Checkpoints;
using DeepAlign.Testing;
using FluentAssertions;
using Xunit;
using DeepAlign.Tests.Support;

namespace DeepAlign.Tests.Cli;

/// <summary>Bad FILES exit 1 with a message naming the file; bad FLAGS exit 2 (docs/reliability.md).</summary>
public sealed class HostileFilesCliTests
{
    private static (int Code, string Out, string Err) Run(params string[] args) =>
        CliRunner.InProcess([TokenizeCommand.Create(), InspectCommand.Create(), ProfileCommand.Create(), TrainCommand.Create()], args);

    private static string Tokenizer(TempDir dir, Func<string, string>? edit = null, bool withTemplate = true)
    {
        var folder = Directory.CreateDirectory(dir.File("tok")).FullName;
        var json = File.ReadAllText(DeepAlign.Core.Tests.Text.TextTestAssets.FixturePath(Path.Combine("wordlevel", "tokenizer.json")));
        File.WriteAllText(Path.Combine(folder, "tokenizer.json"), edit is null ? json : edit(json));
        if (withTemplate)
            File.Copy(DeepAlign.Core.Tests.Text.TextTestAssets.FixturePath(Path.Combine("wordlevel", "tokenizer_config.json")), Path.Combine(folder, "tokenizer_config.json"));
        return folder;
    }

    [Fact]
    public void Tokenize_with_a_negative_vocabulary_id_exits_1_naming_the_file_and_path()
    {
        using var dir = new TempDir();
        var folder = Tokenizer(dir, j => j.Replace("\"that\": 19", "\"that\": -19"));
        var (code, _, err) = Run("tokenize", "--model", folder, "--text", "sort the list");
        code.Should().Be(1, err);
        err.Should().Contain(Path.Combine(folder, "tokenizer.json")).And.Contain("model.vocab").And.NotContain("Index was outside");
    }

    [Fact]
    public void Inspect_exits_1_on_a_negative_vocab_size()
    {
        using var dir = new TempDir();
        var model = TinyModelFactory.SaveFolder(dir.File("m"), TinyModelFactory.LlamaConfig(vocabSize: 24), seed: 1);
        var path = Path.Combine(model, "config.json");
        var node = JsonNode.Parse(File.ReadAllText(path))!;
        node["vocab_size"] = -1;
        File.WriteAllText(path, node.ToJsonString());
        var (code, _, err) = Run("inspect", "--model", model);
        code.Should().Be(1, err);
        err.Should().Contain(path).And.Contain("vocab_size");
    }

    [Fact]
    public void Profile_of_a_mismatched_pair_exits_1_and_a_bad_dataset_leaves_no_output_folder()
    {
        using var dir = new TempDir();
        var a = TinyModelFactory.SaveFolder(dir.File("a"), TinyModelFactory.LlamaConfig(vocabSize: 40), seed: 1);
        var b = TinyModelFactory.SaveFolder(dir.File("b"), TinyModelFactory.LlamaConfig(vocabSize: 48), seed: 2);
        File.WriteAllText(dir.File("in.jsonl"), "{\"prompt_ids\": [1, 2], \"response_ids\": [3, 4]}\n");
        var (code, _, err) = Run("profile", "--base", a, "--aligned", b, "--input", dir.File("in.jsonl"), "--output", dir.File("out1"));
        code.Should().Be(1, err);

        var c = TinyModelFactory.SaveFolder(dir.File("c"), TinyModelFactory.LlamaConfig(vocabSize: 40), seed: 3);
        File.WriteAllText(dir.File("bad.jsonl"), "{\"prompt_ids\": [1, 2], \"response_ids\": [3, 4]}\n{\"prompt_ids\": \"oops\"}\n");
        var (code2, _, err2) = Run("profile", "--base", a, "--aligned", c, "--input", dir.File("bad.jsonl"), "--output", dir.File("out2"));
        code2.Should().Be(1, err2);
        err2.Should().Contain("bad.jsonl:2");
        Directory.Exists(dir.File("out2")).Should().BeFalse("a failed run must not leave an empty report folder");
    }

    [Fact]
    public void Train_refuses_an_output_file_before_training_and_names_out_of_vocab_lines()
    {
        using var dir = new TempDir();
        var model = TinyModelFactory.SaveFolder(dir.File("m"), TinyModelFactory.LlamaConfig(vocabSize: 24), seed: 1);
        File.WriteAllText(dir.File("data.jsonl"), "{\"prompt_ids\": [1, 2], \"response_ids\": [3, 4]}\n{\"prompt_ids\": [1, 2], \"response_ids\": [3, 999]}\n");
        File.WriteAllText(dir.File("taken"), "x");
        var (code, _, err) = Run("train", "--model", model, "--data", dir.File("data.jsonl"), "--output", dir.File("taken"), "--steps", "1");
        code.Should().Be(2, err);
        err.Should().Contain("existing file");

        var (code2, _, err2) = Run("train", "--model", model, "--data", dir.File("data.jsonl"), "--output", dir.File("out"), "--steps", "2", "--batch-size", "2", "--json");
        code2.Should().Be(1, err2);
        err2.Should().Contain("data.jsonl:2").And.Contain("token id 999").And.NotContain("c10::");
    }

    [Fact]
    public void Train_on_pre_tokenized_lines_does_not_demand_a_chat_template()
    {
        using var dir = new TempDir();
        var model = TinyModelFactory.SaveFolder(dir.File("m"), TinyModelFactory.LlamaConfig(vocabSize: 24), seed: 1);
        var tok = Tokenizer(dir, withTemplate: false);
        File.Copy(Path.Combine(tok, "tokenizer.json"), Path.Combine(model, "tokenizer.json"));
        File.WriteAllText(dir.File("data.jsonl"), "{\"prompt_ids\": [1, 2], \"response_ids\": [3, 4]}\n{\"prompt_ids\": [1, 5], \"response_ids\": [6, 7]}\n");
        var (code, _, err) = Run("train", "--model", model, "--data", dir.File("data.jsonl"), "--output", dir.File("out"), "--steps", "1", "--batch-size", "2", "--json");
        code.Should().Be(0, err);
    }
}
