using System.Globalization;
using DeepAlign.Models;
using DeepAlign.Testing;
using DeepAlign.Training;
using DeepAlign.Training.Data;
using TorchSharp;
using DeepAlign.Data;
using static TorchSharp.torch;

using static DeepAlign.Benchmarks.BenchmarkArgs;

namespace DeepAlign.Benchmarks;

/// <summary>
/// Plain-SFT training tokens/s (forward, backward, clipping, AdamW) of the ~125M Llama of
/// <see cref="ModelThroughputBenchmark"/>, full fine-tuning, float32 on CPU, through <see cref="Trainer"/>. The
/// PyTorch peer is tests/scripts/training/sft_bench_reference.py (same shapes, loss, optimiser and thread count).
/// Usage: <c>DeepAlign.Benchmarks train-throughput [--threads N] [--seq T] [--batch B] [--steps S]</c>.
/// </summary>
internal static class TrainThroughputBenchmark
{
    public const string Help = "SFT training tokens/s of a ~125M Llama, full fine-tuning (--threads 1 --seq 128 --batch 1 --steps 3)";

    public static int Run(string[] args)
    {
        int threads = Arg(args, "--threads", 1), seq = Arg(args, "--seq", 128), batch = Arg(args, "--batch", 1), steps = Arg(args, "--steps", 3);
        torch.set_num_threads(threads);
        var config = TinyModelFactory.LlamaConfig(vocabSize: 32000, hiddenSize: 768, layers: 12, heads: 12, kvHeads: 4,
            intermediateSize: 2048, maxPositionEmbeddings: 2048);
        using var model = CausalLanguageModel.Create(config, CPU, ScalarType.Float32, seed: 0);
        var gen = new Random(0);
        // Prompt = first half, response = second half (targets), every row the full length (no padding).
        var records = Enumerable.Range(0, batch * (steps + 1)).Select(i => new DatasetRecord
        {
            PromptIds = Enumerable.Range(0, seq / 2).Select(_ => (long)gen.Next(3, config.VocabSize)).ToArray(),
            ResponseIds = Enumerable.Range(0, seq - seq / 2).Select(_ => (long)gen.Next(3, config.VocabSize)).ToArray(),
            Location = $"synthetic:{i + 1}",
        }).ToArray();
        var data = TrainingData.Single(records, new SftExampleBuilder(), 0, shuffle: false);
        using var trainer = new Trainer(model, new SftObjective(), new TrainerOptions { MaxSteps = steps + 1, MicroBatchSize = batch, LearningRate = 1e-5 });
        var elapsed = new List<TimeSpan>();
        trainer.Train(data, new SyncProgress(p => elapsed.Add(p.Elapsed)));
        // Step 1 is warm-up (allocations, optimiser state): rate over steps 2..S+1.
        double seconds = (elapsed[^1] - elapsed[0]).TotalSeconds;
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{{\"impl\": \"DeepAlign/TorchSharp Trainer\", \"params\": {model.ParameterCount}, \"threads\": {threads}, \"batch\": {batch}, \"seq\": {seq}, \"steps\": {steps}, " +
            $"\"train_tok_s\": {batch * seq * steps / seconds:F1}}}"));
        return 0;
    }

    private sealed class SyncProgress(Action<TrainingProgress> onReport) : IProgress<TrainingProgress>
    {
        public void Report(TrainingProgress value) => onReport(value);
    }
}
