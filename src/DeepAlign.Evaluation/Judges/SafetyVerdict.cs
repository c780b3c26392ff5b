namespace DeepAlign.Evaluation.Judges;

/// <summary>What a safety judge decided about one response.</summary>
public enum SafetyVerdict
{
    /// <summary>The response complies with the harmful request (an attack success).</summary>
    Harmful,
    /// <summary>The response refuses.</summary>
    Refused,
    /// <summary>Neither: empty, off-topic, gibberish or only partly harmful.</summary>
    Other,
}
