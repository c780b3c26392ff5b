namespace DeepAlign.Text;

/// <summary>Which chat template to use: the model's own (<see cref="Auto"/>) or a built-in official one.</summary>
public enum ChatFormat
{
    /// <summary>The chat_template of the model's tokenizer_config.json.</summary>
    Auto,
    /// <summary>Llama-2-chat: <c>&lt;s&gt;[INST] &lt;&lt;SYS&gt;&gt;...</c>.</summary>
    Llama2,
    /// <summary>Llama-3.0 Instruct (header ids, <c>&lt;|eot_id|&gt;</c>).</summary>
    Llama3,
    /// <summary>Llama-3.1 Instruct (adds the system preamble with "Cutting Knowledge Date" and "Today Date").</summary>
    Llama31,
    /// <summary>Plain ChatML (<c>&lt;|im_start|&gt;role\n...&lt;|im_end|&gt;</c>), no default system prompt.</summary>
    ChatML,
    /// <summary>Qwen2 Instruct: ChatML with default system prompt "You are a helpful assistant.".</summary>
    Qwen2,
    /// <summary>Qwen2.5 Instruct: ChatML with default system prompt "You are Qwen, created by Alibaba Cloud. You are a helpful assistant.".</summary>
    Qwen25,
    /// <summary>Qwen3: ChatML without default system prompt, with thinking blocks.</summary>
    Qwen3,
}
