using System.Text.Json;
using DeepAlign.Models;
using DeepAlign.Models.Lora;
using DeepAlign.Training;
using DeepAlign.Training.Data;
using FluentAssertions;
using TorchSharp;
using Xunit;
using DeepAlign.Data;
using DeepAlign.Checkpoints;
using static TorchSharp.torch;

namespace DeepAlign.Tests.Training;

/// <summary>The trainer on the library's real Llama implementation (tests/scripts/training/sft_llama_reference.py).</summary>
public sealed class LlamaTrainingTests : IDisposable
{
    private static readonly string ModelDir = Path.Combine(AppContext.BaseDirectory, "Fixtures", "models", "llama_sharded_bias");
    private static readonly string Dir = Path.Combine(AppContext.BaseDirectory, "Fixtures", "training", "sft_llama");
    private readonly string _tmp = Path.Combine(Path.GetTempPath(), "deepalign-llama-train-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        try { Directory.Delete(_tmp, true); } catch (IOException) { }
    }

    private static TrainingData Data() =>
        TrainingData.Single(JsonlDatasetReader.ReadFile(Path.Combine(Dir, "data.jsonl")), new SftExampleBuilder(), 0, shuffle: false);

    [Fact]
    public void Sft_on_a_tiny_llama_matches_pytorch_gradients_and_losses()
    {
        torch.set_num_threads(1);
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(Dir, "reference.json")));
        var r = doc.RootElement;
        var options = SftReferenceTests.OptionsFrom(r.GetProperty("config"));
        var losses = r.GetProperty("losses").EnumerateArray().Select(e => e.GetDouble()).ToArray();
        var norms = r.GetProperty("grad_norms").EnumerateArray().Select(e => e.GetDouble()).ToArray();

        using (var model = CausalLanguageModel.FromPretrained(ModelDir))
        {
            var data = Data();
            var objective = new SftObjective();
            using var b1 = BatchCollator.Collate(data.Next(2), 0, CPU);
            using var b2 = BatchCollator.Collate(data.Next(2), 0, CPU);
            var totals = objective.CountTokens(b1);
            totals.Add(objective.CountTokens(b2));
            double loss = 0;
            foreach (var b in new[] { b1, b2 })
            {
                var o = objective.Compute(b, new ObjectiveContext { Student = model, Teachers = new Dictionary<string, ICausalLanguageModel>(), Totals = totals, Step = 0, MicroBatch = 0, Random = new Random(0) });
                o.Loss.backward();
                loss += o.Loss.item<float>();
            }
            loss.Should().BeApproximately(losses[0], 2e-5);
            var grads = TensorFile.Read(Path.Combine(Dir, "grads.safetensors"));
            foreach (var (name, p) in model.NamedParameters())
            {
                double diff = p.grad!.sub(grads[name]).abs().max().item<float>();
                double scale = grads[name].abs().max().item<float>();
                diff.Should().BeLessThan(1e-5 + 1e-4 * scale, $"gradient of {name}");
            }
        }

        using (var model = CausalLanguageModel.FromPretrained(ModelDir))
        using (var trainer = new Trainer(model, new SftObjective(), options))
        {
            var result = trainer.Train(Data());
            result.History.Select(h => h.Loss).Should().Equal(losses, (a, b) => Math.Abs(a - b) < 5e-5);
            result.History.Select(h => h.GradientNorm).Should().Equal(norms, (a, b) => Math.Abs(a - b) < 1e-3);
        }
    }

    private static Tensor Logits(ICausalLanguageModel m)
    {
        using var _ = no_grad();
        m.SetTrainingMode(false);
        using var b = BatchCollator.Collate(Data().Next(4), 0, CPU);
        return m.Forward(b.InputIds, b.AttentionMask);
    }

    [Fact]
    public void Lora_on_llama_trains_merges_and_exports_a_folder_that_loads_back()
    {
        torch.set_num_threads(1);
        var src = Path.Combine(_tmp, "src");
        Directory.CreateDirectory(src);
        foreach (var f in Directory.GetFiles(ModelDir)) File.Copy(f, Path.Combine(src, Path.GetFileName(f)));
        File.WriteAllText(Path.Combine(src, "tokenizer.json"), "{\"fake\": true}");

        using var model = CausalLanguageModel.FromPretrained(src);
        using var before = Logits(model);
        var options = new LoraOptions { Rank = 4, Alpha = 8, Dropout = 0.1 };
        LoraApplier.Apply(model, options).Should().HaveCount(2 * 7);
        using (var fresh = Logits(model)) fresh.sub(before).abs().max().item<float>().Should().Be(0f);
        model.NamedParameters().Where(p => p.Parameter.requires_grad).Should().HaveCount(2 * 2 * 7);
        model.NamedParameters().Select(p => p.Name).Should().Contain("model.layers.0.self_attn.q_proj.weight", "base weights keep their HF names");

        using (var t = new Trainer(model, new SftObjective(), new TrainerOptions { MaxSteps = 3, MicroBatchSize = 3, LearningRate = 2e-2 }))
            t.Train(Data());
        using var unmerged = Logits(model);
        unmerged.sub(before).abs().max().item<float>().Should().BeGreaterThan(1e-3f);

        var adapterDir = Path.Combine(_tmp, "adapter");
        TrainingExport.SaveAdapter(model, options, adapterDir, src);
        var outDir = Path.Combine(_tmp, "out");
        TrainingExport.SaveModel(model, outDir, src).Should().Be(14);
        using (var merged = Logits(model)) merged.sub(unmerged).abs().max().item<float>().Should().BeLessThan(1e-5f);
        File.ReadAllText(Path.Combine(outDir, "tokenizer.json")).Should().Contain("fake");

        using var reloaded = CausalLanguageModel.FromPretrained(outDir);
        using (var l = Logits(reloaded)) l.sub(unmerged).abs().max().item<float>().Should().BeLessThan(1e-5f);
        using var withAdapter = CausalLanguageModel.FromPretrained(src);
        LoraApplier.LoadAdapter(withAdapter, adapterDir);
        using (var l = Logits(withAdapter)) l.sub(unmerged).abs().max().item<float>().Should().BeLessThan(1e-6f);
    }
}
