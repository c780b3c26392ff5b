#!/usr/bin/python3
"""SFT loss and gradients of a real tiny Llama (the models fixture llama_sharded_bias: 2 layers, GQA with one kv
head, attention and MLP biases, sharded safetensors) against DeepAlign's trainer.

Run with Debian's PyTorch 1.13:  /usr/bin/python3 tests/scripts/training/sft_llama_reference.py
Uses the independent Llama forward of tests/scripts/reference/llama_reference.py (HF semantics, written without the C#
code). Writes tests/DeepAlign.Core.Tests/Fixtures/training/sft_llama/:
  data.jsonl         pre-tokenized {"prompt_ids", "response_ids"} lines of different lengths (right padding)
  reference.json     per-step losses and grad norms of a 3-step run (micro-batch 2, accumulation 2, AdamW, clip)
  grads.safetensors  gradients of the first accumulated batch
Conventions as in sft_reference.py: token-weighted mean over the accumulated batch; right padding with id 0;
positions from the attention mask; AdamW decay on >= 2-D non-norm non-bias tensors; lr (s+1)/W warmup then cosine.
"""
import json, math, os, sys
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "reference"))
import llama_reference as ref  # noqa: E402

torch.set_num_threads(1)
ROOT = os.path.join(HERE, "..", "..", "..", "tests", "DeepAlign.Core.Tests", "Fixtures")
MODEL = os.path.join(ROOT, "models", "llama_sharded_bias")
OUT = os.path.join(ROOT, "training", "sft_llama")
os.makedirs(OUT, exist_ok=True)
CFG = dict(steps=3, micro_batch=2, accumulation=2, lr=1e-2, warmup=1, weight_decay=0.05, beta1=0.5, beta2=0.999,
           eps=1e-8, max_grad_norm=1.0, pad_id=0)

cfg, w0 = ref.load_folder(MODEL)
P = {k: torch.nn.Parameter(v.clone().float()) for k, v in w0.items()}

g = torch.Generator().manual_seed(3)
rows = []
for n_prompt, n_resp in [(5, 4), (3, 9), (7, 2), (4, 6), (6, 3), (2, 7)]:
    p = torch.randint(3, cfg["vocab_size"], (n_prompt,), generator=g).tolist()
    r = torch.randint(3, cfg["vocab_size"], (n_resp,), generator=g).tolist()
    rows.append((p, r))
with open(os.path.join(OUT, "data.jsonl"), "w") as f:
    for p, r in rows:
        f.write(json.dumps({"prompt_ids": p, "response_ids": r}) + "\n")

def collate(batch):
    T = max(len(p) + len(r) for p, r in batch)
    ids = torch.full((len(batch), T), CFG["pad_id"], dtype=torch.long)
    mask = torch.zeros(len(batch), T, dtype=torch.long)
    tgt = torch.zeros(len(batch), T, dtype=torch.bool)
    for i, (p, r) in enumerate(batch):
        x = p + r
        ids[i, :len(x)] = torch.tensor(x); mask[i, :len(x)] = 1; tgt[i, len(p):len(x)] = True
    return ids, mask, tgt

def nll_sum(ids, mask, tgt):
    logits = ref.forward(cfg, P, ids, mask)
    lp = torch.log_softmax(logits[:, :-1].float(), -1)
    tok = lp.gather(2, ids[:, 1:].unsqueeze(-1)).squeeze(-1)
    return -(tok * tgt[:, 1:].float()).sum()

def decays(n, p): return p.dim() >= 2 and "norm" not in n and not n.endswith(".bias")
opt = torch.optim.AdamW([{"params": [p for n, p in P.items() if decays(n, p)], "weight_decay": CFG["weight_decay"]},
                         {"params": [p for n, p in P.items() if not decays(n, p)], "weight_decay": 0.0}],
                        lr=CFG["lr"], betas=(CFG["beta1"], CFG["beta2"]), eps=CFG["eps"])
def lr_at(s):
    W, N = CFG["warmup"], CFG["steps"]
    return CFG["lr"] * (s + 1) / W if s < W else CFG["lr"] * 0.5 * (1 + math.cos(math.pi * (s - W) / max(1, N - W)))

cursor, losses, norms = 0, [], []
for step in range(CFG["steps"]):
    micro = []
    for _ in range(CFG["accumulation"]):
        micro.append(collate([rows[(cursor + i) % len(rows)] for i in range(CFG["micro_batch"])])); cursor += CFG["micro_batch"]
    total = sum(int(t[:, 1:].sum()) for _, _, t in micro)
    opt.zero_grad()
    val = 0.0
    for ids, mask, tgt in micro:
        loss = nll_sum(ids, mask, tgt) / total
        loss.backward(); val += loss.item()
    if step == 0:
        ref.save_safetensors(os.path.join(OUT, "grads.safetensors"), {n: p.grad.detach().clone() for n, p in P.items()})
    norms.append(float(torch.nn.utils.clip_grad_norm_(list(P.values()), CFG["max_grad_norm"])))
    for gr in opt.param_groups: gr["lr"] = lr_at(step)
    opt.step(); losses.append(val)
json.dump(dict(config=CFG, losses=losses, grad_norms=norms), open(os.path.join(OUT, "reference.json"), "w"), indent=1)
print("losses", losses, "norms", norms)
