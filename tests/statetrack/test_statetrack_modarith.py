"""Modular-arithmetic expressions: answers checked by Python's own evaluation, format and settings."""

from __future__ import annotations

import numpy as np
import pytest

from lra.base import IGNORE_INDEX
from statetrack import modarith
from statetrack.data import ModArithDataModule


@pytest.mark.parametrize("modulus,bracket_prob,operators", [(5, 0.0, "+-*"), (5, 0.5, "+-*"), (7, 1.0, "+-*"), (3, 0.3, "*"), (11, 0.3, "+-")])
def test_answers_match_python_eval(modulus, bracket_prob, operators):
    rng = np.random.default_rng(0)
    for num_operands in (1, 2, 3, 7, 20):
        ids, answers = modarith.sample_batch(rng, 40, num_operands, modulus, bracket_prob, operators)
        for seq, answer in zip(ids, answers):
            text = modarith.decode(seq, modulus)
            assert text.endswith(" =") or text == "="
            expr = text[:-1].strip()
            assert eval(expr) % modulus == answer, expr  # noqa: S307 - our own generated arithmetic
            numbers = [t for t in expr.split() if t.isdigit()]
            assert len(numbers) == num_operands and all(0 <= int(t) < modulus for t in numbers)
            assert set(expr.split()) - set(str(v) for v in range(modulus)) <= set(operators) | {"(", ")"}


def test_bracket_probability():
    rng = np.random.default_rng(1)
    flat = [modarith.decode(s, 5) for s in modarith.sample_batch(rng, 50, 10, 5, 0.0)[0]]
    assert not any("(" in t for t in flat)
    nested = [modarith.decode(s, 5) for s in modarith.sample_batch(rng, 50, 10, 5, 1.0)[0]]
    assert all("(" in t for t in nested)
    assert all(t.count("(") == t.count(")") for t in nested)


def test_evaluator_precedence_and_brackets():
    assert modarith.evaluate_mod([2, "+", 3, "*", 4], 100) == 14
    assert modarith.evaluate_mod(["(", 2, "+", 3, ")", "*", 4], 100) == 20
    assert modarith.evaluate_mod([1, "-", 2, "-", 3], 7) == (1 - 2 - 3) % 7
    assert modarith.evaluate_mod([3], 5) == 3


def test_long_expressions_do_not_recurse():
    rng = np.random.default_rng(2)
    ids, answers = modarith.sample_batch(rng, 2, 3000, 5, 0.5)
    assert len(ids[0]) >= 2 * 3000


def test_data_module_targets_only_on_equals():
    dm = ModArithDataModule(modulus=5, bracket_prob=0.3, train_length=6, min_train_length=2, test_length=12, num_train=64, num_val=8, num_test=8, gen_seed=4)
    dm.setup()
    equals = modarith.SYMBOLS.index("=") + 5 + 1
    assert dm.dims == {"vocab_size": 12, "d_input": None, "num_classes": 5, "output": "token", "dual": False}
    for split, (lo, hi) in {"train": (2, 6), "test": (12, 12)}.items():
        data = dm.splits[split]
        for i in range(len(data)):
            ex = data[i]
            x, y = ex["x"], ex["y"]
            assert x[-1] == equals and (x != 0).all()
            assert (y[:-1] == IGNORE_INDEX).all() and 0 <= y[-1] < 5
            text = modarith.decode(x, 5)
            assert eval(text[:-1]) % 5 == y[-1]  # noqa: S307
            assert lo <= sum(t.isdigit() for t in text.split()) <= hi
    batch = next(iter(dm.train_dataloader()))
    assert batch["mask"].sum(1).tolist() == (batch["x"] != 0).sum(1).tolist()


@pytest.mark.parametrize("kwargs", [{"modulus": 1}, {"operators": "/"}, {"operators": ""}, {"bracket_prob": 1.5}])
def test_bad_settings_fail_clearly(kwargs):
    with pytest.raises(ValueError):
        ModArithDataModule(**kwargs)
