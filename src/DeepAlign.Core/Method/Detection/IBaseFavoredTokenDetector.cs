namespace DeepAlign.Method.Detection;

/// <summary>
/// Finds where alignment is incomplete: scores responses with a base model pi_b and an aligned model pi_a that share
/// a tokenizer and reports, per response position, KL both ways, the realised log-ratio and base-favored flag, the
/// base-favored set B_j with its masses and the incompleteness score U_j (docs/method.md section 1).
/// </summary>
public interface IBaseFavoredTokenDetector
{
    /// <summary>The (validated) options.</summary>
    ProfileOptions Options { get; }

    /// <summary>Profiles one batch by teacher forcing: one forward pass of each model over the left-padded batch.</summary>
    /// <param name="batch">The sequences (any number; they are scored together).</param>
    /// <param name="firstIndex">Index given to the first sequence's <see cref="SequenceProfile.Index"/>.</param>
    /// <returns>One profile per input, in order.</returns>
    IReadOnlyList<SequenceProfile> ProfileBatch(IReadOnlyList<ProfileInput> batch, int firstIndex = 0);

    /// <summary>Profiles a stream of given responses by teacher forcing, <see cref="ProfileOptions.BatchSize"/> at a time;
    /// memory is bounded by one batch.</summary>
    /// <param name="inputs">The sequences (e.g. from <see cref="ProfileInputReader.ReadJsonl"/>).</param>
    /// <param name="progress">Reported after every batch.</param>
    /// <param name="cancellationToken">Checked before every batch.</param>
    /// <returns>The profiles, in input order, produced batch by batch as the caller enumerates.</returns>
    IEnumerable<SequenceProfile> Profile(IEnumerable<ProfileInput> inputs, IProgress<ProfileProgress>? progress = null, CancellationToken cancellationToken = default);

    /// <summary>
    /// Profiles the aligned model's own responses: the first <see cref="GeneratedProfileOptions.ForcedPrefixTokens"/>
    /// tokens of each input's response are forced, the aligned model continues, and the whole response (forced prefix
    /// plus continuation, without a final stop token) is scored by the same teacher-forcing code.
    /// </summary>
    /// <param name="inputs">Prompts with the responses the forced prefixes are taken from.</param>
    /// <param name="options">Generation options; null for the defaults.</param>
    /// <param name="progress">Reported after every batch.</param>
    /// <param name="cancellationToken">Checked before every batch and every decoding step.</param>
    /// <returns>The profiles, in input order.</returns>
    IEnumerable<SequenceProfile> ProfileGenerated(IEnumerable<ProfileInput> inputs, GeneratedProfileOptions? options = null,
        IProgress<ProfileProgress>? progress = null, CancellationToken cancellationToken = default);
}
