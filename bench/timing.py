"""One timing method for every contender: CUDA events around each run on the current stream,
a warm-up first, then the median of N runs (N >= 100 at batch 1, >= 30 at larger batches).
Inputs and outputs stay on the device. kiln's times come from its own CUDA events
(`--exportTimes`), asked for with the same warm-up and run counts.
"""
import statistics

WARMUP_MS = 200.0       # warm-up time before timing (also passed to kiln as --warmUp)
MIN_WARMUP_RUNS = 5
TARGET_MS = 800.0       # aim for about this much timed work per contender
MAX_RUNS = 1000


def min_runs(batch: int) -> int:
    """The issue's floor: at least 100 runs for batch 1, 30 for large batches."""
    return 100 if batch == 1 else 30


def run_count(batch: int, est_ms: float) -> int:
    """Runs to time: enough for ~TARGET_MS of work, never under the floor, capped at MAX_RUNS."""
    n = int(TARGET_MS / max(est_ms, 1e-3))
    return max(min_runs(batch), min(MAX_RUNS, n))


def median(xs):
    if not xs:
        raise ValueError("median of no samples")
    return statistics.median(xs)


def summarize(samples_ms):
    s = sorted(samples_ms)
    n = len(s)
    return {
        "median_ms": median(s),
        "min_ms": s[0],
        "p90_ms": s[min(n - 1, int(0.9 * n))],
        "mean_ms": sum(s) / n,
        "runs": n,
    }


def cuda_time(fn, batch: int):
    """Times fn() (which launches work on the current CUDA stream) and returns summarize(samples).

    Warm-up: at least MIN_WARMUP_RUNS calls and WARMUP_MS of GPU time. Then per-run CUDA events
    (start/end recorded around each call; one synchronize at the end, so the CPU runs ahead and
    launch overhead shows only where the GPU would idle -- the same for every contender).
    """
    import torch
    torch.cuda.synchronize()
    # warm-up, also gives the per-run estimate
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    done, spent = 0, 0.0
    while done < MIN_WARMUP_RUNS or spent < WARMUP_MS:
        start.record()
        fn()
        end.record()
        end.synchronize()
        spent += start.elapsed_time(end)
        done += 1
        if done >= 10000:
            break
    est = spent / done
    n = run_count(batch, est)
    starts = [torch.cuda.Event(enable_timing=True) for _ in range(n)]
    ends = [torch.cuda.Event(enable_timing=True) for _ in range(n)]
    for i in range(n):
        starts[i].record()
        fn()
        ends[i].record()
    torch.cuda.synchronize()
    return summarize([s.elapsed_time(e) for s, e in zip(starts, ends)])


def times_from_trtexec(records, field_order=("computeMs", "latencyMs")):
    """Per-iteration milliseconds from a trtexec-style --exportTimes JSON (a list of records).
    Uses the first field present in the records: GPU compute time (CUDA events, no transfers)."""
    if isinstance(records, dict):  # tolerate {"times": [...]}
        records = records.get("times") or records.get("iterations") or []
    if not records:
        raise ValueError("--exportTimes file holds no records")
    for f in field_order:
        if all(isinstance(r, dict) and f in r for r in records):
            return [float(r[f]) for r in records], f
    raise ValueError(f"--exportTimes records have none of the fields {', '.join(field_order)} "
                     f"(first record's keys: {', '.join(sorted(records[0])) if isinstance(records[0], dict) else '?'})")
