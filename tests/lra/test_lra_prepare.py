"""lra.prepare on a tiny fake release: the layout the data modules read, safe extraction, the report."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

from lra_fixtures import write_aan, write_cifar, write_imdb_folder, write_pathfinder_release

from lra.listops import ListOpsDataModule, generate, write_tsv
from lra.pathfinder import PathfinderDataModule
from lra.prepare import main, prepare, status
from lra.retrieval import RetrievalDataModule
from lra.text import TextDataModule


def fake_release(root: Path) -> Path:
    """The LRA archive's layout (lra_release/lra_release/...) with tiny contents, including parts no module reads."""
    top = root / "lra_release" / "lra_release"
    rows = generate(9, seed=0, progress=False)
    for split, part in (("train", rows[:5]), ("val", rows[5:7]), ("test", rows[7:])):
        write_tsv(top / "listops-1000" / f"basic_{split}.tsv", part)
    write_aan(top / "tsv_data", sizes=(4, 2, 2))
    write_pathfinder_release(top / "pathfinder32" / "curv_contour_length_14", n=12)
    write_pathfinder_release(top / "pathfinder64" / "curv_contour_length_14", size=64, n=2)  # not used: skipped
    return root / "lra_release"


def add_bytes(tar: tarfile.TarFile, name: str, data: bytes = b"x") -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def test_archive_is_placed_safely_and_read_by_the_data_modules(tmp_path, capsys):
    release = fake_release(tmp_path / "src")
    write_imdb_folder(tmp_path / "imdb_src")
    archive = tmp_path / "lra_release.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(release, arcname="lra_release")
        # hostile members: none of them may be written
        add_bytes(tar, "../escaped.txt")
        add_bytes(tar, "/tmp/absolute-escape.txt")
        add_bytes(tar, "lra_release/lra_release/tsv_data/../../../../escaped2.txt")
        link = tarfile.TarInfo("lra_release/lra_release/tsv_data/link")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tar.addfile(link)
    imdb_archive = tmp_path / "aclImdb_v1.tar.gz"
    with tarfile.open(imdb_archive, "w:gz") as tar:
        tar.add(tmp_path / "imdb_src" / "aclImdb", arcname="aclImdb")

    dest = tmp_path / "data"
    assert main(["--source", str(archive), "--source", str(imdb_archive), "--dest", str(dest)]) == 0
    out = capsys.readouterr().out
    assert "refused 4 unsafe members" in out
    assert not (tmp_path / "escaped.txt").exists() and not (tmp_path / "escaped2.txt").exists()
    assert not Path("/tmp/absolute-escape.txt").exists() and not (dest / "retrieval" / "tsv_data" / "link").exists()
    # the layout
    assert (dest / "listops" / "listops-1000" / "basic_train.tsv").is_file()
    assert (dest / "retrieval" / "tsv_data" / "new_aan_pairs.eval.tsv").is_file()
    assert (dest / "pathfinder" / "pathfinder32" / "curv_contour_length_14" / "metadata" / "0.npy").is_file()
    assert (dest / "text" / "aclImdb" / "test" / "neg").is_dir() and not (dest / "text" / "aclImdb" / "train" / "unsup").exists()
    assert not list(dest.rglob("pathfinder64"))
    # the report: what is there and what is missing
    rows = {task: (ok, where) for task, ok, where in status(dest)}
    assert {t for t, (ok, _) in rows.items() if ok} == {"listops", "retrieval", "pathfinder", "text"}
    assert "cifar-10-python.tar.gz" in rows["image"][1] and "MISSING" in out
    # every data module reads its part from the default layout <dest>/<task>
    for dm in (
        ListOpsDataModule(data_dir=str(dest / "listops"), generate=False),
        RetrievalDataModule(data_dir=str(dest / "retrieval")),
        PathfinderDataModule(data_dir=str(dest / "pathfinder"), generate=False),
        TextDataModule(data_dir=str(dest / "text")),
    ):
        dm.setup()
        assert len(dm.splits["train"]) > 0
    # a second run finds everything in place and writes nothing new
    assert prepare([archive], dest).files == 0


def test_folders_are_linked_or_copied(tmp_path):
    release = fake_release(tmp_path / "src")
    write_cifar(tmp_path / "src")
    linked = prepare([release, tmp_path / "src" / "cifar-10-batches-py"], tmp_path / "linked", mode="link")
    assert set(linked.placed) == {"listops-1000", "tsv_data", "pathfinder32", "cifar-10-batches-py"}
    assert (tmp_path / "linked" / "image" / "cifar-10-batches-py").is_symlink()
    assert (tmp_path / "linked" / "listops" / "listops-1000").resolve() == (release / "lra_release" / "listops-1000").resolve()
    prepare([release], tmp_path / "copied", mode="copy")
    copied = tmp_path / "copied" / "retrieval" / "tsv_data"
    assert not copied.is_symlink() and (copied / "new_aan_pairs.train.tsv").read_text() == (release / "lra_release" / "tsv_data" / "new_aan_pairs.train.tsv").read_text()
