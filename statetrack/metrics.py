"""Metrics of per-position predictions (DESIGN §3).

With ``right[b, t]`` = prediction equals target at a scored position (positions with
IGNORE_INDEX, padding included, count as right — they cannot break a sequence):

* token accuracy: correct / scored positions;
* sequence accuracy: fraction of sequences (with at least one target) whose every scored position is right;
* cumulative sequence accuracy per prefix length: ``curve[t-1]`` = fraction of sequences
  whose first t positions are all right, i.e. the mean over sequences of
  ``cumprod(right)[t-1]``.  It starts at the accuracy of position 1 and ends at the
  sequence accuracy; it is meant for sets of one length (group words);
* per-position accuracy: accuracy at position t over the sequences scored there.
"""

from __future__ import annotations

import numpy as np
import torch

from lra.base import IGNORE_INDEX


def _as_tensor(a) -> torch.Tensor:
    return a.detach().cpu() if isinstance(a, torch.Tensor) else torch.as_tensor(np.asarray(a))


def prefix_sequence_accuracy(pred, y) -> np.ndarray:
    """Cumulative sequence accuracy per prefix length: pred, y (B, L) -> (L,), entry t-1 for prefix length t."""
    pred, y = _as_tensor(pred), _as_tensor(y)
    if pred.shape != y.shape or pred.dim() != 2:
        raise ValueError(f"pred and y must both be (B, L), got {tuple(pred.shape)} and {tuple(y.shape)}")
    right = (pred == y) | (y == IGNORE_INDEX)  # (B L)
    return torch.cummin(right.int(), dim=1).values.double().mean(0).numpy()


class PrefixAccuracy:
    """Accumulates token, sequence, per-position and prefix accuracies over batches of any lengths.

    >>> m = PrefixAccuracy()
    >>> m.update(torch.tensor([[1, 2, 3], [1, 0, 3]]), torch.tensor([[1, 2, 3], [1, 2, 3]]))
    >>> r = m.compute(); r["acc"], r["seq_acc"], r["prefix_seq_acc"].tolist()
    (0.8333333333333334, 0.5, [1.0, 0.5, 0.5])
    """

    def __init__(self):
        self.correct = self.scored = self.seq_correct = self.seqs = 0
        self.prefix_right = np.zeros(0)  # (L,) sequences whose first t positions are right
        self.prefix_count = np.zeros(0)  # (L,) sequences seen at that prefix length
        self.position_right = np.zeros(0)
        self.position_scored = np.zeros(0)

    def _grow(self, length: int) -> None:
        extra = length - len(self.prefix_right)
        if extra > 0:
            # a shorter batch's sequences were all right on positions beyond their end (nothing scored there)
            last = self.prefix_right[-1] if len(self.prefix_right) else 0.0
            last_count = self.prefix_count[-1] if len(self.prefix_count) else 0.0
            self.prefix_right = np.concatenate([self.prefix_right, np.full(extra, last)])
            self.prefix_count = np.concatenate([self.prefix_count, np.full(extra, last_count)])
            self.position_right = np.concatenate([self.position_right, np.zeros(extra)])
            self.position_scored = np.concatenate([self.position_scored, np.zeros(extra)])

    def update(self, pred, y) -> None:
        """pred: (B, L) class ids or (B, L, C) logits; y: (B, L) targets with IGNORE_INDEX on unscored positions."""
        pred, y = _as_tensor(pred), _as_tensor(y)
        if pred.dim() == 3:
            pred = pred.argmax(-1)
        if pred.shape != y.shape or pred.dim() != 2:
            raise ValueError(f"pred and y must both be (B, L), got {tuple(pred.shape)} and {tuple(y.shape)}")
        valid = y != IGNORE_INDEX  # (B L)
        hit = (pred == y) & valid  # (B L)
        ok = hit | ~valid  # (B L)
        has_target = valid.any(1)  # (B)
        self.correct += int(hit.sum())
        self.scored += int(valid.sum())
        self.seq_correct += int((ok.all(1) & has_target).sum())
        self.seqs += int(has_target.sum())
        length = y.shape[1]
        self._grow(length)
        prefix = torch.cummin(ok.int(), dim=1).values.sum(0).double().numpy()  # (L)
        self.prefix_right[:length] += prefix
        self.prefix_right[length:] += prefix[-1]
        self.prefix_count += y.shape[0]
        self.position_right[:length] += hit.sum(0).double().numpy()
        self.position_scored[:length] += valid.sum(0).double().numpy()

    def compute(self) -> dict[str, float | np.ndarray]:
        """``acc``, ``seq_acc`` (floats), ``prefix_seq_acc`` and ``position_acc`` ((L,) arrays, NaN where nothing was scored)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return {
                "acc": self.correct / self.scored if self.scored else float("nan"),
                "seq_acc": self.seq_correct / self.seqs if self.seqs else float("nan"),
                "prefix_seq_acc": self.prefix_right / self.prefix_count,
                "position_acc": self.position_right / self.position_scored,
            }
