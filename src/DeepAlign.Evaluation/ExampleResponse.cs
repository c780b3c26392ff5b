namespace DeepAlign.Evaluation;

/// <summary>One example answer kept for the report.</summary>
/// <param name="Id">Item id.</param>
/// <param name="Prompt">The prompt.</param>
/// <param name="Response">The judged text.</param>
/// <param name="Verdict">The primary judge's verdict.</param>
public sealed record ExampleResponse(string? Id, string Prompt, string Response, string Verdict);
