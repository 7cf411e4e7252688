"""LRA Retrieval: do two ACL Anthology Network papers cite each other?  Bytes, 4000 per document.

Files of the LRA release (``tsv_data/``), in ``data_dir`` or ``data_dir/tsv_data``::

    new_aan_pairs.train.tsv   new_aan_pairs.eval.tsv   new_aan_pairs.test.tsv

no header; tab-separated columns ``label``, ``id1``, ``id2``, ``text1``, ``text2`` (the label
is written as a number such as ``1`` or ``1.0``; quotes are ordinary characters).  The
``eval`` file is the validation split.

Each document is encoded as its UTF-8 bytes (ids = byte values, 0 reserved for padding,
see ``lra.text``) and truncated to ``max_length``.  An example's ``x`` is the (2, L) pair,
the shorter document right-padded to the longer; the model encodes both with shared
weights and classifies [u, v, u*v, u-v] (``dual = True``).  The files are large, so rows
are streamed to disk while they are read (``SequenceDataModule.stream_dataset``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import numpy as np
from tqdm.auto import tqdm

from lra.base import MissingDataError, SequenceDataModule
from lra.text import BYTE_VOCAB, encode_bytes

FILES = {"train": "new_aan_pairs.train.tsv", "val": "new_aan_pairs.eval.tsv", "test": "new_aan_pairs.test.tsv"}


def find_files(data_dir: Path) -> dict[str, Path] | None:
    """The three AAN TSVs in ``data_dir`` or ``data_dir/tsv_data``, or None."""
    for folder in (data_dir, data_dir / "tsv_data"):
        files = {split: folder / name for split, name in FILES.items()}
        if all(p.exists() for p in files.values()):
            return files
    return None


def parse_line(line: str, where: str) -> tuple[int, str, str]:
    """(label, text1, text2) of one TSV line; ``where`` names the line in errors."""
    fields = line.rstrip("\r\n").split("\t")
    if len(fields) != 5:
        raise ValueError(f"{where}: expected 5 tab-separated columns (label, id1, id2, text1, text2), got {len(fields)}")
    try:
        label = int(float(fields[0]))
    except ValueError:
        raise ValueError(f"{where}: the label must be a number, got {fields[0][:20]!r}") from None
    if label not in (0, 1):
        raise ValueError(f"{where}: the label must be 0 or 1, got {fields[0]!r}")
    return label, fields[3], fields[4]


def pair_batches(path: Path, max_length: int, batch_size: int = 256) -> Iterator[dict[str, Any]]:
    """Batches ``{"x": list<list<uint8>>, "y", "length"}`` of an AAN TSV file, read as a stream.

    An example's ``x`` holds its two documents, the shorter right-padded with 0 to the
    length of the longer, so it reads back as a (2, L) array.
    """
    import pyarrow as pa

    def pack(docs: list[np.ndarray], labels: list[int]) -> dict[str, Any]:
        pairs = [(a, b) for a, b in zip(docs[::2], docs[1::2])]
        lengths = [max(len(a), len(b), 1) for a, b in pairs]
        values = np.zeros(2 * sum(lengths), dtype=np.uint8)
        inner = np.zeros(2 * len(pairs) + 1, dtype=np.int32)  # document boundaries in `values`
        at = 0
        for k, ((a, b), n) in enumerate(zip(pairs, lengths)):
            values[at : at + len(a)] = a
            values[at + n : at + n + len(b)] = b
            inner[2 * k + 1], inner[2 * k + 2] = at + n, at + 2 * n
            at += 2 * n
        documents = pa.ListArray.from_arrays(pa.array(inner), pa.array(values))
        outer = pa.array(np.arange(0, 2 * len(pairs) + 1, 2, dtype=np.int32))
        return {"x": pa.ListArray.from_arrays(outer, documents), "y": labels, "length": lengths}

    docs: list[np.ndarray] = []
    labels: list[int] = []
    with open(path, encoding="utf-8", errors="replace", newline="") as f:
        for lineno, line in enumerate(tqdm(f, desc=f"reading {path.name}", unit="pair", leave=False), start=1):
            if not line.strip():
                continue
            label, text1, text2 = parse_line(line, f"{path}:{lineno}")
            docs += [encode_bytes(text1, max_length), encode_bytes(text2, max_length)]
            labels.append(label)
            if len(labels) == batch_size:
                yield pack(docs, labels)
                docs, labels = [], []
    if labels:
        yield pack(docs, labels)


class RetrievalDataModule(SequenceDataModule):
    """AAN document pairs as byte sequences (B, 2, L), binary: linked or not.

    Args:
        data_dir: folder with the three ``new_aan_pairs.*.tsv`` files (or ``tsv_data/`` inside it).
        max_length: each document is truncated to this many bytes (4000 in LRA).
        **kwargs: batching options of ``lra.base.SequenceDataModule``.
    """

    name = "retrieval"
    vocab_size = BYTE_VOCAB
    num_classes = 2
    dual = True

    def __init__(self, data_dir: str = "data/retrieval", max_length: int = 4000, **kwargs):
        super().__init__(data_dir=data_dir, **kwargs)
        if max_length < 1:
            raise ValueError(f"max_length must be a positive integer, got {max_length}")
        self.max_length = int(max_length)

    def _files(self) -> dict[str, Path]:
        files = find_files(self.data_dir)
        if files is None:
            wanted = ", ".join(FILES.values())
            raise MissingDataError(
                f"AAN retrieval files not found: looked for {wanted} in {self.data_dir} and {self.data_dir / 'tsv_data'}. "
                f"Prepare them from the LRA release (lra_release.gz, its tsv_data/ folder) with "
                f"`python -m lra.prepare --source <lra_release folder or archive> --dest {self.data_dir.parent}`."
            )
        return files

    def cache_settings(self) -> dict[str, Any]:
        stats = {s: [str(p.resolve()), p.stat().st_size, p.stat().st_mtime_ns] for s, p in self._files().items()}
        return {"files": stats, "max_length": self.max_length}

    def build_splits(self) -> dict[str, Any]:
        import datasets

        features = datasets.Features(
            {"x": datasets.Sequence(datasets.Sequence(datasets.Value("uint8"))), "y": datasets.Value("int64"), "length": datasets.Value("int32")}
        )
        return {split: self.stream_dataset(pair_batches(path, self.max_length), features) for split, path in self._files().items()}
