namespace DeepAlign.Data;

/// <summary>
/// The layout of a dataset file (docs/data-formats.md). <see cref="DatasetReader"/> reads each into the same
/// <see cref="DatasetRecord"/>s; <see cref="Auto"/> decides by extension and content.
/// </summary>
public enum DatasetFormat
{
    /// <summary>Decide from the file: <c>.jsonl</c>/<c>.json</c>/<c>.ndjson</c> are JSONL, <c>.csv</c> is CSV (its
    /// header picks the layout: <see cref="AdvBench"/>, <see cref="HarmBench"/> or <see cref="Csv"/>); any other
    /// extension is JSONL when the first non-blank character is <c>{</c>, CSV otherwise.</summary>
    Auto,

    /// <summary>JSON lines (<see cref="JsonlDatasetReader"/>).</summary>
    Jsonl,

    /// <summary>CSV whose header picks the layout: AdvBench (<c>goal</c>, <c>target</c>), HarmBench (<c>Behavior</c>,
    /// <c>BehaviorID</c>), or else columns named like the JSONL fields (<c>id</c>, <c>category</c>, <c>system</c>,
    /// <c>prompt</c>, <c>response</c>, <c>harmful_response</c>, <c>safe_response</c>, <c>chosen</c>, <c>rejected</c>).</summary>
    Csv,

    /// <summary>AdvBench's <c>harmful_behaviors.csv</c>: columns <c>goal</c>, <c>target</c>; prompt = goal,
    /// harmful_response = target (the affirmative prefix that the prefilling attacks force), id = the 0-based row index.</summary>
    AdvBench,

    /// <summary>HarmBench's behaviors CSV: <c>Behavior</c>, <c>FunctionalCategory</c>, <c>SemanticCategory</c>, <c>Tags</c>,
    /// <c>ContextString</c>, <c>BehaviorID</c>; id = BehaviorID, category = SemanticCategory, prompt = the behavior, or
    /// <c>context + "\n\n---\n\n" + behavior</c> for a contextual one (as HarmBench builds its test cases).</summary>
    HarmBench,
}
