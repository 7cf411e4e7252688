"""Finite groups as explicit multiplication tables, and their word problems.

A ``Group`` holds ``table`` (``|G| x |G|`` integers) with ``table[a, b]`` the index of
the product ``a · b``; element 0 is always the identity.  The word problem of a sequence
g_1..g_T asks at every position t for the running product, composed left to right::

    p_1 = g_1,    p_t = p_{t-1} · g_t   (= g_1 · g_2 · ... · g_t)

Groups on offer (``make_group`` parses their names):

* ``Z<n>``: cyclic, elements 0..n-1, a · b = (a + b) mod n;  ``parity`` is ``Z2``.
* ``S<n>``: symmetric, all permutations of 0..n-1 in lexicographic order (so the
  identity comes first).  A permutation is a tuple p with p[i] the image of i, and the
  product is composition as functions, (a · b)[i] = a[b[i]]: apply b, then a.
* ``A<n>``: alternating, the even permutations of ``S<n>`` in the same order and product.
* ``GxH`` (e.g. ``Z3xZ4xZ5``, ``A5xZ2``): direct products; the pair (g, h) has index
  g·|H| + h and multiplies component-wise.

Tables are small (|S5| = 120, |A5 x Z2| = 120, at most 2048 elements) and built with numpy in milliseconds.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field

import numpy as np


# Tables are dense (order x order); these bounds keep them, and their construction, small.
MAX_POINTS = 6  # S_n and A_n for n <= 6
MAX_ORDER = 2048


@dataclass(frozen=True)
class Group:
    """A finite group given by its multiplication table (element 0 is the identity).

    Args:
        name: canonical name (``"S3"``, ``"Z3xZ4xZ5"``).
        table: (order, order) integer array, ``table[a, b]`` = index of a · b.
        elements: a readable form of each element (residues, permutation tuples, pairs).
    """

    name: str
    table: np.ndarray
    elements: tuple = field(repr=False, default=())

    @property
    def order(self) -> int:
        return int(self.table.shape[0])

    def inverse(self) -> np.ndarray:
        """Index of each element's inverse, (order,)."""
        return np.argmax(self.table == 0, axis=1)

    def running_product(self, words: np.ndarray) -> np.ndarray:
        """Prefix products of words: (N, T) element indices -> (N, T), p_t = p_{t-1} · g_t.

        One table lookup per position over the whole batch, O(T) numpy calls.
        """
        words = np.asarray(words)
        out = np.empty_like(words)
        if words.shape[-1] == 0:
            return out
        p = words[..., 0]
        out[..., 0] = p
        for t in range(1, words.shape[-1]):
            p = self.table[p, words[..., t]]
            out[..., t] = p
        return out


def _smallest_dtype(order: int):
    return np.int16 if order < 2**15 else np.int32


def cyclic(n: int) -> Group:
    """Z_n: integers mod n under addition."""
    if not 1 <= n <= MAX_ORDER:
        raise ValueError(f"a cyclic group needs 1 <= n <= {MAX_ORDER}, got {n}")
    a = np.arange(n)
    table = ((a[:, None] + a[None, :]) % n).astype(_smallest_dtype(n))
    return Group(f"Z{n}", table, tuple(range(n)))


def _permutation_group(name: str, perms: np.ndarray) -> Group:
    """The group of the permutations in ``perms`` ((order, n), identity first) under composition."""
    order, n = perms.shape
    # (a · b)[i] = a[b[i]]: gather a's images at b's images, for every pair (a, b).
    composed = perms[np.arange(order)[:, None, None], perms[None, :, :]]  # (order order n): [a, b, i] = a[b[i]]
    # A permutation's index: encode it as a base-n number, look the code up among the sorted codes.
    weights = n ** np.arange(n - 1, -1, -1, dtype=np.int64)
    codes = perms.astype(np.int64) @ weights  # (order,)
    sorter = np.argsort(codes)
    composed_codes = composed.astype(np.int64) @ weights  # (order order)
    table = sorter[np.searchsorted(codes, composed_codes, sorter=sorter)]
    if not np.array_equal(codes[table], composed_codes):
        raise ValueError(f"{name}: the permutations are not closed under composition")
    return Group(name, table.astype(_smallest_dtype(order)), tuple(tuple(int(i) for i in p) for p in perms))


def _permutations(n: int) -> np.ndarray:
    return np.array(list(itertools.permutations(range(n))), dtype=np.int64).reshape(-1, n)


def permutation_parity(perms: np.ndarray) -> np.ndarray:
    """0 for even, 1 for odd permutations; perms (N, n) -> (N,) (parity of the inversion count)."""
    perms = np.asarray(perms)
    i, j = np.triu_indices(perms.shape[-1], k=1)
    return (perms[:, i] > perms[:, j]).sum(1) % 2


def symmetric(n: int) -> Group:
    """S_n: all permutations of n points (n! elements), identity first."""
    if not 1 <= n <= MAX_POINTS:
        raise ValueError(f"symmetric groups are offered for 1 <= n <= {MAX_POINTS} (|S6| = 720), got n={n}")
    return _permutation_group(f"S{n}", _permutations(n))


def alternating(n: int) -> Group:
    """A_n: the even permutations of n points (n!/2 elements for n >= 2), identity first."""
    if not 1 <= n <= MAX_POINTS:
        raise ValueError(f"alternating groups are offered for 1 <= n <= {MAX_POINTS}, got n={n}")
    perms = _permutations(n)
    return _permutation_group(f"A{n}", perms[permutation_parity(perms) == 0])


def direct_product(g: Group, h: Group) -> Group:
    """G x H: the pair (a, b) has index a·|H| + b and (a, b)(c, d) = (ac, bd)."""
    order = g.order * h.order
    if order > MAX_ORDER:
        raise ValueError(f"{g.name}x{h.name} has {order} elements; tables are offered up to {MAX_ORDER}")
    a = np.arange(order)
    ga, ha = a // h.order, a % h.order
    table = g.table[ga[:, None], ga[None, :]].astype(np.int64) * h.order + h.table[ha[:, None], ha[None, :]]
    elements = tuple(itertools.product(g.elements or range(g.order), h.elements or range(h.order)))
    return Group(f"{g.name}x{h.name}", table.astype(_smallest_dtype(order)), elements)


_FACTOR = re.compile(r"^([ZSA])(\d+)$")


def make_group(name: str) -> Group:
    """The group called ``name``: ``Z<n>``, ``S<n>``, ``A<n>``, ``parity`` (= Z2), or products ``GxH[xK...]``.

    >>> make_group("S3").order, make_group("Z3xZ4xZ5").order, make_group("A5xZ2").order
    (6, 60, 120)
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"group name must be a non-empty string such as 'S3', 'Z60' or 'A5xZ2', got {name!r}")
    if name.lower() == "parity":
        return cyclic(2)
    factors = []
    for part in name.split("x"):
        match = _FACTOR.match(part.strip())
        if match is None:
            raise ValueError(f"cannot parse group {name!r}: each factor must be Z<n>, S<n> or A<n> (products joined by 'x'), got {part!r}")
        kind, n = match.group(1), int(match.group(2))
        factors.append({"Z": cyclic, "S": symmetric, "A": alternating}[kind](n))
    group = factors[0]
    for factor in factors[1:]:
        group = direct_product(group, factor)
    return group
