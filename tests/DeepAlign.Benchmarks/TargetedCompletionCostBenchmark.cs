using System.Globalization;
using DeepAlign.Method.TargetedCompletion;
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
/// Cost of the targeted-completion objective relative to plain SFT per token (issue acceptance: at most 1.6x): the
/// same Llama student, the same mixed stream (1 harmful safety-recovery context : 4 benign pairs, identical draws), the
/// same loop; targeted completion adds the frozen aligned forward (all rows, for the KL anchor) and the frozen base
/// forward (harmful rows only) plus the teacher-side math. Usage:
/// <c>DeepAlign.Benchmarks targeted-cost [--threads N] [--seq T] [--batch B] [--steps S] [--rounds R] [--hidden H] [--layers L] [--vocab V]</c>.
/// </summary>
internal static class TargetedCompletionCostBenchmark
{
    public const string Help = "seconds per token of targeted completion vs plain SFT, same data and loop (--threads 1 --seq 128 --batch 5 --steps 3 --rounds 2 --hidden 512 --layers 8 --vocab 32000)";

    public static int Run(string[] args)
    {
        int threads = Arg(args, "--threads", 1), seq = Arg(args, "--seq", 128), batch = Arg(args, "--batch", 5), steps = Arg(args, "--steps", 3), rounds = Arg(args, "--rounds", 2);
        int hidden = Arg(args, "--hidden", 512), layers = Arg(args, "--layers", 8), vocab = Arg(args, "--vocab", 32000);
        torch.set_num_threads(threads);
        var config = TinyModelFactory.LlamaConfig(vocabSize: vocab, hiddenSize: hidden, layers: layers, heads: hidden / 64, kvHeads: Math.Max(1, hidden / 128),
            intermediateSize: hidden * 8 / 3, maxPositionEmbeddings: 4 * seq);
        var gen = new Random(0);
        long[] Ids(int n) => Enumerable.Range(0, n).Select(_ => (long)gen.Next(3, vocab)).ToArray();
        int half = seq / 2;
        var harmful = Enumerable.Range(0, 8).Select(i => new DatasetRecord
        {
            PromptIds = Ids(half / 2), HarmfulResponseIds = Ids(half), SafeResponseIds = Ids(seq - half), Location = $"harmful:{i}",
        }).ToArray();
        var benign = Enumerable.Range(0, 32).Select(i => new DatasetRecord { PromptIds = Ids(half), ResponseIds = Ids(seq - half), Location = $"benign:{i}" }).ToArray();

        // Rounds alternate SFT and targeted completion so load changes on a shared machine hit both. Both objectives see
        // identical batches step by step (same seed, same contexts), so step i of SFT and step i of targeted completion
        // in the same round process the same tokens: the per-step time ratio is the per-token cost ratio. The first
        // step of every run is warm-up. Reported: the median of the paired per-step ratios (robust to load spikes) and
        // the ratio of the summed times.
        var stepSeconds = new Dictionary<AlignmentObjective, List<double>> { [AlignmentObjective.Sft] = new(), [AlignmentObjective.TargetedCompletion] = new() };
        long parameters = 0;
        for (int round = 0; round < rounds; round++)
            foreach (var objective in new[] { AlignmentObjective.Sft, AlignmentObjective.TargetedCompletion })
            {
                using var student = CausalLanguageModel.Create(config, CPU, ScalarType.Float32, seed: 0);
                using var aligned = CausalLanguageModel.Create(config, CPU, ScalarType.Float32, seed: 0);
                using var baseModel = CausalLanguageModel.Create(config, CPU, ScalarType.Float32, seed: 1);
                parameters = student.ParameterCount;
                // Identical contexts for both objectives: safety recovery for SFT too (the augmentation baseline's data).
                var options = new TargetedCompletionTrainerOptions
                {
                    Objective = objective, SafetyRecoveryContexts = true,
                    Trainer = new TrainerOptions { MaxSteps = steps + 1, MicroBatchSize = batch, LearningRate = 1e-5, Seed = 0 },
                };
                var data = options.CreateData(harmful, benign, null);
                var reports = new List<TrainingProgress>();
                var result = new TargetedCompletionTrainer(student, aligned, baseModel, options).Train(data, new SyncProgress(reports.Add));
                for (int i = 1; i < reports.Count; i++)
                    stepSeconds[objective].Add((reports[i].Elapsed - reports[i - 1].Elapsed).TotalSeconds);
            }
        static double Median(List<double> x) { var s = x.OrderBy(v => v).ToArray(); return s.Length % 2 == 1 ? s[s.Length / 2] : (s[s.Length / 2 - 1] + s[s.Length / 2]) / 2; }
        var sft = stepSeconds[AlignmentObjective.Sft];
        var tc = stepSeconds[AlignmentObjective.TargetedCompletion];
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{{\"params\": {parameters}, \"threads\": {threads}, \"batch\": {batch}, \"seq\": {seq}, \"steps\": {steps}, \"rounds\": {rounds}, " +
            $"\"sft_s_per_step_median\": {Median(sft):F3}, \"tc_s_per_step_median\": {Median(tc):F3}, " +
            $"\"cost_ratio_paired_median\": {Median(tc.Zip(sft, (a, b) => a / b).ToList()):F3}, \"cost_ratio_total\": {tc.Sum() / sft.Sum():F3}}}"));
        return 0;
    }

    private sealed class SyncProgress(Action<TrainingProgress> onReport) : IProgress<TrainingProgress>
    {
        public void Report(TrainingProgress value) => onReport(value);
    }
}
