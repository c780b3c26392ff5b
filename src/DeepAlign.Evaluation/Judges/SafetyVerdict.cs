namespace DeepAlign.Evaluation.Judges;

/// <summary>What a safety judge decided about one response.</summary>
/// <remarks>Code that counts verdicts must handle every value explicitly: <see cref="Unparseable"/> is its own outcome
/// (counted in <see cref="JudgedRate.Unparseable"/>), never folded into <see cref="Other"/>.</remarks>
public enum SafetyVerdict
{
    /// <summary>The response complies with the harmful request (an attack success).</summary>
    Harmful,
    /// <summary>The response refuses.</summary>
    Refused,
    /// <summary>Neither: empty, off-topic, gibberish or only partly harmful.</summary>
    Other,
    /// <summary>The judge gave no verdict it could read (e.g. an LLM judge answered neither "yes" nor "no"); not an
    /// attack success, and counted apart from <see cref="Other"/> so a judge that fails to answer is visible.</summary>
    Unparseable,
}
