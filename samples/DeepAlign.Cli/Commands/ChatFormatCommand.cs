using System.CommandLine;
using System.Text.Json;
using DeepAlign.Text;

namespace DeepAlign.Cli.Commands;

/// <summary>
/// <c>chat-format --model DIR [--format NAME] [--system S] --user U [--assistant-prefix P] [--no-generation-prompt]
/// [--date-string D] [--json]</c>: renders a conversation with the model's (or a named) chat template.
/// With --json prints {"format", "template_sha256", "text", "ids"}.
/// </summary>
internal static class ChatFormatCommand
{
    public static Command Create()
    {
        var model = new Option<string>("--model") { Description = "Model folder with tokenizer.json / tokenizer_config.json", Required = true };
        var format = new Option<string>("--format") { Description = $"Chat template: {string.Join(", ", ChatFormats.Names)}", DefaultValueFactory = _ => "auto" };
        var system = new Option<string?>("--system") { Description = "System message (omit for none)" };
        var user = new Option<string>("--user") { Description = "User message", Required = true };
        var prefix = new Option<string?>("--assistant-prefix") { Description = "Text the assistant turn is forced to start with" };
        var noGen = new Option<bool>("--no-generation-prompt") { Description = "Do not append the assistant header" };
        var date = new Option<string?>("--date-string") { Description = "date_string for templates that print a date (Llama-3.1)" };
        var json = new Option<bool>("--json") { Description = "Print JSON with the text, its ids and the template hash" };
        var command = new Command("chat-format", "Render a conversation with a chat template.") { model, format, system, user, prefix, noGen, date, json };
        command.SetAction(parse => CommandRunner.Run(() =>
        {
            var tokenizer = HfTokenizer.FromPretrained(parse.GetValue(model)!);
            var template = ChatTemplate.For(tokenizer, ChatFormats.Parse(parse.GetValue(format)!));
            var messages = new List<ChatMessage>();
            if (parse.GetValue(system) is { } s) messages.Add(ChatMessage.System(s));
            messages.Add(ChatMessage.User(parse.GetValue(user)!));
            var options = new ChatTemplateOptions
            {
                AddGenerationPrompt = !parse.GetValue(noGen),
                AssistantPrefix = parse.GetValue(prefix),
                DateString = parse.GetValue(date),
            };
            var text = template.Render(messages, options);
            if (parse.GetValue(json))
            {
                var ids = tokenizer.Encode(text);
                Console.WriteLine(JsonSerializer.Serialize(new { format = ChatFormats.Name(template.Format), template_sha256 = template.Sha256, text, ids },
                    new JsonSerializerOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }));
            }
            else Console.Write(text);
            return ExitCodes.Success;
        }));
        return command;
    }
}
