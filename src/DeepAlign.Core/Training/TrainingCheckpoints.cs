using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using System.Text.RegularExpressions;
using DeepAlign.Training.Data;
using DeepAlign.Checkpoints;
using DeepAlign.Runtime;
using static TorchSharp.torch;

namespace DeepAlign.Training;

/// <summary>
/// The trainer's checkpoints: one folder per saved step, <c>checkpoint-000100/</c>, holding
/// <c>trainable.safetensors</c> (the parameters that train: all weights for full fine-tuning, the adapters under
/// LoRA, with their model names), <c>optimizer.safetensors</c> (AdamW moments <c>exp_avg.NAME</c> and
/// <c>exp_avg_sq.NAME</c>), and <c>trainer_state.json</c> (step, optimiser step count, data position, torch RNG
/// state, seed). A folder is written under a temporary name and renamed when complete, so a process killed
/// mid-write leaves the previous checkpoint intact and the partial folder is ignored (and removed by the next save).
/// </summary>
public static partial class TrainingCheckpoints
{
    internal const string TrainableFile = "trainable.safetensors";
    internal const string OptimizerFile = "optimizer.safetensors";
    internal const string StateFile = "trainer_state.json";
    private const string TempPrefix = ".tmp-checkpoint-";

    /// <summary>Test hook: runs after the temporary folder is complete and before it is renamed (simulates a crash when it throws).</summary>
    internal static Action<string>? BeforeCommit;

    [GeneratedRegex(@"^checkpoint-(\d+)$")]
    private static partial Regex CheckpointName();

    /// <summary>The newest complete checkpoint folder in <paramref name="directory"/>, or null.</summary>
    /// <param name="directory">A checkpoint directory (need not exist).</param>
    public static string? FindLatest(string directory)
    {
        if (!Directory.Exists(directory)) return null;
        return Directory.GetDirectories(directory)
            .Select(d => (Dir: d, M: CheckpointName().Match(Path.GetFileName(d))))
            .Where(x => x.M.Success && StepNumber(x.M) is not null && File.Exists(Path.Combine(x.Dir, StateFile)))
            .OrderByDescending(x => StepNumber(x.M))
            .Select(x => x.Dir)
            .FirstOrDefault();
    }

    /// <summary>The step number in a folder name; null when it does not fit in 64 bits (such a folder is not ours and is ignored).</summary>
    private static long? StepNumber(Match m) =>
        long.TryParse(m.Groups[1].ValueSpan, NumberStyles.None, CultureInfo.InvariantCulture, out var n) ? n : null;

    /// <summary>The step a checkpoint folder was saved at.</summary>
    /// <param name="checkpoint">A folder returned by <see cref="FindLatest"/>.</param>
    public static long StepOf(string checkpoint) => ReadState(checkpoint).Step;

    internal sealed record State
    {
        [JsonPropertyName("format")] public int Format { get; init; } = 1;
        [JsonPropertyName("step")] public long Step { get; init; }
        [JsonPropertyName("optimizer_step")] public long OptimizerStep { get; init; }
        [JsonPropertyName("seed")] public int Seed { get; init; }
        [JsonPropertyName("objective")] public string Objective { get; init; } = "";
        [JsonPropertyName("data_position")] public DataPosition? DataPosition { get; init; }
        [JsonPropertyName("torch_rng_state")] public string? TorchRngState { get; init; }
        [JsonPropertyName("trainable_parameters")] public IReadOnlyList<string> TrainableParameters { get; init; } = Array.Empty<string>();
    }

    private static readonly JsonSerializerOptions Json = new() { WriteIndented = true };
    private static readonly JsonSerializerOptions ReadJson = new() { MaxDepth = DeepAlign.Runtime.SafeFiles.MaxJsonDepth };

    internal static string Save(string directory, State state, IEnumerable<(string Name, Tensor Tensor)> trainable,
        IEnumerable<(string Name, Tensor Tensor)> optimizer, int keep)
    {
        Directory.CreateDirectory(directory);
        foreach (var stale in Directory.GetDirectories(directory, TempPrefix + "*"))
            TryDelete(stale);
        string final = Path.Combine(directory, $"checkpoint-{state.Step:D6}");
        string temp = Path.Combine(directory, $"{TempPrefix}{state.Step:D6}-{Environment.ProcessId}-{Guid.NewGuid():N}");
        AtomicDirectory.Write(final, into =>
        {
            TensorFile.Write(Path.Combine(into, TrainableFile), trainable, new Dictionary<string, string> { ["format"] = "pt" });
            TensorFile.Write(Path.Combine(into, OptimizerFile), optimizer);
            using var fs = new FileStream(Path.Combine(into, StateFile), FileMode.CreateNew, FileAccess.Write);
            JsonSerializer.Serialize(fs, state, Json);
            fs.Flush(flushToDisk: true);
        }, temp, BeforeCommit);
        Prune(directory, keep);
        return final;
    }

    internal static State ReadState(string checkpoint)
    {
        var path = Path.Combine(checkpoint, StateFile);
        if (!File.Exists(path)) throw new FileNotFoundException($"Checkpoint '{checkpoint}' has no {StateFile}.", path);
        var bytes = DeepAlign.Runtime.SafeFiles.ReadAllBytes(path, 64L * 1024 * 1024, (m, e) => new CheckpointFormatException(path, m[(path.Length + 2)..], e));
        DeepAlign.Runtime.SafeFiles.ValidateJsonText(bytes, "trainer state", (m, e) => new CheckpointFormatException(path, m, e));
        try
        {
            return JsonSerializer.Deserialize<State>(bytes, ReadJson) ?? throw new CheckpointFormatException(path, "empty trainer state (JSON null).");
        }
        catch (JsonException e)
        {
            throw new CheckpointFormatException(path, $"invalid trainer state ({e.Message}).", e);
        }
    }

    private static void Prune(string directory, int keep)
    {
        var all = Directory.GetDirectories(directory)
            .Select(d => (Dir: d, M: CheckpointName().Match(Path.GetFileName(d))))
            .Where(x => x.M.Success && StepNumber(x.M) is not null)
            .OrderByDescending(x => StepNumber(x.M))
            .Skip(keep);
        foreach (var (dir, _) in all) TryDelete(dir);
    }

    private static void TryDelete(string dir)
    {
        try { Directory.Delete(dir, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}
