using Microsoft.Extensions.Logging;
using Spectre.Console;

namespace DeepAlign.Cli.Commands;

/// <summary>Shows the library's warnings and errors on the console (e.g. a corrupt cache entry being rebuilt); quieter levels are dropped.</summary>
internal sealed class ConsoleWarningLogger(IAnsiConsole console) : ILogger
{
    public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

    public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Warning;

    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
    {
        if (!IsEnabled(logLevel)) return;
        string label = logLevel >= LogLevel.Error ? "[red]error:[/]" : "[yellow]warning:[/]";
        console.MarkupLine($"{label} {Markup.Escape(formatter(state, exception))}");
    }
}
