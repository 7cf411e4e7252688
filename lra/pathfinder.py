"""LRA Pathfinder (32x32, 1024 steps) and Path-X (128x128, 16384 steps): are the two dots connected?

Files as released (``lra_release/pathfinder32``, ``lra_release/pathfinder128``)::

    <root>/imgs/<k>/sample_<j>.png      grayscale PNG
    <root>/metadata/<k>.npy             plain text despite the suffix; one line per image,
                                        space-separated: field 0 = the image's sub-folder relative
                                        to <root> (e.g. "imgs/0"), field 1 = file name, field 3 = label

where ``<root>`` is a difficulty folder, ``curv_baseline``, ``curv_contour_length_9`` or
``curv_contour_length_14`` (the default, the one usually reported).  The data module looks
for it at ``data_dir/pathfinder{32,128}/<difficulty>`` and ``data_dir/<difficulty>``.
(The S4 repository's and the LRA repository's loaders read the same fields and join
``<difficulty>/<field 0>/<field 1>``.)

With ``generate="auto"`` (the default) and no release files, a synthetic set is made with
``lra.pathfinder_gen`` (our own renderer, same folder format) under
``data_dir/generated/pathfinder{size}/<difficulty>-n<num>-seed<seed>/`` and a warning says
so; ``generate=True`` always uses generated data, ``generate=False`` requires the release.

Processing: images are decoded to uint8 and streamed into the cache (Path-X is 200k x
16384 bytes = 3.3 GB, never held in memory as Python objects); missing or empty image
files are skipped with a warning (the release has one empty PNG).  The collate function
scales pixels to [0, 1] and normalises with mean 0.5 and std 0.5 (so to [-1, 1], as the
S4 repository does).  Splits: a seeded 80/10/10 permutation of all images.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Iterator

import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from lra.base import MissingDataError, SequenceDataModule, seeded_split
from lra.image import PixelCollate
from lra.pathfinder_gen import DIFFICULTIES, PathfinderParams, generate_dataset

log = logging.getLogger(__name__)

MAX_MISSING = 0.01  # more missing or empty image files than this fraction (and than 10) is an error


def metadata_files(root: Path) -> list[Path]:
    """``root/metadata/*.npy`` in numeric order of their names (other names after, by name)."""
    files = list((root / "metadata").glob("*.npy"))
    return sorted(files, key=lambda p: (0, int(p.stem), "") if p.stem.isdigit() else (1, 0, p.stem))


def read_metadata(root: Path) -> tuple[list[Path], list[int]]:
    """Image paths and labels listed by the metadata files of a difficulty folder."""
    paths, labels = [], []
    for meta in metadata_files(root):
        for lineno, line in enumerate(meta.read_text().splitlines(), start=1):
            fields = line.split()
            if not fields:
                continue
            if len(fields) < 4:
                raise ValueError(f"{meta}:{lineno}: expected at least 4 space-separated fields (folder, file, index, label, ...), got {line!r}")
            if fields[3] not in ("0", "1"):
                raise ValueError(f"{meta}:{lineno}: field 3 (the label) must be 0 or 1, got {fields[3]!r}")
            paths.append(root / fields[0] / fields[1])
            labels.append(int(fields[3]))
    return paths, labels


def decode(paths: list[str], size: int) -> np.ndarray:
    """uint8 (len(paths), size*size) pixels of grayscale PNG files."""
    out = np.empty((len(paths), size * size), dtype=np.uint8)
    for i, file in enumerate(paths):
        with Image.open(file) as img:
            if img.size != (size, size):
                raise ValueError(f"{file}: expected a {size}x{size} image, got {img.size[0]}x{img.size[1]}")
            out[i] = np.asarray(img.convert("L"), dtype=np.uint8).reshape(-1)
    return out


def _decode_star(args: tuple) -> np.ndarray:
    return decode(*args)


def pixel_batches(paths: list[str], labels: list[int], size: int, num_proc: int = 1, chunk: int = 512, desc: str = "decoding") -> Iterator[dict[str, Any]]:
    """Batches ``{"x": FixedSizeList<uint8>, "y", "length"}`` of decoded images, decoded by ``num_proc`` processes."""
    import pyarrow as pa

    jobs = [(paths[i : i + chunk], size) for i in range(0, len(paths), chunk)]
    bar = tqdm(total=len(paths), desc=desc, unit="img", leave=False)
    pool = get_context("fork").Pool(num_proc) if num_proc > 1 and len(jobs) > 1 else None
    try:
        for k, pixels in enumerate(pool.imap(_decode_star, jobs) if pool else map(_decode_star, jobs)):
            y = labels[k * chunk : k * chunk + len(pixels)]
            bar.update(len(pixels))
            yield {"x": pa.FixedSizeListArray.from_arrays(pa.array(pixels.reshape(-1)), size * size), "y": y, "length": [size * size] * len(y)}
    finally:
        bar.close()
        if pool is not None:
            pool.close()
            pool.join()


class PathfinderDataModule(SequenceDataModule):
    """Pathfinder images as sequences of pixels (one feature per step), binary.

    Args:
        data_dir: folder holding ``pathfinder32/<difficulty>/`` (or ``<difficulty>/``);
            generated data and caches go under it too.
        difficulty: ``curv_baseline``, ``curv_contour_length_9`` or ``curv_contour_length_14``.
        generate: ``"auto"`` generates when the release files are absent, ``True`` always
            generates, ``False`` requires the release files.
        num_generate: images to generate (200k, the size of a released difficulty); with
            all three ``limit_*`` set, only enough for them are generated.
        gen_seed: seed of the generator.
        split_seed: seed of the 80/10/10 split.
        val_fraction, test_fraction: split fractions (the rest is training data).
        mean, std: normalisation of the [0, 1] pixel values.
        num_proc: processes for generating and decoding.
        **kwargs: batching options of ``lra.base.SequenceDataModule``.
    """

    name = "pathfinder"
    d_input = 1
    num_classes = 2
    resolution = 32

    def __init__(
        self,
        data_dir: str = "data/pathfinder",
        difficulty: str = "curv_contour_length_14",
        generate: Any = "auto",
        num_generate: int = 200_000,
        gen_seed: int = 0,
        split_seed: int = 0,
        val_fraction: float = 0.1,
        test_fraction: float = 0.1,
        mean: float = 0.5,
        std: float = 0.5,
        num_proc: int = 2,
        **kwargs,
    ):
        kwargs.setdefault("bucket", False)  # every image has the same length
        super().__init__(data_dir=data_dir, **kwargs)
        if difficulty not in DIFFICULTIES:
            raise ValueError(f"difficulty must be one of {sorted(DIFFICULTIES)}, got {difficulty!r}")
        if generate not in ("auto", True, False):
            raise ValueError(f"generate must be 'auto', true or false, got {generate!r}")
        if num_generate < 10:
            raise ValueError(f"num_generate must be at least 10, got {num_generate}")
        if not (0 < val_fraction and 0 < test_fraction and val_fraction + test_fraction < 1):
            raise ValueError(f"need positive val_fraction and test_fraction summing to less than 1, got {val_fraction} and {test_fraction}")
        self.difficulty = difficulty
        self.generate = generate
        self.num_generate = int(num_generate)
        self.gen_seed = int(gen_seed)
        self.split_seed = int(split_seed)
        self.fractions = (1.0 - val_fraction - test_fraction, float(val_fraction), float(test_fraction))
        self.num_proc = int(num_proc)
        self.collate_fn = PixelCollate(mean, std)

    # ------------------------------------------------------------------ sources
    @property
    def release_folder(self) -> str:
        return f"pathfinder{self.resolution}"

    def official_root(self) -> Path | None:
        """The difficulty folder of the release under ``data_dir``, or None."""
        for root in (self.data_dir / self.release_folder / self.difficulty, self.data_dir / self.difficulty):
            if (root / "imgs").is_dir() and metadata_files(root):
                return root
        return None

    def _generated_count(self) -> int:
        if any(v is None for v in self.limits.values()):
            return self.num_generate
        need = max(math.ceil(self.limits[s] / f) for s, f in zip(("train", "val", "test"), self.fractions))
        return max(10, min(self.num_generate, need))

    def generated_root(self) -> Path:
        return self.data_dir / "generated" / self.release_folder / f"{self.difficulty}-n{self._generated_count()}-seed{self.gen_seed}"

    def gen_params(self) -> PathfinderParams:
        return PathfinderParams.for_difficulty(self.difficulty, size=self.resolution)

    def _source(self) -> tuple[str, Path]:
        if self.generate is not True:
            root = self.official_root()
            if root is not None:
                return "official", root
            if self.generate is False:
                wanted = f"{self.release_folder}/{self.difficulty}/metadata/*.npy and {self.release_folder}/{self.difficulty}/imgs/"
                raise MissingDataError(
                    f"{self.name} files not found: looked for {wanted} in {self.data_dir} (and for {self.difficulty}/ directly in it). "
                    f"Prepare them from the LRA release with `python -m lra.prepare --source <lra_release folder or archive> --dest {self.data_dir.parent}`, "
                    f"or set data.generate=auto to generate a synthetic set "
                    f"(or write one: `python -m lra.pathfinder_gen --dest {self.data_dir / self.release_folder / self.difficulty} --size {self.resolution}`)."
                )
        return "generated", self.generated_root()

    def cache_settings(self) -> dict[str, Any]:
        kind, root = self._source()
        common = {"resolution": self.resolution, "difficulty": self.difficulty, "fractions": self.fractions, "split_seed": self.split_seed}
        if kind == "official":
            stats = [(p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in metadata_files(root)]
            return {"source": kind, "root": str(root.resolve()), "metadata": stats, **common}
        params = dataclasses.asdict(self.gen_params())
        return {"source": kind, "root": str(root.resolve()), "num": self._generated_count(), "gen_seed": self.gen_seed, "params": params, **common}

    def setup(self, stage: str | None = None) -> None:
        if not self.splits and self._source()[0] == "generated":
            log.warning("%s: using SYNTHETIC generated data (lra.pathfinder_gen) from %s", self.name, self.generated_root())
        super().setup(stage)

    # ------------------------------------------------------------------ building
    def build_splits(self) -> dict[str, Any]:
        import datasets

        kind, root = self._source()
        if kind == "generated":
            count = self._generated_count()
            log.warning(
                "%s: no release files under %s; using a SYNTHETIC data set of %d generated %dx%d images (lra.pathfinder_gen) in %s",
                self.name, self.data_dir, count, self.resolution, self.resolution, root,
            )
            generate_dataset(root, count, self.gen_params(), seed=self.gen_seed, num_proc=self.num_proc)
        paths, labels = read_metadata(root)
        present = [i for i, p in enumerate(paths) if p.is_file() and p.stat().st_size > 0]
        if len(present) < len(paths):
            missing = [str(paths[i]) for i in sorted(set(range(len(paths))) - set(present))]
            if len(missing) > max(10, MAX_MISSING * len(paths)):
                raise MissingDataError(f"{len(missing)} of {len(paths)} images listed in {root / 'metadata'} are missing or empty, e.g. {missing[:5]}")
            log.warning("%s: skipping %d missing or empty image files: %s", self.name, len(missing), missing[:5])
        if len(present) < 3:
            raise MissingDataError(f"{root / 'metadata'} lists {len(present)} readable images; need at least 3")
        with Image.open(paths[present[0]]) as first:  # a wrong resolution fails here, before any decoding
            if first.size != (self.resolution, self.resolution):
                raise ValueError(f"{paths[present[0]]}: expected a {self.resolution}x{self.resolution} image, got {first.size[0]}x{first.size[1]} (is data_dir the right task's folder?)")
        features = datasets.Features(
            {"x": datasets.Sequence(datasets.Value("uint8"), length=self.resolution**2), "y": datasets.Value("int64"), "length": datasets.Value("int32")}
        )
        out = {}
        for split, idx in zip(("train", "val", "test"), seeded_split(len(present), self.fractions, self.split_seed)):
            chosen = [present[i] for i in idx]
            batches = pixel_batches([str(paths[i]) for i in chosen], [labels[i] for i in chosen], self.resolution, self.num_proc, desc=f"decoding {self.name} {split}")
            out[split] = self.stream_dataset(batches, features)
        return out


class PathXDataModule(PathfinderDataModule):
    """Path-X: Pathfinder at 128x128 (16384 steps); files in ``data_dir/pathfinder128/<difficulty>``."""

    name = "pathx"
    resolution = 128

    def __init__(self, data_dir: str = "data/pathx", **kwargs):
        super().__init__(data_dir=data_dir, **kwargs)
