using System.CommandLine;
using DeepAlign.Evaluation.Judges;
using DeepAlign.Hosting;
using DeepAlign.Models;
using DeepAlign.Text;

namespace DeepAlign.Cli.Commands;

/// <summary>
/// <c>--chat-judge DIR [--chat-judge-template harmbench|strongreject] [--chat-judge-cache FILE]</c>: adds an LLM judge
/// (<see cref="ChatClientSafetyJudge"/>) over a local Hugging Face model folder served by <see cref="DeepAlignChatClient"/>
/// (greedy, one request at a time). Its rates and its agreement with the primary judge appear in the results. Remote
/// judges (Ollama, OpenAI) need the library API (docs/judges.md).
/// </summary>
internal sealed class ChatJudgeArguments
{
    public Option<string?> Model { get; } = new("--chat-judge") { Description = "Add an LLM judge: a local HF model folder served through DeepAlign's IChatClient (docs/judges.md)." };
    public Option<string> Template { get; } = new("--chat-judge-template") { Description = "The LLM judge's prompt: harmbench (yes/no classifier prompt) or strongreject (rubric).", DefaultValueFactory = _ => "harmbench" };
    public Option<string?> Cache { get; } = new("--chat-judge-cache") { Description = "JSONL cache of the LLM judge's answers (read, then rewritten atomically)." };

    public IEnumerable<Option> All => [Model, Template, Cache];

    /// <summary>The judge, or null without <c>--chat-judge</c>; dispose the returned handle after the evaluation.</summary>
    /// <exception cref="ArgumentException">A bad template name, or --chat-judge-template / --chat-judge-cache without --chat-judge.</exception>
    public Loaded? Load(ParseResult parse, TorchSharp.torch.Device device)
    {
        var template = ChatJudgeTemplate.Named(parse.GetValue(Template)!);
        string? cache = parse.GetValue(Cache);
        if (parse.GetValue(Model) is not { } dir)
        {
            if (cache is not null) throw new ArgumentException("--chat-judge-cache needs --chat-judge.");
            if (parse.GetResult(Template) is { Implicit: false }) throw new ArgumentException("--chat-judge-template needs --chat-judge.");
            return null;
        }
        if (!Directory.Exists(dir)) throw new DirectoryNotFoundException($"--chat-judge: model folder not found: {dir}");
        var model = CausalLanguageModel.FromPretrained(dir, device);
        try
        {
            var tokenizer = HfTokenizer.FromPretrained(dir);
            var client = DeepAlignChatClient.Create(model, tokenizer, ChatTemplate.For(tokenizer),
                new DeepAlignChatClientOptions { ModelId = Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(dir))) });
            var judge = new ChatClientSafetyJudge(client, new ChatClientSafetyJudgeOptions { Template = template, MaxConcurrency = 1, CacheFile = cache });
            return new Loaded(new NamedJudge("chat", judge), client, model);
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    /// <summary>The judge with the client and model behind it.</summary>
    internal sealed record Loaded(NamedJudge Judge, DeepAlignChatClient Client, ICausalLanguageModel Model) : IDisposable
    {
        public void Dispose()
        {
            Client.Dispose();
            Model.Dispose();
        }
    }
}
