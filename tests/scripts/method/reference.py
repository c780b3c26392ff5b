#!/usr/bin/python3
"""Independent reference for DeepAlign's per-position method formulas (METHOD.md sections 1-4).

Written from METHOD.md alone, deliberately in a different style from the C# code: float64, explicit loops over
positions and vocabulary entries with Python sorting, dense masks; autograd (float64) only for gradients.
Run with Debian's interpreter (torch 1.13):

    /usr/bin/python3 tests/scripts/method/reference.py

It writes tests/DeepAlign.Core.Tests/Fixtures/method/reference_<name>.json. -inf scores are written as null.
Random logits are drawn from a seeded generator; a draw is rejected (and the seed advanced) when any decision
(base-favored membership, top-k boundary, plausibility cut) lies within MARGIN of its threshold, so float32 vs
float64 rounding can never flip a discrete choice.
"""
import json
import math
import os

import torch

MARGIN = 1e-3
OUT = os.path.join(os.path.dirname(__file__), "..", "..", "..", "tests", "DeepAlign.Core.Tests", "Fixtures", "method")


def log_softmax_rows(logits, vocab):
    """l = log_softmax over the first `vocab` columns, float64, as nested Python lists."""
    rows = []
    for row in logits:
        x = [float(v) for v in row[:vocab]]
        m = max(x)
        lse = m + math.log(sum(math.exp(v - m) for v in x))
        rows.append([v - lse for v in x])
    return rows


def kl(lp, lq):
    """KL(P||Q) = sum p (log p - log q), with p = 0 terms = 0."""
    total = 0.0
    for a, b in zip(lp, lq):
        p = math.exp(a)
        if p > 0:
            total += p * (a - b)
    return total


def top_k_by(values, k):
    """Indices of the k largest values, largest first."""
    return sorted(range(len(values)), key=lambda i: -values[i])[:k]


def base_favored(la, lb, tau, k):
    ids = top_k_by(lb, k)
    members = [(lb[v] - la[v]) > tau for v in ids]
    m_b = sum(math.exp(lb[v]) for v, m in zip(ids, members) if m)
    m_a = sum(math.exp(la[v]) for v, m in zip(ids, members) if m)
    top = sum(math.exp(lb[v]) for v in ids)
    u = 1.0 - (m_b - m_a) / top
    return ids, members, m_b, m_a, top, u


def plausible(la, beta):
    pa = [math.exp(v) for v in la]
    mx = max(pa)
    return [p >= beta * mx for p in pa]


def scores(la, lb, alpha, rule, beta):
    keep = plausible(la, beta) if beta > 0 else [True] * len(la)
    out = []
    for v in range(len(la)):
        if not keep[v]:
            out.append(None)  # -inf
        elif rule == "full":
            out.append(la[v] + alpha * (la[v] - lb[v]))
        else:
            out.append(la[v] - alpha * max(0.0, lb[v] - la[v]))
    return out


def softmax_scores(s):
    finite = [x for x in s if x is not None]
    m = max(finite)
    z = sum(math.exp(x - m) for x in finite)
    return [0.0 if x is None else math.exp(x - m) / z for x in s]


def check_margins(la, lb, tau_list, k, betas):
    for r in range(len(la)):
        order = sorted(lb[r], reverse=True)
        if k < len(order) and order[k - 1] - order[k] < MARGIN:
            return False
        for i in range(len(order) - 1):  # no near-ties inside T_j either (stable report order)
            if order[i] - order[i + 1] < MARGIN:
                return False
        for tau in tau_list:
            for v in range(len(la[r])):
                if abs(lb[r][v] - la[r][v] - tau) < MARGIN:
                    return False
        pa = [math.exp(x) for x in la[r]]
        for beta in betas:
            if beta > 0 and any(abs(p - beta * max(pa)) < MARGIN * max(pa) for p in pa):
                return False
    return True


def ramp_alpha(j, a0, amax, t):
    return a0 + (amax - a0) * min(1.0, (j - 1) / t)


def constrained_beta(j):
    return 0.5 if j == 1 else (2.0 if j <= 5 else 0.1)


def make_case(name, seed, n, width, vocab, k, taus, m_items, beta_cd, positions, probe_norms):
    g = torch.Generator().manual_seed(seed)
    while True:
        base = torch.randn(n, width, generator=g, dtype=torch.float32) * 2.0
        aligned = base + torch.randn(n, width, generator=g, dtype=torch.float32) * 1.2
        student = aligned + torch.randn(n, width, generator=g, dtype=torch.float32) * 0.5
        la = log_softmax_rows(aligned.tolist(), vocab)
        lb = log_softmax_rows(base.tolist(), vocab)
        if check_margins(la, lb, taus, k, [beta_cd]):
            break
    targets = torch.randint(0, vocab, (n,), generator=g).tolist()
    alpha = [round(float(x), 6) for x in (torch.rand(n, generator=g) * 2.0).tolist()]
    alpha[0] = 0.0  # one row with alpha = 0 (must give l_a inside P_j)

    exp = {}
    exp["aligned_log_probs"] = la
    exp["base_log_probs"] = lb
    exp["kl_aligned_base"] = [kl(la[r], lb[r]) for r in range(n)]
    exp["kl_base_aligned"] = [kl(lb[r], la[r]) for r in range(n)]
    exp["log_ratio"] = [lb[r][targets[r]] - la[r][targets[r]] for r in range(n)]

    sets = {}
    for tau in taus:
        rows = [base_favored(la[r], lb[r], tau, k) for r in range(n)]
        items = []
        for ids, members, *_ in rows:
            chosen = [v for v, m in zip(ids, members) if m][:m_items]
            items.append(chosen)
        dense = []
        for (ids, members, *_), r in zip(rows, range(n)):
            mask = [False] * vocab
            for v, m in zip(ids, members):
                mask[v] = m
            dense.append(mask)
        sets[str(tau)] = {
            "tau": tau,
            "base_favored_token": [exp["log_ratio"][r] > tau for r in range(n)],
            "top_ids": [x[0] for x in rows],
            "members": [x[1] for x in rows],
            "mass_base": [x[2] for x in rows],
            "mass_aligned": [x[3] for x in rows],
            "top_mass_base": [x[4] for x in rows],
            "incompleteness": [x[5] for x in rows],
            "dense_mask": dense,
            "top_item_ids": [it + [-1] * (m_items - len(it)) for it in items],
            "top_item_prob_base": [[math.exp(lb[r][v]) for v in it] + [0.0] * (m_items - len(it)) for r, it in enumerate(items)],
            "top_item_prob_aligned": [[math.exp(la[r][v]) for v in it] + [0.0] * (m_items - len(it)) for r, it in enumerate(items)],
        }
    exp["sets"] = sets
    u = sets["0.0"]["incompleteness"]

    exp["plausibility_mask"] = [plausible(la[r], beta_cd) for r in range(n)]
    exp["scores_full"] = [scores(la[r], lb[r], alpha[r], "full", beta_cd) for r in range(n)]
    exp["scores_base_favored_only"] = [scores(la[r], lb[r], alpha[r], "bfo", beta_cd) for r in range(n)]
    exp["scores_full_no_cut"] = [scores(la[r], lb[r], alpha[r], "full", 0.0) for r in range(n)]
    exp["alpha_constant"] = [1.0] * n
    exp["alpha_ramp"] = [ramp_alpha(j, 0.5, 2.0, 32) for j in positions]
    exp["alpha_incompleteness"] = [2.0 * u[r] for r in range(n)]
    # One decoding step with the incompleteness-driven schedule and the base-favored-only rule.
    exp["step_scores_incompleteness_bfo"] = [scores(la[r], lb[r], 2.0 * u[r], "bfo", beta_cd) for r in range(n)]

    # Section 3: hybrid teacher with g = g_max * U (g_max = 0.5) and with constant g = 0.3, teacher alpha 1.0.
    def teacher(gs):
        q = []
        for r in range(n):
            sm = softmax_scores(scores(la[r], lb[r], 1.0, "full", beta_cd))
            q.append([(1 - gs[r]) * math.exp(la[r][v]) + gs[r] * sm[v] for v in range(vocab)])
        return q

    g_u = [0.5 * u[r] for r in range(n)]
    exp["mix_weights"] = g_u
    q_u = teacher(g_u)
    q_c = teacher([0.3] * n)
    exp["teacher_probs"] = q_u
    exp["teacher_probs_constant"] = q_c

    ids0 = sets["0.0"]["top_ids"]
    mem0 = sets["0.0"]["members"]
    costs = [[(1 - math.exp(la[r][v] - lb[r][v])) if m else 0.0 for v, m in zip(ids0[r], mem0[r])] for r in range(n)]
    exp["penalty_costs"] = costs
    n1 = probe_norms[0]
    table = [min(4.0, (n1 / x) ** 0.5) if x > 0 else 4.0 for x in probe_norms]
    w_probe = [table[min(j, len(table)) - 1] for j in positions]
    w_ramp = [min(4.0, 1 + (j - 1) / 32) for j in positions]
    exp["weights_probe_table"] = table
    exp["weights_probe"] = w_probe
    exp["weights_ramp"] = w_ramp
    exp["constrained_betas"] = [constrained_beta(j) for j in positions]

    # Differentiable student terms, float64 autograd w.r.t. the full-width student logits.
    def student_term(fn):
        x = student.to(torch.float64).clone().requires_grad_(True)
        lt = torch.log_softmax(x[:, :vocab], dim=-1)
        vals = fn(lt)
        vals.sum().backward()
        return vals.detach().tolist(), x.grad.tolist()

    q_t = torch.tensor(q_u, dtype=torch.float64)
    la_t = torch.tensor(la, dtype=torch.float64)

    def kd(lt):
        out = []
        for r in range(n):
            acc = lt.new_zeros(())
            for v in range(vocab):
                if q_u[r][v] > 0:
                    acc = acc + q_t[r, v] * (math.log(q_u[r][v]) - lt[r, v])
            out.append(acc)
        return torch.stack(out)

    def penalty(lt):
        out = []
        for r in range(n):
            acc = lt.new_zeros(())
            for v, c in zip(ids0[r], costs[r]):
                if c != 0.0:
                    acc = acc + torch.exp(lt[r, v]) * c
            out.append(w_probe[r] * acc)
        return torch.stack(out)

    def utility(lt):
        out = []
        for r in range(n):
            acc = lt.new_zeros(())
            for v in range(vocab):
                p = math.exp(la[r][v])
                acc = acc + p * (la[r][v] - lt[r, v])
            out.append(acc)
        return torch.stack(out)

    def ce(lt):
        return torch.stack([-lt[r, targets[r]] for r in range(n)])

    def constrained(lt):
        out = []
        for r in range(n):
            beta = constrained_beta(positions[r])
            z = beta * (la[r][targets[r]] - lt[r, targets[r]])
            out.append((2.0 / beta) * torch.log1p(torch.exp(z)))
        return torch.stack(out)

    for key, fn in [("distillation_kl", kd), ("penalty", penalty), ("utility_kl", utility),
                    ("cross_entropy", ce), ("constrained", constrained)]:
        vals, grad = student_term(fn)
        exp[key] = vals
        exp[key + "_grad"] = grad

    # Closed form of the constrained gradient w.r.t. log pi_theta(y_j): -2 sigmoid(beta (ref - theta)).
    st = log_softmax_rows(student.tolist(), vocab)
    exp["constrained_dlogp"] = [
        -2.0 / (1.0 + math.exp(-constrained_beta(positions[r]) * (la[r][targets[r]] - st[r][targets[r]])))
        for r in range(n)]

    case = {
        "name": name,
        "seed": seed,
        "config": {"vocab": vocab, "width": width, "top_k_base": k, "taus": taus, "report_top_items": m_items,
                   "plausibility_beta": beta_cd, "max_mix": 0.5, "constant_mix": 0.3, "teacher_alpha": 1.0,
                   "rho": 0.5, "max_weight": 4.0, "ramp_length": 32,
                   "alpha_ramp": [0.5, 2.0, 32], "alpha_incompleteness_max": 2.0},
        "inputs": {
            "aligned_logits": aligned.tolist(), "base_logits": base.tolist(), "student_logits": student.tolist(),
            "targets": targets, "positions": positions, "alpha": alpha, "probe_norms": probe_norms,
        },
        "expected": exp,
    }
    path = os.path.join(OUT, f"reference_{name}.json")
    with open(path, "w") as f:
        json.dump(case, f, separators=(",", ":"), allow_nan=False)
    print(f"wrote {os.path.normpath(path)} ({os.path.getsize(path)} bytes, seed {seed})")


if __name__ == "__main__":
    torch.set_num_threads(1)
    os.makedirs(OUT, exist_ok=True)
    make_case("small", seed=1234, n=6, width=13, vocab=11, k=4, taus=[0.0, 0.2], m_items=3, beta_cd=0.1,
              positions=[1, 2, 3, 5, 6, 40], probe_norms=[2.0, 1.5, 0.9, 0.3, 0.05])
    make_case("wide", seed=99, n=8, width=40, vocab=37, k=10, taus=[0.0, 0.5], m_items=4, beta_cd=0.05,
              positions=[1, 4, 5, 6, 17, 33, 34, 90], probe_norms=[1.0, 0.8, 0.8, 0.6, 0.5, 0.4, 0.2, 0.1])
