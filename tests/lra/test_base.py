"""The shared batch contract: padding, masks, per-position targets, bucketing."""

from __future__ import annotations

import numpy as np
import torch

from lra.base import IGNORE_INDEX, PAD_ID, EpochSampler, pad_collate


def test_pad_collate_tokens():
    batch = pad_collate([{"x": np.array([3, 4, 5]), "y": np.array(1)}, {"x": np.array([7]), "y": np.array(0)}])
    assert batch["x"].tolist() == [[3, 4, 5], [7, PAD_ID, PAD_ID]]
    assert batch["mask"].tolist() == [[True, True, True], [True, False, False]]
    assert batch["y"].tolist() == [1, 0]


def test_pad_collate_features_and_token_targets():
    batch = pad_collate([{"x": np.ones((2, 3), np.float32), "y": np.array([1, 2])}, {"x": np.zeros((4, 3), np.float32), "y": np.array([0, 1, 2, 3])}])
    assert batch["x"].shape == (2, 4, 3) and batch["x"].dtype == torch.float32
    assert batch["mask"].sum(1).tolist() == [2, 4]
    assert batch["y"][0].tolist() == [1, 2, IGNORE_INDEX, IGNORE_INDEX]


def test_pad_collate_pairs():
    batch = pad_collate([{"x": np.array([[1, 2, 0], [3, 0, 0]]), "y": np.array(1)}, {"x": np.array([[5, 6, 7, 8], [9, 9, 0, 0]]), "y": np.array(0)}])
    assert batch["x"].shape == (2, 2, 4)
    assert batch["mask"].sum(-1).tolist() == [[2, 1], [4, 2]]


def test_bucket_sampler_is_a_permutation_with_local_order():
    lengths = np.random.default_rng(0).integers(1, 1000, size=500)
    sampler = EpochSampler(lengths, batch_size=10, bucket=True, seed=1, window=20)
    order = list(sampler)
    assert sorted(order) == list(range(500))
    batches = [lengths[order[i : i + 10]] for i in range(0, 500, 10)]
    spread = np.mean([b.max() - b.min() for b in batches])
    assert spread < 150  # about 1000 / 20 = 50 expected; random batches spread over ~800
    sampler.set_epoch(1)
    assert list(sampler) != order
    sampler.set_epoch(0)
    assert list(sampler) == order
