using System.CommandLine;
using System.Text.Json;
using DeepAlign.Text;

namespace DeepAlign.Cli.Commands;

/// <summary>
/// <c>tokenize --model DIR --text T [--add-special-tokens] [--json]</c>: prints the ids and token strings of T.
/// By default no BOS/EOS is added; special tokens written in the text are still recognised.
/// </summary>
internal static class TokenizeCommand
{
    public static Command Create()
    {
        var model = new Option<string>("--model") { Description = "Model folder with tokenizer.json", Required = true };
        var text = new Option<string>("--text") { Description = "Text to tokenize", Required = true };
        var addSpecial = new Option<bool>("--add-special-tokens") { Description = "Add the tokenizer's BOS/EOS (as configured)" };
        var json = new Option<bool>("--json") { Description = "Print {\"ids\": [...], \"tokens\": [...]}" };
        var command = new Command("tokenize", "Show the token ids of a text.") { model, text, addSpecial, json };
        command.SetAction(parse => CommandRunner.Run(() =>
        {
            var tokenizer = HfTokenizer.FromPretrained(parse.GetValue(model)!);
            var ids = tokenizer.Encode(parse.GetValue(text)!, parse.GetValue(addSpecial));
            var tokens = ids.Select(id => tokenizer.IdToToken(id) ?? "").ToArray();
            if (parse.GetValue(json))
            {
                Console.WriteLine(JsonSerializer.Serialize(new { ids, tokens }, new JsonSerializerOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }));
            }
            else
            {
                for (var i = 0; i < ids.Count; i++)
                    Console.WriteLine($"{ids[i]}\t{JsonSerializer.Serialize(tokens[i], new JsonSerializerOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping })}");
                Console.WriteLine($"{ids.Count} tokens");
            }
            return ExitCodes.Success;
        }));
        return command;
    }
}
