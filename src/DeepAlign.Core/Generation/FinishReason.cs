namespace DeepAlign.Generation;

/// <summary>Why a row stopped generating.</summary>
public enum FinishReason
{
    /// <summary>The row produced one of <see cref="GenerationOptions.StopTokenIds"/> (kept as its last id).</summary>
    StopToken,

    /// <summary>One of <see cref="GenerationOptions.StopConditions"/> asked to stop.</summary>
    StopCondition,

    /// <summary>The row reached <see cref="GenerationOptions.MaxNewTokens"/>.</summary>
    MaxNewTokens,
}
