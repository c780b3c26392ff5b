using System.Reflection;
using System.Reflection.Emit;

namespace DeepAlign.Tests.Runtime;

/// <summary>
/// Finds, by reading IL, the places where code creates a TorchSharp <c>Scalar</c> that nobody keeps alive during the
/// native call that uses it (see docs/troubleshooting.md, "TorchSharp implicit Scalars and the garbage collector").
/// A site is either a direct implicit conversion (<c>Scalar.op_Implicit</c>, an inline <c>ToScalar()</c> whose result is
/// not stored in a local or field), or a call to a TorchSharp member that itself does so (computed transitively over
/// TorchSharp's own IL, e.g. <c>Tensor + Tensor</c> → <c>add(other, 1)</c>, <c>Tensor + double</c>, <c>square()</c>,
/// <c>arange(start, stop)</c>, <c>linalg.vector_norm</c>).
/// </summary>
internal static class ImplicitScalarAudit
{
    private static readonly Dictionary<short, OpCode> OpCodesByValue = typeof(OpCodes)
        .GetFields(BindingFlags.Public | BindingFlags.Static)
        .Select(f => (OpCode)f.GetValue(null)!)
        .ToDictionary(op => op.Value);

    private const BindingFlags AllDeclared =
        BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance | BindingFlags.Static | BindingFlags.DeclaredOnly;

    private static readonly Lazy<HashSet<(Module, int)>> HazardousTorchMembers = new(ComputeTorchHazards);

    /// <summary>One offending call: the outermost declaring type, the method (possibly compiler-generated) and the callee.</summary>
    internal sealed record Site(string Type, string Method, int ILOffset, string Callee)
    {
        public override string ToString() => $"{Type} :: {Method} @IL_{ILOffset:X4} -> {Callee}";
    }

    /// <summary>Every site in <paramref name="assembly"/> whose outermost type passes <paramref name="include"/>.</summary>
    public static IReadOnlyList<Site> FindSites(Assembly assembly, Func<Type, bool> include)
    {
        var torch = typeof(TorchSharp.Scalar).Assembly;
        var hazards = HazardousTorchMembers.Value;
        var sites = new List<Site>();
        foreach (var type in LoadableTypes(assembly))
        {
            var outer = Outermost(type);
            if (!include(outer)) continue;
            foreach (var method in MethodsOf(type))
            {
                foreach (var (offset, callee, next) in Calls(method))
                {
                    if (IsScalarFactory(callee))
                    {
                        // `using var s = x.ToScalar();` (stored in a local) and static readonly caches (stsfld) are fine.
                        bool stored = callee.Name == "ToScalar" && next is { } n
                            && (n.Name!.StartsWith("stloc", StringComparison.Ordinal) || n == OpCodes.Stsfld || n == OpCodes.Stfld);
                        if (!stored) sites.Add(new Site(outer.FullName!, Describe(type, method), offset, Describe(callee)));
                    }
                    else if (callee.Module.Assembly == torch && hazards.Contains((callee.Module, callee.MetadataToken)))
                    {
                        sites.Add(new Site(outer.FullName!, Describe(type, method), offset, Describe(callee)));
                    }
                }
            }
        }
        return sites;
    }

    private static HashSet<(Module, int)> ComputeTorchHazards()
    {
        var torch = typeof(TorchSharp.Scalar).Assembly;
        var calleesOf = new Dictionary<(Module, int), List<(Module, int)>>();
        var hazards = new HashSet<(Module, int)>();
        foreach (var type in LoadableTypes(torch))
        {
            if (type.FullName is "TorchSharp.Scalar" or "TorchSharp.ScalarExtensionMethods") continue;
            foreach (var method in MethodsOf(type))
            {
                var key = (method.Module, method.MetadataToken);
                var list = new List<(Module, int)>();
                foreach (var (_, callee, _) in Calls(method))
                {
                    if (IsScalarFactory(callee)) hazards.Add(key);
                    else if (callee.Module.Assembly == torch) list.Add((callee.Module, callee.MetadataToken));
                }
                calleesOf[key] = list;
            }
        }
        // Fixpoint: a member that calls a hazardous member is hazardous (add(Tensor) → add(Tensor, 1), operators, ...).
        bool changed = true;
        while (changed)
        {
            changed = false;
            foreach (var (method, callees) in calleesOf)
                if (!hazards.Contains(method) && callees.Any(hazards.Contains)) { hazards.Add(method); changed = true; }
        }
        return hazards;
    }

    private static bool IsScalarFactory(MethodBase callee) =>
        callee.DeclaringType?.FullName is "TorchSharp.Scalar" or "TorchSharp.ScalarExtensionMethods"
        && callee.Name is "op_Implicit" or "ToScalar";

    private static IEnumerable<Type> LoadableTypes(Assembly assembly)
    {
        try { return assembly.GetTypes(); }
        catch (ReflectionTypeLoadException e) { return e.Types.Where(t => t is not null)!; }
    }

    private static Type Outermost(Type type)
    {
        while (type.DeclaringType is not null) type = type.DeclaringType;
        return type;
    }

    private static IEnumerable<MethodBase> MethodsOf(Type type) =>
        type.GetMethods(AllDeclared).Cast<MethodBase>().Concat(type.GetConstructors(AllDeclared));

    private static string Describe(Type type, MethodBase method) => type.DeclaringType is null ? method.Name : $"{type.Name}.{method.Name}";

    private static string Describe(MethodBase callee) =>
        $"{callee.DeclaringType?.Name}.{callee.Name}({string.Join(", ", callee.GetParameters().Select(p => p.ParameterType.Name))})";

    /// <summary>Every call/callvirt/newobj/ldftn in the method body, with the opcode that follows it.</summary>
    private static IEnumerable<(int Offset, MethodBase Callee, OpCode? Next)> Calls(MethodBase method)
    {
        byte[]? il;
        try { il = method.GetMethodBody()?.GetILAsByteArray(); }
        catch (Exception e) when (e is BadImageFormatException or InvalidOperationException or IOException or TypeLoadException) { yield break; }
        if (il is null) yield break;
        var typeArgs = method.DeclaringType is { IsGenericType: true } t ? t.GetGenericArguments() : null;
        var methodArgs = method.IsGenericMethod ? method.GetGenericArguments() : null;
        int i = 0;
        (int Offset, MethodBase Callee)? pending = null;
        while (i < il.Length)
        {
            int start = i;
            short value = il[i++];
            if (value == 0xFE) value = (short)(0xFE00 | il[i++]);
            var op = OpCodesByValue[value];
            if (pending is { } p && op != OpCodes.Nop)
            {
                yield return (p.Offset, p.Callee, op);
                pending = null;
            }
            int operandSize = op.OperandType switch
            {
                OperandType.InlineNone => 0,
                OperandType.ShortInlineBrTarget or OperandType.ShortInlineI or OperandType.ShortInlineVar => 1,
                OperandType.InlineVar => 2,
                OperandType.InlineI8 or OperandType.InlineR => 8,
                OperandType.InlineSwitch => 4 + 4 * BitConverter.ToInt32(il, i),
                _ => 4,
            };
            if (op.OperandType == OperandType.InlineMethod)
            {
                MethodBase? callee = null;
                try { callee = method.Module.ResolveMethod(BitConverter.ToInt32(il, i), typeArgs, methodArgs); }
                catch (Exception e) when (e is ArgumentException or TypeLoadException or IOException or BadImageFormatException) { }
                if (callee is not null) pending = (start, callee);
            }
            i += operandSize;
        }
        if (pending is { } last) yield return (last.Offset, last.Callee, null);
    }
}
