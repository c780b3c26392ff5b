namespace DeepAlign.Method.Detection;

/// <summary>One member of the base-favored set B_j with both models' probabilities.</summary>
/// <param name="TokenId">Token id.</param>
/// <param name="Token">Decoded text of the token, when a tokenizer is available.</param>
/// <param name="ProbBase">p_b(v).</param>
/// <param name="ProbAligned">p_a(v).</param>
public readonly record struct BaseFavoredItem(long TokenId, string? Token, double ProbBase, double ProbAligned);
