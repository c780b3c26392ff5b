namespace DeepAlign.Organism;

/// <summary>Sizes and mean lengths of a world, in word-level tokens (chat-template tokens not counted, except in
/// <see cref="PretrainTokens"/>, which adds the six ChatML tokens of a user/assistant exchange).</summary>
/// <param name="VocabularySize">Vocabulary size including the five special tokens.</param>
/// <param name="PretrainCount">Items in the pretraining corpus.</param>
/// <param name="PretrainHarmfulCount">Harmful (compliantly answered) items in the pretraining corpus.</param>
/// <param name="AlignHarmfulCount">Harmful prompts with refusals in the safety SFT split.</param>
/// <param name="AlignBenignCount">Benign anchors in the safety SFT split.</param>
/// <param name="HeldoutHarmfulCount">Held-out harmful prompts.</param>
/// <param name="HeldoutBenignCount">Held-out benign prompts.</param>
/// <param name="MeanPromptTokens">Mean prompt length over all splits.</param>
/// <param name="MeanHarmfulPromptTokens">Mean harmful prompt length.</param>
/// <param name="MeanRefusalTokens">Mean refusal length.</param>
/// <param name="MeanCompliantTokens">Mean compliant (harmful) answer length.</param>
/// <param name="MinCompliantTokens">Shortest compliant answer.</param>
/// <param name="MaxCompliantTokens">Longest compliant answer.</param>
/// <param name="MeanBenignResponseTokens">Mean benign answer length.</param>
/// <param name="PretrainTokens">Tokens in one pass over the pretraining corpus.</param>
public sealed record WorldStatistics(
    int VocabularySize, int PretrainCount, int PretrainHarmfulCount, int AlignHarmfulCount, int AlignBenignCount,
    int HeldoutHarmfulCount, int HeldoutBenignCount, double MeanPromptTokens, double MeanHarmfulPromptTokens,
    double MeanRefusalTokens, double MeanCompliantTokens, int MinCompliantTokens, int MaxCompliantTokens,
    double MeanBenignResponseTokens, long PretrainTokens);
