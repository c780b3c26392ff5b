using System.Collections.Concurrent;
using Microsoft.Extensions.AI;
using AIChatMessage = Microsoft.Extensions.AI.ChatMessage;

namespace DeepAlign.Tests.Evaluation;

/// <summary>
/// A fake <see cref="IChatClient"/> for judge tests: each call takes the next scripted step (an answer text, or an
/// exception to throw), or, once the script is empty, asks <see cref="Responder"/>; it records every request, counts
/// calls and measures the largest number of calls in flight at once.
/// </summary>
internal sealed class ScriptedChatClient : IChatClient
{
    private readonly ConcurrentQueue<object> _script;
    private int _inFlight, _maxInFlight, _calls;

    /// <param name="script">Answers (strings) or exceptions, used in call order.</param>
    public ScriptedChatClient(params object[] script) => _script = new ConcurrentQueue<object>(script);

    /// <summary>Answers calls after the script ran out: (user message text, call number) -> answer; null: throw.</summary>
    public Func<string, int, string>? Responder { get; init; }

    /// <summary>Time each call takes (honouring cancellation).</summary>
    public TimeSpan Delay { get; init; }

    /// <summary>Reported as <see cref="ChatClientMetadata.DefaultModelId"/>.</summary>
    public string ModelId { get; init; } = "scripted-judge";

    public int Calls => Volatile.Read(ref _calls);
    public int MaxInFlight => Volatile.Read(ref _maxInFlight);
    public ConcurrentQueue<(IReadOnlyList<AIChatMessage> Messages, ChatOptions? Options)> Requests { get; } = new();

    public async Task<ChatResponse> GetResponseAsync(IEnumerable<AIChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default)
    {
        var list = messages.ToList();
        int call = Interlocked.Increment(ref _calls);
        Requests.Enqueue((list, options));
        int now = Interlocked.Increment(ref _inFlight);
        for (int seen = Volatile.Read(ref _maxInFlight); now > seen; seen = Volatile.Read(ref _maxInFlight))
            if (Interlocked.CompareExchange(ref _maxInFlight, now, seen) == seen) break;
        try
        {
            if (Delay > TimeSpan.Zero) await Task.Delay(Delay, cancellationToken).ConfigureAwait(false);
            else await Task.Yield();
            cancellationToken.ThrowIfCancellationRequested();
            object step = _script.TryDequeue(out var s) ? s
                : Responder is { } r ? r(list[^1].Text, call)
                : throw new InvalidOperationException($"ScriptedChatClient: call {call} has no scripted answer.");
            if (step is Exception e) throw e;
            return new ChatResponse(new AIChatMessage(ChatRole.Assistant, (string)step)) { ModelId = ModelId };
        }
        finally
        {
            Interlocked.Decrement(ref _inFlight);
        }
    }

    public IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<AIChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default) =>
        throw new NotSupportedException("The judge never streams.");

    public object? GetService(Type serviceType, object? serviceKey = null) =>
        serviceKey is null && serviceType == typeof(ChatClientMetadata) ? new ChatClientMetadata("scripted", null, ModelId)
        : serviceKey is null && serviceType.IsInstanceOfType(this) ? this : null;

    public void Dispose() { }
}
