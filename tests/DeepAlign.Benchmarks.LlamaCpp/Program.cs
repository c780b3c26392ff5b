using System.Diagnostics;
using System.Globalization;
using LLama;
using LLama.Common;
using LLama.Native;

// The llama.cpp peer (LLamaSharp 0.30, CPU backend) of DeepAlign.Benchmarks decode-precision: the same prompt ids
// (System.Random(0), ids 3..vocab-1), a prefill then single-token steps with fixed, teacher-forced ids, per sequence,
// tokens/s of the decode steps. usage: DeepAlign.Benchmarks.LlamaCpp MODEL.gguf [--threads 1] [--batch 1]
// [--prompt 128] [--decode 64] [--repeats 3] [--vocab 32000]
static int Arg(string[] a, string name, int fallback) { int i = Array.IndexOf(a, name); return i >= 0 && i + 1 < a.Length ? int.Parse(a[i + 1], CultureInfo.InvariantCulture) : fallback; }

if (args.Length == 0) { Console.Error.WriteLine("usage: DeepAlign.Benchmarks.LlamaCpp MODEL.gguf [--threads N] [--batch B] [--prompt T] [--decode N] [--repeats R]"); return 2; }
string path = args[0];
int threads = Arg(args, "--threads", 1), batch = Arg(args, "--batch", 1), prompt = Arg(args, "--prompt", 128);
int decode = Arg(args, "--decode", 64), repeats = Arg(args, "--repeats", 3), vocab = Arg(args, "--vocab", 32000);
NativeLibraryConfig.All.WithLogCallback((level, message) => { if (level >= LLamaLogLevel.Error) Console.Error.Write(message); });

var parameters = new ModelParams(path)
{
    ContextSize = (uint)(batch * (prompt + decode) + 64),
    GpuLayerCount = 0,
    Threads = threads,
    BatchThreads = threads,
    BatchSize = (uint)Math.Max(512, batch * prompt),
    UBatchSize = (uint)Math.Max(512, batch * prompt),
    SeqMax = (uint)batch,
};
var load = Stopwatch.StartNew();
using var weights = LLamaWeights.LoadFromFile(parameters);
using var context = weights.CreateContext(parameters);
double loadSeconds = load.Elapsed.TotalSeconds;
var rng = new Random(0);
var ids = Enumerable.Range(0, batch * prompt).Select(_ => rng.Next(3, vocab)).ToArray();

var rates = new List<double>();
var cpuRates = new List<double>();
float firstLogit = float.NaN;
int firstArgmax = -1;
for (int r = 0; r <= repeats; r++)
{
    context.NativeHandle.MemoryClear(true);
    var b = new LLamaBatch();
    for (int s = 0; s < batch; s++)
        for (int t = 0; t < prompt; t++)
            b.Add(ids[s * prompt + t], t, (LLamaSeqId)s, t == prompt - 1);
    Check(context.Decode(b));
    if (r == 0)
    {
        var logits = context.NativeHandle.GetLogitsIth(prompt - 1);
        firstLogit = logits[0];
        for (int v = 1, best = 0; v < logits.Length; v++) if (logits[v] > logits[best]) { best = v; firstArgmax = v; }
    }
    var cpu0 = Process.GetCurrentProcess().TotalProcessorTime;
    var sw = Stopwatch.StartNew();
    for (int step = 0; step < decode; step++)
    {
        b.Clear();
        for (int s = 0; s < batch; s++) b.Add(7 + step, prompt + step, (LLamaSeqId)s, true);
        Check(context.Decode(b));
        for (int s = 0; s < batch; s++) _ = context.NativeHandle.GetLogitsIth(s)[0];
    }
    double seconds = sw.Elapsed.TotalSeconds, cpuSeconds = (Process.GetCurrentProcess().TotalProcessorTime - cpu0).TotalSeconds;
    if (r > 0) { rates.Add(batch * decode / seconds); cpuRates.Add(batch * decode / cpuSeconds); }
}
rates.Sort();
cpuRates.Sort();
Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
    $"{{\"impl\": \"llama.cpp (LLamaSharp 0.30)\", \"model\": \"{Path.GetFileName(path)}\", \"threads\": {threads}, \"batch\": {batch}, \"prompt\": {prompt}, \"decode\": {decode}, " +
    $"\"decode_tok_s\": {rates[rates.Count / 2]:F1}, \"range\": \"{rates[0]:F1}-{rates[^1]:F1}\", \"cpu_tok_s\": {cpuRates[cpuRates.Count / 2]:F1}, \"load_s\": {loadSeconds:F2}, \"prefill_logit0\": {firstLogit:G6}, \"prefill_argmax\": {firstArgmax}}}"));
return 0;

static void Check(DecodeResult result)
{
    if (result != DecodeResult.Ok) throw new InvalidOperationException($"llama_decode returned {result}");
}
