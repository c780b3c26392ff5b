using System.Text.Json;
using System.Text.Json.Serialization;

namespace DeepAlign.Configuration;

/// <summary>Reads a JSON number or array of numbers as a list (HF writes <c>eos_token_id</c> both ways).</summary>
internal sealed class IntOrIntListConverter : JsonConverter<IReadOnlyList<int>?>
{
    /// <inheritdoc />
    public override IReadOnlyList<int>? Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
    {
        switch (reader.TokenType)
        {
            case JsonTokenType.Null: return null;
            case JsonTokenType.Number: return new[] { reader.GetInt32() };
            case JsonTokenType.StartArray:
                var list = new List<int>();
                while (reader.Read() && reader.TokenType != JsonTokenType.EndArray) list.Add(reader.GetInt32());
                return list;
            default: throw new JsonException($"Expected a token id or a list of token ids, found {reader.TokenType}.");
        }
    }

    /// <inheritdoc />
    public override void Write(Utf8JsonWriter writer, IReadOnlyList<int>? value, JsonSerializerOptions options)
    {
        if (value is null) { writer.WriteNullValue(); return; }
        if (value.Count == 1) { writer.WriteNumberValue(value[0]); return; }
        writer.WriteStartArray();
        foreach (var v in value) writer.WriteNumberValue(v);
        writer.WriteEndArray();
    }
}
