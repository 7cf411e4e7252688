"""Token, sequence and prefix accuracies on hand-made predictions."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from lra.base import IGNORE_INDEX
from statetrack.metrics import PrefixAccuracy, prefix_sequence_accuracy

I = IGNORE_INDEX


def test_prefix_curve_by_hand():
    y = [[1, 2, 3, 4], [1, 2, 3, 4], [1, 2, 3, 4], [1, 2, 3, 4]]
    pred = [
        [1, 2, 3, 4],  # all right
        [1, 2, 0, 4],  # first error at t = 3
        [0, 2, 3, 4],  # first error at t = 1
        [1, 2, 3, 0],  # first error at t = 4
    ]
    np.testing.assert_allclose(prefix_sequence_accuracy(pred, y), [3 / 4, 3 / 4, 2 / 4, 1 / 4])
    m = PrefixAccuracy()
    m.update(torch.tensor(pred), torch.tensor(y))
    r = m.compute()
    assert r["acc"] == pytest.approx(13 / 16)
    assert r["seq_acc"] == pytest.approx(1 / 4)
    np.testing.assert_allclose(r["prefix_seq_acc"], [3 / 4, 3 / 4, 2 / 4, 1 / 4])
    np.testing.assert_allclose(r["position_acc"], [3 / 4, 1, 3 / 4, 3 / 4])


def test_ignored_positions_do_not_count():
    y = torch.tensor([[I, 2, I, 4], [I, I, I, I]])
    pred = torch.tensor([[9, 2, 9, 0], [9, 9, 9, 9]])
    m = PrefixAccuracy()
    m.update(pred, y)
    r = m.compute()
    assert r["acc"] == pytest.approx(1 / 2)
    assert r["seq_acc"] == 0.0  # the second sequence has no target and is not counted
    np.testing.assert_allclose(r["prefix_seq_acc"], [1, 1, 1, 1 / 2])
    assert math.isnan(r["position_acc"][0]) and r["position_acc"][1] == 1 and r["position_acc"][3] == 0


def test_accumulates_over_batches_and_logits():
    y = torch.tensor([[0, 1], [1, 1]])
    logits = torch.zeros(2, 2, 3)
    logits[0, 0, 0] = logits[0, 1, 1] = 1  # first sequence right
    logits[1, 0, 2] = logits[1, 1, 1] = 1  # second wrong at t = 1
    m = PrefixAccuracy()
    m.update(logits, y)
    m.update(torch.tensor([[0, 1, 2]]), torch.tensor([[0, 1, 0]]))  # a longer batch, wrong at t = 3
    r = m.compute()
    assert r["acc"] == pytest.approx(5 / 7)
    assert r["seq_acc"] == pytest.approx(1 / 3)
    # t = 3: the first sequence (length 2, all right) still counts as right; the third does not
    np.testing.assert_allclose(r["prefix_seq_acc"], [2 / 3, 2 / 3, 1 / 3])


def test_matches_the_lightning_module_metrics():
    from ssm.module import token_metrics

    g = torch.Generator().manual_seed(0)
    logits = torch.randn(16, 9, 3, generator=g)
    y = torch.randint(0, 3, (16, 9), generator=g)
    y[:, ::4] = IGNORE_INDEX
    m = PrefixAccuracy()
    m.update(logits, y)
    r, t = m.compute(), token_metrics(logits, y)
    assert r["acc"] == pytest.approx(float(t["correct"] / t["scored"]))
    assert r["seq_acc"] == pytest.approx(float(t["seq_correct"] / t["seqs"]))
    assert r["prefix_seq_acc"][-1] == pytest.approx(r["seq_acc"])


def test_shape_mismatch_fails():
    with pytest.raises(ValueError, match="pred and y"):
        prefix_sequence_accuracy(np.zeros((2, 3)), np.zeros((2, 4)))
