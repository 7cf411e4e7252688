"""Benchmark kernels.delta_product (gated DeltaProduct, bf16) against flash-linear-attention.

    python benchmarks/bench_delta_product.py            # on a CUDA machine (full shapes)
    python benchmarks/bench_delta_product.py --smoke    # tiny CPU check that the script runs

Providers: ours (triton), fla chunk_gated_delta_product (if installed), our torch
chunked path, and the naive loop on the small shape only.  Forward time,
forward+backward time (triton.testing.do_bench, median ms) and peak CUDA memory
of one forward+backward.  Writes JSON to benchmarks/results/ and appends a
markdown table to benchmarks/RESULTS.md.
"""
from __future__ import annotations

import argparse
import os

import torch

from common import default_paths, env_info, measure_provider, write_results

from kernels import delta_product

# name: (B, T, H, K=V)
SHAPES = {
    "B2_T512_H4_K64": (2, 512, 4, 64),  # small: includes the naive loop
    "B8_T4096_H8_K128": (8, 4096, 8, 128),
    "B4_T16384_H16_K64": (4, 16384, 16, 64),
}
SMOKE_SHAPES = {"B1_T40_H2_K16": (1, 40, 2, 16)}


def make_inputs(B, T, H, K, n_h, dtype, device):
    g = torch.Generator(device="cpu").manual_seed(0)
    q = torch.randn(B, T, H, K, generator=g).to(device, dtype)
    k = torch.nn.functional.normalize(torch.randn(B, T, n_h, H, K, generator=g), dim=-1).to(device, dtype)
    v = torch.randn(B, T, n_h, H, K, generator=g).to(device, dtype)
    beta = (2 * torch.rand(B, T, n_h, H, generator=g)).to(device, dtype)
    log_gate = torch.nn.functional.logsigmoid(4 + torch.randn(B, T, H, generator=g)).to(device, torch.float32)
    return [x.requires_grad_(True) for x in (q, k, v, beta, log_gate)]


def get_fla():
    try:
        from fla.ops.gated_delta_product import chunk_gated_delta_product

        return chunk_gated_delta_product
    except Exception as e:  # not installed, or import fails without CUDA
        print(f"note: flash-linear-attention unavailable ({type(e).__name__}: {e}); skipping the fla column. "
              "Install with `pip install flash-linear-attention`.")
        return None


def providers(inputs, n_h, cuda, include_naive):
    q, k, v, beta, g = inputs
    B, T, H, K = q.shape
    out = {}
    if cuda:
        out["ours_triton"] = lambda: delta_product(q, k, v, beta, g, backend="triton")[0]
        fla = get_fla()
        if fla is not None:
            # fla takes the interleaved [B, T*n_h, H, *] layout, which is a view of ours; scale=1 (no scaling in ours)
            out["fla_chunk_gated_delta_product"] = lambda: fla(
                q, k.view(B, T * n_h, H, K), v.view(B, T * n_h, H, -1), g, beta.view(B, T * n_h, H),
                num_householder=n_h, scale=1.0)[0]
    else:
        print("note: smoke mode or no CUDA device: skipping the triton and fla providers (torch/naive only)")
    out["ours_torch_chunked"] = lambda: delta_product(q, k, v, beta, g, backend="torch")[0]
    if include_naive:
        out["naive_loop"] = lambda: delta_product(q, k, v, beta, g, backend="naive")[0]
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--smoke", action="store_true", help="tiny shapes; runs on CPU without do_bench")
    p.add_argument("--shapes", nargs="*", default=None, help=f"subset of {list(SHAPES)}")
    p.add_argument("--n-h", nargs="*", type=int, default=[1, 2, 3])
    p.add_argument("--out", default=None, help="JSON folder (default benchmarks/results; smoke: a temp folder)")
    p.add_argument("--results-md", default=None, help="markdown file to append to (default benchmarks/RESULTS.md)")
    args = p.parse_args(argv)
    default_paths(args)
    cuda = torch.cuda.is_available() and not args.smoke
    device = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = torch.bfloat16
    shapes = SMOKE_SHAPES if args.smoke else {s: SHAPES[s] for s in (args.shapes or SHAPES)}
    n_hs = [1, 2] if args.smoke else args.n_h
    rows = []
    for name, (B, T, H, K) in shapes.items():
        for n_h in n_hs:
            inputs = make_inputs(B, T, H, K, n_h, dtype, device)
            small = args.smoke or T <= 512
            provs = providers(inputs, n_h, cuda, include_naive=small)
            with torch.no_grad():  # correctness context: every provider against our torch chunked path
                ref = provs["ours_torch_chunked"]().float()
            for prov, fn in provs.items():
                cot = torch.randn(B, T, H, K, device=device, dtype=dtype)
                row = measure_provider(prov, fn, cot, inputs, cuda, ref=None if prov == "ours_torch_chunked" else ref,
                                       label=f"{name}_nh{n_h}")
                row.update(shape=f"{name}_nh{n_h}", B=B, T=T, H=H, K=K, V=K, n_h=n_h)
                rows.append(row)
                print(row)
    write_results("delta_product", env_info(dtype), rows, args.out, args.results_md, args.smoke)


if __name__ == "__main__":
    main()
