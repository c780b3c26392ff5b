#!/usr/bin/python3
"""PyTorch peer of `DeepAlign.Benchmarks train-throughput`: plain-SFT training steps of the same ~125M Llama
(the eager forward of tests/scripts/reference/bench_reference.py, no cache), loss = token-mean cross-entropy (fp32
log-softmax) on the second half of each sequence, clip_grad_norm_(1.0), torch.optim.AdamW (no decay on norms).
One warm-up step, then --steps timed steps. Prints one JSON line.

    /usr/bin/python3 tests/scripts/training/sft_bench_reference.py --threads 1 --seq 128 --batch 1 --steps 3
"""
import argparse, json, os, sys, time
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "reference"))
import bench_reference as br  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    for name, default in (("threads", 1), ("seq", 128), ("batch", 1), ("steps", 3)):
        ap.add_argument("--" + name, type=int, default=default)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    gen = torch.Generator().manual_seed(0)
    m = br.build(gen)
    params = [m["emb"], m["head"], m["norm"]] + [x for p in m["layers"] for x in p.values()]
    for p in params:
        p.requires_grad_(True)
    decay = [p for p in params if p.dim() >= 2]
    no_decay = [p for p in params if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.0}, {"params": no_decay, "weight_decay": 0.0}], lr=1e-5)
    half = a.seq // 2
    times = []
    for s in range(a.steps + 1):
        ids = torch.randint(3, br.V, (a.batch, a.seq), generator=gen)
        t0 = time.perf_counter()
        opt.zero_grad()
        logits = br.forward(m, ids, [None] * br.L, 0, False)
        lp = torch.log_softmax(logits[:, half - 1:-1].float(), -1)
        loss = -lp.gather(2, ids[:, half:].unsqueeze(-1)).mean()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        loss.item()
        if s > 0:
            times.append(time.perf_counter() - t0)
    print(json.dumps({"impl": "PyTorch %s eager" % torch.__version__, "params": sum(p.numel() for p in params), "threads": a.threads,
                      "batch": a.batch, "seq": a.seq, "steps": a.steps, "train_tok_s": round(a.batch * a.seq * a.steps / sum(times), 1)}))


if __name__ == "__main__":
    main()
