namespace DeepAlign.Method;

/// <summary>Names of the frozen models the method's objectives ask the trainer for (<c>ITrainingObjective.RequiredTeachers</c>).</summary>
public static class TeacherNames
{
    /// <summary>The aligned model pi_a (teacher of targeted completion, pi_ref of the constrained objective).</summary>
    public const string Aligned = "aligned";

    /// <summary>The base model pi_b (targeted completion's contrast and penalty).</summary>
    public const string Base = "base";
}
