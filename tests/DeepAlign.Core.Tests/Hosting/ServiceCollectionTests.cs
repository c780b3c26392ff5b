using DeepAlign.Generation;
using DeepAlign.Hosting;
using DeepAlign.Method;
using DeepAlign.Method.Contrastive;
using FluentAssertions;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using TorchSharp;
using Xunit;
using AIChatMessage = Microsoft.Extensions.AI.ChatMessage;

namespace DeepAlign.Tests.Hosting;

/// <summary>The DI helpers: validation at start, lazy single loading, disposal with the container, logging, contrastive mode.</summary>
public sealed class ServiceCollectionTests : IClassFixture<PinnedPairFixture>
{
    private readonly PinnedPairFixture _pair;

    public ServiceCollectionTests(PinnedPairFixture pair) => _pair = pair;

    private static AIChatMessage[] Ask(string prompt) => new[] { new AIChatMessage(ChatRole.User, prompt) };

    [Fact]
    public async Task Chat_client_is_registered_loads_lazily_once_and_answers_like_the_generator()
    {
        var logs = new ListLoggerFactory();
        var services = new ServiceCollection().AddSingleton<ILoggerFactory>(logs);
        services.AddDeepAlignChatClient(o =>
        {
            o.ModelDirectory = _pair.AlignedDirectory;
            o.Device = "cpu";
            o.DType = "float32";
        });
        using var provider = services.BuildServiceProvider(new ServiceProviderOptions { ValidateScopes = true, ValidateOnBuild = true });
        provider.GetRequiredService<IStartupValidator>().Validate();

        var holder = provider.GetRequiredService<DeepAlignModel>();
        holder.IsLoaded.Should().BeFalse("nothing is loaded before the client is first used");
        var client = provider.GetRequiredService<IChatClient>();
        holder.IsLoaded.Should().BeTrue();
        provider.GetRequiredService<DeepAlignChatClient>().Should().BeSameAs(client);
        provider.GetRequiredService<IChatClient>().Should().BeSameAs(client);
        client.GetService<ChatClientMetadata>()!.DefaultModelId.Should().Be("aligned", "the model id defaults to the folder name");
        client.GetService<ChatClientMetadata>()!.ProviderName.Should().Be("DeepAlign");
        holder.Model.Device.type.Should().Be(DeviceType.CPU);

        var prompt = _pair.Benign[0];
        var expected = _pair.Reference(new GenerationRequest(_pair.Ids(PinnedPairFixture.ChatMl(("user", prompt)))));
        (await client.GetResponseAsync(Ask(prompt))).Text.Should().Be(_pair.Decode(expected.GeneratedIds));

        logs.Messages.Should().ContainSingle(m => m.StartsWith("Loaded model", StringComparison.Ordinal), "the model loads once, and says so through ILogger");
    }

    public static IEnumerable<object[]> BadOptions()
    {
        string aligned = Path.Combine(PinnedPairFixture.PinnedDirectory, "aligned");
        yield return new object[] { "DeepAlignModelOptions.ModelDirectory", (Action<DeepAlignModelOptions>)(_ => { }) };
        yield return new object[] { "DeepAlignModelOptions.ModelDirectory", (Action<DeepAlignModelOptions>)(o => o.ModelDirectory = "/no/such/model") };
        yield return new object[] { "DeepAlignModelOptions.ModelDirectory", (Action<DeepAlignModelOptions>)(o => o.ModelDirectory = Path.GetTempPath()) };
        yield return new object[] { "DeepAlignModelOptions.BaseModelDirectory", (Action<DeepAlignModelOptions>)(o => { o.ModelDirectory = aligned; o.BaseModelDirectory = "/no/such/base"; }) };
        yield return new object[] { "DeepAlignModelOptions.DType", (Action<DeepAlignModelOptions>)(o => { o.ModelDirectory = aligned; o.DType = "int7"; }) };
        yield return new object[] { "DeepAlignModelOptions.Device", (Action<DeepAlignModelOptions>)(o => { o.ModelDirectory = aligned; o.Device = "quantum:3"; }) };
        yield return new object[] { "DeepAlignModelOptions.ChatFormat", (Action<DeepAlignModelOptions>)(o => { o.ModelDirectory = aligned; o.ChatFormat = "vicuna"; }) };
        yield return new object[] { "PlausibilityBeta", (Action<DeepAlignModelOptions>)(o => { o.ModelDirectory = aligned; o.Contrastive = new ContrastiveDecoderOptions { PlausibilityBeta = 2 }; }) };
        yield return new object[] { "DeepAlignModelOptions.DefaultMaxOutputTokens", (Action<DeepAlignModelOptions>)(o => { o.ModelDirectory = aligned; o.DefaultMaxOutputTokens = 0; }) };
        yield return new object[] { "DeepAlignModelOptions.ModelId", (Action<DeepAlignModelOptions>)(o => { o.ModelDirectory = aligned; o.ModelId = " "; }) };
    }

    [Theory]
    [MemberData(nameof(BadOptions))]
    public void Bad_options_fail_at_start_naming_the_field(string field, Action<DeepAlignModelOptions> configure)
    {
        var services = new ServiceCollection();
        services.AddDeepAlignChatClient(configure);
        using var provider = services.BuildServiceProvider();

        var start = () => provider.GetRequiredService<IStartupValidator>().Validate();
        start.Should().Throw<OptionsValidationException>().Which.Message.Should().Contain(field);
        // Resolving the client without a host start fails the same way, before anything is loaded.
        var resolve = () => provider.GetRequiredService<IChatClient>();
        resolve.Should().Throw<OptionsValidationException>().Which.Message.Should().Contain(field);
    }

    [Fact]
    public async Task Disposing_the_container_disposes_the_models_and_the_client()
    {
        var services = new ServiceCollection().AddDeepAlignChatClient(o => o.ModelDirectory = _pair.AlignedDirectory);
        var provider = services.BuildServiceProvider();
        var client = provider.GetRequiredService<IChatClient>();
        var holder = provider.GetRequiredService<DeepAlignModel>();
        var model = holder.Model;
        (await client.GetResponseAsync(Ask(_pair.Benign[0]), new ChatOptions { MaxOutputTokens = 1 })).Usage!.OutputTokenCount.Should().Be(1);

        await provider.DisposeAsync();

        holder.IsDisposed.Should().BeTrue();
        using var ids = torch.tensor(new long[] { 5, 6 }, new long[] { 1, 2 });
        FluentActions.Invoking(() => model.Forward(ids)).Should().Throw<ObjectDisposedException>("the container owns the loaded model");
        await FluentActions.Awaiting(() => client.GetResponseAsync(Ask(_pair.Benign[0]))).Should().ThrowAsync<ObjectDisposedException>();
        FluentActions.Invoking(() => holder.Model).Should().Throw<ObjectDisposedException>();
    }

    [Fact]
    public void A_container_that_never_used_the_model_loads_nothing()
    {
        var services = new ServiceCollection().AddDeepAlignModel(o => o.ModelDirectory = _pair.AlignedDirectory);
        DeepAlignModel holder;
        using (var provider = services.BuildServiceProvider())
        {
            provider.GetRequiredService<IStartupValidator>().Validate();
            holder = provider.GetRequiredService<DeepAlignModel>();
        }
        holder.IsLoaded.Should().BeFalse();
        holder.IsDisposed.Should().BeTrue();
        services.Should().NotContain(d => d.ServiceType == typeof(IChatClient), "AddDeepAlignModel registers the model only");
    }

    [Fact]
    public async Task Base_model_folder_switches_the_client_to_contrastive_decoding()
    {
        using var provider = new ServiceCollection().AddDeepAlignChatClient(o =>
        {
            o.ModelDirectory = _pair.AlignedDirectory;
            o.BaseModelDirectory = _pair.BaseDirectory;
            o.Contrastive = new ContrastiveDecoderOptions { Alpha = new ConstantAlpha(1.0) };
            o.ModelId = "organism-cd";
        }).BuildServiceProvider();
        var client = provider.GetRequiredService<IChatClient>();
        client.GetService<ContrastiveScorer>().Should().NotBeNull();
        client.GetService<ChatClientMetadata>()!.DefaultModelId.Should().Be("organism-cd");
        var holder = provider.GetRequiredService<DeepAlignModel>();
        holder.IsContrastive.Should().BeTrue();
        holder.BaseModel.Should().NotBeNull();

        foreach (var prompt in _pair.Harmful)
        {
            var promptIds = _pair.Ids(PinnedPairFixture.ChatMl(("user", prompt)));
            using var decoder = new ContrastiveDecoder(_pair.Aligned, _pair.Base, new ContrastiveDecoderOptions { Alpha = new ConstantAlpha(1.0) });
            var expected = decoder.Generate(new[] { new GenerationRequest(promptIds) }, new GenerationOptions { MaxNewTokens = 256 })[0];
            (await client.GetResponseAsync(Ask(prompt))).Text.Should().Be(_pair.Decode(expected.GeneratedIds));
        }
    }

    /// <summary>Collects formatted log messages (enough of ILoggerFactory for these tests).</summary>
    private sealed class ListLoggerFactory : ILoggerFactory
    {
        private readonly List<string> _messages = new();

        public IReadOnlyList<string> Messages
        {
            get { lock (_messages) return _messages.ToArray(); }
        }

        public ILogger CreateLogger(string categoryName) => new ListLogger(this);

        public void AddProvider(ILoggerProvider provider) { }

        public void Dispose() { }

        private sealed class ListLogger(ListLoggerFactory owner) : ILogger
        {
            public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

            public bool IsEnabled(LogLevel logLevel) => true;

            public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
            {
                lock (owner._messages) owner._messages.Add(formatter(state, exception));
            }
        }
    }
}
