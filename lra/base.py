"""The data contract shared by every task (LRA, state tracking).

A data module yields batches as dictionaries::

    {"x":    (B, L) int64 token ids, or (B, L, d_input) float32 features,
             or (B, 2, L) int64 for paired documents (Retrieval),
     "mask": (B, L) bool, True on real positions (same leading shape as "x"),
     "y":    (B,) int64 class per sequence, or (B, L) int64 class per position
             with IGNORE_INDEX on positions that carry no target}

Sequences are right-padded with PAD_ID (token inputs) or zeros (features), so the
real part of every sequence starts at position 0.  Token id PAD_ID (0) is reserved:
no real token may use it, because the mask of token inputs is ``x != PAD_ID``.  The model is built from the
module's ``dims``: ``vocab_size`` or ``d_input``, ``num_classes``, ``output``
("pool" for one label per sequence, "token" for one per position) and ``dual``
(two documents encoded with shared weights).

Datasets live in ``datasets.Dataset`` objects with the columns ``x``, ``y`` and
``length``; subclasses only say how to build or read them (``build_splits``) and
where the cache lives.  Everything is computed once and saved with
``save_to_disk``; later runs load the cache.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from pathlib import Path
from typing import Any, Iterator

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

PAD_ID = 0
IGNORE_INDEX = -100
SPLITS = ("train", "val", "test")


class MissingDataError(FileNotFoundError):
    """Raised when a task's files are absent; the message names the files and the command that prepares them."""


def settings_key(settings: dict[str, Any]) -> str:
    """A short, stable hash of the settings that determine a cached dataset."""
    blob = json.dumps(settings, sort_keys=True, default=str).encode()
    return hashlib.sha1(blob).hexdigest()[:12]


class ArrowSequences(Dataset):
    """Thin torch view of a ``datasets.Dataset`` with columns ``x`` and ``y`` (numpy formatted)."""

    def __init__(self, hf_dataset):
        self.data = hf_dataset.with_format("numpy", columns=["x", "y"])
        self.lengths = np.asarray(hf_dataset["length"], dtype=np.int64)

    def __len__(self) -> int:
        return len(self.lengths)

    def __getitem__(self, i: int) -> dict[str, np.ndarray]:
        row = self.data[int(i)]
        return {"x": row["x"], "y": row["y"]}


class EpochSampler(Sampler[int]):
    """Deterministic, resumable, rank-aware order of one epoch.

    The order depends only on (seed, epoch): shuffled (``shuffle``) or sequential, and
    with ``bucket`` the shuffled data are cut into windows of ``batch_size * window``
    examples, each window sorted by length and cut into batches, and the batches
    shuffled, so padding per batch stays small while every epoch sees a fresh order.
    Under ``torch.distributed`` whole batches are dealt round-robin to the ranks;
    training orders (``pad_ranks``) repeat a few batches so every rank gets the same
    number of steps.  ``resume(epoch, skip)`` drops the first ``skip`` indices when
    ``epoch`` is iterated next, which is how a run resumed mid-epoch continues exactly
    where it stopped (a resume recorded for another epoch is ignored).
    """

    def __init__(self, lengths: np.ndarray, batch_size: int, shuffle: bool = True, bucket: bool = False, seed: int = 0, window: int = 50, pad_ranks: bool = True):
        self.lengths = np.asarray(lengths)
        self.batch_size = int(batch_size)
        self.shuffle, self.bucket = bool(shuffle), bool(bucket)
        self.seed, self.window, self.pad_ranks = int(seed), int(window), bool(pad_ranks)
        self.epoch = 0
        self._resume: tuple[int, int] | None = None

    def resume(self, epoch: int, skip: int) -> None:
        self._resume = (int(epoch), int(skip))

    def pending_skip(self) -> int:
        """Indices the next iteration will skip."""
        return self._resume[1] if self._resume is not None and self._resume[0] == self.epoch else 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    @staticmethod
    def _world() -> tuple[int, int]:
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            return torch.distributed.get_rank(), torch.distributed.get_world_size()
        return 0, 1

    def _batches(self) -> list[np.ndarray]:
        n = len(self.lengths)
        rng = np.random.default_rng((self.seed, self.epoch))
        order = rng.permutation(n) if self.shuffle else np.arange(n)
        if not self.bucket:
            return [order[i : i + self.batch_size] for i in range(0, n, self.batch_size)]
        span = self.batch_size * self.window
        batches = []
        for start in range(0, n, span):
            chunk = order[start : start + span]
            chunk = chunk[np.argsort(self.lengths[chunk], kind="stable")]
            batches += [chunk[i : i + self.batch_size] for i in range(0, len(chunk), self.batch_size)]
        return [batches[b] for b in rng.permutation(len(batches))] if self.shuffle else batches

    def indices(self) -> list[int]:
        """This rank's indices of the current epoch, before ``skip``."""
        batches = self._batches()
        rank, world = self._world()
        if world > 1:
            if self.pad_ranks and len(batches) % world:
                batches += batches[: world - len(batches) % world]
            batches = batches[rank::world]
        return np.concatenate(batches).tolist() if batches else []

    def __len__(self) -> int:
        rank, world = self._world()
        if world == 1:
            return len(self.lengths)
        return len(self.indices())

    def __iter__(self) -> Iterator[int]:
        skip = self.pending_skip()
        self._resume = None
        yield from self.indices()[skip:]


class ResumableLoader(DataLoader):
    """A DataLoader over an ``EpochSampler`` whose position within the epoch goes into checkpoints.

    Lightning saves ``state_dict()`` with the training loop and calls ``load_state_dict``
    before iterating again, so a run resumed from a mid-epoch checkpoint sees exactly
    the batches the interrupted run had not seen yet.
    """

    def __init__(self, dataset: Dataset, sampler: EpochSampler, **kwargs):
        # Its own generator: creating an iterator draws a worker seed, which must not move
        # the global torch RNG (dropout), or a resumed run would draw different masks.
        generator = torch.Generator().manual_seed(sampler.seed)
        super().__init__(dataset, sampler=sampler, batch_size=sampler.batch_size, generator=generator, **kwargs)
        self.batches_done = 0

    def __iter__(self):
        self.batches_done = self.sampler.pending_skip() // self.sampler.batch_size
        for batch in super().__iter__():
            self.batches_done += 1
            yield batch

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.sampler.epoch, "batches_done": self.batches_done}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.sampler.set_epoch(state["epoch"])
        self.sampler.resume(state["epoch"], state["batches_done"] * self.sampler.batch_size)


def pad_collate(examples: list[dict[str, np.ndarray]]) -> dict[str, torch.Tensor]:
    """Right-pad a list of examples into the batch contract described in the module docstring.

    Token inputs (``(L,)`` or ``(2, L)`` integer arrays) reserve id ``PAD_ID`` for padding,
    so their mask is ``x != PAD_ID``; feature inputs (``(L, d_input)`` float arrays) get
    their mask from their lengths.
    """
    xs = [torch.as_tensor(e["x"]) for e in examples]
    ys = [torch.as_tensor(e["y"]).long() for e in examples]
    if xs[0].is_floating_point():  # features (L, d_input)
        length = max(len(xi) for xi in xs)
        x = torch.zeros(len(xs), length, xs[0].shape[-1], dtype=torch.float32)
        mask = torch.zeros(len(xs), length, dtype=torch.bool)
        for i, xi in enumerate(xs):
            x[i, : len(xi)] = xi
            mask[i, : len(xi)] = True
    else:  # token ids (L,) or paired documents (2, L)
        length = max(xi.shape[-1] for xi in xs)
        x = torch.full((len(xs), *xs[0].shape[:-1], length), PAD_ID, dtype=torch.long)
        for i, xi in enumerate(xs):
            x[i, ..., : xi.shape[-1]] = xi
        mask = x != PAD_ID
    if ys[0].dim() == 0:
        y = torch.stack(ys)
    else:  # one target per position
        y = torch.full((len(ys), length), IGNORE_INDEX, dtype=torch.long)
        for i, yi in enumerate(ys):
            y[i, : len(yi)] = yi
    return {"x": x, "mask": mask, "y": y}


class SequenceDataModule(L.LightningDataModule):
    """Base class of every task's data module.

    Subclasses set the class attributes that describe the model's input and output
    (``vocab_size`` or ``d_input``, ``num_classes``, ``output``, ``dual``) and implement

    * ``cache_settings()``: the settings that determine the processed data (hashed
      into the cache folder name), and
    * ``build_splits()``: return ``{"train": ds, "val": ds, "test": ds}`` of
      ``datasets.Dataset`` objects with columns ``x``, ``y``, ``length``; raise
      ``MissingDataError`` naming the missing files and the preparing command.

    Args:
        data_dir: folder holding the task's files; processed caches go to
            ``<data_dir>/cache``.
        batch_size: training batch size (per device).
        eval_batch_size: validation/test batch size (default: ``batch_size``).
        num_workers: DataLoader worker processes.
        bucket: order training examples so batches hold similar lengths.
        limit_train, limit_val, limit_test: keep only the first n examples of a
            split (smoke tests and quick experiments); ``None`` keeps all.
        seed: seed of the training order.

    Loaders are ``ResumableLoader``s over ``EpochSampler``s, which split the data across
    distributed ranks themselves (the trainer configs set ``use_distributed_sampler: false``)
    and resume exactly mid-epoch.
    """

    name: str = "task"
    vocab_size: int | None = None
    d_input: int | None = None
    num_classes: int = 2
    output: str = "pool"
    dual: bool = False

    def __init__(
        self,
        data_dir: str | os.PathLike = "data",
        batch_size: int = 32,
        eval_batch_size: int | None = None,
        num_workers: int = 0,
        pin_memory: bool = False,
        bucket: bool = True,
        limit_train: int | None = None,
        limit_val: int | None = None,
        limit_test: int | None = None,
        seed: int = 0,
    ):
        super().__init__()
        if batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size}")
        for name, value in (("limit_train", limit_train), ("limit_val", limit_val), ("limit_test", limit_test)):
            if value is not None and value < 1:
                raise ValueError(f"{name} must be a positive integer or None, got {value}")
        self.data_dir = Path(data_dir)
        self.batch_size = int(batch_size)
        self.eval_batch_size = int(eval_batch_size or batch_size)
        self.num_workers = int(num_workers)
        self.pin_memory = bool(pin_memory)
        self.bucket = bool(bucket)
        self.limits = {"train": limit_train, "val": limit_val, "test": limit_test}
        self.seed = int(seed)
        self.splits: dict[str, ArrowSequences] = {}

    # ----------------------------------------------------------------- model dims
    @property
    def dims(self) -> dict[str, Any]:
        """Keyword arguments that size the model for this task (see ``ssm.backbone.SequenceModel``)."""
        return {
            "vocab_size": self.vocab_size,
            "d_input": self.d_input,
            "num_classes": self.num_classes,
            "output": self.output,
            "dual": self.dual,
        }

    # -------------------------------------------------------------- subclass API
    def cache_settings(self) -> dict[str, Any]:
        raise NotImplementedError

    def build_splits(self) -> dict[str, Any]:
        raise NotImplementedError

    # ------------------------------------------------------------------- caching
    @property
    def cache_dir(self) -> Path:
        settings = {"task": self.name, **self.cache_settings()}
        return self.data_dir / "cache" / f"{self.name}-{settings_key(settings)}"

    def prepare_data(self) -> None:
        """Build and cache the processed splits once (runs on one process per node)."""
        import datasets

        done = self.cache_dir / "done.json"
        if done.exists():
            return
        splits = self.build_splits()
        missing = [s for s in SPLITS if s not in splits]
        if missing:
            raise RuntimeError(f"{type(self).__name__}.build_splits() returned no {missing} split")
        tmp = self.cache_dir.with_name(self.cache_dir.name + ".tmp")
        datasets.DatasetDict({s: splits[s] for s in SPLITS}).save_to_disk(str(tmp))
        if self.cache_dir.exists():  # a concurrent builder finished first
            return
        tmp.rename(self.cache_dir)
        settings = {"task": self.name, **self.cache_settings()}
        (self.cache_dir / "done.json").write_text(json.dumps(settings, indent=1, default=str))

    def setup(self, stage: str | None = None) -> None:
        import datasets

        if self.splits:
            return
        if not (self.cache_dir / "done.json").exists():
            self.prepare_data()
        dd = datasets.load_from_disk(str(self.cache_dir))
        for split in SPLITS:
            ds = dd[split]
            limit = self.limits[split]
            if limit is not None and limit < len(ds):
                ds = ds.select(range(limit))
            if len(ds) == 0:
                raise RuntimeError(f"the {split} split of {self.name} in {self.cache_dir} is empty")
            self.splits[split] = ArrowSequences(ds)

    # ---------------------------------------------------------------- loaders
    def _loader(self, split: str, train: bool) -> DataLoader:
        data = self.splits[split]
        sampler = EpochSampler(
            data.lengths,
            self.batch_size if train else self.eval_batch_size,
            shuffle=train,
            bucket=train and self.bucket,
            seed=self.seed,
            pad_ranks=train,
        )
        return ResumableLoader(
            data,
            sampler,
            collate_fn=pad_collate,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            persistent_workers=self.num_workers > 0,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", train=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", train=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", train=False)

    def steps_per_epoch(self) -> int:
        return math.ceil(len(self.splits["train"]) / self.batch_size)
