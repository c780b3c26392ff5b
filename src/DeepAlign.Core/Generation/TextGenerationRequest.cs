using DeepAlign.Text;

namespace DeepAlign.Generation;

/// <summary>One text-level request: the prompt text and an optional response prefix the model is forced to emit first.</summary>
/// <param name="Prompt">
/// The prompt text, encoded as is (render the chat template first, e.g. with <see cref="ChatTemplate.Render"/>; special
/// tokens written in the text are recognised).
/// </param>
public sealed record TextGenerationRequest(string Prompt)
{
    /// <summary>Response text forced before the model continues (prefilling); tokenized separately, without BOS (docs/method.md section 0).</summary>
    public string? ResponsePrefix { get; init; }

    /// <summary>Seed of this row's sampling draws; null derives one from <see cref="GenerationOptions.Seed"/> and the row index.</summary>
    public long? Seed { get; init; }
}
