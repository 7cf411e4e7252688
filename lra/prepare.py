"""Arrange the LRA release (and IMDb, CIFAR-10) into the layout the data modules read.

    python -m lra.prepare --source lra_release.gz --source aclImdb_v1.tar.gz --source cifar-10-python.tar.gz --dest data
    python -m lra.prepare --source /datasets/lra_release --dest data --mode link

Each ``--source`` is an archive (.tar, .tar.gz, .tgz, .gz) or a folder.  Wherever they
sit inside it, these folders are recognised and placed under ``--dest``::

    listops-1000/          -> <dest>/listops/listops-1000/        (lra.listops, data=listops)
    tsv_data/              -> <dest>/retrieval/tsv_data/          (lra.retrieval, data=retrieval)
    aclImdb/               -> <dest>/text/aclImdb/                (lra.text, data=text; train/unsup is skipped)
    cifar-10-batches-py/   -> <dest>/image/cifar-10-batches-py/   (lra.image, data=image)
    pathfinder32/          -> <dest>/pathfinder/pathfinder32/     (lra.pathfinder, data=pathfinder)
    pathfinder128/         -> <dest>/pathx/pathfinder128/         (lra.pathfinder, data=pathx)

``<dest>/<task>`` is each data config's default ``data_dir`` (``${paths.data_dir}/<task>``),
so ``--dest`` is the ``paths.data_dir`` of the runs (``data`` by default).  Archives are read
once, as a stream, and only the members inside those folders are written, straight to
their place (the release's pathfinder64/256 are skipped).  Members with absolute paths or
``..`` components, and links and device files, are never written.  Folders are linked
(``--mode link``, the default: one symbolic link per recognised folder) or copied.
Finally the script reports, per task, what the data modules will find and what is missing.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tarfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from tqdm.auto import tqdm

# recognised folder -> where it goes under --dest
COMPONENTS = {
    "listops-1000": "listops/listops-1000",
    "tsv_data": "retrieval/tsv_data",
    "aclImdb": "text/aclImdb",
    "cifar-10-batches-py": "image/cifar-10-batches-py",
    "pathfinder32": "pathfinder/pathfinder32",
    "pathfinder128": "pathx/pathfinder128",
}
# parts of recognised folders that no data module reads
SKIPPED = (("aclImdb", "train", "unsup"),)
SEARCH_DEPTH = 4  # how deep a source folder is searched for recognised folders


@dataclass
class Report:
    """What ``prepare`` did: per recognised folder, where it went; plus what was refused or ignored."""

    placed: dict[str, str] = field(default_factory=dict)
    files: int = 0
    unsafe: list[str] = field(default_factory=list)
    ignored: int = 0


def _component(folders: tuple[str, ...]) -> int | None:
    """Index of the first recognised folder name among a member's folder names, or None."""
    for i, part in enumerate(folders):
        if part in COMPONENTS:
            return i
    return None


def _is_safe(name: str) -> bool:
    """A relative member path without '..' (and without a drive or backslash root)."""
    path = PurePosixPath(name)
    if not path.parts or path.is_absolute() or name.startswith("\\"):
        return False
    return ".." not in path.parts and ":" not in path.parts[0]


class _ProgressReader:
    """File wrapper that advances a tqdm bar by the bytes read (for streaming tar extraction)."""

    def __init__(self, f, bar):
        self.f, self.bar = f, bar

    def read(self, n: int = -1) -> bytes:
        data = self.f.read(n)
        self.bar.update(len(data))
        return data


def extract_archive(archive: Path, dest: Path, report: Report) -> None:
    """Stream ``archive`` once and write the members inside recognised folders to their place under ``dest``."""
    dest_real = os.path.realpath(dest)
    with open(archive, "rb") as raw, tqdm(total=archive.stat().st_size, unit="B", unit_scale=True, desc=f"reading {archive.name}") as bar:
        with tarfile.open(fileobj=_ProgressReader(raw, bar), mode="r|*") as tar:
            for member in tar:
                if not _is_safe(member.name):
                    report.unsafe.append(member.name)
                    continue
                parts = PurePosixPath(member.name).parts
                i = _component(parts if member.isdir() else parts[:-1])
                if i is None or any(parts[i : i + len(skip)] == skip for skip in SKIPPED):
                    report.ignored += 1
                    continue
                if not (member.isfile() or member.isdir()):  # links, devices, fifos
                    report.unsafe.append(member.name)
                    continue
                target = dest.joinpath(COMPONENTS[parts[i]], *parts[i + 1 :])
                if not os.path.realpath(target).startswith(dest_real + os.sep):
                    report.unsafe.append(member.name)
                    continue
                report.placed.setdefault(parts[i], str(dest / COMPONENTS[parts[i]]))
                if member.isdir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                if target.exists() and target.stat().st_size == member.size:
                    continue  # already there (an earlier, interrupted run)
                source = tar.extractfile(member)
                with open(target, "wb") as out:
                    shutil.copyfileobj(source, out, length=1 << 20)
                report.files += 1


def find_components(folder: Path, depth: int = SEARCH_DEPTH) -> dict[str, Path]:
    """Recognised folders inside ``folder`` (or ``folder`` itself), searched ``depth`` levels deep."""
    found: dict[str, Path] = {}
    if folder.name in COMPONENTS:
        return {folder.name: folder}
    base = len(folder.parts)
    for current, dirs, _ in os.walk(folder, followlinks=True):
        here = Path(current)
        for name in list(dirs):
            if name in COMPONENTS and name not in found:
                found[name] = here / name
        # never descend into recognised folders (they hold the 200k images) or too deep
        dirs[:] = [] if len(here.parts) - base >= depth else [d for d in dirs if d not in COMPONENTS]
    return found


def place_folder(source: Path, target: Path, mode: str, report: Report, name: str) -> None:
    """Link or copy one recognised folder to ``target``."""
    if target.exists() or target.is_symlink():
        if target.resolve() == source.resolve():
            report.placed[name] = str(target)
            return
        print(f"  {target} exists and is left as it is (remove it to replace it with {source})")
        report.placed[name] = str(target)
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    if mode == "link":
        target.symlink_to(source.resolve(), target_is_directory=True)
    else:
        files = [Path(r) / f for r, _, fs in os.walk(source) for f in fs]
        skip = [source.joinpath(*s[1:]) for s in SKIPPED if s[0] == name]
        for f in tqdm(files, desc=f"copying {name}", unit="file"):
            if any(f.is_relative_to(s) for s in skip):
                continue
            out = target / f.relative_to(source)
            out.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(f, out)
            report.files += 1
    report.placed[name] = str(target)


def status(dest: Path) -> list[tuple[str, bool, str]]:
    """(task, found, where or what to do) for every LRA task, as the data modules see ``dest``."""
    from lra.image import find_cifar
    from lra.listops import find_official
    from lra.retrieval import find_files
    from lra.text import find_imdb

    rows = []
    listops = find_official(dest / "listops")
    rows.append(("listops", listops is not None, str(listops["train"].parent) if listops else "absent: lra_release/listops-1000 (or generated automatically: data.generate=auto)"))
    imdb = find_imdb(dest / "text")
    rows.append(("text", imdb is not None, str(imdb[1]) if imdb else "absent: aclImdb_v1.tar.gz from https://ai.stanford.edu/~amaas/data/sentiment/"))
    aan = find_files(dest / "retrieval")
    rows.append(("retrieval", aan is not None, str(aan["train"].parent) if aan else "absent: lra_release/tsv_data"))
    cifar = find_cifar(dest / "image")
    rows.append(("image", cifar is not None, str(cifar) if cifar else "absent: cifar-10-python.tar.gz from https://www.cs.toronto.edu/~kriz/cifar.html"))
    for task, folder in (("pathfinder", "pathfinder32"), ("pathx", "pathfinder128")):
        root = dest / task / folder
        levels = sorted(p.parent.name for p in root.glob("*/metadata")) if root.is_dir() else []
        rows.append((task, bool(levels), f"{root}: {', '.join(levels)}" if levels else f"absent: lra_release/{folder} (or generated automatically: data.generate=auto)"))
    return rows


def prepare(sources: list[Path], dest: Path, mode: str = "link") -> Report:
    """Place every recognised folder of ``sources`` under ``dest``; returns what was done."""
    if mode not in ("link", "copy"):
        raise ValueError(f"mode must be 'link' or 'copy', got {mode!r}")
    dest.mkdir(parents=True, exist_ok=True)
    report = Report()
    for source in sources:
        if not source.exists():
            raise FileNotFoundError(f"--source {source} does not exist")
        if source.is_dir():
            found = find_components(source)
            if not found:
                print(f"  {source}: none of {', '.join(COMPONENTS)} found within {SEARCH_DEPTH} levels")
            for name, path in found.items():
                place_folder(path, dest / COMPONENTS[name], mode, report, name)
        elif tarfile.is_tarfile(source):
            extract_archive(source, dest, report)
        else:
            raise ValueError(f"--source {source} is neither a folder nor a tar archive (.tar, .tar.gz, .tgz, .gz)")
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Arrange the LRA release, aclImdb and CIFAR-10 into the layout the data modules read.")
    parser.add_argument("--source", action="append", required=True, type=Path, help="archive or folder; may be given several times")
    parser.add_argument("--dest", required=True, type=Path, help="the data root (paths.data_dir), e.g. data")
    parser.add_argument("--mode", choices=("link", "copy"), default="link", help="how folders (not archives) are placed")
    args = parser.parse_args(argv)
    report = prepare(args.source, args.dest, args.mode)
    print(f"\nplaced under {args.dest}: {', '.join(sorted(report.placed)) or 'nothing'} ({report.files} files written)")
    if report.unsafe:
        print(f"refused {len(report.unsafe)} unsafe members (absolute paths, '..', links or devices), e.g. {report.unsafe[:3]}")
    if report.ignored:
        print(f"ignored {report.ignored} members outside the recognised folders")
    print("\ntask        status   location")
    rows = status(args.dest)
    for task, ok, where in rows:
        print(f"{task:<11} {'found' if ok else 'MISSING':<8} {where}")
    if not all(ok for _, ok, _ in rows):
        print(f"\nadd what is missing with: python -m lra.prepare --source <archive or folder> --dest {args.dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
