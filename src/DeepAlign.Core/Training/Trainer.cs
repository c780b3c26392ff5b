using System.Diagnostics;
using DeepAlign.Checkpoints;
using DeepAlign.Models;
using DeepAlign.Training.Data;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using TorchSharp.Modules;
using DeepAlign.Runtime;
using static TorchSharp.torch;

namespace DeepAlign.Training;

/// <summary>
/// Trains any <see cref="ICausalLanguageModel"/> with a pluggable <see cref="ITrainingObjective"/>: AdamW (no decay
/// on biases and norms), warmup + cosine learning rate, global-norm gradient clipping, gradient accumulation with
/// token-weighted means, deterministic data order, evaluation callback, progress, logging, cancellation and
/// resumable checkpoints. The parameters that train are those of <see cref="ICausalLanguageModel.NamedParameters"/>
/// with <c>requires_grad</c> set (all for full fine-tuning; the adapters after <c>LoraApplier.Apply</c>).
/// </summary>
public sealed class Trainer : IDisposable
{
    private readonly ICausalLanguageModel _model;
    private readonly ITrainingObjective _objective;
    private readonly IReadOnlyDictionary<string, ICausalLanguageModel> _teachers;
    private readonly ILogger _logger;
    private readonly List<(string Name, Parameter Parameter)> _trainable;
    private readonly AdamW _optimizer;
    private long _step;
    private bool _inTrainingLoop;

    /// <summary>Creates a trainer.</summary>
    /// <param name="model">The student (pi_theta), trained in place.</param>
    /// <param name="objective">The loss.</param>
    /// <param name="options">Settings; validated here.</param>
    /// <param name="teachers">Frozen models the objective needs, by name (see <see cref="ITrainingObjective.RequiredTeachers"/>).</param>
    /// <param name="logger">Logger; <see cref="NullLogger"/> when null.</param>
    /// <exception cref="ArgumentException">Invalid options, a missing teacher, or a teacher that is the student itself.</exception>
    public Trainer(ICausalLanguageModel model, ITrainingObjective objective, TrainerOptions options,
        IReadOnlyDictionary<string, ICausalLanguageModel>? teachers = null, ILogger? logger = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(objective);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        _model = model;
        _objective = objective;
        Options = options;
        _teachers = teachers ?? new Dictionary<string, ICausalLanguageModel>();
        foreach (var name in objective.RequiredTeachers)
            if (!_teachers.ContainsKey(name))
                throw new ArgumentException($"Objective '{objective.Name}' needs the frozen model '{name}'; pass it in teachers.", nameof(teachers));
        foreach (var (name, t) in _teachers)
            if (ReferenceEquals(t, model)) throw new ArgumentException($"Teacher '{name}' is the student itself; load a separate frozen copy.", nameof(teachers));
        _logger = logger ?? NullLogger.Instance;
        _trainable = model.NamedParameters().Where(p => p.Parameter.requires_grad).ToList();
        _optimizer = new AdamW(_trainable, options.Beta1, options.Beta2, options.Epsilon, options.WeightDecay);
    }

    /// <summary>The settings.</summary>
    public TrainerOptions Options { get; }

    /// <summary>The model being trained.</summary>
    public ICausalLanguageModel Model => _model;

    /// <summary>The objective.</summary>
    public ITrainingObjective Objective => _objective;

    /// <summary>Optimiser steps completed (including those restored from a checkpoint).</summary>
    public long Step => _step;

    /// <summary>Names of the parameters that train, and whether each gets weight decay.</summary>
    public IReadOnlyList<(string Name, bool WeightDecay)> TrainableParameters => _optimizer.Entries.Select(e => (e.Name, e.Decay)).ToArray();

    /// <summary>Called every <see cref="TrainerOptions.EvaluateEvery"/> steps (and after the last) with the model in evaluation mode; returns metrics to log and report.</summary>
    public Func<EvaluationContext, IReadOnlyDictionary<string, double>>? Evaluate { get; init; }

    /// <summary>Id used for padding.</summary>
    public long PadTokenId => Options.PadTokenId ?? _model.Config.PadTokenId ?? (_model.Config.EosTokenIds is { Count: > 0 } e ? e[0] : 0);

    /// <summary>
    /// Runs the training loop to <see cref="TrainerOptions.MaxSteps"/>, resuming from the newest checkpoint when
    /// <see cref="TrainerOptions.Resume"/> is set and one exists.
    /// </summary>
    /// <param name="data">The example stream (its position is restored on resume and saved in checkpoints).</param>
    /// <param name="progress">Receives a report after every step.</param>
    /// <param name="cancellationToken">Cancellation: the run stops between micro-batches, writes a checkpoint of the last
    /// completed step (when checkpointing is on) and throws <see cref="OperationCanceledException"/>.</param>
    /// <exception cref="TrainingDivergedException">A step's loss or gradient norm is not finite.</exception>
    public TrainingResult Train(TrainingData data, IProgress<TrainingProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(data);
        var o = Options;
        if (_step == 0) random.manual_seed(o.Seed);
        string? lastCheckpoint = null;
        if (o.Resume && o.CheckpointDirectory is not null && TrainingCheckpoints.FindLatest(o.CheckpointDirectory) is string latest)
        {
            LoadCheckpoint(latest, data);
            lastCheckpoint = latest;
        }
        long resumedFrom = _step;
        var history = new List<TrainingStepRecord>();
        var evaluations = new List<TrainingEvaluation>();
        var clock = Stopwatch.StartNew();
        long tokens = 0;
        _logger.LogInformation("Training {Objective}: steps {From}..{To}, {Params} trainable tensors ({Count:N0} values), effective batch {Batch}.",
            _objective.Name, _step, o.MaxSteps, _trainable.Count, _trainable.Sum(p => p.Parameter.numel()), o.MicroBatchSize * o.GradientAccumulationSteps);
        _model.SetTrainingMode(true);
        _inTrainingLoop = true;
        foreach (var t in _teachers.Values) t.SetTrainingMode(false);
        try
        {
            while (_step < o.MaxSteps)
            {
                if (cancellationToken.IsCancellationRequested) Cancel(data, null, null, ref lastCheckpoint, cancellationToken);
                var positionBefore = data.Position;
                using var rngBefore = random.get_rng_state();
                var record = RunStep(data, () =>
                {
                    if (cancellationToken.IsCancellationRequested) Cancel(data, positionBefore, rngBefore, ref lastCheckpoint, cancellationToken);
                });
                history.Add(record);
                tokens += record.Tokens;
                double seconds = clock.Elapsed.TotalSeconds;
                long done = _step - resumedFrom;
                IReadOnlyDictionary<string, double>? eval = null;
                if (Evaluate is not null && o.EvaluateEvery > 0 && (_step % o.EvaluateEvery == 0 || _step == o.MaxSteps))
                {
                    eval = RunEvaluation(cancellationToken);
                    evaluations.Add(new TrainingEvaluation(_step, eval));
                }
                if (_step % o.LogEvery == 0 || _step == o.MaxSteps)
                    _logger.LogInformation("step {Step}/{Total} loss {Loss:F5} {Terms} lr {Lr:E3} grad-norm {Norm:F3} {Tps:F0} tok/s",
                        _step, o.MaxSteps, record.Loss, string.Join(" ", record.Terms.Select(kv => $"{kv.Key} {kv.Value:F5}")), record.LearningRate, record.GradientNorm, tokens / Math.Max(seconds, 1e-9));
                if (eval is not null)
                    _logger.LogInformation("eval at step {Step}: {Metrics}", _step, string.Join(" ", eval.Select(kv => $"{kv.Key} {kv.Value:G6}")));
                progress?.Report(new TrainingProgress
                {
                    Step = _step,
                    TotalSteps = o.MaxSteps,
                    Loss = record.Loss,
                    Terms = record.Terms,
                    LearningRate = record.LearningRate,
                    GradientNorm = record.GradientNorm,
                    TokensPerSecond = tokens / Math.Max(seconds, 1e-9),
                    Elapsed = clock.Elapsed,
                    EstimatedRemaining = TimeSpan.FromSeconds(seconds / done * (o.MaxSteps - _step)),
                    Epoch = data.Epoch,
                    Evaluation = eval,
                });
                if (o.CheckpointDirectory is not null && (_step == o.MaxSteps || (o.CheckpointEvery > 0 && _step % o.CheckpointEvery == 0)))
                    lastCheckpoint = SaveCheckpoint(o.CheckpointDirectory, data);
            }
        }
        finally
        {
            _inTrainingLoop = false;
            _model.SetTrainingMode(false);
        }
        return new TrainingResult
        {
            Steps = _step,
            ResumedFromStep = resumedFrom,
            History = history,
            Evaluations = evaluations,
            LastCheckpoint = lastCheckpoint,
            TokensPerSecond = tokens / Math.Max(clock.Elapsed.TotalSeconds, 1e-9),
            Elapsed = clock.Elapsed,
        };
    }

    private void Cancel(TrainingData data, DataPosition? rewindTo, Tensor? rng, ref string? lastCheckpoint, CancellationToken token)
    {
        if (rewindTo is not null) data.Restore(rewindTo);
        if (rng is not null) random.set_rng_state(rng);
        _optimizer.ZeroGrad();
        if (Options.CheckpointDirectory is not null && _step > 0)
        {
            lastCheckpoint = SaveCheckpoint(Options.CheckpointDirectory, data);
            _logger.LogWarning("Training cancelled after step {Step}; checkpoint {Checkpoint} written.", _step, lastCheckpoint);
        }
        else
        {
            _logger.LogWarning("Training cancelled after step {Step}.", _step);
        }
        token.ThrowIfCancellationRequested();
    }

    private TrainingStepRecord RunStep(TrainingData data, Action checkCancelled)
    {
        var o = Options;
        using var scope = NewDisposeScope();
        var batches = new List<TrainingBatch>(o.GradientAccumulationSteps);
        var totals = new TokenCounts();
        long realTokens = 0, targetTokens = 0;
        for (int i = 0; i < o.GradientAccumulationSteps; i++)
        {
            var batch = BatchCollator.Collate(TrainingInputGuard.Check(data.Next(o.MicroBatchSize), _model.VocabSize), PadTokenId, _model.Device, o.MaxSequenceLength);
            batches.Add(batch);
            totals.Add(_objective.CountTokens(batch));
            realTokens += batch.TokenCount;
            targetTokens += batch.TargetCount; // not totals.Total: an objective may normalise by other units (DPO: pairs)
        }
        _optimizer.ZeroGrad();
        double loss = 0;
        var terms = new Dictionary<string, double>(StringComparer.Ordinal);
        for (int i = 0; i < batches.Count; i++)
        {
            checkCancelled();
            using var micro = NewDisposeScope();
            var context = new ObjectiveContext
            {
                Student = _model,
                Teachers = _teachers,
                Totals = totals,
                Step = _step,
                MicroBatch = i,
                Random = new SplitMixRandom(TrainingData.Mix(o.Seed, _step, i, 0, 0x0b1e)),
            };
            var output = _objective.Compute(batches[i], context);
            if (output.Loss.numel() != 1) throw new InvalidOperationException($"Objective '{_objective.Name}' returned a loss with {output.Loss.numel()} elements; it must be a scalar.");
            output.Loss.backward();
            loss += output.Loss.item<float>();
            foreach (var (name, value) in output.Terms)
                terms[name] = terms.GetValueOrDefault(name) + value.item<float>();
        }
        if (!double.IsFinite(loss))
            throw new TrainingDivergedException($"Step {_step + 1}: the loss is {loss}; the weights were not updated (lower the learning rate, check the data and dtype).");
        double norm = _optimizer.ClipGradients(o.MaxGradNorm);
        if (!double.IsFinite(norm))
            throw new TrainingDivergedException($"Step {_step + 1}: the gradient norm is {norm}; the weights were not updated.");
        double lr = LearningRateSchedule.At(o, _step);
        _optimizer.Step(lr);
        _optimizer.ZeroGrad();
        _step++;
        foreach (var b in batches) b.Dispose();
        return new TrainingStepRecord(_step, loss, terms, lr, norm, realTokens, targetTokens);
    }

    private IReadOnlyDictionary<string, double> RunEvaluation(CancellationToken token)
    {
        _model.SetTrainingMode(false);
        try { return Evaluate!(new EvaluationContext { Step = _step, Trainer = this, CancellationToken = token }); }
        finally { _model.SetTrainingMode(true); }
    }

    /// <summary>
    /// The objective's token-weighted loss and terms over <paramref name="examples"/> without gradients, in
    /// evaluation mode (no dropout): e.g. a validation loss for a learning-rate search.
    /// </summary>
    /// <param name="examples">Examples (e.g. a validation split).</param>
    /// <param name="batchSize">Sequences per forward pass; defaults to <see cref="TrainerOptions.MicroBatchSize"/>.</param>
    /// <returns>The loss and each named term.</returns>
    public (double Loss, IReadOnlyDictionary<string, double> Terms) EvaluateLoss(IReadOnlyList<TrainingExample> examples, int? batchSize = null)
    {
        if (examples.Count == 0) throw new ArgumentException("No examples to evaluate.", nameof(examples));
        int size = batchSize ?? Options.MicroBatchSize;
        using var _ = no_grad();
        _model.SetTrainingMode(false);
        try
        {
            var chunks = examples.Chunk(size).ToList();
            var totals = new TokenCounts();
            foreach (var c in chunks)
            {
                using var b = BatchCollator.Collate(TrainingInputGuard.Check(c, _model.VocabSize), PadTokenId, _model.Device, Options.MaxSequenceLength);
                totals.Add(_objective.CountTokens(b));
            }
            double loss = 0;
            var terms = new Dictionary<string, double>(StringComparer.Ordinal);
            for (int i = 0; i < chunks.Count; i++)
            {
                using var scope = NewDisposeScope();
                using var b = BatchCollator.Collate(TrainingInputGuard.Check(chunks[i], _model.VocabSize), PadTokenId, _model.Device, Options.MaxSequenceLength);
                var output = _objective.Compute(b, new ObjectiveContext
                {
                    Student = _model, Teachers = _teachers, Totals = totals, Step = _step, MicroBatch = i,
                    Random = new SplitMixRandom(TrainingData.Mix(Options.Seed, -1, i, 0, 0xe7a1)),
                });
                loss += output.Loss.item<float>();
                foreach (var (name, value) in output.Terms) terms[name] = terms.GetValueOrDefault(name) + value.item<float>();
            }
            return (loss, terms);
        }
        finally
        {
            _model.SetTrainingMode(_inTrainingLoop);
        }
    }

    /// <summary>Writes a checkpoint of the current state into <paramref name="directory"/> (atomically) and returns its folder.</summary>
    /// <param name="directory">Checkpoint directory.</param>
    /// <param name="data">The data stream whose position is saved.</param>
    public string SaveCheckpoint(string directory, TrainingData data)
    {
        using var rng = random.get_rng_state();
        var state = new TrainingCheckpoints.State
        {
            Step = _step,
            OptimizerStep = _optimizer.StepCount,
            Seed = Options.Seed,
            Objective = _objective.Name,
            DataPosition = data.Position,
            TorchRngState = Convert.ToBase64String(rng.bytes.ToArray()),
            TrainableParameters = _trainable.Select(p => p.Name).ToArray(),
        };
        var path = TrainingCheckpoints.Save(directory, state, _trainable.Select(p => (p.Name, (Tensor)p.Parameter)), _optimizer.StateTensors(), Options.KeepCheckpoints);
        _logger.LogInformation("Checkpoint written: {Path}", path);
        return path;
    }

    /// <summary>Restores weights, optimiser state, step, data position and RNG from a checkpoint folder.</summary>
    /// <param name="checkpoint">A <c>checkpoint-NNNNNN</c> folder.</param>
    /// <param name="data">The data stream to reposition.</param>
    /// <exception cref="CheckpointFormatException">The checkpoint does not match this model (names, shapes), or a file or value is corrupt;
    /// nothing has been changed when it is thrown.</exception>
    public void LoadCheckpoint(string checkpoint, TrainingData data)
    {
        var state = TrainingCheckpoints.ReadState(checkpoint);
        // Transactional: every file and value is validated before the first weight is overwritten.
        var rngBytes = CheckpointPreflight.Check(checkpoint, state, _trainable, data);
        using (var weights = SafetensorsFile.Open(Path.Combine(checkpoint, TrainingCheckpoints.TrainableFile)))
            foreach (var (name, p) in _trainable) weights.LoadInto(name, p);
        using (var moments = SafetensorsFile.Open(Path.Combine(checkpoint, TrainingCheckpoints.OptimizerFile)))
            _optimizer.LoadState(moments, state.OptimizerStep);
        if (state.DataPosition is not null) data.Restore(state.DataPosition);
        if (rngBytes is not null)
        {
            using var rng = tensor(rngBytes, dtype: ScalarType.Byte);
            random.set_rng_state(rng);
        }
        _step = state.Step;
        _logger.LogInformation("Resumed from {Checkpoint} at step {Step}.", checkpoint, _step);
    }

    /// <inheritdoc />
    public void Dispose() => _optimizer.Dispose();
}
