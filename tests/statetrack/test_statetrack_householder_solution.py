"""The DeltaProduct recurrence can solve the S_n word problem exactly with n_h = n - 1 (DESIGN §3).

The expressivity half of the papers' claims (DeltaNet solves parity = S_2 with n_h = 1,
DeltaProduct S_3 with n_h = 2 and S_5 with n_h = 4), checked without training: weights are
written down by hand and ``kernels.delta_product`` runs them over long random words; the
decoded state must equal ``Group.running_product`` (the training labels) at every position.

The construction. A permutation g (g[i] the image of i) has the matrix P_g e_i = e_{g[i]}, and
the group's product (a·b)[i] = a[b[i]] gives P_{a·b} = P_a P_b. The recurrence multiplies its
state on the left, so it tracks X_t = P_{p_t}^T = P_{g_t}^T X_{t-1} (p_t the running product).
P_g^T is a product of at most n - 1 transpositions, and a transposition of points a, b is the
Householder reflection I - 2 k k^T with k = (e_a - e_b)/sqrt(2), that is beta = 2 (eigenvalue
-1: the "[-1, 1]" set-up); unused sub-steps get beta = 0. The state starts at zero, so it holds
S_t = X_t M - M: each sub-step writes value v = -M^T k, which keeps that form, since
(I - 2kk^T)(X M - M) + 2k(-M^T k)^T = (I - 2kk^T) X M - M. With M = I (K = V = n) and one head
per point h with query e_h, head h reads o = S_t^T e_h = e_{p_t[h]} - e_h: the image of h.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import kernels
from statetrack.groups import make_group


def transpositions(perm: tuple[int, ...]) -> list[tuple[int, int]]:
    """Transpositions (a, b) with P_perm^T = T_m ... T_1 (T_j the matrix of the j-th; T_1 applied first).

    Sorting the permutation by swaps fixes one more point per swap, n - (number of cycles)
    swaps, at most n - 1: composing on the right, perm ∘ τ_1 ∘ ... ∘ τ_m = id, so
    P_perm = T_m ... T_1 and P_perm^T = T_1 ... T_m, which is the list reversed.
    """
    current = list(perm)  # current[i]: where perm ∘ τ_1 ∘ ... sends i
    swaps = []
    for i in range(len(current)):
        while current[i] != i:
            j = current[i]
            swaps.append((i, j))
            current[i], current[j] = current[j], current[i]
    return swaps[::-1]


def householder_inputs(group, n: int, n_h: int, words: np.ndarray):
    """q, k, v, beta (kernels.delta_product layout, H = K = V = n) that track the running product."""
    B, T = words.shape
    k_el = np.zeros((group.order, n_h, n))  # unit Householder vectors per element and sub-step
    b_el = np.zeros((group.order, n_h))
    for g, perm in enumerate(group.elements):
        swaps = transpositions(perm)
        assert len(swaps) <= n_h, (perm, swaps)
        for j, (a, b) in enumerate(swaps):
            k_el[g, j, a], k_el[g, j, b] = 1 / math.sqrt(2), -1 / math.sqrt(2)
            b_el[g, j] = 2.0
        # check the factorisation itself: R_m ... R_1 == P_g^T
        P = np.zeros((n, n))
        P[list(perm), range(n)] = 1.0  # P e_i = e_perm[i]
        prod = np.eye(n)
        for j in range(n_h):
            prod = (np.eye(n) - b_el[g, j] * np.outer(k_el[g, j], k_el[g, j])) @ prod
        np.testing.assert_allclose(prod, P.T, atol=1e-12)
    k = torch.tensor(k_el[words], dtype=torch.float32)  # (B T n_h K)
    k = k[:, :, :, None, :].expand(B, T, n_h, n, n).contiguous()  # same keys in every head: (B T n_h H K)
    v = -k  # v = -M^T k with M = I
    beta = torch.tensor(b_el[words], dtype=torch.float32)[..., None].expand(B, T, n_h, n).contiguous()  # (B T n_h H)
    q = torch.eye(n).expand(B, T, n, n).contiguous()  # head h queries e_h: (B T H K)
    return q, k, v, beta


@pytest.mark.parametrize("n", [2, 3, 4, 5])
def test_n_minus_one_reflections_track_the_symmetric_group_exactly(n):
    group = make_group(f"S{n}")
    n_h = n - 1
    rng = np.random.default_rng(n)
    B, T = 4, 515  # not a multiple of the chunk size
    words = rng.integers(0, group.order, size=(B, T))
    q, k, v, beta = householder_inputs(group, n, n_h, words)
    o, _ = kernels.delta_product(q, k, v, beta, backend="torch")  # (B T H V)
    # head h reads e_{p_t[h]} - e_h: add e_h back and take the image of every point
    images = (o + torch.eye(n)).argmax(-1).numpy()  # (B T n)
    codes = {perm: g for g, perm in enumerate(group.elements)}
    decoded = np.array([[codes[tuple(int(i) for i in row)] for row in seq] for seq in images])
    np.testing.assert_array_equal(decoded, group.running_product(words))
    # and the state stays a (shifted) permutation matrix: no drift over 515 steps
    np.testing.assert_allclose((o + torch.eye(n)).amax(-1).numpy(), 1.0, atol=1e-4)


@pytest.mark.parametrize("n", [3, 4, 5])
def test_an_n_cycle_needs_n_minus_one_reflections(n):
    """The lower bound behind "S_5 needs n_h = 4": a product of m rank-one updates of the identity,
    (I - b_1 k_1 k_1^T)...(I - b_m k_m k_m^T), differs from I by a matrix of rank <= m, and in the
    permutation representation an n-cycle c has rank(P_c - I) = n - 1 (only the all-ones vector
    is fixed). The sorting factorisation above reaches that bound."""
    cycle = tuple((i + 1) % n for i in range(n))
    P = np.zeros((n, n))
    P[list(cycle), range(n)] = 1.0
    assert np.linalg.matrix_rank(P - np.eye(n)) == n - 1
    assert len(transpositions(cycle)) == n - 1
