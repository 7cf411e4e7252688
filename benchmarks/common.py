"""Shared benchmark plumbing: environment record, timing, peak memory, JSON + markdown output."""
from __future__ import annotations

import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)


def default_paths(args):
    """Real runs write to benchmarks/results + benchmarks/RESULTS.md; smoke runs to a temp folder unless told."""
    if args.smoke:
        tmp = os.path.join(tempfile.gettempdir(), "scanlab_bench_smoke")
        args.out = args.out or tmp
        args.results_md = args.results_md or os.path.join(tmp, "RESULTS.md")
    else:
        args.out = args.out or os.path.join(ROOT, "benchmarks", "results")
        args.results_md = args.results_md or os.path.join(ROOT, "benchmarks", "RESULTS.md")
    os.makedirs(args.out, exist_ok=True)


def env_info(dtype) -> dict:
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    except Exception:  # pragma: no cover
        commit = "unknown"
    try:
        import triton

        triton_version = triton.__version__
    except ImportError:  # pragma: no cover
        triton_version = None
    return {
        "device": torch.cuda.get_device_name() if torch.cuda.is_available() else f"cpu ({platform.processor() or platform.machine()})",
        "dtype": str(dtype).replace("torch.", ""),
        "git_commit": commit or "unknown",
        "torch": torch.__version__,
        "triton": triton_version,
        "cuda": torch.version.cuda,
        "date_utc": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M"),
        "triton_interpret": os.environ.get("TRITON_INTERPRET", "0"),
    }


def timeit(fn, cuda: bool, reps: int = 1) -> float:
    """Milliseconds per call: triton.testing.do_bench (median) on CUDA, wall-clock mean otherwise (smoke only)."""
    if cuda:
        import triton.testing

        return float(triton.testing.do_bench(fn, warmup=25, rep=100, return_mode="median"))
    fn()
    t0 = time.perf_counter()
    for _ in range(reps):
        fn()
    return (time.perf_counter() - t0) / reps * 1e3


def peak_memory_mb(fn, cuda: bool):
    """Peak CUDA memory allocated during one call, above what was allocated before (MB); None on CPU."""
    if not cuda:
        fn()
        return None
    torch.cuda.synchronize()
    torch.cuda.empty_cache()
    base = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    fn()
    torch.cuda.synchronize()
    return (torch.cuda.max_memory_allocated() - base) / 2**20


def measure(name: str, fwd, fwd_bwd, cuda: bool) -> dict:
    """Time forward and forward+backward and record peak memory of forward+backward.  Failures are recorded."""
    row = {"provider": name}
    try:
        row["fwd_ms"] = timeit(fwd, cuda)
        row["fwd_bwd_ms"] = timeit(fwd_bwd, cuda)
        row["peak_mem_mb"] = peak_memory_mb(fwd_bwd, cuda)
    except Exception as e:  # e.g. out of memory: keep going, say what happened
        row["error"] = f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"
        if cuda:
            torch.cuda.empty_cache()
    return row


def measure_provider(name: str, fn, cot, inputs, cuda: bool, ref=None, label: str = "") -> dict:
    """One benchmark row for ``fn`` (no arguments, returns the output): forward time, forward+backward
    time (the gradient of <fn(), cot> with respect to ``inputs``) and its peak memory, and, when
    ``ref`` is given, the relative error of the output against it."""

    def fwd_bwd():
        torch.autograd.grad((fn().float() * cot.float()).sum(), inputs)

    def fwd():
        with torch.no_grad():
            fn()

    row = measure(name, fwd, fwd_bwd, cuda)
    if ref is not None and "error" not in row:
        with torch.no_grad():
            row["rel_err"] = check_against(f"{name} {label}", fn(), ref)
    return row


def rel_err(a, b) -> float:
    """max |a - b| / max |b| in float32."""
    a, b = a.detach().float(), b.detach().float()
    return ((a - b).abs().max() / b.abs().max().clamp_min(1e-12)).item()


def check_against(name: str, out, ref, tol: float = 2e-2) -> float:
    """Record how far a provider's output is from a reference; warn loudly above tol (bf16 inputs)."""
    err = rel_err(out, ref)
    if not err <= tol:
        print(f"WARNING: {name}: relative max error {err:.3e} vs the reference exceeds {tol:g}: do not trust its timing")
    return err


def fmt(x, nd=3):
    return "-" if x is None else (f"{x:.{nd}f}" if isinstance(x, float) else str(x))


def write_results(bench: str, info: dict, rows: list, out_dir: str, md_path: str, smoke: bool):
    os.makedirs(out_dir, exist_ok=True)
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%S")
    path = os.path.join(out_dir, f"{bench}_{stamp}{'_smoke' if smoke else ''}.json")
    with open(path, "w") as f:
        json.dump({"benchmark": bench, "smoke": smoke, **info, "rows": rows}, f, indent=2)
    lines = [
        "",
        f"## {bench}{' (SMOKE, tiny shapes, not a measurement)' if smoke else ''}",
        "",
        f"device: {info['device']} | dtype: {info['dtype']} | commit: {info['git_commit'][:12]} | "
        f"torch {info['torch']} | triton {info['triton']} | {info['date_utc']} UTC",
        "",
        "| shape | provider | fwd ms | fwd+bwd ms | peak MB (fwd+bwd) | rel. err vs reference | note |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        lines.append(f"| {r['shape']} | {r['provider']} | {fmt(r.get('fwd_ms'))} | {fmt(r.get('fwd_bwd_ms'))} | "
                     f"{fmt(r.get('peak_mem_mb'), 1)} | {'-' if r.get('rel_err') is None else format(r['rel_err'], '.1e')} | {r.get('error', r.get('note', ''))} |")
    with open(md_path, "a") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"\nwrote {path} and appended to {md_path}")
    return path
