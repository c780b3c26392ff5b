using DeepAlign.Checkpoints;
using DeepAlign.Training.Data;
using static TorchSharp.torch;

namespace DeepAlign.Training;

/// <summary>
/// Validates a whole training checkpoint before <see cref="Trainer.LoadCheckpoint"/> changes anything (docs/reliability.md):
/// trainer_state.json values (non-negative steps, data position with named sources that fit the data, a torch RNG state
/// of exactly the length libtorch expects, so <c>set_rng_state</c> can never abort the process), and the headers of
/// trainable.safetensors and optimizer.safetensors against the model's trainable parameters. Every failure is a
/// <see cref="CheckpointFormatException"/> naming the file.
/// </summary>
internal static class CheckpointPreflight
{
    public static byte[]? Check(string checkpoint, TrainingCheckpoints.State state, IReadOnlyList<(string Name, TorchSharp.Modules.Parameter Parameter)> trainable,
        TrainingData data)
    {
        var statePath = Path.Combine(checkpoint, TrainingCheckpoints.StateFile);
        if (state.Step < 0 || state.OptimizerStep < 0)
            throw new CheckpointFormatException(statePath, $"'step' ({state.Step}) and 'optimizer_step' ({state.OptimizerStep}) must not be negative.");
        if (state.DataPosition is { } position)
        {
            if (position.Sources is null) throw new CheckpointFormatException(statePath, "'data_position.sources' is null.");
            for (var i = 0; i < position.Sources.Count; i++)
                if (position.Sources[i] is not { Name: not null })
                    throw new CheckpointFormatException(statePath, $"'data_position.sources[{i}]' is null or has no name.");
            try { data.ValidatePosition(position); }
            catch (ArgumentException e) { throw new CheckpointFormatException(statePath, e.Message, e); }
        }
        byte[]? rng = null;
        if (state.TorchRngState is { } encoded)
        {
            try { rng = Convert.FromBase64String(encoded); }
            catch (FormatException e) { throw new CheckpointFormatException(statePath, "'torch_rng_state' is not valid base64.", e); }
            using var current = random.get_rng_state();
            if (rng.Length != current.shape[0])
                throw new CheckpointFormatException(statePath, $"'torch_rng_state' has {rng.Length} bytes but this libtorch's CPU generator state has {current.shape[0]}.");
        }
        var weightsPath = Path.Combine(checkpoint, TrainingCheckpoints.TrainableFile);
        using (var weights = SafetensorsFile.Open(weightsPath))
        {
            var names = trainable.Select(p => p.Name).ToHashSet(StringComparer.Ordinal);
            foreach (var (name, p) in trainable)
            {
                if (!weights.Contains(name))
                    throw new CheckpointFormatException(weightsPath, $"no saved tensor for trainable parameter '{name}' (was it trained with other LoRA targets, or without LoRA?).");
                if (!weights.GetInfo(name).Shape.SequenceEqual(p.shape))
                    throw new CheckpointFormatException(weightsPath, $"'{name}' has shape [{string.Join(",", weights.GetInfo(name).Shape)}] but the model's is [{string.Join(",", p.shape)}].");
            }
            var extra = weights.Tensors.Select(t => t.Name).FirstOrDefault(n => !names.Contains(n));
            if (extra is not null) throw new CheckpointFormatException(weightsPath, $"saved tensor '{extra}' is not a trainable parameter of this model.");
        }
        var momentsPath = Path.Combine(checkpoint, TrainingCheckpoints.OptimizerFile);
        using (var moments = SafetensorsFile.Open(momentsPath))
        {
            var known = new HashSet<string>(StringComparer.Ordinal);
            foreach (var (name, p) in trainable)
            {
                string m = "exp_avg." + name, v = "exp_avg_sq." + name;
                known.Add(m);
                known.Add(v);
                bool hasM = moments.Contains(m), hasV = moments.Contains(v);
                if (!hasM && !hasV) continue;
                if (!hasM || !hasV) throw new CheckpointFormatException(momentsPath, $"optimiser state of '{name}' is incomplete.");
                foreach (var n in new[] { m, v })
                    if (!moments.GetInfo(n).Shape.SequenceEqual(p.shape))
                        throw new CheckpointFormatException(momentsPath, $"'{n}' has shape [{string.Join(",", moments.GetInfo(n).Shape)}] but the parameter has [{string.Join(",", p.shape)}].");
            }
            var extra = moments.Tensors.Select(t => t.Name).FirstOrDefault(k => !known.Contains(k));
            if (extra is not null) throw new CheckpointFormatException(momentsPath, $"optimiser state has '{extra}', which matches no trainable parameter.");
        }
        return rng;
    }
}
