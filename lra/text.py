"""LRA Text: IMDb sentiment (positive or negative) from the bytes of a review, at most 4096 of them.

Sources, in this order (``data_dir`` is ``data/text`` by default):

* the Stanford release unpacked: ``data_dir/aclImdb/{train,test}/{pos,neg}/*.txt``
  (one review per file; ``data_dir`` itself may be the ``aclImdb`` folder);
* an IMDb ``datasets.DatasetDict`` saved with ``save_to_disk`` in ``data_dir/imdb`` (or in
  ``data_dir``), with splits ``train`` and ``test`` and columns ``text`` and ``label``.

Tokens are the UTF-8 bytes of the review, as in the LRA release's byte-level encoder:
the id of a byte is its value, so id 0 (the NUL byte, which never occurs in text) is
free for padding and the vocabulary has 256 entries.  Reviews are truncated to
``max_length`` bytes; nothing is cleaned (the ``<br />`` tags stay, as in LRA).

Validation: LRA has no IMDb validation split and evaluates on the test set during
training.  Here ``val_split`` (default 0.1) holds out a seeded 10% of the 25k training
reviews for validation, so model selection never sees the test set; ``val_split=0``
reproduces the LRA protocol (validation = test set, with a warning).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from lra.base import MissingDataError, SequenceDataModule, seeded_split

log = logging.getLogger(__name__)

BYTE_VOCAB = 256  # token id = byte value; 0 is padding
LABELS = {"neg": 0, "pos": 1}


def encode_bytes(text: str | bytes, max_length: int) -> np.ndarray:
    """Byte ids of ``text`` (UTF-8), NUL bytes dropped, truncated to ``max_length``: uint8 (L,)."""
    data = text.encode("utf-8") if isinstance(text, str) else bytes(text)
    ids = np.frombuffer(data, dtype=np.uint8)
    if not ids.all():
        ids = ids[ids != 0]
    return ids[:max_length]


def list_array(arrays: list[np.ndarray]):
    """A pyarrow list array of 1-d uint8 arrays, built from one buffer (``datasets`` would convert them one by one)."""
    import pyarrow as pa

    offsets = np.zeros(len(arrays) + 1, dtype=np.int64)
    np.cumsum([len(a) for a in arrays], out=offsets[1:])
    values = np.concatenate(arrays) if arrays else np.zeros(0, dtype=np.uint8)
    return pa.LargeListArray.from_arrays(pa.array(offsets), pa.array(values.astype(np.uint8, copy=False))).cast(pa.list_(pa.uint8()))


def byte_features():
    import datasets

    return datasets.Features({"x": datasets.Sequence(datasets.Value("uint8")), "y": datasets.Value("int64"), "length": datasets.Value("int32")})


def find_imdb(data_dir: Path) -> tuple[str, Path] | None:
    """``("folder", aclImdb path)`` or ``("saved", save_to_disk path)``, or None if neither is in ``data_dir``."""
    for folder in (data_dir / "aclImdb", data_dir):
        if all((folder / split / label).is_dir() for split in ("train", "test") for label in LABELS):
            return "folder", folder
    for folder in (data_dir / "imdb", data_dir):
        if (folder / "dataset_dict.json").exists():
            return "saved", folder
    return None


def read_folder(root: Path, split: str) -> tuple[list[Path], list[int]]:
    """The review files of one split of an ``aclImdb`` folder (negatives, then positives, sorted by name) and their labels."""
    files, labels = [], []
    for name, label in LABELS.items():
        found = sorted((root / split / name).glob("*.txt"))
        files += found
        labels += [label] * len(found)
    return files, labels


class TextDataModule(SequenceDataModule):
    """IMDb reviews as byte sequences, binary sentiment.

    Args:
        data_dir: folder with ``aclImdb/`` or a saved IMDb ``DatasetDict`` (see the module docstring).
        max_length: reviews are truncated to this many bytes (4096 in LRA).
        val_split: fraction of the training reviews held out for validation (seeded by
            ``split_seed``); 0 validates on the test set, as LRA does.
        split_seed: seed of the validation hold-out.
        **kwargs: batching options of ``lra.base.SequenceDataModule``.
    """

    name = "text"
    vocab_size = BYTE_VOCAB
    num_classes = 2

    def __init__(self, data_dir: str = "data/text", max_length: int = 4096, val_split: float = 0.1, split_seed: int = 0, **kwargs):
        super().__init__(data_dir=data_dir, **kwargs)
        if max_length < 1:
            raise ValueError(f"max_length must be a positive integer, got {max_length}")
        if not 0 <= val_split < 1:
            raise ValueError(f"val_split must be in [0, 1), got {val_split}")
        self.max_length = int(max_length)
        self.val_split = float(val_split)
        self.split_seed = int(split_seed)

    def _source(self) -> tuple[str, Path]:
        found = find_imdb(self.data_dir)
        if found is None:
            wanted = ", ".join(f"aclImdb/{s}/{l}/*.txt" for s in ("train", "test") for l in LABELS)
            raise MissingDataError(
                f"IMDb not found in {self.data_dir}: looked for {wanted} there (or in {self.data_dir} itself), "
                f"and for a save_to_disk DatasetDict (dataset_dict.json) in {self.data_dir / 'imdb'} or {self.data_dir}. "
                f"Download aclImdb_v1.tar.gz (https://ai.stanford.edu/~amaas/data/sentiment/) and run "
                f"`python -m lra.prepare --source aclImdb_v1.tar.gz --dest {self.data_dir.parent}`."
            )
        return found

    def cache_settings(self) -> dict[str, Any]:
        kind, path = self._source()
        if kind == "folder":
            stamp = [(s, (path / s / l).stat().st_mtime_ns) for s in ("train", "test") for l in LABELS]
        else:
            stamp = [(p.name, p.stat().st_mtime_ns) for p in sorted(path.glob("*/state.json"))]
        return {"source": kind, "path": str(path.resolve()), "stamp": stamp, "max_length": self.max_length, "val_split": self.val_split, "split_seed": self.split_seed}

    def _read(self) -> dict[str, tuple[list[np.ndarray], list[int]]]:
        kind, path = self._source()
        out = {}
        for split in ("train", "test"):
            if kind == "folder":
                files, labels = read_folder(path, split)
                ids = [encode_bytes(f.read_bytes(), self.max_length) for f in tqdm(files, desc=f"reading IMDb {split}", unit="review", leave=False)]
            else:
                import datasets

                ds = datasets.load_from_disk(str(path))[split]
                labels = [int(v) for v in ds["label"]]
                ids = [encode_bytes(t, self.max_length) for t in tqdm(ds["text"], desc=f"encoding IMDb {split}", unit="review", leave=False)]
            if not ids:
                raise MissingDataError(f"the IMDb {split} split in {path} is empty")
            out[split] = (ids, labels)
        return out

    def build_splits(self) -> dict[str, Any]:
        import datasets

        data = self._read()

        def make(ids: list[np.ndarray], labels: list[int]):
            return datasets.Dataset.from_dict({"x": list_array(ids), "y": labels, "length": [len(i) for i in ids]}, features=byte_features())

        train_ids, train_labels = data["train"]
        test = make(*data["test"])
        if self.val_split == 0:
            log.warning("IMDb: val_split=0, validating on the test set as LRA does (the selected checkpoint has seen the test set)")
            return {"train": make(train_ids, train_labels), "val": test, "test": test}
        keep, held = seeded_split(len(train_ids), [1 - self.val_split, self.val_split], self.split_seed)
        pick = lambda idx: ([train_ids[i] for i in idx], [train_labels[i] for i in idx])  # noqa: E731
        return {"train": make(*pick(keep)), "val": make(*pick(held)), "test": test}
