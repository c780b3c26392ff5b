using Microsoft.Extensions.AI;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace DeepAlign.Hosting;

/// <summary>
/// Registers DeepAlign models and the <see cref="IChatClient"/> adapter in a Microsoft.Extensions.DependencyInjection
/// container: options validated at start, models loaded lazily once as singletons and disposed with the container,
/// <see cref="ILogger"/>s from the container's <see cref="ILoggerFactory"/> when there is one (else none).
/// </summary>
public static class DeepAlignServiceCollectionExtensions
{
    /// <summary>
    /// Registers <see cref="DeepAlignModelOptions"/> (validated by <c>ValidateOnStart</c>: a bad field fails the host's
    /// start with an <see cref="OptionsValidationException"/> naming it) and a singleton <see cref="DeepAlignModel"/>
    /// that loads the model(s) on first use and disposes them with the container.
    /// </summary>
    /// <param name="services">The service collection.</param>
    /// <param name="configure">Sets the options (may be null when they are configured elsewhere, e.g. bound from configuration).</param>
    /// <returns>The service collection, for chaining.</returns>
    public static IServiceCollection AddDeepAlignModel(this IServiceCollection services, Action<DeepAlignModelOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        var builder = services.AddOptions<DeepAlignModelOptions>();
        if (configure is not null) builder.Configure(configure);
        builder.ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<DeepAlignModelOptions>, DeepAlignModelOptionsValidator>());
        services.TryAddSingleton(sp => new DeepAlignModel(
            sp.GetRequiredService<IOptions<DeepAlignModelOptions>>().Value,
            sp.GetService<ILoggerFactory>()));
        return services;
    }

    /// <summary>
    /// Registers everything <see cref="AddDeepAlignModel"/> does plus a singleton <see cref="DeepAlignChatClient"/>,
    /// also exposed as <see cref="IChatClient"/>: plain decoding of <see cref="DeepAlignModelOptions.ModelDirectory"/>,
    /// or contrastive decoding against <see cref="DeepAlignModelOptions.BaseModelDirectory"/> when that is set. The
    /// models load when the client is first resolved.
    /// </summary>
    /// <param name="services">The service collection.</param>
    /// <param name="configure">Sets the options (may be null when they are configured elsewhere).</param>
    /// <returns>The service collection, for chaining.</returns>
    public static IServiceCollection AddDeepAlignChatClient(this IServiceCollection services, Action<DeepAlignModelOptions>? configure = null)
    {
        services.AddDeepAlignModel(configure);
        services.TryAddSingleton(sp => sp.GetRequiredService<DeepAlignModel>().CreateChatClient());
        services.TryAddSingleton<IChatClient>(sp => sp.GetRequiredService<DeepAlignChatClient>());
        return services;
    }
}

/// <summary>Runs <see cref="DeepAlignModelOptions.Validate"/> for the options system and reports its message.</summary>
internal sealed class DeepAlignModelOptionsValidator : IValidateOptions<DeepAlignModelOptions>
{
    public ValidateOptionsResult Validate(string? name, DeepAlignModelOptions options)
    {
        if (options is null) return ValidateOptionsResult.Fail("DeepAlignModelOptions is null.");
        try
        {
            options.Validate();
            return ValidateOptionsResult.Success;
        }
        catch (ArgumentException e)
        {
            return ValidateOptionsResult.Fail(e.Message);
        }
    }
}
