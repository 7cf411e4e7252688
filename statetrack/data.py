"""Data modules of the state-tracking tasks: group word problems and modular arithmetic.

Both follow the batch contract of ``lra.base`` with one target per position
(``output="token"``): ``x`` (B, L) token ids (0 is padding), ``mask = x != 0``,
``y`` (B, L) with IGNORE_INDEX where a position carries no target.

Data are generated from ``gen_seed`` in memory when the module is set up (no download,
no disk cache): 100k group words of length 128 take well under a second, 100k
modular-arithmetic expressions some seconds.  Every split and every evaluation length
has its own random stream, ``numpy.random.default_rng([gen_seed, split, length])``, so
the test set at length 512 is the same whether it comes from ``test_dataloader()`` or
from ``length_dataloader(512)``, and does not depend on the split sizes.

``length`` means positions for group words and operands for modular arithmetic (see
``ModArithDataModule``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from torch.utils.data import DataLoader, Dataset

from lra.base import IGNORE_INDEX, PAD_ID, SPLITS, SequenceDataModule, pad_collate
from statetrack import modarith
from statetrack.groups import make_group

SPLIT_CODE = {"train": 0, "val": 1, "test": 2}


class ArraySequences(Dataset):
    """In-memory sequences: ``x`` and ``y`` (N, L_max) padded with PAD_ID / IGNORE_INDEX, real lengths (N,)."""

    def __init__(self, x: np.ndarray, y: np.ndarray, lengths: np.ndarray):
        if x.shape != y.shape or len(lengths) != len(x):
            raise ValueError(f"x {x.shape}, y {y.shape} and lengths ({len(lengths)},) do not match")
        self.x, self.y = x, y
        self.lengths = np.asarray(lengths, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.lengths)

    def __getitem__(self, i: int) -> dict[str, np.ndarray]:
        n = self.lengths[i]
        return {"x": self.x[i, :n], "y": self.y[i, :n]}


def empty_rows(num: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """``x`` full of PAD_ID and ``y`` full of IGNORE_INDEX, both (num, width) int32, to fill row by row."""
    return np.full((num, width), PAD_ID, dtype=np.int32), np.full((num, width), IGNORE_INDEX, dtype=np.int32)


class StateTrackingDataModule(SequenceDataModule):
    """Base of the generated state-tracking tasks; subclasses implement ``sample``.

    Args:
        train_length: length of training sequences (T_train).
        val_length: length of validation sequences (default: ``train_length``).
        test_length: length of test sequences; longer than ``train_length`` to test extrapolation.
        min_train_length: if set, each training sequence's length is drawn uniformly from
            ``min_train_length..train_length``; otherwise all have ``train_length``.
        num_train, num_val, num_test: split sizes (100k training sequences in the reference set-up).
            With ``limit_*`` set, only that many are generated.
        gen_seed: seed of the data (a different seed gives different sequences).
        **kwargs: batching options of ``lra.base.SequenceDataModule`` (batch_size, limit_*, seed, ...).
    """

    output = "token"
    # whether the cumulative sequence accuracy per prefix length means something (targets at every position)
    prefix_curve = True
    # positions before the first scored one (a BOS token): the prefix curve's t counts from after them
    lead_positions = 0

    def __init__(
        self,
        train_length: int = 128,
        val_length: int | None = None,
        test_length: int = 512,
        min_train_length: int | None = None,
        num_train: int = 100_000,
        num_val: int = 2_000,
        num_test: int = 2_000,
        gen_seed: int = 0,
        data_dir: str = "data/state",
        **kwargs,
    ):
        super().__init__(data_dir=data_dir, **kwargs)
        self.lengths = {"train": int(train_length), "val": int(val_length or train_length), "test": int(test_length)}
        for split, n in self.lengths.items():
            if n < 1:
                raise ValueError(f"{split}_length must be a positive integer, got {n}")
        if min_train_length is not None and not 1 <= min_train_length <= train_length:
            raise ValueError(f"min_train_length must be in 1..train_length={train_length}, got {min_train_length}")
        self.min_train_length = None if min_train_length is None else int(min_train_length)
        self.sizes = {"train": int(num_train), "val": int(num_val), "test": int(num_test)}
        for split, n in self.sizes.items():
            if n < 1:
                raise ValueError(f"num_{split} must be a positive integer, got {n}")
        self.gen_seed = int(gen_seed)

    # ------------------------------------------------------------------ subclass API
    def sample(self, rng: np.random.Generator, num: int, length: int) -> tuple[np.ndarray, np.ndarray]:
        """``num`` sequences of one length: token ids and targets, each (num, L) (L may differ from ``length``
        when it counts something else, e.g. operands); rows padded with PAD_ID / IGNORE_INDEX."""
        raise NotImplementedError

    def task_settings(self) -> dict[str, Any]:
        """The settings that, with the lengths and seed, determine the data."""
        raise NotImplementedError

    # ------------------------------------------------------------------ generation
    def cache_settings(self) -> dict[str, Any]:
        return {**self.task_settings(), "lengths": self.lengths, "min_train_length": self.min_train_length, "sizes": self._sizes(), "seed": self.gen_seed}

    def _sizes(self) -> dict[str, int]:
        return {s: n if self.limits[s] is None else min(n, self.limits[s]) for s, n in self.sizes.items()}

    def generate(self, num: int, length: int, split: str = "test", min_length: int | None = None) -> ArraySequences:
        """``num`` sequences of ``length`` (or of lengths uniform in ``min_length..length``) from the stream of ``split``."""
        rng = np.random.default_rng([self.gen_seed, SPLIT_CODE[split], int(length)])
        if min_length is None:
            x, y = self.sample(rng, num, length)
        else:
            per_example = rng.integers(min_length, length + 1, size=num)
            parts = {n: self.sample(rng, int((per_example == n).sum()), int(n)) for n in np.unique(per_example)}
            width = max(p[0].shape[1] for p in parts.values())
            x, y = empty_rows(num, width)
            for n, (xn, yn) in parts.items():
                rows = np.flatnonzero(per_example == n)
                x[rows, : xn.shape[1]] = xn
                y[rows, : yn.shape[1]] = yn
        return ArraySequences(x, y, (x != PAD_ID).sum(1))

    def prepare_data(self) -> None:
        """Nothing to download or cache: data are generated in ``setup``."""

    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
        sizes = self._sizes()
        for split in SPLITS:
            min_length = self.min_train_length if split == "train" else None
            self.splits[split] = self.generate(sizes[split], self.lengths[split], split, min_length)

    def length_dataloader(self, length: int, num: int | None = None, batch_size: int | None = None) -> DataLoader:
        """Test sequences of another length (the length-extrapolation evaluation); ``num`` defaults to the test size."""
        if int(length) < 1:
            raise ValueError(f"length must be a positive integer, got {length}")
        num = int(num or self._sizes()["test"])
        return DataLoader(self.generate(num, int(length), "test"), batch_size=batch_size or self.eval_batch_size, shuffle=False, collate_fn=pad_collate, num_workers=0)


class GroupWordDataModule(StateTrackingDataModule):
    """Word problems of a finite group: token g_t + 1 at position t, target the running product g_1 · ... · g_t.

    Elements are drawn uniformly (identity included); element indices, order of
    composition and the groups on offer are those of ``statetrack.groups``.  Token ids are
    element index + 1 (0 is padding), targets are element indices, ``num_classes = |G|``.
    Parity is ``group: Z2`` (or ``parity``): tokens 1 (bit 0) and 2 (bit 1), target the running parity.

    With ``bos`` every sequence starts with a beginning-of-sequence token (id ``|G| + 1``, no
    target), as in the word-problem code the DeltaProduct experiments build on: a recurrence whose
    state starts at zero can write its starting state there. Lengths count group elements, the
    BOS position comes on top.

    Args:
        group: name of the group, e.g. ``Z2``, ``Z60``, ``Z3xZ4xZ5``, ``S3``, ``A5``, ``A5xZ2``.
        bos: prepend the beginning-of-sequence token.
        **kwargs: lengths, sizes and batching of ``StateTrackingDataModule``.
    """

    name = "group_word"

    def __init__(self, group: str = "S3", bos: bool = False, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(bos, bool):
            raise ValueError(f"bos must be true or false, got {bos!r}")
        self.group = make_group(group)
        self.bos = bos
        self.vocab_size = self.group.order + 1 + bos
        self.num_classes = self.group.order

    @property
    def lead_positions(self) -> int:
        return int(self.bos)

    def task_settings(self) -> dict[str, Any]:
        return {"group": self.group.name, "bos": self.bos}

    def sample(self, rng, num, length):
        words = rng.integers(0, self.group.order, size=(num, length), dtype=np.int64)
        x, y = (words + 1).astype(np.int32), self.group.running_product(words).astype(np.int32)
        if not self.bos:
            return x, y
        first_x = np.full((num, 1), self.group.order + 1, dtype=np.int32)  # the BOS id
        first_y = np.full((num, 1), IGNORE_INDEX, dtype=np.int32)
        return np.concatenate([first_x, x], 1), np.concatenate([first_y, y], 1)


class ModArithDataModule(StateTrackingDataModule):
    """Modular arithmetic with answer after ``=`` (see ``statetrack.modarith`` for the format).

    Here a sequence's *length* is its number of operands: ``train_length: 16`` gives
    expressions with 16 numbers (31 tokens plus brackets and ``=``).  The target is on
    the final ``=`` token and IGNORE_INDEX elsewhere, so ``acc`` and ``seq_acc`` both
    measure the answer.

    Args:
        modulus: m; numbers are 0..m-1 and answers have m classes.
        bracket_prob: probability that a sub-expression of two or more operands is bracketed.
        operators: the operators used, a string of ``+``, ``-``, ``*``.
        **kwargs: lengths (in operands), sizes and batching of ``StateTrackingDataModule``.
    """

    name = "modarith"
    prefix_curve = False

    def __init__(self, modulus: int = 5, bracket_prob: float = 0.0, operators: str = "+-*", **kwargs):
        super().__init__(**kwargs)
        self.modulus = int(modulus)
        self.bracket_prob = float(bracket_prob)
        self.operators = str(operators)
        modarith.check_settings(self.modulus, self.bracket_prob, self.operators)
        self.vocab_size = len(modarith.vocab(self.modulus))
        self.num_classes = self.modulus

    def task_settings(self) -> dict[str, Any]:
        return {"modulus": self.modulus, "bracket_prob": self.bracket_prob, "operators": self.operators}

    def sample(self, rng, num, length):
        ids, answers = modarith.sample_batch(rng, num, length, self.modulus, self.bracket_prob, self.operators)
        width = max((len(i) for i in ids), default=1)
        x, y = empty_rows(num, width)
        for row, seq in enumerate(ids):
            x[row, : len(seq)] = seq
            y[row, len(seq) - 1] = answers[row]
        return x, y
