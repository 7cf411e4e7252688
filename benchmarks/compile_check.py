"""Compile every Triton kernel of the package for a GPU target WITHOUT a GPU (ahead-of-time).

    python benchmarks/compile_check.py                 # sm_90 (H100), benchmark configurations
    python benchmarks/compile_check.py --arch 80 --quick

Catches what the Triton interpreter cannot: constructs that do not compile,
shared memory above the per-block limit (227 KB on sm_90), and register
spills (local memory), using the ptxas/cuobjdump bundled with triton.
Launch options mirror the package's launches (triton defaults).
"""
from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import triton  # noqa: E402
from triton.backends.compiler import GPUTarget  # noqa: E402
from triton.compiler import ASTSource  # noqa: E402

from kernels.chunking import delta_chunk_layout, next_pow2  # noqa: E402
from kernels.triton import delta, diag  # noqa: E402

INPUT_PTRS = {"q_ptr", "k_ptr", "v_ptr", "beta_ptr", "do_ptr", "o_ptr", "dq_ptr", "dk_ptr", "dv_ptr", "dbeta_ptr"}


def signature(fn, const, in_dtype):
    sig = {}
    for a in fn.arg_names:
        if a in const:
            sig[a] = "constexpr"
        elif a.endswith("_ptr"):
            sig[a] = f"*{in_dtype}" if a in INPUT_PTRS else "*fp32"
        else:
            sig[a] = "i32"
    return sig


def resource_usage(cubin: bytes):
    cuobjdump = os.path.join(os.path.dirname(triton.__file__), "backends", "nvidia", "bin", "cuobjdump")
    with tempfile.NamedTemporaryFile(suffix=".cubin") as f:
        f.write(cubin)
        f.flush()
        out = subprocess.run([cuobjdump, "--dump-resource-usage", f.name], capture_output=True, text=True).stdout
    m = {k: int(v) for k, v in re.findall(r"(REG|STACK|SHARED|LOCAL):(\d+)", out)}
    return m


def configs(quick):
    """(label, kernel, constexprs, input dtype, launch options)."""
    out = []
    delta_cfgs = [(1, 128, "bf16"), (2, 128, "bf16"), (3, 128, "bf16"), (3, 64, "bf16")]
    if not quick:
        delta_cfgs += [(1, 64, "bf16"), (4, 128, "bf16"), (1, 256, "bf16"), (1, 128, "fp32")]
    for n_h, K, dt in delta_cfgs:
        BT, _, BC = delta_chunk_layout(n_h, 64)
        BK = max(16, next_pow2(K))
        BV = min(BK, 64 if BK <= 128 else 32)
        prec = "ieee" if dt == "fp32" else "tf32"
        base = dict(BT=BT, NH=n_h, BC=BC, BK=BK, BV=BV, USE_G=True, PREC=prec)
        tag = f"nh{n_h}_K{K}_{dt}"
        L = delta.LAUNCH
        out += [
            (f"delta.prepare[{tag}]", delta._prepare_kernel, base, dt, L["prepare"]),
            (f"delta.state_fwd[{tag}]", delta._state_fwd_kernel, dict(base, HAS_H0=True, STORE_HT=True), dt,
             L["state_fwd"]),
            (f"delta.output[{tag}]", delta._output_kernel, base, dt, L["output"]),
            (f"delta.dn_local[{tag}]", delta._dn_local_kernel, base, dt, L["dn_local"]),
            (f"delta.state_bwd[{tag}]", delta._state_bwd_kernel, dict(base, HAS_DHT=True), dt, L["state_bwd"]),
            (f"delta.grads_attn[{tag}]", delta._grads_attn_kernel, base, dt, L["grads_attn"]),
            (f"delta.grads_state[{tag}]", delta._grads_state_kernel, base, dt, L["grads_state"]),
            (f"delta.grads_wy[{tag}]", delta._grads_wy_kernel, base, dt, L["grads_wy"]),
        ]
    scan = dict(BN=128, HAS_INIT=True, STORE_ALL=True, STORE_FINAL=False, REVERSE=False, SHIFT_A=False,
                CONJ_A=False, GRAD_A=False, GA_PER_STEP=False, HAS_H0=False)
    out += [
        ("diag.scan[fwd]", diag._chunk_scan_kernel, scan, "fp32", {}),
        ("diag.scan[local]", diag._chunk_scan_kernel, dict(scan, HAS_INIT=False, STORE_ALL=False, STORE_FINAL=True),
         "fp32", {}),
        ("diag.scan[bwd]", diag._chunk_scan_kernel,
         dict(scan, REVERSE=True, SHIFT_A=True, CONJ_A=True, GRAD_A=True, GA_PER_STEP=True, HAS_H0=True), "fp32", {}),
        ("s4d.proj[N64]", diag._proj_kernel, dict(CS=64, BNC=16, BN=64, PREC="tf32"), "bf16", {}),
        ("s4d.out[N64]", diag._out_kernel, dict(CS=64, BNC=16, BN=64, PREC="tf32"), "bf16", {}),
    ]
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--arch", type=int, default=90)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--only", default=None, help="substring filter on the kernel label")
    args = p.parse_args(argv)
    limit = 232448 if args.arch >= 90 else 166912 if args.arch >= 80 else 101376
    target = GPUTarget("cuda", args.arch, 32)
    failures = 0
    print(f"{'kernel':40s} {'secs':>5s} {'shared':>8s} {'regs':>5s} {'stack':>6s} {'local':>6s}")
    for label, fn, const, dt, opts in configs(args.quick):
        if args.only and args.only not in label:
            continue
        t0 = time.time()
        try:
            # x_ptr of the S4D kernels is the (real) input u, also bf16 in the benchmarks
            sig = signature(fn, const, dt)
            if "x_ptr" in sig:
                sig["x_ptr"] = f"*{dt}"
            if "y_ptr" in sig:
                sig["y_ptr"] = f"*{dt}"
            k = triton.compile(ASTSource(fn, sig, const), target=target, options=dict(opts))
            ru = resource_usage(k.asm["cubin"])
            shared = k.metadata.shared
            flag = "  <-- over the shared-memory limit" if shared > limit else ""
            failures += bool(flag)
            print(f"{label:40s} {time.time() - t0:5.1f} {shared:8d} {ru.get('REG', -1):5d} {ru.get('STACK', -1):6d} "
                  f"{ru.get('LOCAL', -1):6d}{flag}", flush=True)
        except Exception as e:
            failures += 1
            print(f"{label:40s} FAILED: {type(e).__name__}: {str(e)[:600]}", flush=True)
    print(f"{failures} failure(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
