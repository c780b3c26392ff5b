#!/usr/bin/python3
"""Independent PyTorch reference for the targeted-completion objectives (METHOD.md sections 3 and 4).

Run with Debian's PyTorch 1.13:  /usr/bin/python3 tests/scripts/targeted/reference.py
Written from METHOD.md alone (not from the C# code). Uses the independent Llama forward of
tests/scripts/reference/llama_reference.py (HF semantics). Writes tests/DeepAlign.Core.Tests/Fixtures/targeted/:
  aligned/, base/, student/   tiny Llama folders (config.json + model.safetensors); the student is the aligned
                              model after a small perturbation (a model mid-training, so every term is non-trivial)
  reference.json              the batch (rows with ids, target flags, response start, K_pre, source), the options of
                              each case, per-target teacher quantities (j, U, g, w, q, T ids, members, c), the terms
                              (token-weighted means) and the losses of each case, the constrained and augmentation
                              losses, and hand-designed teacher rows (U = 0 -> g = 0, U = 1 -> g = g_max, intermediate)
  grads_<case>.safetensors    gradients of each loss w.r.t. every student parameter
Conventions (METHOD.md section 0): token t is a target predicted by the logits at t - 1; response position j of token
t is t - response_start + 1 (forced harmful-prefix tokens count; they are never targets); log-softmax in float32;
KL and CE use 0 log 0 = 0; teacher quantities without gradient; each term is a mean over its own target tokens
(harmful: CE, KL, Pen; benign: utility) over the whole batch.
"""
import json, math, os, sys
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "reference"))
import llama_reference as ref  # noqa: E402

torch.set_num_threads(1)
OUT = os.path.join(HERE, "..", "..", "..", "tests", "DeepAlign.Core.Tests", "Fixtures", "targeted")
os.makedirs(OUT, exist_ok=True)

CFG = dict(ref.BASE)
CFG.update(model_type="llama", architectures=["LlamaForCausalLM"], vocab_size=40, hidden_size=32, intermediate_size=48,
           num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=64, torch_dtype="float32")
V = CFG["vocab_size"]


def save_folder(name, w):
    folder = os.path.join(OUT, name)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(CFG, f, indent=2, sort_keys=True)
    ref.save_safetensors(os.path.join(folder, "model.safetensors"), {k: v.contiguous() for k, v in w.items()}, {"format": "pt"})
    return ref.load_folder(folder)[1]


gen = torch.Generator().manual_seed(7)
aligned_w = ref.make_weights(CFG, gen)
base_w = {k: v + torch.randn(v.shape, generator=gen) * (0.25 * v.std() if v.numel() > 1 else 0.05) for k, v in aligned_w.items()}
student_w = {k: v + torch.randn(v.shape, generator=gen) * (0.05 * v.std() if v.numel() > 1 else 0.01) for k, v in aligned_w.items()}
aligned_w = save_folder("aligned", aligned_w)
base_w = save_folder("base", base_w)
student_w = save_folder("student", student_w)

# ------------------------------------------------------------------ the batch
def rnd_ids(n):
    return torch.randint(3, V, (n,), generator=gen).tolist()

rows = []
# (source, prompt len, harmful len, K_pre, safe len) ; benign: (source, prompt len, response len)
spec = [("harmful", 5, 6, 3, 4), ("benign", 4, 6), ("harmful", 4, 5, 0, 5), ("benign", 3, 3), ("harmful", 6, 4, 4, 3), ("benign", 5, 7)]
for s in spec:
    if s[0] == "harmful":
        _, np_, nh, k, nr = s
        prompt, h, r = rnd_ids(np_), rnd_ids(nh), rnd_ids(nr)
        ids = prompt + h[:k] + r
        targets = [False] * (np_ + k) + [True] * nr
        rows.append(dict(source="harmful", ids=ids, targets=targets, response_start=np_, k_pre=k))
    else:
        _, np_, nr = s
        prompt, y = rnd_ids(np_), rnd_ids(nr)
        rows.append(dict(source="benign", ids=prompt + y, targets=[False] * np_ + [True] * nr, response_start=np_, k_pre=0))

B, T = len(rows), max(len(r["ids"]) for r in rows)
ids = torch.zeros(B, T, dtype=torch.long)
att = torch.zeros(B, T, dtype=torch.long)
tgt = torch.zeros(B, T, dtype=torch.bool)
pos = torch.zeros(B, T, dtype=torch.long)
harm_row = torch.zeros(B, T, dtype=torch.bool)
for i, r in enumerate(rows):
    n = len(r["ids"])
    ids[i, :n] = torch.tensor(r["ids"]); att[i, :n] = 1; tgt[i, :n] = torch.tensor(r["targets"])
    pos[i, :n] = torch.tensor([t - r["response_start"] + 1 if t >= r["response_start"] else 0 for t in range(n)])
    harm_row[i, :] = r["source"] == "harmful"

# predicted-token view: index t-1 predicts token t
P_tgt = tgt[:, 1:]
P_harm = P_tgt & harm_row[:, 1:]
P_ben = P_tgt & ~harm_row[:, 1:]
labels = ids[:, 1:]
positions = pos[:, 1:]

with torch.no_grad():
    la_all = torch.log_softmax(ref.forward(CFG, aligned_w, ids, att)[:, :-1].float(), -1)
    lb_all = torch.log_softmax(ref.forward(CFG, base_w, ids, att)[:, :-1].float(), -1)


def xlogy_kl(p, logp, logq):
    """sum_v p (log p - log q) with p = 0 terms = 0."""
    d = torch.where(p > 0, logp - logq, torch.zeros_like(p))
    return (p * d).sum(-1)


def teacher(la, lb, j, o):
    """B_j, U_j, g_j, q_j, c_j, w_j (no grad) from METHOD.md sections 1-3."""
    k = min(o["top_k_base"], la.shape[-1])
    lb_top, top_ids = lb.topk(k, dim=-1)
    la_top = la.gather(-1, top_ids)
    members = (lb_top - la_top) > o["tau"]
    pb_top, pa_top = lb_top.exp(), la_top.exp()
    mb = (pb_top * members).sum(-1)
    ma = (pa_top * members).sum(-1)
    u = 1 - (mb - ma) / pb_top.sum(-1)
    g = torch.full_like(u, o["constant_mix"]) if o["constant_mix"] is not None else o["max_mix"] * u
    pa = la.exp()
    s = la + o["teacher_alpha"] * (la - lb)
    if o["plausibility_beta"] > 0:
        keep = pa >= o["plausibility_beta"] * pa.max(-1, keepdim=True).values
        s = s.masked_fill(~keep, float("-inf"))
    q = (1 - g[:, None]) * pa + g[:, None] * torch.softmax(s, -1)
    c = torch.where(members, 1 - torch.exp(la_top - lb_top), torch.zeros_like(la_top))
    if o["probe_norms"] is not None:
        n = o["probe_norms"]
        table = [o["max_weight"] if nj <= 0 else min(o["max_weight"], (n[0] / nj) ** o["rho"]) for nj in n]
        w = torch.tensor([table[min(int(x), len(table)) - 1] for x in j.tolist()], dtype=torch.float32)
    else:
        w = torch.clamp(1 + (j.double() - 1) / o["ramp_length"], max=o["max_weight"]).float()
    return dict(u=u, g=g, q=q, c=c, ids=top_ids, members=members, w=w)


def student_params():
    return {k: torch.nn.Parameter(v.clone().float()) for k, v in student_w.items()}


def targeted_loss(o):
    P = student_params()
    ls_all = torch.log_softmax(ref.forward(CFG, P, ids, att)[:, :-1].float(), -1)
    ls_h, ls_b = ls_all[P_harm], ls_all[P_ben]
    y_h, y_b = labels[P_harm], labels[P_ben]
    j_h = positions[P_harm]
    with torch.no_grad():
        te = teacher(la_all[P_harm], lb_all[P_harm], j_h, o)
    n_h, n_b = P_harm.sum().item(), P_ben.sum().item()
    ce = -ls_h.gather(-1, y_h[:, None]).squeeze(-1)
    kl = xlogy_kl(te["q"], torch.log(te["q"]), ls_h)
    pen = te["w"] * (ls_h.gather(-1, te["ids"]).exp() * te["c"]).sum(-1)
    if o["utility"] == "kl":
        la_b = la_all[P_ben]
        util = xlogy_kl(la_b.exp(), la_b, ls_b)
    else:
        util = -ls_b.gather(-1, y_b[:, None]).squeeze(-1)
    terms = dict(ce=ce.sum() / n_h, kl=kl.sum() / n_h, pen=pen.sum() / n_h, util=util.sum() / n_b)
    loss = terms["ce"] + o["lambda_kd"] * terms["kl"] + o["lambda_pen"] * terms["pen"] + o["lambda_util"] * terms["util"]
    loss.backward()
    grads = {k: p.grad.detach().clone() for k, p in P.items()}
    per = dict(j=j_h.tolist(), u=te["u"].tolist(), g=te["g"].tolist(), w=te["w"].tolist(), q=te["q"].tolist(),
               top_ids=te["ids"].tolist(), members=te["members"].tolist(), c=te["c"].tolist())
    return dict(loss=loss.item(), terms={k: v.item() for k, v in terms.items()}, teacher=per), grads


def betas_for(j):
    return torch.where(j == 1, torch.tensor(0.5), torch.where(j <= 5, torch.tensor(2.0), torch.tensor(0.1)))


def constrained_loss():
    P = student_params()
    ls = torch.log_softmax(ref.forward(CFG, P, ids, att)[:, :-1].float(), -1)[P_tgt]
    y = labels[P_tgt]
    lp = ls.gather(-1, y[:, None]).squeeze(-1)
    lref = la_all[P_tgt].gather(-1, y[:, None]).squeeze(-1)
    beta = betas_for(positions[P_tgt])
    per = (2.0 / beta) * torch.nn.functional.softplus(beta * (lref - lp))
    loss = per.sum() / P_tgt.sum()
    loss.backward()
    # The gradient METHOD.md states: -2 sigmoid(beta (lref - lp)) grad lp, per token, then the mean.
    return dict(loss=loss.item(), betas=beta.tolist(), positions=positions[P_tgt].tolist()), {k: p.grad.detach().clone() for k, p in P.items()}


def augmentation_loss():
    P = student_params()
    ls = torch.log_softmax(ref.forward(CFG, P, ids, att)[:, :-1].float(), -1)[P_tgt]
    ce = -ls.gather(-1, labels[P_tgt][:, None]).squeeze(-1)
    loss = ce.sum() / P_tgt.sum()
    loss.backward()
    harm = harm_row[:, 1:][P_tgt]
    return dict(loss=loss.item(), ce_harmful=(ce[harm].sum() / P_tgt.sum()).item(), ce_benign=(ce[~harm].sum() / P_tgt.sum()).item()), \
        {k: p.grad.detach().clone() for k, p in P.items()}


DEFAULTS = dict(tau=0.0, top_k_base=50, max_mix=0.5, constant_mix=None, teacher_alpha=1.0, plausibility_beta=0.1,
                rho=0.5, max_weight=4.0, ramp_length=32, probe_norms=None, lambda_kd=1.0, lambda_pen=1.0, lambda_util=1.0, utility="kl")
CASES = {
    # probe weights (J = 6 < the longest position: positions beyond take w_J), kB = 20 < V, the KL anchor
    "probe": dict(DEFAULTS, top_k_base=20, probe_norms=[2.0, 1.5, 0.9, 0.5, 0.3, 0.0]),
    # the ramp (short, so positions matter), every lambda non-unit, constant mix, CE anchor, tau > 0
    "ramp": dict(DEFAULTS, ramp_length=4, lambda_kd=0.7, lambda_pen=1.3, lambda_util=0.5, constant_mix=0.3,
                 teacher_alpha=1.5, plausibility_beta=0.2, tau=0.1, utility="ce"),
}

out = dict(rows=rows, cases={})
for name, o in CASES.items():
    res, grads = targeted_loss(o)
    res["options"] = o
    out["cases"][name] = res
    ref.save_safetensors(os.path.join(OUT, "grads_%s.safetensors" % name), grads)
res, grads = constrained_loss()
out["constrained"] = res
ref.save_safetensors(os.path.join(OUT, "grads_constrained.safetensors"), grads)
res, grads = augmentation_loss()
out["augmentation"] = res
ref.save_safetensors(os.path.join(OUT, "grads_augmentation.safetensors"), grads)

# ------------------------------------------------------------------ hand-designed teacher rows (V = 6, kB = 4)
neg = -200.0  # exp(-200) underflows to 0 in float32: exact zeros with finite logits
rand = torch.randn(2, 6, generator=gen) * 2
rows_a = torch.tensor([[neg, neg, 0, 0, 0, 0], rand[0].tolist(), rand[0].tolist()], dtype=torch.float32)
rows_b = torch.tensor([[0, 0, neg, neg, neg, neg], rand[0].tolist(), rand[1].tolist()], dtype=torch.float32)
la6, lb6 = torch.log_softmax(rows_a, -1), torch.log_softmax(rows_b, -1)
o6 = dict(DEFAULTS, top_k_base=4)
te6 = teacher(la6, lb6, torch.tensor([1, 2, 3]), o6)
out["teacher_rows"] = dict(aligned_logits=rows_a.tolist(), base_logits=rows_b.tolist(), top_k_base=4, max_mix=0.5,
                           u=te6["u"].tolist(), g=te6["g"].tolist(), q=te6["q"].tolist(),
                           note="row 0: U = 0 exactly (g = 0, q = p_a); row 1: identical models (U = 1, g = g_max); row 2: intermediate U")
assert te6["u"][0].item() == 0.0 and te6["u"][1].item() == 1.0 and 0 < te6["u"][2].item() < 1, te6["u"]

with open(os.path.join(OUT, "reference.json"), "w") as f:
    json.dump(out, f, indent=1)
for name in CASES:
    print(name, json.dumps(out["cases"][name]["terms"]), "loss", out["cases"][name]["loss"])
print("constrained", out["constrained"]["loss"], "augmentation", out["augmentation"]["loss"])
print("teacher rows U", out["teacher_rows"]["u"])
