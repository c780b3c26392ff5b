namespace DeepAlign.Text;

/// <summary>Options for rendering a conversation. Immutable; <see cref="Validate"/> checks it.</summary>
public sealed record ChatTemplateOptions
{
    /// <summary>Append the assistant header so the model continues as the assistant (add_generation_prompt). Default true.</summary>
    public bool AddGenerationPrompt { get; init; } = true;

    /// <summary>
    /// Text the assistant turn is forced to start with (prefilling). Rendered as: the template output with the
    /// generation prompt, followed by this text verbatim; no end-of-turn is added. Requires
    /// <see cref="AddGenerationPrompt"/>. Null: none.
    /// </summary>
    public string? AssistantPrefix { get; init; }

    /// <summary>The <c>date_string</c> variable (Llama-3.1's "Today Date"). Null: the template's own default ("26 Jul 2024" for Llama-3.1).</summary>
    public string? DateString { get; init; }

    /// <summary>The clock read by strftime_now() (used by e.g. Llama-3.2 templates). Null: the current UTC time.</summary>
    public DateTimeOffset? Now { get; init; }

    /// <summary>Extra template variables (e.g. <c>enable_thinking</c> for Qwen3); they override nothing else.</summary>
    public IReadOnlyDictionary<string, object?>? ExtraVariables { get; init; }

    /// <summary>Throws <see cref="ArgumentException"/> naming the bad field.</summary>
    public void Validate()
    {
        if (AssistantPrefix is not null && !AddGenerationPrompt)
            throw new ArgumentException("AssistantPrefix needs AddGenerationPrompt = true (the prefix continues the assistant header).", nameof(AssistantPrefix));
        if (ExtraVariables is not null)
            foreach (var k in ExtraVariables.Keys)
                if (k is "messages" or "add_generation_prompt" or "bos_token" or "eos_token")
                    throw new ArgumentException($"ExtraVariables must not set '{k}'; it is set from the call.", nameof(ExtraVariables));
    }
}
