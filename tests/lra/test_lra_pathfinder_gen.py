"""The Pathfinder generator: labels agree with a flood fill, contours never touch, files in the release's format."""

from __future__ import annotations

import random
from collections import deque

import numpy as np
import pytest
from PIL import Image

import lra.pathfinder_gen as pathfinder_gen
from lra.pathfinder import read_metadata
from lra.pathfinder_gen import DIFFICULTIES, PathfinderParams, Renderer, encode_png, generate_dataset, main


def connected(mask: np.ndarray, a: tuple[int, int], b: tuple[int, int], reach: int = 1) -> bool:
    """Whether ``b`` can be reached from ``a`` through True pixels, stepping up to ``reach`` pixels in each axis."""
    size = mask.shape[0]
    seen = np.zeros_like(mask, dtype=bool)
    queue = deque([a])
    seen[a] = True
    while queue:
        y, x = queue.popleft()
        if (y, x) == b:
            return True
        for dy in range(-reach, reach + 1):
            for dx in range(-reach, reach + 1):
                v, u = y + dy, x + dx
                if 0 <= v < size and 0 <= u < size and mask[v, u] and not seen[v, u]:
                    seen[v, u] = True
                    queue.append((v, u))
    return False


def dilate(mask: np.ndarray, r: int) -> np.ndarray:
    out = mask.copy()
    padded = np.pad(mask, r)
    for dy in range(2 * r + 1):
        for dx in range(2 * r + 1):
            out |= padded[dy : dy + mask.shape[0], dx : dx + mask.shape[1]]
    return out


@pytest.mark.parametrize("size", [32, 64, 128])
def test_label_is_connectivity_of_the_markers(size):
    """The undashed drawing (``solid``) connects the two markers exactly when the label is 1.

    The check would fail if the markers sat on the wrong contours, or if two contours
    touched (then a label-0 pair would be joined through them).
    """
    renderer = Renderer(PathfinderParams.make(size=size))
    rnd = random.Random(size)
    n = 40 if size == 32 else 12
    for i in range(n):
        sample = renderer.render(rnd, label=i % 2)
        a, b = sample.markers
        assert sample.image[a] == 255 and sample.image[b] == 255
        assert connected(sample.solid, a, b) == bool(sample.label)
        assert ((sample.image > 0) <= sample.solid).all()  # the dashed ink lies on the drawn contours
        # contours keep `separation` apart: no contour reaches into another's halo
        halo = renderer.p.separation - 1
        for j, mask in enumerate(sample.contours):
            others = np.logical_or.reduce([m for k, m in enumerate(sample.contours) if k != j])
            assert not (dilate(mask, halo) & others).any()
        assert len(sample.contours) >= 2


@pytest.mark.parametrize("size,overrides", [(64, dict(separation=4, gap=2.0, dash=3.0, num_distractors=3)), (32, dict(separation=3, contour_length=9, num_distractors=2))])
def test_dashed_image_flood_fill_with_gap_bridging(size, overrides):
    """On the saved image itself: a flood fill that jumps the dash gaps (but not the wider
    space between contours) connects the markers exactly for label 1."""
    params = PathfinderParams.make(size=size, **overrides)
    reach = int(np.ceil(params.gap)) + 1
    assert reach < params.separation
    renderer = Renderer(params)
    rnd = random.Random(7)
    for i in range(30):
        sample = renderer.render(rnd, label=i % 2)
        assert connected(sample.image > 0, *sample.markers, reach=reach) == bool(sample.label)
        # with gaps of 2 pixels the dashes are separate pieces without bridging: the image really is dashed
        if sample.label == 1 and params.gap >= 2:
            assert not connected(sample.image > 0, *sample.markers, reach=1)


def test_png_encoder_round_trip(tmp_path):
    image = np.random.default_rng(0).integers(0, 256, size=(17, 23), dtype=np.uint8)
    (tmp_path / "a.png").write_bytes(encode_png(image))
    with Image.open(tmp_path / "a.png") as img:
        assert img.mode == "L" and np.array_equal(np.asarray(img), image)


def test_dataset_in_release_format_is_deterministic(tmp_path):
    params = PathfinderParams.make(size=32)
    one = generate_dataset(tmp_path / "one", 30, params, seed=3, per_folder=12, progress=False)
    generate_dataset(tmp_path / "two", 30, params, seed=3, per_folder=12, num_proc=2, progress=False)
    assert one["num"] == 30
    paths, labels = read_metadata(tmp_path / "one")
    assert len(paths) == 30 and sorted(set(labels)) == [0, 1] and abs(sum(labels) - 15) <= 3
    assert paths[12].relative_to(tmp_path / "one").as_posix() == "imgs/1/sample_0.png"
    line = (tmp_path / "one" / "metadata" / "0.npy").read_text().splitlines()[0].split()
    assert line[0] == "imgs/0" and line[1] == "sample_0.png" and line[3] in ("0", "1")
    for p in paths:  # same seed, same images, whatever the number of processes
        other = tmp_path / "two" / p.relative_to(tmp_path / "one")
        assert np.array_equal(np.asarray(Image.open(p)), np.asarray(Image.open(other)))
    # a complete folder with the same settings is kept; other settings replace it
    stamp = paths[0].stat().st_mtime_ns
    generate_dataset(tmp_path / "one", 30, params, seed=3, per_folder=12, progress=False)
    assert paths[0].stat().st_mtime_ns == stamp
    generate_dataset(tmp_path / "one", 10, params, seed=4, per_folder=12, progress=False)
    assert len(read_metadata(tmp_path / "one")[0]) == 10


def test_cli_takes_difficulty_from_destination(tmp_path, capsys):
    dest = tmp_path / "pathfinder32" / "curv_contour_length_9"
    main(["--dest", str(dest), "--size", "32", "--num", "6", "--seed", "0", "--num-proc", "1"])
    assert "wrote 6 images" in capsys.readouterr().out
    assert len(read_metadata(dest)[0]) == 6
    assert {line.split()[4] for line in (dest / "metadata" / "0.npy").read_text().splitlines()} == {str(DIFFICULTIES["curv_contour_length_9"])}


def test_bad_parameters(monkeypatch):
    with pytest.raises(ValueError, match="difficulty"):
        PathfinderParams.for_difficulty("curv_easy")
    with pytest.raises(ValueError, match="contour_length"):
        PathfinderParams.make(contour_length=0)
    with pytest.raises(ValueError, match="too small"):
        Renderer(PathfinderParams.make(size=8, marker_radius=3.0, separation=3))
    monkeypatch.setattr(pathfinder_gen, "IMAGE_ATTEMPTS", 3)
    with pytest.raises(RuntimeError, match="could not fit"):
        Renderer(PathfinderParams.make(size=16, contour_length=40, separation=4)).render(random.Random(0), 1)
