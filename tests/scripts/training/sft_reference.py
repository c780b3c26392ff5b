#!/usr/bin/python3
"""Independent PyTorch reference for DeepAlign's SFT training loop.

Run with Debian's PyTorch 1.13:  /usr/bin/python3 tests/scripts/training/sft_reference.py
Writes tests/DeepAlign.Core.Tests/Fixtures/training/sft/:
  model.safetensors   initial weights of a tiny single-layer Llama-like model (HF parameter names)
  data.jsonl          variable-length examples as {"ids": [...], "mask": [...]} (right padding needed)
  reference.json      hyper-parameters, per-step losses / learning rates / grad norms
  grads.safetensors   gradients of the first accumulated batch (before any update)
  final.safetensors   weights after all steps

Conventions spelled out (so they are not shared with the C# code by mistake):
- Model: x = embed[ids]; h = x + o(attn(rms(x) * w_in)); h = h + down(silu(gate(r)) * up(r)), r = rms(h) * w_post;
  logits = lm_head(rms(h) * w_final). Single-head causal attention, scores / sqrt(H), keys masked where the
  attention mask is 0 (additive -1e9), softmax in fp32. q_proj has a bias. No RoPE (position-free toy).
- RMSNorm: x * rsqrt(mean(x^2) + eps) * w, eps = 1e-6.
- Loss: token i is a target when mask[i] = 1 and is predicted from logits at i - 1; loss of an optimiser step =
  sum over target tokens of the whole accumulated batch of -log_softmax / number of those tokens. Each micro-batch
  contributes sum_micro / total_tokens_of_step and is back-propagated separately.
- Data order: file order, cycled (no shuffle); micro-batches are right-padded with pad id 0.
- Optimiser: torch.optim.AdamW with two groups: weight decay on >= 2-D tensors whose name has neither "norm" nor
  ends in ".bias", none on the rest. clip_grad_norm_(max_norm) over all parameters before each step.
- LR: step s (0-based), warmup W: lr * (s + 1) / W for s < W, else cosine: lr * 0.5 * (1 + cos(pi * (s - W) / (N - W))).
"""
import json, math, os, struct
import torch

torch.manual_seed(1234)
torch.set_num_threads(1)
OUT = os.path.join(os.path.dirname(__file__), "..", "..", "..", "tests", "DeepAlign.Core.Tests", "Fixtures", "training", "sft")
os.makedirs(OUT, exist_ok=True)

V, H, I = 32, 16, 24
EPS = 1e-6
CFG = dict(steps=6, micro_batch=2, accumulation=2, lr=5e-3, warmup=2, weight_decay=0.1, beta1=0.9, beta2=0.999,
           eps=1e-8, max_grad_norm=1.0, pad_id=0)

def init(*shape, scale=0.3):
    return (torch.randn(*shape) * scale).float()

params = {
    "model.embed_tokens.weight": init(V, H, scale=1.0),
    "model.layers.0.input_layernorm.weight": 1.0 + init(H, scale=0.1),
    "model.layers.0.self_attn.q_proj.weight": init(H, H),
    "model.layers.0.self_attn.q_proj.bias": init(H, scale=0.1),
    "model.layers.0.self_attn.k_proj.weight": init(H, H),
    "model.layers.0.self_attn.v_proj.weight": init(H, H),
    "model.layers.0.self_attn.o_proj.weight": init(H, H),
    "model.layers.0.post_attention_layernorm.weight": 1.0 + init(H, scale=0.1),
    "model.layers.0.mlp.gate_proj.weight": init(I, H),
    "model.layers.0.mlp.up_proj.weight": init(I, H),
    "model.layers.0.mlp.down_proj.weight": init(H, I),
    "model.norm.weight": 1.0 + init(H, scale=0.1),
    "lm_head.weight": init(V, H),
}

def write_safetensors(path, tensors):
    header, blobs, off = {}, [], 0
    for name in sorted(tensors):
        t = tensors[name].detach().contiguous().float()
        b = t.numpy().tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b); off += len(b)
    hj = json.dumps(header, separators=(",", ":")).encode()
    hj += b" " * ((8 - len(hj) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hj))); f.write(hj)
        for b in blobs: f.write(b)

write_safetensors(os.path.join(OUT, "model.safetensors"), params)
P = {k: torch.nn.Parameter(v.clone()) for k, v in params.items()}

def rms(x, w):
    x32 = x.float()
    return x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + EPS) * w

def forward(ids, attn):
    B, T = ids.shape
    x = P["model.embed_tokens.weight"][ids]
    a = rms(x, P["model.layers.0.input_layernorm.weight"])
    q = a @ P["model.layers.0.self_attn.q_proj.weight"].T + P["model.layers.0.self_attn.q_proj.bias"]
    k = a @ P["model.layers.0.self_attn.k_proj.weight"].T
    v = a @ P["model.layers.0.self_attn.v_proj.weight"].T
    s = q @ k.transpose(1, 2) / math.sqrt(H)
    causal = torch.ones(T, T, dtype=torch.bool).tril()
    allowed = causal[None, :, :] & (attn[:, None, :] == 1)
    s = s + (~allowed).float() * -1e9
    h = x + (torch.softmax(s.float(), -1) @ v) @ P["model.layers.0.self_attn.o_proj.weight"].T
    r = rms(h, P["model.layers.0.post_attention_layernorm.weight"])
    m = torch.nn.functional.silu(r @ P["model.layers.0.mlp.gate_proj.weight"].T) * (r @ P["model.layers.0.mlp.up_proj.weight"].T)
    h = h + m @ P["model.layers.0.mlp.down_proj.weight"].T
    return rms(h, P["model.norm.weight"]) @ P["lm_head.weight"].T

# Data: 10 examples of lengths 5..12; prompt part not targets; response part targets.
g = torch.Generator().manual_seed(15)
examples = []
for n in [7, 12, 5, 9, 11, 6, 8, 10, 12, 5]:
    ids = torch.randint(1, V, (n,), generator=g).tolist()
    prompt = int(torch.randint(1, n - 1, (1,), generator=g))
    mask = [0] * prompt + [1] * (n - prompt)
    examples.append((ids, mask))
with open(os.path.join(OUT, "data.jsonl"), "w") as f:
    for ids, mask in examples:
        f.write(json.dumps({"ids": ids, "mask": mask}) + "\n")

def collate(rows):
    T = max(len(r[0]) for r in rows)
    ids = torch.full((len(rows), T), CFG["pad_id"], dtype=torch.long)
    attn = torch.zeros(len(rows), T, dtype=torch.long)
    tgt = torch.zeros(len(rows), T, dtype=torch.bool)
    for i, (x, m) in enumerate(rows):
        ids[i, :len(x)] = torch.tensor(x); attn[i, :len(x)] = 1; tgt[i, :len(m)] = torch.tensor(m, dtype=torch.bool)
    return ids, attn, tgt

def nll_sum(ids, attn, tgt):
    logits = forward(ids, attn)
    lp = torch.log_softmax(logits[:, :-1].float(), -1)
    tok = lp.gather(2, ids[:, 1:].unsqueeze(-1)).squeeze(-1)
    return -(tok * tgt[:, 1:].float()).sum()

decay = [p for n, p in P.items() if p.dim() >= 2 and "norm" not in n and not n.endswith(".bias")]
no_decay = [p for n, p in P.items() if not (p.dim() >= 2 and "norm" not in n and not n.endswith(".bias"))]
opt = torch.optim.AdamW([{"params": decay, "weight_decay": CFG["weight_decay"]}, {"params": no_decay, "weight_decay": 0.0}],
                        lr=CFG["lr"], betas=(CFG["beta1"], CFG["beta2"]), eps=CFG["eps"])

def lr_at(s):
    W, N = CFG["warmup"], CFG["steps"]
    if s < W: return CFG["lr"] * (s + 1) / W
    return CFG["lr"] * 0.5 * (1 + math.cos(math.pi * (s - W) / max(1, N - W)))

cursor = 0
def draw():
    global cursor
    e = examples[cursor % len(examples)]; cursor += 1
    return e

losses, lrs, norms = [], [], []
for step in range(CFG["steps"]):
    micro = [collate([draw() for _ in range(CFG["micro_batch"])]) for _ in range(CFG["accumulation"])]
    total = sum(int(t[:, 1:].sum()) for _, _, t in micro)
    opt.zero_grad()
    loss_val = 0.0
    for ids, attn, tgt in micro:
        loss = nll_sum(ids, attn, tgt) / total
        loss.backward()
        loss_val += loss.item()
    if step == 0:
        write_safetensors(os.path.join(OUT, "grads.safetensors"), {n: p.grad for n, p in P.items()})
    norm = torch.nn.utils.clip_grad_norm_(list(P.values()), CFG["max_grad_norm"])
    for group in opt.param_groups: group["lr"] = lr_at(step)
    opt.step()
    losses.append(loss_val); lrs.append(lr_at(step)); norms.append(float(norm))

write_safetensors(os.path.join(OUT, "final.safetensors"), {n: p for n, p in P.items()})
with open(os.path.join(OUT, "reference.json"), "w") as f:
    json.dump(dict(config=CFG, vocab=V, hidden=H, intermediate=I, rms_eps=EPS, losses=losses, learning_rates=lrs, grad_norms=norms), f, indent=1)
print("losses", losses)
print("grad norms", norms)
