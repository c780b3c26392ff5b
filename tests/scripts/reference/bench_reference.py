#!/usr/bin/python3
"""PyTorch peer of `DeepAlign.Benchmarks model-throughput`: the same ~125M Llama shapes, random float32 weights,
an eager Hugging Face-style forward (RMSNorm in fp32, rotate_half RoPE, repeat_kv GQA, softmax attention, KV cache
grown by concatenation as transformers' DynamicCache does), prefill then greedy decode. Prints one JSON line.

    /usr/bin/python3 tests/scripts/reference/bench_reference.py --threads 1 --prompt 128 --decode 64 --batch 1 --repeats 3
"""
import argparse
import json
import math
import time

import torch
import torch.nn.functional as F

V, H, L, NH, NKV, I = 32000, 768, 12, 12, 4, 2048
D = H // NH


def build(gen):
    def w(*s):
        return torch.randn(*s, generator=gen) * 0.02
    layers = []
    for _ in range(L):
        layers.append(dict(q=w(NH * D, H), k=w(NKV * D, H), v=w(NKV * D, H), o=w(H, NH * D), g=w(I, H), u=w(I, H),
                           d=w(H, I), n1=torch.ones(H), n2=torch.ones(H)))
    return dict(emb=w(V, H), head=w(V, H), norm=torch.ones(H), layers=layers)


def rms(x, w):
    xf = x.float()
    return w * (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + 1e-5)).to(x.dtype)


def rot(x):
    return torch.cat((-x[..., D // 2:], x[..., :D // 2]), -1)


INV = 1.0 / (10000.0 ** (torch.arange(0, D, 2).float() / D))


def forward(m, ids, cache, past, last_only):
    b, t = ids.shape
    pos = torch.arange(past, past + t)
    f = pos[:, None].float() * INV[None]
    emb = torch.cat((f, f), -1)
    cos, sin = emb.cos()[None, None], emb.sin()[None, None]
    s = past + t
    mask = None
    if t > 1:
        mask = torch.full((t, s), float("-inf")).triu(past + 1)
    h = m["emb"][ids]
    for i, p in enumerate(m["layers"]):
        x = rms(h, p["n1"])
        q = F.linear(x, p["q"]).view(b, t, NH, D).transpose(1, 2)
        k = F.linear(x, p["k"]).view(b, t, NKV, D).transpose(1, 2)
        v = F.linear(x, p["v"]).view(b, t, NKV, D).transpose(1, 2)
        q, k = q * cos + rot(q) * sin, k * cos + rot(k) * sin
        if cache[i] is not None:
            k, v = torch.cat((cache[i][0], k), 2), torch.cat((cache[i][1], v), 2)
        cache[i] = (k, v)
        k = k[:, :, None].expand(b, NKV, NH // NKV, s, D).reshape(b, NH, s, D)
        v = v[:, :, None].expand(b, NKV, NH // NKV, s, D).reshape(b, NH, s, D)
        a = q @ k.transpose(2, 3) / math.sqrt(D)
        if mask is not None:
            a = a + mask
        a = torch.softmax(a.float(), -1) @ v
        h = h + F.linear(a.transpose(1, 2).reshape(b, t, H), p["o"])
        x = rms(h, p["n2"])
        h = h + F.linear(F.silu(F.linear(x, p["g"])) * F.linear(x, p["u"]), p["d"])
    if last_only:
        h = h[:, -1:]
    return F.linear(rms(h, m["norm"]), m["head"]).float()


def main():
    ap = argparse.ArgumentParser()
    for name, default in (("threads", 1), ("prompt", 128), ("decode", 64), ("batch", 1), ("repeats", 3)):
        ap.add_argument("--" + name, type=int, default=default)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    gen = torch.Generator().manual_seed(0)
    m = build(gen)
    n_params = sum(x.numel() for x in [m["emb"], m["head"], m["norm"]]) + sum(x.numel() for p in m["layers"] for x in p.values())
    ids = torch.randint(3, V, (a.batch, a.prompt), generator=gen)
    nxt = torch.full((a.batch, 1), 7, dtype=torch.long)
    pre, dec = [], []
    with torch.no_grad():
        for r in range(a.repeats + 1):
            cache = [None] * L
            t0 = time.perf_counter()
            forward(m, ids, cache, 0, True)
            t1 = time.perf_counter()
            for s in range(a.decode):
                forward(m, nxt, cache, a.prompt + s, True).argmax(-1)
            t2 = time.perf_counter()
            if r == 0:
                continue
            pre.append(a.batch * a.prompt / (t1 - t0))
            dec.append(a.batch * a.decode / (t2 - t1))
    pre.sort()
    dec.sort()
    print(json.dumps({"impl": "PyTorch %s eager" % torch.__version__, "params": n_params, "threads": a.threads,
                      "batch": a.batch, "prompt": a.prompt, "decode": a.decode,
                      "prefill_tok_s": round(pre[len(pre) // 2], 1), "decode_tok_s": round(dec[len(dec) // 2], 1)}))


if __name__ == "__main__":
    main()
