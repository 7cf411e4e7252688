"""Tests of ssm.ptd: HiPPO-LegS, its normal part, perturb-then-diagonalize, transfer functions.

The PTD runs use a temporary cache directory (SCANLAB_CACHE); N = 256 takes about 15 s of CPU
(the CLI prints the same diagnostics: ``python -m ssm.ptd --N 256``).
"""

import math

import numpy as np
import pytest
import torch

from ssm import ptd
from ssm.ptd import (
    conjugate_half,
    eigvec_condition,
    frequency_grid,
    hippo_legs,
    hippo_legs_nplr,
    hippo_n_diag,
    normal_eig,
    normal_part_eig,
    perturb_then_diagonalize,
    ptd_cache_path,
    ptd_diagnostics,
    ptd_legs_diag,
    transfer_function,
    transfer_function_dense,
)

C128 = torch.complex128


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Small dense linear algebra: one thread avoids oversubscription on a shared machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def cache_root(tmp_path_factory):
    """One temporary cache for the module, so the expensive PTD runs are shared between tests."""
    root = tmp_path_factory.mktemp("scanlab_cache")
    mp = pytest.MonkeyPatch()
    mp.setenv("SCANLAB_CACHE", str(root))
    yield root
    mp.undo()


@pytest.fixture(scope="module")
def legs64(cache_root):
    A, B = hippo_legs(64)
    Lam, V, E = perturb_then_diagonalize(A)
    return A, B, Lam, V, E


def rel2(X, A):
    return float(torch.linalg.matrix_norm(X, 2) / torch.linalg.matrix_norm(A, 2))


def check_ptd(A, Lam, V, E, max_kappa=10.0, max_rel=0.05):
    N = A.shape[0]
    assert Lam.shape == (N,) and Lam.dtype == C128
    assert V.shape == (N, N) and V.dtype == C128
    assert E.shape == (N, N) and E.dtype == torch.float64
    kappa = eigvec_condition(V)
    assert kappa <= max_kappa, kappa
    assert rel2(E, A) <= max_rel
    assert float(Lam.real.max()) < 0
    recon = V @ torch.diag(Lam) @ torch.linalg.inv(V) - (A + E).to(C128)
    assert rel2(recon, A) < 1e-8
    return kappa


# ----------------------------------------------------------------------------------------
# HiPPO-LegS and the normal part
# ----------------------------------------------------------------------------------------


def test_hippo_legs_matches_formula():
    N = 7
    A, B = hippo_legs(N)
    assert A.dtype == B.dtype == torch.float64 and A.shape == (N, N) and B.shape == (N,)
    for n in range(N):
        assert B[n] == pytest.approx(math.sqrt(2 * n + 1), abs=1e-15)
        for k in range(N):
            want = -math.sqrt(2 * n + 1) * math.sqrt(2 * k + 1) if n > k else (-(n + 1) if n == k else 0.0)
            assert A[n, k] == pytest.approx(want, abs=1e-13)
    assert torch.equal(torch.linalg.eigvals(A).real.sort().values, -torch.arange(N, 0, -1, dtype=torch.float64))


def test_nplr_split():
    N = 12
    A, B = hippo_legs(N)
    A_N, P, B2 = hippo_legs_nplr(N)
    assert torch.equal(B, B2)
    assert torch.allclose(P, torch.sqrt(torch.arange(N, dtype=torch.float64) + 0.5))
    assert torch.allclose(A_N - torch.outer(P, P), A, atol=1e-12)
    S = A_N + 0.5 * torch.eye(N, dtype=torch.float64)
    assert torch.equal(S, -S.T)  # exactly skew-symmetric
    assert torch.allclose(A_N @ A_N.T, A_N.T @ A_N, atol=1e-10)  # normal


@pytest.mark.parametrize("N,least", [(8, 1e4), (16, 1e8), (32, 1e15)])
def test_eigenvectors_of_A_are_exponentially_ill_conditioned(N, least):
    A, _ = hippo_legs(N)
    _, V = torch.linalg.eig(A)
    assert eigvec_condition(V) > least


def test_normal_part_eig_is_unitary():
    N = 16
    A_N, P, B = hippo_legs_nplr(N)
    Lam, V = normal_part_eig(N)
    I = torch.eye(N, dtype=C128)
    assert torch.allclose(V.mH @ V, I, atol=1e-12)
    assert torch.allclose(V @ torch.diag(Lam) @ V.mH, A_N.to(C128), atol=1e-10)
    assert torch.allclose(Lam.real, torch.full((N,), -0.5, dtype=torch.float64), atol=1e-12)
    assert torch.all(Lam.imag[1:] >= Lam.imag[:-1])
    assert eigvec_condition(V) == pytest.approx(1.0, abs=1e-10)
    # same spectrum as a general eigensolver
    ref = torch.linalg.eigvals(A_N)
    assert torch.allclose(ref.imag.sort().values, Lam.imag, atol=1e-8)
    with pytest.raises(ValueError, match="A_N"):
        normal_eig(hippo_legs(4)[0])


def test_hippo_n_diag_halving_and_transfer_function():
    N = 16
    Lam, V, Bt = hippo_n_diag(N)
    assert Lam.shape == (N // 2,) and V.shape == (N, N // 2) and Bt.shape == (N // 2,)
    assert bool((Lam.imag > 0).all()) and torch.all(Lam.imag[1:] > Lam.imag[:-1])
    _, _, B = hippo_legs_nplr(N)
    assert torch.allclose(Bt, V.mH @ B.to(C128))
    # the halved real system equals the full one and C (iω - A_N)^-1 B
    LamF, VF, BtF = hippo_n_diag(N, half=False)
    C = torch.randn(N, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    w = torch.linspace(0, 50, 101, dtype=torch.float64)
    G_half = transfer_function(Lam, Bt, C.to(C128) @ V, w, conj_pairs=True)
    G_full = transfer_function(LamF, BtF, C.to(C128) @ VF, w)
    A_N, _, _ = hippo_legs_nplr(N)
    G_dense = transfer_function_dense(A_N, B, C, w)
    assert torch.allclose(G_half, G_full, atol=1e-10) and torch.allclose(G_full, G_dense, atol=1e-10)


def test_conjugate_half_checks_the_pairing():
    Lam, V = normal_part_eig(6)
    Lh, Vh, rows = conjugate_half(Lam, V, V.mH)
    assert Lh.shape == (3,) and Vh.shape == (6, 3) and rows.shape == (3, 6)
    assert torch.allclose(rows @ Vh, torch.eye(3, dtype=C128), atol=1e-12)
    with pytest.raises(ValueError, match="even"):
        conjugate_half(*normal_part_eig(5))
    bad = Lam.clone()
    bad[0] = -1.0 + 0j  # a real eigenvalue
    with pytest.raises(ValueError, match="real"):
        conjugate_half(bad, V)
    bad = Lam.clone()
    bad[-1] = bad[-1] + 0.5  # no longer closed under conjugation
    with pytest.raises(ValueError, match="conjugat"):
        conjugate_half(bad, V)


# ----------------------------------------------------------------------------------------
# perturb-then-diagonalize: targets
# ----------------------------------------------------------------------------------------


def test_ptd_targets_at_N64(legs64):
    A, B, Lam, V, E = legs64
    kappa = check_ptd(A, Lam, V, E, max_kappa=10.0, max_rel=0.05)
    assert kappa < 8.0  # typically ~6.5 at the default ‖E‖₂ < 0.04 ‖A‖₂
    assert rel2(E, A) < 0.04
    # exact conjugate pairs, in the documented order, so the halving is clean
    h = 32
    assert torch.equal(Lam[h:], Lam[:h].conj()) and torch.equal(V[:, h:], V[:, :h].conj())
    assert bool((Lam[:h].imag > 0).all()) and torch.all(Lam[1:h].imag >= Lam[: h - 1].imag)
    Bt = torch.linalg.solve(V, B.to(C128))
    Lh, Vh, Bh = conjugate_half(Lam, V, Bt)
    assert torch.equal(Lh, Lam[:h]) and torch.equal(Vh, V[:, :h]) and torch.equal(Bh, Bt[:h])
    assert torch.allclose(torch.linalg.vector_norm(V, dim=0), torch.ones(64, dtype=torch.float64))


@pytest.mark.parametrize("N", [8, 16, 32, 128])
def test_ptd_targets_other_sizes(cache_root, N):
    A, _ = hippo_legs(N)
    Lam, V, E = perturb_then_diagonalize(A)
    check_ptd(A, Lam, V, E, max_kappa=10.0, max_rel=0.05)
    conjugate_half(Lam, V)  # clean pairing


def test_ptd_targets_N256(cache_root):
    A, _ = hippo_legs(256)
    check_ptd(A, *perturb_then_diagonalize(A), max_kappa=10.0, max_rel=0.05)


def test_transfer_function_ptd_beats_s4d_at_N64(legs64):
    d = ptd_diagnostics(64)  # reuses the cached PTD of the fixture
    assert d["seconds"] < 1.0
    assert d["kappa"] <= 10 and d["rel_norm"] <= 0.05 and d["max_real"] < 0 and d["recon"] < 1e-8
    assert d["kappa_A"] > 1e15
    assert d["sup_err_ptd"] < d["sup_err_s4d"]
    assert d["sup_err_ptd"] < 0.5 * d["sup_err_s4d"]  # measured: ~10x smaller


def test_diagonal_and_dense_transfer_functions_agree(legs64):
    A, B, Lam, V, E = legs64
    C = torch.randn(64, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    w = frequency_grid(64, num=50, extra=(Lam,))
    G_diag = transfer_function(Lam, torch.linalg.solve(V, B.to(C128)), C.to(C128) @ V, w)
    G_dense = transfer_function_dense(A + E, B, C, w)  # general (LU) path
    assert torch.allclose(G_diag, G_dense, rtol=1e-8, atol=1e-10 * float(G_dense.abs().max()))
    # the halved PTD system with conjugate terms is the same real system
    Bt = torch.linalg.solve(V, B.to(C128))
    Lh, Vh, Bh = conjugate_half(Lam, V, Bt)
    G_half = transfer_function(Lh, Bh, C.to(C128) @ Vh, w, conj_pairs=True)
    assert torch.allclose(G_half, G_diag, rtol=1e-8, atol=1e-10 * float(G_dense.abs().max()))
    # triangular (forward substitution) path against a direct solve
    Gt = transfer_function_dense(A, B, C, w[:5])
    ref = torch.stack([C.to(C128) @ torch.linalg.solve(1j * x * torch.eye(64, dtype=C128) - A.to(C128), B.to(C128))
                       for x in w[:5]])
    assert torch.allclose(Gt, ref, rtol=1e-9)


def test_ptd_legs_diag_halved(cache_root):
    Lam, V, Bt = ptd_legs_diag(16)
    assert Lam.shape == (8,) and V.shape == (16, 8) and Bt.shape == (8,)
    Lf, Vf, Ef = perturb_then_diagonalize(hippo_legs(16)[0])
    assert torch.equal(Lam, Lf[:8])


# ----------------------------------------------------------------------------------------
# determinism and the cache
# ----------------------------------------------------------------------------------------


def test_deterministic_and_cache_exact(cache_root):
    A, _ = hippo_legs(16)
    path = ptd_cache_path(A, seed=3)
    assert not path.exists()
    first = perturb_then_diagonalize(A, seed=3)  # computes and writes
    assert path.exists() and path.parent == cache_root / "ptd"
    again = perturb_then_diagonalize(A, seed=3, cache=False)  # recomputes
    cached = perturb_then_diagonalize(A, seed=3)  # reads
    for x, y, z in zip(first, again, cached):
        assert torch.equal(x, y) and torch.equal(x, z)
    other = perturb_then_diagonalize(A, seed=4, cache=False)
    assert not torch.equal(first[2], other[2])
    check_ptd(A, *other)


def test_cache_keys_differ_by_settings(cache_root):
    A, _ = hippo_legs(16)
    base = ptd_cache_path(A)
    variants = [
        ptd_cache_path(hippo_legs(18)[0]),
        ptd_cache_path(A, seed=1),
        ptd_cache_path(A, gamma=0.5),
        ptd_cache_path(A, max_rel_norm=0.05),
        ptd_cache_path(A, steps=10),
        ptd_cache_path(A, degree=2),
        ptd_cache_path(A, real_margin=0.25),
        ptd_cache_path(A, tol=1e-4),
        ptd_cache_path(A, P=torch.ones(16, dtype=torch.float64)),
    ]
    assert len({base, *variants}) == len(variants) + 1
    assert ptd_cache_path(A) == base and ptd_cache_path(A.clone()) == base


def test_corrupt_cache_is_recomputed(cache_root):
    A, _ = hippo_legs(8)
    path = ptd_cache_path(A, seed=11)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"not an npz")
    check_ptd(A, *perturb_then_diagonalize(A, seed=11))


def test_default_cache_dir(monkeypatch, tmp_path):
    monkeypatch.delenv("SCANLAB_CACHE", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert ptd._cache_dir() == tmp_path / ".cache" / "scanlab" / "ptd"


# ----------------------------------------------------------------------------------------
# other sizes, other matrices, settings
# ----------------------------------------------------------------------------------------


def test_small_and_odd_sizes(cache_root):
    with pytest.warns(RuntimeWarning, match="N = 2"):
        Lam, V, E = perturb_then_diagonalize(hippo_legs(2)[0])  # needs ‖E‖ ≈ 0.1 ‖A‖ to pair up
    assert float(Lam.real.max()) < 0 and conjugate_half(Lam, V)[0].shape == (1,)
    A, _ = hippo_legs(4)
    check_ptd(A, *perturb_then_diagonalize(A))
    A, _ = hippo_legs(5)
    Lam, V, E = perturb_then_diagonalize(A)
    check_ptd(A, Lam, V, E)
    assert int((Lam.imag == 0).sum()) == 1 and torch.equal(Lam[2:4], Lam[:2].conj())


def test_gamma_shrinks_the_perturbation(cache_root):
    A, _ = hippo_legs(16)
    _, V0, E0 = perturb_then_diagonalize(A)
    _, V1, E1 = perturb_then_diagonalize(A, gamma=20.0)
    assert float(torch.linalg.matrix_norm(E1)) < float(torch.linalg.matrix_norm(E0))
    assert eigvec_condition(V1) >= eigvec_condition(V0) * 0.9


def test_general_matrix_needs_P(cache_root):
    A, _ = hippo_legs(8)
    A2 = A.clone()
    A2[0, 1] = 1e-9  # no longer recognised as HiPPO-LegS
    with pytest.raises(RuntimeError, match="P"):
        perturb_then_diagonalize(A2, cache=False)
    P = torch.sqrt(torch.arange(8, dtype=torch.float64) + 0.5)
    check_ptd(A2, *perturb_then_diagonalize(A2, P=P, cache=False))


def test_general_matrix_already_paired(cache_root):
    # a stable real matrix with complex pairs and a badly conditioned eigenbasis: start at E = 0
    g = torch.Generator().manual_seed(0)
    N = 10
    blocks = [torch.tensor([[-1.0 - k, 2.0 + k], [-(2.0 + k), -1.0 - k]], dtype=torch.float64) for k in range(N // 2)]
    D = torch.block_diag(*blocks)
    S = torch.eye(N, dtype=torch.float64) + 3 * torch.triu(torch.randn(N, N, generator=g, dtype=torch.float64), 1)
    A = S @ D @ torch.linalg.inv(S)
    _, V0 = torch.linalg.eig(A)
    Lam, V, E = perturb_then_diagonalize(A, steps=40, cache=False)
    assert eigvec_condition(V) < 0.1 * eigvec_condition(V0)
    assert rel2(E, A) < 0.04 and float(Lam.real.max()) < 0


@pytest.mark.parametrize(
    "call,exc,match",
    [
        (lambda: hippo_legs(1), ValueError, "N"),
        (lambda: hippo_legs(4.0), TypeError, "N"),
        (lambda: perturb_then_diagonalize(torch.zeros(3, 4, dtype=torch.float64)), ValueError, "A must be a square"),
        (lambda: perturb_then_diagonalize(hippo_legs(4)[0].float()), TypeError, "A must have dtype"),
        (lambda: perturb_then_diagonalize(np.eye(4, dtype=np.float32)), TypeError, "A must have dtype"),
        (lambda: perturb_then_diagonalize(torch.ones(1, 1, dtype=torch.float64)), ValueError, "A must be at least"),
        (lambda: perturb_then_diagonalize([[1.0]]), TypeError, "A must be a torch.Tensor"),
        (lambda: perturb_then_diagonalize(hippo_legs(4)[0], max_rel_norm=0), ValueError, "max_rel_norm"),
        (lambda: perturb_then_diagonalize(hippo_legs(4)[0], gamma=-1), ValueError, "gamma"),
        (lambda: perturb_then_diagonalize(hippo_legs(4)[0], P=torch.ones(3, dtype=torch.float64)), ValueError, "P"),
        (lambda: transfer_function_dense(hippo_legs(4)[0], torch.ones(3), torch.ones(4), [0.0]), ValueError, "B and C"),
        (lambda: transfer_function(torch.ones(2), torch.ones(3), torch.ones(2), [0.0]), ValueError, "Lam, B_tilde"),
    ],
)
def test_bad_input(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_cli_prints_table(cache_root, capsys):
    assert ptd.main(["--N", "8", "16"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert "kappa(V)" in out[0] and "sup|G_PTD-G|" in out[0] and "sup|G_S4D-G|" in out[0]
    rows = [line.split() for line in out[2:]]
    assert [r[0] for r in rows] == ["8", "16"]
    assert all(float(r[1]) <= 10 and float(r[2]) <= 0.05 and float(r[3]) < 0 for r in rows)


def test_docstring_examples_run(cache_root):
    import doctest

    result = doctest.testmod(ptd, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 20 and result.failed == 0
