"""Error checks, the results table (markdown), JSON, the speedup chart and the closing line.
Pure Python (numpy only in compare(), matplotlib only in plot()), so it is unit-tested without a GPU.
"""
import json
import math
import textwrap

# Error bound on the worst output's relative L2 error, by precision; None: reported, not enforced.
BOUNDS = {"fp32": 1e-3, "fp16": 1e-2, "int8": None}

CONTENDERS = ["eager", "eager+graph", "cl+graph", "compile", "compile-max-autotune"]
CONTENDER_HELP = {
    "eager": "PyTorch eager",
    "eager+graph": "eager captured in one CUDA graph",
    "cl+graph": "channels_last (CNNs) + CUDA graph",
    "compile": "torch.compile, mode default",
    "compile-max-autotune": "torch.compile, mode max-autotune (--autotune)",
}


# ---------------------------------------------------------------- error metrics

def compare(ref, out, classifier=False):
    """ref, out: array-likes of equal size (out is reshaped to ref). Returns rel_l2, max_abs and,
    for classifiers (2-D [batch, classes]), top-1 agreement in [0, 1]. NaN/inf give rel_l2 = inf."""
    import numpy as np
    r = np.asarray(ref, dtype=np.float64)
    o = np.asarray(out, dtype=np.float64)
    if r.size != o.size:
        raise ValueError(f"output has {o.size} values, reference {r.size}")
    o = o.reshape(r.shape)
    if not np.all(np.isfinite(o)):
        res = {"rel_l2": math.inf, "max_abs": math.inf}
    else:
        d = o - r
        denom = float(np.linalg.norm(r))
        res = {"rel_l2": float(np.linalg.norm(d)) / (denom if denom > 0 else 1.0),
               "max_abs": float(np.max(np.abs(d))) if d.size else 0.0}
    if classifier and r.ndim == 2:
        res["top1"] = float(np.mean(np.argmax(r, axis=1) == np.argmax(o, axis=1)))
    return res


def within_bound(errors, precision):
    """errors: {output: {"rel_l2", ...}}. True when every output is within the precision's bound
    (always True for precisions whose bound is None: reported only). Empty errors fail."""
    if not errors:
        return False
    bound = BOUNDS.get(precision)
    worst = max(e["rel_l2"] for e in errors.values())
    if math.isnan(worst):
        return False
    return True if bound is None else worst <= bound


def worst_error(errors):
    if not errors:
        return None
    name = max(errors, key=lambda k: errors[k]["rel_l2"])
    return name, errors[name]


# ---------------------------------------------------------------- case logic

def best_pytorch(contenders):
    """(name, median_ms) of the fastest PyTorch contender that ran, or (None, None)."""
    ran = [(v["median_ms"], k) for k, v in contenders.items() if v and v.get("median_ms") is not None]
    if not ran:
        return None, None
    ms, name = min(ran)
    return name, ms


def finalize_case(case):
    """Fills best PyTorch, speedup and status. Status: 'ok'; 'FAILED' (kiln did not run, or is
    over its error bound); 'skipped' (--skip-kiln)."""
    name, ms = best_pytorch(case.get("contenders", {}))
    case["best_pt"], case["best_pt_ms"] = name, ms
    k = case.get("kiln") or {}
    case["speedup"] = None
    reasons = []
    if k.get("skipped"):
        case["status"] = "skipped"
    elif not k.get("ok"):
        case["status"] = "FAILED"
        reasons.append(k.get("reason") or "n/a: kiln did not run")
    else:
        if not within_bound(case.get("errors", {}), case["precision"]):
            we = worst_error(case.get("errors", {}))
            reasons.append(f"error over bound {BOUNDS.get(case['precision'])}: "
                           + (f"{we[0]} rel L2 {we[1]['rel_l2']:.2e}" if we else "no outputs compared"))
        if k.get("median_ms") and ms:
            case["speedup"] = ms / k["median_ms"]
        case["status"] = "FAILED" if reasons else "ok"
    case["fail_reasons"] = reasons
    return case


def geomean(xs):
    xs = [x for x in xs if x is not None and x > 0 and math.isfinite(x)]
    if not xs:
        return None
    return math.exp(sum(math.log(x) for x in xs) / len(xs))


def summary_line(cases):
    ran = [c["speedup"] for c in cases if c.get("speedup")]
    g = geomean(ran)
    if g is None:
        return (f"geomean speedup kiln / best PyTorch: n/a (kiln ran in 0 of {len(cases)} cases)")
    return f"geomean speedup kiln / best PyTorch: {g:.3f}x over {len(ran)} of {len(cases)} cases"


def exit_code(cases):
    return 1 if any(c.get("status") == "FAILED" for c in cases) else 0


# ---------------------------------------------------------------- formatting

def _ms(v):
    if v is None:
        return "-"
    return f"{v:.3f}" if v < 10 else f"{v:.2f}"


def _cell(entry):
    """A contender's table cell: its median ms, or its failure reason."""
    if entry is None:
        return "-"
    if entry.get("median_ms") is not None:
        return _ms(entry["median_ms"])
    return entry.get("error", "n/a")[:40]


def tflops(flops, ms):
    if not flops or not ms:
        return None
    return flops / (ms * 1e-3) / 1e12


def _tf(flops, ms, peak):
    t = tflops(flops, ms)
    if t is None:
        return "-"
    return f"{t:.0f} ({100 * t / peak:.0f}%)" if peak else f"{t:.0f}"


def _mib(b):
    return "-" if b is None else f"{b / 2**20:.0f}"


def _err_cell(case):
    we = worst_error(case.get("errors", {}))
    if not we:
        return "-"
    s = f"{we[1]['rel_l2']:.1e} / {we[1]['max_abs']:.1e}"
    if case.get("top1") is not None:
        s += f" / {100 * case['top1']:.0f}%"
    return s


def _pt_err_cell(case):
    """Worst relative L2 error over the PyTorch contenders that ran (their first call's outputs)."""
    errs = [v["rel_l2"] for v in case.get("contenders", {}).values() if v and v.get("rel_l2") is not None]
    return "-" if not errs else f"{max(errs):.1e}"


def used_contenders(cases):
    return [c for c in CONTENDERS if any(c in case.get("contenders", {}) for case in cases)]


def _build_cell(k):
    """kiln's build seconds: one build, or 'cold / warm' for a tuned one rebuilt from its timing cache."""
    if k.get("build_s") is None:
        return "-"
    if k.get("build_warm_s") is None:
        return f"{k['build_s']:.1f}"
    return f"{k['build_s']:.1f} / {k['build_warm_s']:.2f}"


def _compile_cell(c):
    """torch.compile's setup seconds (compile plus the first runs), default mode then max-autotune."""
    cs = c.get("contenders") or {}
    got = [f"{cs[n]['setup_s']:.0f}" for n in ("compile", "compile-max-autotune")
           if isinstance(cs.get(n), dict) and cs[n].get("setup_s") is not None]
    return " / ".join(got) or "-"


def markdown_table(cases, peak_tflops=None):
    cols = used_contenders(cases)
    head = (["model", "batch", "prec", "kiln ms"] + [f"{c} ms" for c in cols] +
            ["best PyTorch", "speedup", "kiln TFLOP/s (% peak)", "best PT TFLOP/s (% peak)", "build s (cold / warm)",
             "PT compile s",
             "engine MiB", "act MiB kiln / PT", "kiln err relL2 / maxabs / top1", "PT err (worst)", "status"])
    rows = []
    for c in cases:
        k = c.get("kiln") or {}
        if k.get("skipped"):
            kcell = "skipped"
        elif k.get("ok"):
            kcell = _ms(k.get("median_ms"))
        else:
            kcell = (k.get("reason") or "n/a")[:60]
        row = [c["model"], str(c["batch"]), c["precision"], kcell]
        row += [_cell(c.get("contenders", {}).get(n)) for n in cols]
        row += [f"{_ms(c.get('best_pt_ms'))} ({c.get('best_pt') or '-'})",
                "-" if not c.get("speedup") else f"{c['speedup']:.2f}x",
                _tf(c.get("flops"), k.get("median_ms") if k.get("ok") else None, peak_tflops),
                _tf(c.get("flops"), c.get("best_pt_ms"), peak_tflops),
                _build_cell(k), _compile_cell(c),
                "-" if k.get("engine_mib") is None else f"{k['engine_mib']:.1f}",
                f"{_mib(k.get('act_bytes'))} / {_mib(c.get('pt_act_bytes'))}",
                _err_cell(c), _pt_err_cell(c), c.get("status", "?")]
        rows.append(row)
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(str(x).replace("|", "/") for x in r) + " |" for r in rows]
    return "\n".join(lines)


def write_json(path, meta, cases):
    def clean(o):
        if isinstance(o, float) and not math.isfinite(o):
            return str(o)
        if isinstance(o, dict):
            return {k: clean(v) for k, v in o.items() if k != "outputs"}
        if isinstance(o, (list, tuple)):
            return [clean(v) for v in o]
        return o
    with open(path, "w") as f:
        json.dump(clean({"meta": meta, "cases": cases, "summary": summary_line(cases)}), f, indent=1)


def plot(path, cases, title=""):
    """Grouped bars per case: each contender's (and kiln's) speedup over PyTorch eager."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    series = used_contenders(cases) + ["kiln"]
    labels = [f"{c['model']}\nb{c['batch']}" for c in cases]
    fig, ax = plt.subplots(figsize=(max(6, 1.3 * len(cases)), 4.5))
    width = 0.8 / len(series)
    for i, s in enumerate(series):
        vals = []
        for c in cases:
            base = (c.get("contenders", {}).get("eager") or {}).get("median_ms")
            if s == "kiln":
                k = c.get("kiln") or {}
                ms = k.get("median_ms") if k.get("ok") else None
            else:
                ms = (c.get("contenders", {}).get(s) or {}).get("median_ms")
            vals.append(base / ms if base and ms else 0.0)
        xs = [j + (i - (len(series) - 1) / 2) * width for j in range(len(cases))]
        ax.bar(xs, vals, width, label=s)
        if s == "kiln":  # kiln's bar carries its speedup over the best PyTorch contender
            for x, v, c in zip(xs, vals, cases):
                if v and c.get("speedup"):
                    ax.annotate(f"{c['speedup']:.2f}x", (x, v), ha="center", va="bottom", fontsize=7)
    ax.axhline(1.0, color="gray", lw=0.8)
    ax.set_xticks(range(len(cases)))
    ax.set_xticklabels(labels, fontsize=8)
    ax.set_ylabel("speedup over PyTorch eager (x)")
    ax.set_title(textwrap.fill(title or "kiln vs PyTorch", 90) + "\n(missing bar: did not run; label on kiln's bar:"
                 " speedup over best PyTorch)", fontsize=8)
    ax.legend(fontsize=7, ncol=3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
