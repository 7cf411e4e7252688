"""Group tables are groups, and word-problem labels equal running products computed another way."""

from __future__ import annotations

import math

import numpy as np
import pytest

from statetrack.groups import alternating, cyclic, direct_product, make_group, permutation_parity, symmetric

# every group used by an experiment, plus small and product cases
GROUPS = ["Z1", "Z2", "parity", "Z5", "Z60", "S1", "S2", "S3", "S4", "S5", "A3", "A4", "A5", "Z3xZ4xZ5", "A5xZ2", "S3xZ2", "Z2xS3"]
ORDERS = {"Z1": 1, "Z2": 2, "parity": 2, "Z5": 5, "Z60": 60, "S1": 1, "S2": 2, "S3": 6, "S4": 24, "S5": 120, "A3": 3, "A4": 12, "A5": 60, "Z3xZ4xZ5": 60, "A5xZ2": 120, "S3xZ2": 12, "Z2xS3": 12}


@pytest.mark.parametrize("name", GROUPS)
def test_table_is_a_group(name):
    g = make_group(name)
    T = g.table.astype(np.int64)
    n = g.order
    assert n == ORDERS[name] and T.shape == (n, n)
    # closure
    assert T.min() >= 0 and T.max() < n
    # element 0 is the identity
    assert (T[0] == np.arange(n)).all() and (T[:, 0] == np.arange(n)).all()
    # inverses: every row and column is a permutation (a Latin square), so a·x = e and x·a = e are solvable
    assert all(len(set(row)) == n for row in T) and all(len(set(col)) == n for col in T.T)
    inv = g.inverse()
    assert (T[np.arange(n), inv] == 0).all() and (T[inv, np.arange(n)] == 0).all()
    # associativity, all triples: (ab)c = a(bc)
    a = np.arange(n)
    left = T[T[:, :, None], a[None, None, :]]  # [a, b, c] -> (ab)c
    right = T[a[:, None, None], T[None, :, :]]  # [a, b, c] -> a(bc)
    assert np.array_equal(left, right)


@pytest.mark.parametrize("name", ["S6", "A6", "A6xZ2"])
def test_large_tables_are_associative_on_random_triples(name):
    g = make_group(name)
    T = g.table.astype(np.int64)
    assert g.order == {"S6": 720, "A6": 360, "A6xZ2": 720}[name]
    assert (T[0] == np.arange(g.order)).all()
    a, b, c = np.random.default_rng(0).integers(0, g.order, size=(3, 20_000))
    assert np.array_equal(T[T[a, b], c], T[a, T[b, c]])


def test_known_structure():
    assert (make_group("Z60").table == make_group("Z60").table.T).all()  # abelian
    assert not (make_group("S3").table == make_group("S3").table.T).all()  # smallest non-abelian group
    # Z3 x Z4 x Z5 is cyclic: some element has order 60
    g = make_group("Z3xZ4xZ5")
    orders = []
    for x in range(g.order):
        p, k = x, 1
        while p != 0:
            p, k = g.table[p, x], k + 1
        orders.append(k)
    assert max(orders) == 60
    # A_n holds exactly the even permutations, S_n all of them
    for n in range(1, 6):
        assert symmetric(n).order == math.factorial(n)
        perms = np.array(alternating(n).elements).reshape(-1, n)
        assert (permutation_parity(perms) == 0).all() and len(perms) == max(math.factorial(n) // 2, 1)
    assert make_group("parity").name == "Z2"
    assert direct_product(cyclic(2), cyclic(3)).order == 6


def test_permutation_product_is_composition():
    g = make_group("S3")
    # (a · b)[i] = a[b[i]]: apply b, then a
    for a, pa in enumerate(g.elements):
        for b, pb in enumerate(g.elements):
            assert g.elements[g.table[a, b]] == tuple(pa[pb[i]] for i in range(3))


@pytest.mark.parametrize("bad", ["", "Q8", "S", "Z0", "S7", "A5xQ2", "z3", "S6xS6"])
def test_bad_names_fail_clearly(bad):
    with pytest.raises(ValueError):
        make_group(bad)


# ---------------------------------------------------------------- labels
def _components(element, kinds):
    """Flatten a (left-nested) product element into one component per factor."""
    if len(kinds) == 1:
        return [element]
    return _components(element[0], kinds[:-1]) + [element[1]]


def _naive_running_product(name: str, words: list[list]) -> list[list]:
    """Running products by composing the factors' own representations (residues, permutation tuples)."""
    factors = [(part[0], int(part[1:])) for part in name.split("x")]
    g = make_group(name)
    out = []
    for word in words:
        comps = [_components(g.elements[w], factors) for w in word]
        p = comps[0]
        labels = [p]
        for c in comps[1:]:
            new = []
            for (kind, n), x, y in zip(factors, p, c):
                new.append((x + y) % n if kind == "Z" else tuple(x[y[i]] for i in range(n)))
            p = new
            labels.append(p)
        out.append(labels)
    return out


@pytest.mark.parametrize("name", ["Z2", "Z60", "S3", "S5", "A5", "Z3xZ4xZ5", "A5xZ2"])
def test_labels_equal_naive_running_product(name):
    from statetrack.data import GroupWordDataModule

    dm = GroupWordDataModule(group=name, train_length=40, num_train=30, num_val=2, num_test=2, gen_seed=3)
    dm.setup()
    data = dm.splits["train"]
    factors = [(part[0], int(part[1:])) for part in name.split("x")]
    elements = dm.group.elements
    words = (data.x - 1).tolist()  # token id = element index + 1
    expected = _naive_running_product(name, words)
    got = [[_components(elements[label], factors) for label in row] for row in data.y.tolist()]
    assert got == [[list(e) for e in row] for row in expected]
    assert dm.vocab_size == dm.group.order + 1 and dm.num_classes == dm.group.order
    assert data.x.min() >= 1 and data.x.max() <= dm.group.order


def test_parity_labels_are_running_xor():
    from statetrack.data import GroupWordDataModule

    dm = GroupWordDataModule(group="parity", train_length=64, num_train=50, num_val=2, num_test=2)
    dm.setup()
    bits = dm.splits["train"].x - 1
    assert set(np.unique(bits)) == {0, 1}
    assert np.array_equal(dm.splits["train"].y, np.cumsum(bits, axis=1) % 2)
