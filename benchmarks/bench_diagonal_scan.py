"""Benchmark the fused S4D path and the diagonal scan against an FFT-convolution S4D (bf16 input).

    python benchmarks/bench_diagonal_scan.py            # on a CUDA machine (H=256, N=64, B=16, T=1024..16384)
    python benchmarks/bench_diagonal_scan.py --smoke    # tiny CPU check that the script runs

Providers (same parameters dtA, B_bar, C; y = S4D output without skip/activation):
  s4d_fused_triton / s4d_fused_torch : kernels.s4d_fused_scan (no [B, T, H, N] tensor)
  fft_conv                           : kernels.s4d_fft_conv (S4's algorithm: Vandermonde kernel + rfft of length 2T)
  diag_scan_triton                   : kernels.diagonal_scan over all H*N modes + readout (materialises
                                       [B, T, H*N] complex; skipped where that exceeds --max-gb)
  naive_loop                         : smallest T only
N counts complex modes per channel.  Each provider's relative max error against
the FFT convolution is recorded (a warning is printed above 2e-2).  Writes JSON + appends to benchmarks/RESULTS.md.
"""
from __future__ import annotations

import argparse
import os

import torch

from common import default_paths, env_info, measure_provider, write_results

from kernels import diagonal_scan, s4d_fft_conv, s4d_fused_scan

SMOKE = dict(B=2, H=4, N=8, Ts=[40])


def make_params(B, T, H, N, dtype, device):
    g = torch.Generator().manual_seed(0)
    log_dt = torch.log(torch.tensor(1e-3)) + torch.rand(H, 1, generator=g) * (torch.log(torch.tensor(0.1)) - torch.log(torch.tensor(1e-3)))
    lam = torch.complex(-0.5 * torch.ones(H, N), torch.pi * torch.arange(N).float().expand(H, N))  # S4D-Lin
    dtA = (lam * log_dt.exp()).to(device)
    Bc = torch.ones(H, N, dtype=torch.complex64).to(device)
    B_bar = (torch.exp(dtA) - 1) / lam.to(device) * Bc  # ZOH
    C = (torch.randn(H, N, 2, generator=g) * 0.5 ** 0.5).to(device)
    C = torch.view_as_complex(C)
    u = torch.randn(B, T, H, generator=g).to(device, dtype)
    return [x.requires_grad_(True) for x in (u, dtA, B_bar, C)]


def diag_scan_s4d(u, dtA, B_bar, C, backend):
    B, T, H = u.shape
    N = dtA.shape[1]
    b = (B_bar[None, None] * u.float()[..., None]).reshape(B, T, H * N)
    x = diagonal_scan(torch.exp(dtA).reshape(H * N), b, backend=backend)
    return 2 * torch.einsum("hn,bthn->bth", C, x.reshape(B, T, H, N)).real


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--smoke", action="store_true", help="tiny shapes; runs on CPU without do_bench")
    p.add_argument("--B", type=int, default=16)
    p.add_argument("--H", type=int, default=256)
    p.add_argument("--N", type=int, default=64)
    p.add_argument("--T", nargs="*", type=int, default=[1024, 2048, 4096, 8192, 16384])
    p.add_argument("--max-gb", type=float, default=16.0, help="skip providers whose [B,T,H,N] activations exceed this")
    p.add_argument("--out", default=None, help="JSON folder (default benchmarks/results; smoke: a temp folder)")
    p.add_argument("--results-md", default=None, help="markdown file to append to (default benchmarks/RESULTS.md)")
    args = p.parse_args(argv)
    default_paths(args)
    cuda = torch.cuda.is_available() and not args.smoke
    device = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = torch.bfloat16
    B, H, N, Ts = (SMOKE["B"], SMOKE["H"], SMOKE["N"], SMOKE["Ts"]) if args.smoke else (args.B, args.H, args.N, args.T)
    if not cuda:
        print("note: smoke mode or no CUDA device: skipping triton providers (torch/fft/naive only)")
    rows = []
    for T in Ts:
        params = make_params(B, T, H, N, dtype, device)
        u, dtA, B_bar, C = params
        full_gb = B * T * H * N * 8 * 3 / 2**30  # complex states, inputs and their grads
        provs = {}
        if cuda:
            provs["s4d_fused_triton"] = lambda: s4d_fused_scan(u, dtA, B_bar, C, backend="triton")[0]
        provs["s4d_fused_torch"] = lambda: s4d_fused_scan(u, dtA, B_bar, C, backend="torch")[0]
        provs["fft_conv"] = lambda: s4d_fft_conv(u, dtA, B_bar, C)
        if full_gb <= args.max_gb:
            provs["diag_scan_" + ("triton" if cuda else "torch")] = lambda: diag_scan_s4d(
                u, dtA, B_bar, C, "triton" if cuda else "torch")
        else:
            rows.append(dict(shape=f"B{B}_T{T}_H{H}_N{N}", provider="diag_scan_triton",
                             note=f"skipped: ~{full_gb:.0f} GB of [B,T,H*N] activations > --max-gb"))
        if args.smoke or T == min(Ts):
            provs["naive_loop"] = lambda: s4d_fused_scan(u, dtA, B_bar, C, backend="naive")[0]
        with torch.no_grad():  # correctness context: every provider against the FFT convolution
            ref = s4d_fft_conv(u, dtA, B_bar, C).float()
        for prov, fn in provs.items():
            cot = torch.randn(B, T, H, device=device)
            row = measure_provider(prov, fn, cot, params, cuda, ref=None if prov == "fft_conv" else ref, label=f"T={T}")
            row.update(shape=f"B{B}_T{T}_H{H}_N{N}", B=B, T=T, H=H, N=N)
            rows.append(row)
            print(row)
    write_results("diagonal_scan_s4d", env_info(dtype), rows, args.out, args.results_md, args.smoke)


if __name__ == "__main__":
    main()
