namespace DeepAlign.Organism;

/// <summary>Which tokens of a pretraining conversation are training targets.</summary>
public enum PretrainTargets
{
    /// <summary>Only the response tokens (and the end-of-turn token), as in instruction tuning: the base model learns
    /// to answer prompts, not to write them. The default.</summary>
    Response,
    /// <summary>Every token after the first (prompt and response), as in plain language-model pretraining.</summary>
    WholeConversation,
}
