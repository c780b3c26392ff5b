using DeepAlign.Text;

namespace DeepAlign.Generation;

/// <summary>
/// Stops a row once the text it generated after its forced prefix contains one of the stop strings (checked
/// incrementally with a <see cref="StreamingDetokenizer"/> and a <see cref="StopStringMatcher"/> per row, so a stop
/// string split across tokens is found). Use one instance per generation call.
/// </summary>
public sealed class StopStringCondition : IStopCondition
{
    private readonly ITextTokenizer _tokenizer;
    private readonly string[] _stopStrings;
    private readonly bool _skipSpecialTokens;
    private readonly Dictionary<int, RowState> _rows = new();

    /// <summary>Creates the condition.</summary>
    /// <param name="tokenizer">The tokenizer that decodes the generated ids.</param>
    /// <param name="stopStrings">Non-empty stop strings.</param>
    /// <param name="skipSpecialTokens">Whether special tokens are dropped from the text that is searched. Default true.</param>
    public StopStringCondition(ITextTokenizer tokenizer, IEnumerable<string> stopStrings, bool skipSpecialTokens = true)
    {
        _tokenizer = tokenizer ?? throw new ArgumentNullException(nameof(tokenizer));
        ArgumentNullException.ThrowIfNull(stopStrings);
        _stopStrings = stopStrings.ToArray();
        if (_stopStrings.Length == 0 || _stopStrings.Any(string.IsNullOrEmpty))
            throw new ArgumentException("At least one stop string is needed and none may be empty.", nameof(stopStrings));
        _skipSpecialTokens = skipSpecialTokens;
    }

    /// <summary>The stop string that stopped <paramref name="row"/> in the current call, or null.</summary>
    /// <param name="row">Index of the request.</param>
    /// <returns>The matched stop string, or null.</returns>
    public string? MatchedStopString(int row) => _rows.TryGetValue(row, out var s) ? s.Matcher.MatchedStopString : null;

    /// <inheritdoc />
    public bool ShouldStop(int row, GenerationRequest request, IReadOnlyList<long> generatedIds)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(generatedIds);
        if (!_rows.TryGetValue(row, out var state) || generatedIds.Count <= state.Fed)
        {
            // A new row (or a new call reusing this instance): decode the prefix as context only.
            state = new RowState(new StreamingDetokenizer(_tokenizer, _skipSpecialTokens), new StopStringMatcher(_stopStrings));
            foreach (var id in request.ForcedPrefixIds) state.Detokenizer.Add((int)id);
            _rows[row] = state;
        }
        for (; state.Fed < generatedIds.Count; state.Fed++)
        {
            var delta = state.Detokenizer.Add((int)generatedIds[state.Fed]);
            if (delta.Length > 0) state.Matcher.Push(delta);
        }
        return state.Matcher.Stopped;
    }

    private sealed class RowState(StreamingDetokenizer detokenizer, StopStringMatcher matcher)
    {
        public StreamingDetokenizer Detokenizer { get; } = detokenizer;
        public StopStringMatcher Matcher { get; } = matcher;
        public int Fed { get; set; }
    }
}
