namespace DeepAlign.Evaluation.Judges;

/// <summary>
/// An LLM judge's chat client failed on every attempt for one response (<see cref="ChatClientSafetyJudgeOptions.MaxRetries"/>
/// retries after the first try, all with transient errors). The inner exception is the last attempt's error.
/// </summary>
public sealed class JudgeRetriesExhaustedException : Exception
{
    /// <summary>Creates the exception.</summary>
    /// <param name="itemId">The judged record's id (null when it has none).</param>
    /// <param name="attempts">Attempts made (first try included).</param>
    /// <param name="inner">The last attempt's error.</param>
    public JudgeRetriesExhaustedException(string? itemId, int attempts, Exception inner)
        : base($"The chat judge failed {attempts} time{(attempts == 1 ? "" : "s")} on item {(itemId is null ? "(no id)" : $"\"{itemId}\"")}; last error: {inner?.Message}", inner)
    {
        ItemId = itemId;
        Attempts = attempts;
    }

    /// <summary>The judged record's id, if it has one.</summary>
    public string? ItemId { get; }

    /// <summary>Attempts made, first try included.</summary>
    public int Attempts { get; }
}
