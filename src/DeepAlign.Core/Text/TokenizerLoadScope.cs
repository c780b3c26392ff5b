namespace DeepAlign.Text;

/// <summary>The <see cref="TokenizerLimits"/> of the tokenizer being loaded on this flow (read by the pipeline builders).</summary>
internal sealed class TokenizerLoadScope : IDisposable
{
    private static readonly AsyncLocal<TokenizerLimits?> Active = new();
    private readonly TokenizerLimits? _previous;

    private TokenizerLoadScope(TokenizerLimits limits)
    {
        _previous = Active.Value;
        Active.Value = limits;
    }

    /// <summary>The limits in force: those of the enclosing load, else the defaults.</summary>
    public static TokenizerLimits Current => Active.Value ?? TokenizerLimits.Default;

    public static TokenizerLoadScope Enter(TokenizerLimits limits) => new(limits);

    public void Dispose() => Active.Value = _previous;
}
