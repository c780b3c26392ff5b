using DeepAlign.Data;
using DeepAlign.Generation;
using DeepAlign.Models;
using DeepAlign.Text;
using static TorchSharp.torch;

namespace DeepAlign.Method.Detection;

/// <summary>
/// The default <see cref="IBaseFavoredTokenDetector"/> over two <see cref="ICausalLanguageModel"/>s. Every number comes
/// from <see cref="PositionStatistics.Compute"/> (the shared implementation the decoder and trainer also use).
/// </summary>
/// <remarks>
/// <para>Per batch: the sequences (prompt + response) are left-padded into one batch; each model runs one forward pass;
/// only the logits that predict response tokens are kept, cut to the tokenizer's vocabulary and turned into fp32
/// log-probabilities; the statistics are computed on the device and only small per-position arrays (KL both ways,
/// r_j, flag, m_b, m_a, p_b(T_j), U_j and the top items of B_j) are copied to the host.</para>
/// <para>The models are not owned and must not be used concurrently by another caller.</para>
/// </remarks>
public sealed class BaseFavoredTokenDetector : IBaseFavoredTokenDetector
{
    private readonly ICausalLanguageModel _base;
    private readonly ICausalLanguageModel _aligned;
    private readonly ITextTokenizer? _tokenizer;
    private readonly IncompletenessOptions _stats;
    private readonly long _padId;

    /// <summary>Creates a detector.</summary>
    /// <param name="baseModel">pi_b, the base model.</param>
    /// <param name="alignedModel">pi_a, the aligned model.</param>
    /// <param name="tokenizer">The aligned model's tokenizer: gives the vocabulary size logits are cut to and the token texts
    /// in profiles; null when both models have the same logit width and texts are not needed.</param>
    /// <param name="baseTokenizer">The base model's tokenizer, when loaded separately: its token -&gt; id map must equal
    /// <paramref name="tokenizer"/>'s.</param>
    /// <param name="options">Options; null for the defaults.</param>
    /// <exception cref="VocabularyMismatchException">The tokenizers differ.</exception>
    /// <exception cref="VocabularyMismatchException">The vocabulary cannot be matched to the logits (a model pair of different widths).</exception>
    public BaseFavoredTokenDetector(ICausalLanguageModel baseModel, ICausalLanguageModel alignedModel,
        ITextTokenizer? tokenizer = null, ITextTokenizer? baseTokenizer = null, ProfileOptions? options = null)
    {
        _base = baseModel ?? throw new ArgumentNullException(nameof(baseModel));
        _aligned = alignedModel ?? throw new ArgumentNullException(nameof(alignedModel));
        Options = (options ?? new ProfileOptions()).Validate();
        _stats = Options.ToIncompletenessOptions();
        _tokenizer = tokenizer;
        if (tokenizer is not null && baseTokenizer is not null) VocabularyCheck.EnsureSameTokenMap(tokenizer, baseTokenizer);
        VocabSize = ResolveVocabSize(baseModel, alignedModel, tokenizer);
        _padId = alignedModel.Config.PadTokenId ?? tokenizer?.PadTokenId ?? 0;
        if (_padId < 0 || _padId >= VocabSize) _padId = 0;
    }

    /// <inheritdoc />
    public ProfileOptions Options { get; }

    /// <summary>The vocabulary size the logits are cut to.</summary>
    public int VocabSize { get; }

    private static int ResolveVocabSize(ICausalLanguageModel b, ICausalLanguageModel a, ITextTokenizer? tokenizer)
    {
        if (tokenizer is not null)
        {
            int v = tokenizer.VocabSize;
            if (v > a.VocabSize || v > b.VocabSize)
                throw new VocabularyMismatchException($"The tokenizer has {v} ids but the logits are narrower (aligned {a.VocabSize}, base {b.VocabSize}).");
            return v;
        }
        if (a.VocabSize != b.VocabSize)
            throw new VocabularyMismatchException(
                $"The models' logit widths differ (aligned {a.VocabSize}, base {b.VocabSize}); pass the tokenizer so both can be cut to its vocabulary.");
        return a.VocabSize;
    }

    /// <inheritdoc />
    public IEnumerable<SequenceProfile> Profile(IEnumerable<ProfileInput> inputs, IProgress<ProfileProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(inputs);
        return Iterate();

        IEnumerable<SequenceProfile> Iterate()
        {
            int index = 0, batches = 0;
            long tokens = 0;
            foreach (var batch in Batches(inputs, Options.BatchSize, cancellationToken))
            {
                var profiles = ProfileBatch(batch, index);
                index += profiles.Count;
                batches++;
                tokens += profiles.Sum(p => (long)p.Positions.Count);
                progress?.Report(new ProfileProgress(index, tokens, batches));
                foreach (var p in profiles) yield return p;
            }
        }
    }

    /// <inheritdoc />
    public IEnumerable<SequenceProfile> ProfileGenerated(IEnumerable<ProfileInput> inputs, GeneratedProfileOptions? options = null,
        IProgress<ProfileProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(inputs);
        options = (options ?? new GeneratedProfileOptions()).Validate();
        return Iterate();

        IEnumerable<SequenceProfile> Iterate()
        {
            using var generator = new DeepAlign.Generation.Generator(_aligned, VocabSize);
            var stops = options.Generation.StopTokenIds ?? _aligned.Config.EosTokenIds?.Select(i => (long)i).ToArray() ?? Array.Empty<long>();
            int index = 0, batches = 0;
            long tokens = 0;
            foreach (var batch in Batches(inputs, Options.BatchSize, cancellationToken))
            {
                var requests = batch.Select(i => GenerationRequest.WithPrefix(i.PromptIds, i.ResponseIds.Take(options.ForcedPrefixTokens).ToArray())).ToList();
                var generated = generator.Generate(requests, options.Generation, null, cancellationToken);
                var scored = new List<ProfileInput>(batch.Count);
                for (int r = 0; r < batch.Count; r++)
                {
                    var g = generated[r];
                    var response = g.ResponseIds.ToList();
                    // The end-of-turn (stop) token is excluded from profiles.
                    if (g.FinishReason == FinishReason.StopToken && response.Count > g.ForcedPrefixIds.Count && stops.Contains(response[^1]))
                        response.RemoveAt(response.Count - 1);
                    scored.Add(batch[r] with { ResponseIds = response });
                }
                var profiles = ProfileBatch(scored, index);
                index += profiles.Count;
                batches++;
                tokens += profiles.Sum(p => (long)p.Positions.Count);
                progress?.Report(new ProfileProgress(index, tokens, batches));
                foreach (var p in profiles) yield return p;
            }
        }
    }

    internal static IEnumerable<List<ProfileInput>> Batches(IEnumerable<ProfileInput> inputs, int size, CancellationToken cancellationToken)
    {
        var batch = new List<ProfileInput>(size);
        foreach (var input in inputs)
        {
            cancellationToken.ThrowIfCancellationRequested();
            batch.Add(input ?? throw new ArgumentException("inputs contains a null entry.", nameof(inputs)));
            if (batch.Count == size)
            {
                yield return batch;
                batch = new List<ProfileInput>(size);
            }
        }
        cancellationToken.ThrowIfCancellationRequested();
        if (batch.Count > 0) yield return batch;
    }

    /// <inheritdoc />
    public IReadOnlyList<SequenceProfile> ProfileBatch(IReadOnlyList<ProfileInput> batch, int firstIndex = 0)
    {
        ArgumentNullException.ThrowIfNull(batch);
        if (batch.Count == 0) return Array.Empty<SequenceProfile>();
        int rows = batch.Count;
        var responseLengths = new int[rows];
        for (int r = 0; r < rows; r++)
        {
            var input = batch[r] ?? throw new ArgumentException($"batch[{r}] is null.", nameof(batch));
            string where = input.Location ?? $"batch[{r}]";
            if (input.PromptIds is null || input.PromptIds.Count == 0)
                throw new DatasetFormatException($"{where}: the prompt is empty, so the first response token has nothing to be predicted from.");
            if (input.ResponseIds is null) throw new ArgumentException($"{where}: ResponseIds is null.", nameof(batch));
            foreach (var id in input.PromptIds.Concat(input.ResponseIds))
                if (id < 0 || id >= VocabSize)
                    throw new DatasetFormatException($"{where}: token id {id} is outside the vocabulary of {VocabSize}.");
            responseLengths[r] = Math.Min(input.ResponseIds.Count, Options.MaxResponseTokens);
        }
        int maxResponse = responseLengths.Max();
        if (maxResponse == 0)
            return batch.Select((b, r) => new SequenceProfile(firstIndex + r, b.Id, b.Location, b.PromptIds, Array.Empty<PositionProfile>())).ToList();

        var host = ScoreOnDevice(batch, responseLengths);
        return Unpack(batch, responseLengths, host, firstIndex);
    }

    /// <summary>Numbers copied back from the device for one batch, flattened over (row, position).</summary>
    private sealed record HostStats(float[] Scalars, long[] TargetIds, long[] ItemIds, float[] ItemProbs, int ItemCount);

    private const int ScalarCount = 8; // kl_ab, kl_ba, r, flag, m_b, m_a, p_b(T), U

    /// <summary>Benchmark hook: receives the seconds spent in the forward passes and in the statistics of each batch.</summary>
    internal static Action<string, double>? PhaseTimer;

    private HostStats ScoreOnDevice(IReadOnlyList<ProfileInput> batch, int[] responseLengths)
    {
        int rows = batch.Count;
        var totals = batch.Select((b, r) => b.PromptIds.Count + responseLengths[r]).ToArray();
        int width = totals.Max();               // T: longest prompt + response
        int inputWidth = width - 1;             // the last token is only a target
        var sequences = batch.Select((b, r) => (IReadOnlyList<long>)[.. b.PromptIds, .. b.ResponseIds.Take(responseLengths[r])]).ToArray();
        var (ids, mask, _) = LeftPadding.Build(sequences, _padId);
        var targets = batch.SelectMany((b, r) => b.ResponseIds.Take(responseLengths[r])).ToList();

        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        var device = _aligned.Device;
        var idsAll = tensor(ids, [rows, width], ScalarType.Int64);
        var maskAll = tensor(mask, [rows, width], ScalarType.Int64);
        var inputIds = idsAll.narrow(1, 0, inputWidth);
        var inputMask = maskAll.narrow(1, 0, inputWidth);
        var clock = PhaseTimer is null ? null : System.Diagnostics.Stopwatch.StartNew();
        var la = Logits(_aligned, inputIds, inputMask);
        var lb = Logits(_base, inputIds, inputMask);
        if (clock is not null) { PhaseTimer!("forwards", clock.Elapsed.TotalSeconds); clock.Restart(); }
        var y = tensor(targets.ToArray(), ScalarType.Int64, device);

        // Response positions of batch row r are the contiguous rows [r * inputWidth + inputWidth - R_r, (r + 1) * inputWidth)
        // of the flattened logits (rows are left-padded, so each ends at the last column): the statistics run on views of
        // them, with no gather copy, in pieces of at most about 2^24 vocabulary entries (memory bounded independently of
        // the batch; much smaller pieces were measured slower because of per-operation overhead).
        int chunk = Math.Max(1, (1 << 24) / VocabSize);
        var scalarParts = new List<Tensor>();
        var itemIdParts = new List<Tensor>();
        var itemProbParts = new List<Tensor>();
        int m = 0, done = 0;
        for (int r = 0; r < rows; r++)
        {
            long rowStart = (long)r * inputWidth + inputWidth - responseLengths[r];
            for (int start = 0; start < responseLengths[r]; start += chunk)
            {
                int c = Math.Min(chunk, responseLengths[r] - start);
                using var step = NewDisposeScope();
                var lpA = PositionStatistics.LogSoftmax(la.narrow(0, rowStart + start, c), VocabSize);
                var lpB = PositionStatistics.LogSoftmax(lb.narrow(0, rowStart + start, c), VocabSize);
                using var stats = PositionStatistics.Compute(lpA, PositionStatistics.OnDevice(lpB, device), y.narrow(0, done, c), _stats);
                done += c;
                scalarParts.Add(stack(new[]
                {
                    stats.KlAlignedBase, stats.KlBaseAligned, stats.LogRatio!, stats.BaseFavoredToken!.to_type(ScalarType.Float32),
                    stats.Set.MassBase, stats.Set.MassAligned, stats.Set.TopMassBase, stats.Set.Incompleteness,
                }, 1).to_type(ScalarType.Float32).MoveToOuterDisposeScope());
                m = (int)stats.TopItemIds.shape[^1];
                itemIdParts.Add(stats.TopItemIds.alias().MoveToOuterDisposeScope());
                itemProbParts.Add(cat(new[] { stats.TopItemProbBase, stats.TopItemProbAligned }, -1).to_type(ScalarType.Float32).MoveToOuterDisposeScope());
            }
        }
        if (clock is not null) PhaseTimer!("statistics", clock.Elapsed.TotalSeconds);
        // Only these small arrays leave the device.
        var scalars = cat(scalarParts, 0).cpu();
        var itemIds = cat(itemIdParts, 0).cpu();
        var itemProbs = cat(itemProbParts, 0).cpu();
        return new HostStats(scalars.data<float>().ToArray(), targets.ToArray(), itemIds.data<long>().ToArray(), itemProbs.data<float>().ToArray(), m);
    }

    /// <summary>A model's logits over the batch, flattened to <c>[rows * inputWidth, W]</c> (a view, no copy).</summary>
    private static Tensor Logits(ICausalLanguageModel model, Tensor inputIds, Tensor inputMask)
    {
        var dev = model.Device;
        var logits = model.Forward(inputIds.to(dev), inputMask.to(dev));
        return logits.reshape(-1, logits.shape[^1]);
    }

    private List<SequenceProfile> Unpack(IReadOnlyList<ProfileInput> batch, int[] responseLengths, HostStats h, int firstIndex)
    {
        var result = new List<SequenceProfile>(batch.Count);
        int n = 0;
        for (int r = 0; r < batch.Count; r++)
        {
            var positions = new PositionProfile[responseLengths[r]];
            for (int j = 0; j < positions.Length; j++, n++)
            {
                var s = h.Scalars.AsSpan(n * ScalarCount, ScalarCount);
                var items = new List<BaseFavoredItem>(h.ItemCount);
                for (int i = 0; i < h.ItemCount; i++)
                {
                    long id = h.ItemIds[n * h.ItemCount + i];
                    if (id < 0) continue;
                    items.Add(new BaseFavoredItem(id, TokenText(id), h.ItemProbs[n * 2 * h.ItemCount + i], h.ItemProbs[n * 2 * h.ItemCount + h.ItemCount + i]));
                }
                long token = h.TargetIds[n];
                positions[j] = new PositionProfile(j + 1, token, TokenText(token), s[2], s[3] > 0.5f, s[0], s[1], s[4], s[5], s[6], s[7], items);
            }
            result.Add(new SequenceProfile(firstIndex + r, batch[r].Id, batch[r].Location, batch[r].PromptIds, positions));
        }
        return result;
    }

    private string? TokenText(long id) => _tokenizer?.Decode(new[] { (int)id });
}
