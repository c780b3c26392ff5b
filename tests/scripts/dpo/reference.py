#!/usr/bin/python3
"""Independent PyTorch reference for DeepAlign's DPO objective (docs/training.md, "DPO").

Run with Debian's PyTorch 1.13:  /usr/bin/python3 tests/scripts/dpo/reference.py
Written from the DPO / cDPO / IPO formulas (Rafailov et al. 2023; Mitchell's conservative DPO note; Azar et al. 2023
Eq. 17 with TRL's length averaging), not from the C# code and without TRL. The Llama forward is the independent
HF-semantics forward of llama_reference.py (scripts/reference/, or tests/scripts/reference/ once moved there).
Writes tests/DeepAlign.Core.Tests/Fixtures/dpo/:
  reference/, policy/        tiny Llama folders (config.json + model.safetensors); policy = reference after a small
                             perturbation (a model mid-training, so rewards, margins and accuracies are non-trivial)
  data.jsonl                 6 pre-tokenized preference pairs {"id", "prompt_ids", "chosen_ids", "rejected_ids"} of
                             different prompt / chosen / rejected lengths (a batch of them needs right padding)
  reference.json             per case: options, per-pair sequence log-probs, loss and metrics; the trainer run
  grads_<case>.safetensors   gradient of each single-batch case's loss w.r.t. every policy parameter
  trainer_final.safetensors  weights after the trainer run

Conventions spelled out (so they are not shared with the C# code by mistake):
- A pair is (x, y_w, y_l); log pi(y | x) = sum over the response tokens t of log_softmax(logits[t - 1])[ids[t]] of the
  sequence x + y, each sequence run alone (batch of one, no padding), log-softmax in float32 over the full width.
- r_w = log pi_theta(y_w|x) - log pi_ref(y_w|x), r_l likewise; h = r_w - r_l.
  sigmoid: -(1 - eps) log sigmoid(beta h) - eps log sigmoid(-beta h)        (eps = label smoothing; 0 = plain DPO)
  ipo:     (r_w / |y_w| - r_l / |y_l| - 1 / (2 beta))^2                      (|y| = number of response tokens)
  loss = mean over the pairs of the (accumulated) batch.
- Metrics (TRL names): rewards/chosen = mean beta r_w, rewards/rejected = mean beta r_l (summed log-ratios, also for
  IPO), rewards/accuracies = mean [beta r_w > beta r_l], rewards/margins = mean beta (r_w - r_l),
  logps/chosen = mean log pi_theta(y_w|x), logps/rejected = mean log pi_theta(y_l|x).
- Trainer run: the student starts as a copy of the reference (standard DPO); file order, cycled; each optimiser step
  takes MICRO x ACCUM consecutive pairs, micro-batches of MICRO pairs; each micro-batch contributes
  sum of its pair losses / (MICRO x ACCUM) and is back-propagated separately; clip_grad_norm_ over all parameters;
  torch.optim.AdamW (no weight decay), constant learning rate.
"""
import json, math, os, sys
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
for cand in (os.path.join(ROOT, "tests", "scripts", "reference"), os.path.join(ROOT, "scripts", "reference")):
    if os.path.exists(os.path.join(cand, "llama_reference.py")):
        sys.path.insert(0, cand)
        break
import llama_reference as ref  # noqa: E402

torch.set_num_threads(1)
OUT = os.path.join(ROOT, "tests", "DeepAlign.Core.Tests", "Fixtures", "dpo")
os.makedirs(OUT, exist_ok=True)

CFG = dict(ref.BASE)
CFG.update(model_type="llama", architectures=["LlamaForCausalLM"], vocab_size=40, hidden_size=32, intermediate_size=48,
           num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=64,
           torch_dtype="float32", pad_token_id=0)
V = CFG["vocab_size"]


def save_folder(name, w):
    folder = os.path.join(OUT, name)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(CFG, f, indent=2, sort_keys=True)
    ref.save_safetensors(os.path.join(folder, "model.safetensors"), {k: v.contiguous() for k, v in w.items()}, {"format": "pt"})
    return ref.load_folder(folder)[1]  # exactly as written


gen = torch.Generator().manual_seed(11)
reference_w = ref.make_weights(CFG, gen)
policy_w = {k: v + torch.randn(v.shape, generator=gen) * (0.3 * v.std() if v.numel() > 1 else 0.05) for k, v in reference_w.items()}
reference_w = save_folder("reference", reference_w)
policy_w = save_folder("policy", policy_w)


def rnd_ids(n):
    return torch.randint(3, V, (n,), generator=gen).tolist()


# (prompt length, chosen length, rejected length): chosen longer, shorter and equal to rejected; prompts differ.
SHAPES = [(4, 5, 3), (6, 2, 6), (3, 4, 4), (5, 7, 2), (4, 3, 5), (6, 4, 3)]
pairs = [(rnd_ids(p), rnd_ids(c), rnd_ids(r)) for p, c, r in SHAPES]
with open(os.path.join(OUT, "data.jsonl"), "w") as f:
    for i, (x, yw, yl) in enumerate(pairs):
        f.write(json.dumps({"id": "pair%d" % i, "prompt_ids": x, "chosen_ids": yw, "rejected_ids": yl}) + "\n")


def seq_logp(w, x, y):
    """log pi(y | x): the sequence x + y alone, response tokens predicted from the previous position."""
    ids = torch.tensor([x + y])
    lp = torch.log_softmax(ref.forward(CFG, w, ids)[0].float(), -1)
    total = torch.zeros(())
    for t in range(len(x), len(x) + len(y)):
        total = total + lp[t - 1, ids[0, t]]
    return total


def dpo_sums(batch, w_policy, w_reference, o):
    """Sums over the pairs of `batch` of the loss and of each metric's per-pair value, plus the per-pair log-probs."""
    beta, eps = o["beta"], o["label_smoothing"]
    loss = torch.zeros(())
    m = dict.fromkeys(["rewards/chosen", "rewards/rejected", "rewards/accuracies", "rewards/margins", "logps/chosen", "logps/rejected"], 0.0)
    per = dict(policy_chosen=[], policy_rejected=[], reference_chosen=[], reference_rejected=[], losses=[])
    for x, yw, yl in batch:
        pw, pl = seq_logp(w_policy, x, yw), seq_logp(w_policy, x, yl)
        with torch.no_grad():
            rw, rl = seq_logp(w_reference, x, yw), seq_logp(w_reference, x, yl)
        ratio_w, ratio_l = pw - rw, pl - rl
        if o["loss_type"] == "sigmoid":
            h = ratio_w - ratio_l
            li = -(1 - eps) * torch.nn.functional.logsigmoid(beta * h) - eps * torch.nn.functional.logsigmoid(-beta * h)
        elif o["loss_type"] == "ipo":
            h = ratio_w / len(yw) - ratio_l / len(yl)
            li = (h - 1 / (2 * beta)) ** 2
        else:
            raise ValueError(o["loss_type"])
        loss = loss + li
        cw, cl = beta * ratio_w.item(), beta * ratio_l.item()
        m["rewards/chosen"] += cw
        m["rewards/rejected"] += cl
        m["rewards/accuracies"] += 1.0 if cw > cl else 0.0
        m["rewards/margins"] += cw - cl
        m["logps/chosen"] += pw.item()
        m["logps/rejected"] += pl.item()
        for k, v in (("policy_chosen", pw), ("policy_rejected", pl), ("reference_chosen", rw), ("reference_rejected", rl), ("losses", li)):
            per[k].append(v.item())
    return loss, m, per


def params(w):
    return {k: torch.nn.Parameter(v.clone().float()) for k, v in w.items()}


CASES = {
    "sigmoid": dict(loss_type="sigmoid", beta=0.1, label_smoothing=0.0),
    "cdpo": dict(loss_type="sigmoid", beta=0.5, label_smoothing=0.2),
    "ipo": dict(loss_type="ipo", beta=0.1, label_smoothing=0.0),
}
out = dict(config=CFG, pairs=[dict(prompt=x, chosen=yw, rejected=yl) for x, yw, yl in pairs], cases={})
for name, o in CASES.items():
    P = params(policy_w)
    s, m, per = dpo_sums(pairs, P, reference_w, o)
    n = len(pairs)
    loss = s / n
    loss.backward()
    ref.save_safetensors(os.path.join(OUT, "grads_%s.safetensors" % name), {k: p.grad.detach().clone() for k, p in P.items()})
    out["cases"][name] = dict(options=o, loss=loss.item(), metrics={k: v / n for k, v in m.items()}, per_pair=per)
    assert 0 < out["cases"][name]["metrics"]["rewards/accuracies"] < 1, "the fixture should mix right and wrong pairs"

# ------------------------------------------------------------------ trainer run (accumulation, AdamW, clipping)
T = dict(steps=3, micro_batch=2, accumulation=2, lr=5e-3, beta1=0.9, beta2=0.999, eps=1e-8, max_grad_norm=1.0,
         loss_type="sigmoid", beta=0.1, label_smoothing=0.0)
P = params(reference_w)
opt = torch.optim.AdamW(list(P.values()), lr=T["lr"], betas=(T["beta1"], T["beta2"]), eps=T["eps"], weight_decay=0.0)
cursor = 0
steps = []
for step in range(T["steps"]):
    micro = []
    for _ in range(T["accumulation"]):
        micro.append([pairs[(cursor + i) % len(pairs)] for i in range(T["micro_batch"])])
        cursor += T["micro_batch"]
    total = T["micro_batch"] * T["accumulation"]
    opt.zero_grad()
    loss_val, metrics = 0.0, None
    for batch in micro:
        s, m, _ = dpo_sums(batch, P, reference_w, T)
        (s / total).backward()
        loss_val += (s / total).item()
        metrics = {k: (metrics or {}).get(k, 0.0) + v / total for k, v in m.items()}
    norm = torch.nn.utils.clip_grad_norm_(list(P.values()), T["max_grad_norm"])
    opt.step()
    steps.append(dict(loss=loss_val, metrics=metrics, grad_norm=float(norm)))
assert abs(steps[0]["loss"] - math.log(2)) < 1e-6 and steps[0]["metrics"]["rewards/margins"] == 0.0, steps[0]
ref.save_safetensors(os.path.join(OUT, "trainer_final.safetensors"), {k: p.detach().clone() for k, p in P.items()})
out["trainer"] = dict(options=T, steps=steps)

with open(os.path.join(OUT, "reference.json"), "w") as f:
    json.dump(out, f, indent=1)
for name in CASES:
    print(name, "loss %.6f" % out["cases"][name]["loss"], json.dumps(out["cases"][name]["metrics"]))
for i, s in enumerate(steps):
    print("trainer step", i + 1, "loss %.6f" % s["loss"], "norm %.4f" % s["grad_norm"], json.dumps(s["metrics"]))
