"""A Pathfinder generator: our own numpy renderer, writing the folder format of the LRA release.

Every image holds two *main* contours of ``contour_length`` dashes and a few shorter
distractor contours, all dashed and smoothly curved, none touching another (any two
contours stay ``separation`` pixels apart).  Two endpoint markers (filled discs) are drawn:

* label 1 (connected): at the two ends of the same main contour;
* label 0 (not connected): at one end of each main contour.

Both classes therefore hold the same number and kind of contours and markers; only
which ends carry the markers differs.  The free ends of the main contours keep the
same clearance as the marked ones, so the empty space around an end does not give the
label away either.

A contour is a chain of ``contour_length`` segments of length ``dash + gap``; the angle
turns by a uniform random amount in [-max_turn, max_turn] degrees from one segment to
the next, and only the first ``dash`` pixels of every segment are inked.  Contours grow
segment by segment and keep clear of the image border, of everything drawn before and
of their own older segments (see ``Renderer``).  Lines are drawn with ``antialias`` x
supersampling and averaged down, so dashes have soft edges.

Output (as released, so ``lra.pathfinder`` reads it unchanged)::

    <dest>/imgs/<k>/sample_<j>.png       grayscale PNG, size x size
    <dest>/metadata/<k>.npy              plain text despite the suffix, one line per image:
                                         "imgs/<k> sample_<j>.png <j> <label> <contour_length> <num_distractors>"
    <dest>/generator.json                the settings; written last, marks the folder complete

Fields 0, 1 and 3 (sub-folder relative to ``<dest>``, file name, label) are the ones the
release defines and the data modules read.

    python -m lra.pathfinder_gen --dest data/pathfinder/pathfinder32/curv_contour_length_14 --size 32 --num 200000 --seed 0

The result depends only on the settings and the seed, not on ``--num-proc``: each
sub-folder (``per_folder`` images) has its own seeded generator.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import random
import shutil
import struct
import time
import zlib
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

# Contour lengths (in dashes) of the three released difficulties.
DIFFICULTIES = {"curv_baseline": 6, "curv_contour_length_9": 9, "curv_contour_length_14": 14}

# Size-dependent drawing defaults, chosen after the LRA release's generator settings
# (Pathfinder32: dash 2 + margin 1, marker radius 1.5; Path-X: thicker lines, marker
# radius 3) and the number of distractor dashes per image (20 at 32, 22 at 64, 35 at 128).
SIZE_DEFAULTS: dict[int, dict[str, float]] = {
    32: {"dash": 2.0, "gap": 1.0, "thickness": 1.0, "marker_radius": 1.5, "separation": 2, "max_turn": 60.0, "distractor_budget": 20},
    64: {"dash": 3.0, "gap": 2.0, "thickness": 1.5, "marker_radius": 2.5, "separation": 2, "max_turn": 45.0, "distractor_budget": 22},
    128: {"dash": 5.0, "gap": 3.0, "thickness": 1.5, "marker_radius": 3.0, "separation": 3, "max_turn": 30.0, "distractor_budget": 35},
}

SAMPLE_STEP = 0.5  # spacing (pixels) of the points that trace a contour; <= 0.5 keeps traces 8-connected
ANGLES = 360  # directions are quantised to one degree
SUBPIXEL = 4  # segment starts are quantised to 1/SUBPIXEL pixel
TURN_TRIES = 6  # turns tried for a segment before the contour starts again
BACKTRACKS = 8  # times a contour backs up two segments before it starts again elsewhere
STARTS = 40  # starts tried for a contour before it is given up
IMAGE_ATTEMPTS = 100  # restarts of an image whose main contours did not fit


@dataclass(frozen=True)
class PathfinderParams:
    """What an image looks like; ``PathfinderParams.make`` fills size-dependent defaults.

    Args:
        size: image side in pixels.
        contour_length: dashes per main contour.
        distractor_length: dashes per distractor contour.
        num_distractors: distractor contours per image (fewer are drawn if they do not fit).
        dash, gap: inked and blank length of every segment, in pixels.
        thickness: line width in pixels.
        marker_radius: radius of the endpoint discs.
        separation: minimum distance (Chebyshev, pixels) between pixels of different contours.
        max_turn: largest change of direction between consecutive segments, in degrees.
        antialias: supersampling factor of the line drawing.
    """

    size: int = 32
    contour_length: int = 14
    distractor_length: int = 4
    num_distractors: int = 5
    dash: float = 2.0
    gap: float = 1.0
    thickness: float = 1.0
    marker_radius: float = 1.5
    separation: int = 2
    max_turn: float = 60.0
    antialias: int = 2

    @classmethod
    def make(cls, size: int = 32, contour_length: int = 14, **overrides: Any) -> "PathfinderParams":
        """Defaults for ``size`` (32, 64, 128; others use the nearest), then ``overrides`` (None values ignored)."""
        base = SIZE_DEFAULTS[min(SIZE_DEFAULTS, key=lambda s: abs(s - size))]
        overrides = {k: v for k, v in overrides.items() if v is not None}
        distractor_length = overrides.pop("distractor_length", max(1, contour_length // 3))
        num_distractors = overrides.pop("num_distractors", int(base["distractor_budget"]) // distractor_length)
        fields = {k: v for k, v in base.items() if k != "distractor_budget"}
        fields.update(overrides)
        params = cls(size=size, contour_length=contour_length, distractor_length=distractor_length, num_distractors=num_distractors, **fields)
        params.check()
        return params

    @classmethod
    def for_difficulty(cls, difficulty: str, size: int = 32, **overrides: Any) -> "PathfinderParams":
        if difficulty not in DIFFICULTIES:
            raise ValueError(f"difficulty must be one of {sorted(DIFFICULTIES)}, got {difficulty!r}")
        return cls.make(size=size, contour_length=DIFFICULTIES[difficulty], **overrides)

    def check(self) -> None:
        if self.size < 8:
            raise ValueError(f"size must be at least 8 pixels, got {self.size}")
        for name in ("contour_length", "distractor_length", "antialias", "separation"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be a positive integer, got {getattr(self, name)}")
        if self.num_distractors < 0:
            raise ValueError(f"num_distractors must be >= 0, got {self.num_distractors}")
        if self.dash < SAMPLE_STEP or self.gap < 0 or self.thickness <= 0 or self.marker_radius < 0:
            raise ValueError(f"need dash >= {SAMPLE_STEP}, gap >= 0, thickness > 0, marker_radius >= 0; got {self}")
        if not 0 <= self.max_turn <= 180:
            raise ValueError(f"max_turn must be in [0, 180] degrees, got {self.max_turn}")


@dataclass
class Sample:
    """One rendered image.

    ``image`` is what is saved; ``solid`` the same contours and markers drawn without
    gaps as a bool mask (the pixels a flood fill may walk through); ``markers`` the two
    marker centres (row, column); ``contours`` one bool mask per contour, main contours
    first.
    """

    image: np.ndarray  # (S, S) uint8
    label: int
    solid: np.ndarray  # (S, S) bool
    markers: tuple[tuple[int, int], tuple[int, int]]
    contours: list[np.ndarray]


def _disc_offsets(radius: float) -> np.ndarray:
    """Integer (row, column) offsets of the pixels within ``radius`` of a pixel centre, (D, 2)."""
    r = int(math.floor(radius))
    dy, dx = np.mgrid[-r : r + 1, -r : r + 1]
    keep = dy**2 + dx**2 <= radius**2 + 1e-9
    return np.stack([dy[keep], dx[keep]], axis=1)


class _Segment:
    """The pixels of one segment shape (a direction and a sub-pixel start), relative to its start pixel.

    ``solid``: flat offsets of the pixels its traced points fall in; ``halo``: those
    pixels grown by the separation; ``ink``: flat offsets, on the supersampled canvas,
    of its inked points; ``box``: (min row, max row, min col, max col) of ``solid``.
    """

    __slots__ = ("solid", "halo", "ink", "box")

    def __init__(self, solid: list, halo: list, ink: np.ndarray, box: tuple):
        self.solid, self.halo, self.ink, self.box = solid, halo, ink, box


def _distinct_rows(codes: np.ndarray, width: int, span: int, stride: int) -> list[list[int]]:
    """The distinct values of every row of ``codes`` (cells ``(dy + span) * width + (dx + span)``),
    as flat offsets ``dy * stride + dx``: one list per row."""
    codes = np.sort(codes, axis=1)
    repeat = np.zeros(codes.shape, dtype=bool)
    repeat[:, 1:] = codes[:, 1:] == codes[:, :-1]
    counts = (~repeat).sum(axis=1).tolist()
    codes = np.sort(np.where(repeat, np.iinfo(np.int64).max, codes), axis=1)  # distinct values first
    codes = codes[:, : max(counts)]
    offsets = ((codes // width - span) * stride + (codes % width - span)).tolist()  # one conversion for all rows
    return [row[:k] for row, k in zip(offsets, counts)]


def _segment_table(points: np.ndarray, inked: np.ndarray, size: int, aa: int, halo_r: int) -> list:
    """``table[sub row][sub col][angle]`` of ``_Segment`` for traced points (A, Q, Q, P, 2) relative to the start pixel."""
    n_angles, q = points.shape[0], points.shape[1]
    pix = np.floor(points).astype(np.int64).reshape(-1, points.shape[3], 2)  # (A*Q*Q P 2)
    span = int(np.abs(pix).max()) + halo_r + 1  # offsets fit in [-span, span]
    width = 2 * span + 1
    solid = _distinct_rows((pix[..., 0] + span) * width + pix[..., 1] + span, width, span, size)
    hy, hx = np.mgrid[-halo_r : halo_r + 1, -halo_r : halo_r + 1]
    grown = pix[:, :, None, :] + np.stack([hy.ravel(), hx.ravel()], axis=1)[None, None]  # (E P H 2)
    halo = _distinct_rows(((grown[..., 0] + span) * width + grown[..., 1] + span).reshape(len(pix), -1), width, span, size)
    fine = np.floor(points.reshape(len(pix), -1, 2)[:, inked] * aa).astype(np.int64)  # (E P' 2)
    fine_span = aa * span
    fine_width = 2 * fine_span + 1
    ink = _distinct_rows((fine[..., 0] + fine_span) * fine_width + fine[..., 1] + fine_span, fine_width, fine_span, size * aa)
    boxes = np.stack([pix[..., 0].min(1), pix[..., 0].max(1), pix[..., 1].min(1), pix[..., 1].max(1)], axis=1).tolist()
    segments = [_Segment(*args) for args in zip(solid, halo, ink, map(tuple, boxes))]
    by_angle = np.array(segments, dtype=object).reshape(n_angles, q, q)
    return [[by_angle[:, qy, qx].tolist() for qx in range(q)] for qy in range(q)]


class Renderer:
    """Draws Pathfinder images with one set of parameters: ``render(rnd, label)`` makes one.

    Contours grow one segment at a time: each new segment turns by a random angle and is
    kept if all its pixels lie inside the image and off every pixel that is taken (other
    contours with their ``separation`` halo, and the contour's own older segments);
    otherwise other turns are tried (towards the centre of the image), then the contour
    backs up two segments, then it starts again elsewhere.  Directions are quantised to
    1 degree and segment starts to 1/4 pixel, so the pixels of every possible segment
    come from a table built once; the stepping loop is plain Python over a few table
    entries and the drawing is numpy.  Pixel membership is decided on exact multiples of
    1/4 and the supersampling factor is a power of two, so the drawn ink always lies in
    the pixels that were checked.
    """

    def __init__(self, params: PathfinderParams):
        params.check()
        if params.antialias not in (1, 2, 4, 8):
            raise ValueError(f"antialias must be 1, 2, 4 or 8, got {params.antialias}")
        self.p = params
        size, aa = params.size, params.antialias
        step = params.dash + params.gap
        t_full = np.arange(0.0, step, SAMPLE_STEP)  # a segment: dash, then gap
        t_last = np.arange(0.0, params.dash, SAMPLE_STEP)  # the last segment ends with its dash
        half = (params.thickness - 1.0) / 2
        across = np.linspace(-half, half, int(math.ceil(2 * half / SAMPLE_STEP)) + 1) if half > 0 else np.zeros(1)
        theta = 2 * np.pi * np.arange(ANGLES) / ANGLES
        unit = np.stack([np.sin(theta), np.cos(theta)], axis=1)  # (A 2) as (row, col)
        normal = np.stack([-unit[:, 1], unit[:, 0]], axis=1)
        sub = np.arange(SUBPIXEL) / SUBPIXEL
        start = np.stack(np.meshgrid(sub, sub, indexing="ij"), axis=-1)  # (Q Q 2)
        halo_r = params.separation - 1

        def table(t: np.ndarray) -> list:
            shape = t[None, :, None, None] * unit[:, None, None, :] + across[None, None, :, None] * normal[:, None, None, :]  # (A T C 2)
            points = start[None, :, :, None, :] + shape.reshape(ANGLES, 1, 1, -1, 2)  # (A Q Q P 2)
            return _segment_table(points, np.repeat(t < params.dash, len(across)), size, aa, halo_r)

        self.full, self.last = table(t_full), table(t_last)
        # corner-to-corner moves, snapped to the 1/4-pixel grid
        self.advance = (np.round(step * unit * SUBPIXEL) / SUBPIXEL).tolist()
        self.end_offset = (t_last[-1] * unit).tolist()
        self.max_turn = params.max_turn * ANGLES / 360
        self.shade = np.rint(np.arange(aa * aa + 1) * 255 / (aa * aa)).astype(np.uint8)  # inked sub-pixels -> gray
        self.disc = _disc_offsets(params.marker_radius)
        self.disc_flat = (self.disc[:, 0] * size + self.disc[:, 1]).tolist()
        hy, hx = np.mgrid[-halo_r : halo_r + 1, -halo_r : halo_r + 1]
        disc_halo = np.unique((self.disc[:, None, :] + np.stack([hy.ravel(), hx.ravel()], axis=1)[None]).reshape(-1, 2), axis=0)
        self.disc_halo = (disc_halo[:, 0] * size + disc_halo[:, 1]).tolist()
        # pixels stay `halo_r` away from the border (so flat-index halos never wrap), and
        # an end stays far enough in for its marker disc and the disc's halo
        self.lo = max(1, halo_r)
        self.hi = size - self.lo  # pixel rows/cols lo .. hi-1 may be used
        self.end_lo = max(self.lo, int(math.floor(params.marker_radius)) + halo_r)
        self.end_hi = size - 1 - self.end_lo  # end pixels end_lo .. end_hi
        if self.end_hi - self.end_lo < 2:
            raise ValueError(f"a {size}x{size} image is too small for markers of radius {params.marker_radius} with separation {params.separation}")

    # ------------------------------------------------------------------ placement
    def _disc_clear(self, y: float, x: float, taken: bytearray) -> bool:
        iy, ix = int(y), int(x)
        if not (self.end_lo <= iy <= self.end_hi and self.end_lo <= ix <= self.end_hi):
            return False
        c = iy * self.p.size + ix
        return not any(taken[c + d] for d in self.disc_flat)

    @staticmethod
    def _stamp(base: int, seg: _Segment, into: bytearray) -> None:
        for d in seg.halo:
            into[base + d] = 1

    def _grow(self, rnd: random.Random, n: int, taken: bytearray, reserve_ends: bool) -> dict | None:
        """A contour of ``n`` segments clear of ``taken`` (which it then joins), or None if none was found."""
        size, lo, hi, q = self.p.size, self.lo, self.hi, SUBPIXEL
        random_ = rnd.random
        for _ in range(STARTS):
            y0 = rnd.randrange(self.end_lo * q, (self.end_hi + 1) * q) / q
            x0 = rnd.randrange(self.end_lo * q, (self.end_hi + 1) * q) / q
            if taken[int(y0) * size + int(x0)] or (reserve_ends and not self._disc_clear(y0, x0, taken)):
                continue
            # head roughly towards the centre: contours longer than the image is wide fit more often
            centre = math.degrees(math.atan2(size / 2 - y0, size / 2 - x0))
            # states[k]: what segment k must avoid: `taken` plus the halos of segments 0..k-2
            # (a segment touches its neighbours, so only older ones are avoided)
            states = [taken]
            corners, angles, placed = [], [], []  # per accepted segment; placed: (start pixel, _Segment)
            backtracks = 0
            while len(corners) < n:
                k = len(corners)
                if k == 0:
                    cy, cx = y0, x0
                else:
                    move = self.advance[angles[-1]]
                    cy, cx = corners[-1][0] + move[0], corners[-1][1] + move[1]
                iy, ix = int(cy), int(cx)
                base = iy * size + ix
                row = (self.last if k == n - 1 else self.full)[int(cy * q) % q][int(cx * q) % q]
                blocked = states[k]
                found = None
                prev = angles[-1] if k else 0
                side = 0  # towards the centre of the image: +1 or -1, worked out when needed
                for attempt in range(TURN_TRIES):
                    if k == 0:
                        b = int(centre + 180 * random_() - 90) % ANGLES
                    elif attempt == 0:
                        b = int(prev + self.max_turn * (2 * random_() - 1)) % ANGLES
                    else:  # blocked: turn towards the centre of the image instead
                        if not side:
                            inward = math.degrees(math.atan2(size / 2 - cy, size / 2 - cx))
                            side = 1 if (inward - prev) % ANGLES < ANGLES / 2 else -1
                        b = int(prev + side * self.max_turn * random_()) % ANGLES
                    seg = row[b]
                    y_min, y_max, x_min, x_max = seg.box
                    if iy + y_min < lo or iy + y_max >= hi or ix + x_min < lo or ix + x_max >= hi:
                        continue
                    for d in seg.solid:
                        if blocked[base + d]:
                            break
                    else:
                        if k == n - 1 and reserve_ends and not self._disc_clear(cy + self.end_offset[b][0], cx + self.end_offset[b][1], taken):
                            continue
                        found = seg
                        break
                if found is None:
                    if k < 2 or backtracks >= min(BACKTRACKS, n // 2):
                        break
                    backtracks += 1
                    del corners[-2:], angles[-2:], placed[-2:], states[-2:]
                    continue
                corners.append((cy, cx))
                angles.append(b)
                placed.append((base, found))
                if k == 0:
                    states.append(taken)
                else:
                    nxt = bytearray(blocked)
                    self._stamp(*placed[k - 1], nxt)
                    states.append(nxt)
            if len(corners) < n:
                continue
            ey, ex = corners[-1][0] + self.end_offset[angles[-1]][0], corners[-1][1] + self.end_offset[angles[-1]][1]
            taken[:] = states[n]  # taken plus segments 0..n-2
            self._stamp(*placed[n - 1], taken)
            if reserve_ends:  # the discs a marker may get at either end
                for y, x in ((y0, x0), (ey, ex)):
                    c = int(y) * size + int(x)
                    for d in self.disc_halo:
                        taken[c + d] = 1
            return {"placed": placed, "start": (y0, x0), "end": (ey, ex)}
        return None

    # ------------------------------------------------------------------ drawing
    def render(self, rnd: random.Random, label: int) -> Sample:
        """One image with the given label (1: both markers on the same contour)."""
        p = self.p
        for _ in range(IMAGE_ATTEMPTS):
            taken = bytearray(p.size * p.size)
            first = self._grow(rnd, p.contour_length, taken, reserve_ends=True)
            second = self._grow(rnd, p.contour_length, taken, reserve_ends=True) if first is not None else None
            if second is not None:
                break
        else:
            raise RuntimeError(f"could not fit two contours in a {p.size}x{p.size} image with {p}; use shorter contours, a larger image or a smaller separation")
        contours = [first, second]
        for _ in range(p.num_distractors):
            extra = self._grow(rnd, p.distractor_length, taken, reserve_ends=False)
            if extra is not None:
                contours.append(extra)

        if label == 1:
            markers, owners = [first["start"], first["end"]], (0, 0)
        else:
            markers, owners = [rnd.choice((first["start"], first["end"])), rnd.choice((second["start"], second["end"]))], (0, 1)
        markers_pix = [(int(y), int(x)) for y, x in markers]

        size, aa = p.size, p.antialias
        wide = size * aa
        ink, masks = [], []
        for contour in contours:
            pixels = []
            for base, seg in contour["placed"]:
                pixels += [base + d for d in seg.solid]
                fine_base = (base // size) * aa * wide + (base % size) * aa
                ink += [fine_base + d for d in seg.ink]
            mask = np.zeros(size * size, dtype=bool)
            mask[pixels] = True
            masks.append(mask.reshape(size, size))
        fine = np.zeros(wide * wide, dtype=np.uint8)
        fine[ink] = 1
        image = self.shade[fine.reshape(size, aa, size, aa).sum(axis=(1, 3))]  # (S S) uint8: 255 * inked fraction
        for (r, c), owner in zip(markers_pix, owners):
            disc = self.disc + np.array([r, c])
            image[disc[:, 0], disc[:, 1]] = 255
            masks[owner][disc[:, 0], disc[:, 1]] = True
        solid = np.logical_or.reduce(masks)
        return Sample(image=image, label=int(label), solid=solid, markers=(markers_pix[0], markers_pix[1]), contours=masks)


# ---------------------------------------------------------------------- data sets on disk
def encode_png(image: np.ndarray, level: int = 6) -> bytes:
    """A grayscale 8-bit PNG of a (H, W) uint8 array (no filtering; zlib at ``level``).

    Written by hand because it is several times faster than going through PIL for
    images this small.
    """
    if image.dtype != np.uint8 or image.ndim != 2:
        raise ValueError(f"image must be a 2-d uint8 array, got {image.dtype} {image.shape}")
    height, width = image.shape

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    rows = np.zeros((height, width + 1), dtype=np.uint8)  # every row starts with filter type 0
    rows[:, 1:] = image
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit grayscale
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows.tobytes(), level)) + chunk(b"IEND", b"")


_RENDERERS: dict[PathfinderParams, Renderer] = {}  # per process: the tables take a moment to build


def _renderer(params: PathfinderParams) -> Renderer:
    if params not in _RENDERERS:
        _RENDERERS[params] = Renderer(params)
    return _RENDERERS[params]


def _write_folder(args: tuple) -> int:
    """Render and save one sub-folder of images with its metadata file; returns the number written."""
    dest, sub, count, seed, params_dict, compress_level = args
    params = PathfinderParams(**params_dict)
    renderer = _renderer(params)
    rnd = random.Random(seed * 1_000_003 + sub)
    labels = [j % 2 for j in range(count)]
    rnd.shuffle(labels)  # balanced classes in every folder
    folder = Path(dest) / "imgs" / str(sub)
    folder.mkdir(parents=True, exist_ok=True)
    lines = []
    for j, label in enumerate(labels):
        sample = renderer.render(rnd, label)
        name = f"sample_{j}.png"
        (folder / name).write_bytes(encode_png(sample.image, compress_level))
        lines.append(f"imgs/{sub} {name} {j} {int(label)} {params.contour_length} {params.num_distractors}\n")
    meta = Path(dest) / "metadata" / f"{sub}.npy"
    meta.parent.mkdir(parents=True, exist_ok=True)
    tmp = meta.with_suffix(".tmp")
    tmp.write_text("".join(lines))
    tmp.rename(meta)
    return count


def generate_dataset(
    dest: str | os.PathLike,
    num: int,
    params: PathfinderParams,
    seed: int = 0,
    per_folder: int = 1000,
    num_proc: int = 1,
    compress_level: int = 6,
    progress: bool = True,
) -> dict[str, Any]:
    """Write ``num`` images in the release's folder format to ``dest``; returns the settings written to generator.json.

    An existing complete folder with the same settings is kept as it is; a folder with
    other settings or an unfinished one is replaced.
    """
    if num < 1 or per_folder < 1:
        raise ValueError(f"num and per_folder must be positive, got num={num}, per_folder={per_folder}")
    params.check()
    dest = Path(dest)
    settings = {"num": int(num), "seed": int(seed), "per_folder": int(per_folder), "params": dataclasses.asdict(params), "generator": "lra.pathfinder_gen"}
    marker = dest / "generator.json"
    if marker.exists():
        found = json.loads(marker.read_text())
        if {k: found.get(k) for k in settings} == settings:
            return found
    for old in ("imgs", "metadata", "generator.json"):  # a stale or partial generated set
        target = dest / old
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()
    dest.mkdir(parents=True, exist_ok=True)
    folders = [(str(dest), k, min(per_folder, num - k * per_folder), seed, dataclasses.asdict(params), compress_level) for k in range(math.ceil(num / per_folder))]
    bar = tqdm(total=num, desc=f"generating Pathfinder {params.size}x{params.size}", unit="img", disable=not progress)
    start = time.perf_counter()
    if num_proc > 1 and len(folders) > 1:
        with get_context("fork").Pool(min(num_proc, len(folders))) as pool:
            for n in pool.imap_unordered(_write_folder, folders):
                bar.update(n)
    else:
        for job in folders:
            bar.update(_write_folder(job))
    bar.close()
    settings["seconds"] = round(time.perf_counter() - start, 2)
    marker.write_text(json.dumps(settings, indent=1))
    return settings


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Generate a Pathfinder data set in the LRA release's folder format.")
    parser.add_argument("--dest", required=True, help="difficulty folder to write, e.g. data/pathfinder/pathfinder32/curv_contour_length_14")
    parser.add_argument("--size", type=int, default=32, help="image side: 32 (Pathfinder), 64, 128 (Path-X)")
    parser.add_argument("--num", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--difficulty", choices=sorted(DIFFICULTIES), default=None, help="sets --contour-length as in the release (default: taken from the --dest folder name, else 14)")
    parser.add_argument("--contour-length", type=int, default=None, help="dashes per main contour")
    parser.add_argument("--distractor-length", type=int, default=None)
    parser.add_argument("--num-distractors", type=int, default=None)
    parser.add_argument("--dash", type=float, default=None)
    parser.add_argument("--gap", type=float, default=None)
    parser.add_argument("--thickness", type=float, default=None)
    parser.add_argument("--marker-radius", type=float, default=None)
    parser.add_argument("--separation", type=int, default=None)
    parser.add_argument("--max-turn", type=float, default=None, help="degrees")
    parser.add_argument("--per-folder", type=int, default=1000)
    parser.add_argument("--num-proc", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args(argv)
    difficulty = args.difficulty or (Path(args.dest).name if Path(args.dest).name in DIFFICULTIES else None)
    length = args.contour_length or (DIFFICULTIES[difficulty] if difficulty else 14)
    params = PathfinderParams.make(
        size=args.size,
        contour_length=length,
        distractor_length=args.distractor_length,
        num_distractors=args.num_distractors,
        dash=args.dash,
        gap=args.gap,
        thickness=args.thickness,
        marker_radius=args.marker_radius,
        separation=args.separation,
        max_turn=args.max_turn,
    )
    settings = generate_dataset(args.dest, args.num, params, seed=args.seed, per_folder=args.per_folder, num_proc=args.num_proc)
    rate = settings["num"] / max(settings.get("seconds", 0) or 1e-9, 1e-9)
    print(f"wrote {settings['num']} images to {args.dest} ({rate:.0f} images/s)")


if __name__ == "__main__":
    main()
