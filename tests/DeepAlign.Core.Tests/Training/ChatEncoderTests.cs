using DeepAlign.Text;
using DeepAlign.Training.Data;
using FluentAssertions;
using Xunit;
using DeepAlign.Data;

namespace DeepAlign.Tests.Training;

/// <summary>Text dataset lines through a real (tiny WordLevel) tokenizer and the built-in ChatML template.</summary>
public sealed class ChatEncoderTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "deepalign-chatenc-" + Guid.NewGuid().ToString("N"));

    public ChatEncoderTests()
    {
        Directory.CreateDirectory(_dir);
        File.WriteAllText(Path.Combine(_dir, "tokenizer.json"), """
            {"version":"1.0","added_tokens":[
             {"id":0,"content":"<|im_start|>","single_word":false,"lstrip":false,"rstrip":false,"normalized":false,"special":true},
             {"id":1,"content":"<|im_end|>","single_word":false,"lstrip":false,"rstrip":false,"normalized":false,"special":true},
             {"id":2,"content":"<unk>","single_word":false,"lstrip":false,"rstrip":false,"normalized":false,"special":true}],
             "normalizer":null,"pre_tokenizer":{"type":"WhitespaceSplit"},"post_processor":null,"decoder":null,
             "model":{"type":"WordLevel","vocab":{"<|im_start|>":0,"<|im_end|>":1,"<unk>":2,"user":3,"assistant":4,"system":5,"hello":6,"world":7,"sure":8,"no":9,"be":10,"nice":11},"unk_token":"<unk>"}}
            """);
        File.WriteAllText(Path.Combine(_dir, "tokenizer_config.json"), """{"eos_token":"<|im_end|>","unk_token":"<unk>"}""");
    }

    public void Dispose()
    {
        try { Directory.Delete(_dir, true); } catch (IOException) { }
    }

    [Fact]
    public void Text_lines_render_the_prompt_with_the_template_and_append_the_response_and_end_of_turn()
    {
        var tokenizer = HfTokenizer.FromPretrained(_dir);
        var encoder = new ConversationEncoder(tokenizer, ChatTemplate.For(tokenizer, ChatFormat.ChatML));
        var path = Path.Combine(_dir, "d.jsonl");
        File.WriteAllLines(path, new[]
        {
            """{"system": "be nice", "prompt": "hello world", "response": "sure hello"}""",
            """{"messages": [{"role": "user", "content": "hello"}], "safe_response": "no", "response": "sure"}""",
        });
        var data = TrainingData.Single(JsonlDatasetReader.ReadFile(path), new SftExampleBuilder(encoder), 0, shuffle: false);
        var e = data.Next();
        // <|im_start|>system\nbe nice<|im_end|>\n<|im_start|>user\nhello world<|im_end|>\n<|im_start|>assistant\n | sure hello <|im_end|>
        e.Ids.Should().Equal(0, 5, 10, 11, 1, 0, 3, 6, 7, 1, 0, 4, 8, 6, 1);
        e.ResponseStart.Should().Be(12);
        e.Targets.Select((t, i) => (t, i)).Where(x => x.t).Select(x => x.i).Should().Equal(12, 13, 14);
        var e2 = data.Next();
        e2.Ids.Should().Equal(0, 3, 6, 1, 0, 4, 8, 1);
        var act = () => TrainingData.Single(JsonlDatasetReader.ReadFile(path), new SafetyRecoveryExampleBuilder(encoder), 0);
        act.Should().Throw<DatasetFormatException>().WithMessage("*:1:*harmful_response*");
    }
}
