"""Writers of tiny LRA fixtures in the official file formats, and the tiny-model overrides of smoke runs.

A plain module (imported by the test files), not a ``conftest.py``: a second conftest
module would shadow ``from conftest import ...`` in the tests at the top level.
"""

from __future__ import annotations

import pickle
import random
from pathlib import Path

import numpy as np
from PIL import Image

# a small S4D for the debug=smoke runs of every task (each a few seconds on CPU; the FFT
# convolution is several times faster on CPU than the chunked scan at these lengths)
TINY = ["debug=smoke", "model.d_model=16", "model.layer.d_state=8", "model.n_layers=1", "model.layer.mode=fft", "trainer.max_steps=2"]

WORDS = "the film was great awful boring moving plot actor scene <br /><br /> café naïve ending".split()


def text(rng: random.Random, n_words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n_words))


def write_imdb_folder(root: Path, per_class: int = 6, seed: int = 0) -> Path:
    """``root/aclImdb/{train,test}/{pos,neg}/<id>_<rating>.txt`` as in aclImdb_v1 (plus the unused train/unsup)."""
    rng = random.Random(seed)
    for split in ("train", "test"):
        for label in ("pos", "neg"):
            folder = root / "aclImdb" / split / label
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(per_class):
                rating = rng.randint(7, 10) if label == "pos" else rng.randint(1, 4)
                (folder / f"{i}_{rating}.txt").write_text(text(rng, rng.randint(5, 40)), encoding="utf-8")
    (root / "aclImdb" / "train" / "unsup").mkdir(parents=True, exist_ok=True)
    (root / "aclImdb" / "train" / "unsup" / "0_0.txt").write_text("unlabelled", encoding="utf-8")
    return root / "aclImdb"


def write_aan(folder: Path, sizes=(8, 4, 4), seed: int = 0) -> Path:
    """``new_aan_pairs.{train,eval,test}.tsv``: no header; label, id1, id2, text1, text2 (labels written as floats)."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for split, n in zip(("train", "eval", "test"), sizes):
        lines = []
        for i in range(n):
            label = i % 2
            lines.append(f"{float(label)}\tP{i:02d}-1\tP{i:02d}-2\t{text(rng, rng.randint(3, 30))} \"quoted\"\t{text(rng, rng.randint(3, 30))}\n")
        (folder / f"new_aan_pairs.{split}.tsv").write_text("".join(lines), encoding="utf-8")
    return folder


def write_cifar(root: Path, per_batch: int = 10, seed: int = 0) -> Path:
    """``cifar-10-batches-py/data_batch_1..5`` and ``test_batch``: pickled dicts with b'data' (N, 3072) uint8 and b'labels'."""
    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {b"batch_label": name.encode(), b"data": rng.integers(0, 256, size=(per_batch, 3072), dtype=np.uint8), b"labels": rng.integers(0, 10, size=per_batch).tolist()}
        with open(folder / name, "wb") as f:
            pickle.dump(batch, f)
    return folder


def write_pathfinder_release(root: Path, size: int = 32, n: int = 20, per_folder: int = 8, seed: int = 0, empty: int | None = None) -> Path:
    """A difficulty folder as released: ``imgs/<k>/sample_<j>.png`` and ``metadata/<k>.npy`` text lines.

    Image content encodes its label (a bright top-left pixel for label 1) so tests can check
    that labels stay attached to their images.  ``empty``: index of an image written as an
    empty file (the release has one).
    """
    rng = np.random.default_rng(seed)
    for k in range((n + per_folder - 1) // per_folder):
        (root / "imgs" / str(k)).mkdir(parents=True, exist_ok=True)
        (root / "metadata").mkdir(parents=True, exist_ok=True)
        lines = []
        for j in range(min(per_folder, n - k * per_folder)):
            i = k * per_folder + j
            label = int(rng.integers(2))
            image = rng.integers(0, 200, size=(size, size), dtype=np.uint8)
            image[0, 0] = 255 if label else 0
            path = root / "imgs" / str(k) / f"sample_{j}.png"
            if i == empty:
                path.write_bytes(b"")
            else:
                Image.fromarray(image).save(path)
            lines.append(f"imgs/{k} sample_{j}.png {j} {label} 14 5\n")
        (root / "metadata" / f"{k}.npy").write_text("".join(lines))
    return root
