"""ListOps: generator distribution and labels, determinism, official TSV reading, data module."""

from __future__ import annotations

import statistics

import pytest
import torch

import lra.listops as listops
from lra.base import MissingDataError
from lra.listops import EOS_ID, ListOpsDataModule, generate, read_tsv, tokenize, write_tsv


def stack_evaluate(source: str) -> int:
    """Evaluate an official-format ListOps string with an explicit stack (independent of the generator's tree)."""
    ops = {"[MIN": min, "[MAX": max, "[MED": lambda v: int(statistics.median(v)), "[SM": lambda v: sum(v) % 10}
    stack: list = []
    for tok in source.split():
        if tok in ("(", ")"):
            continue
        if tok in ops:
            stack.append(tok)
        elif tok == "]":
            args = []
            while not isinstance(stack[-1], str):
                args.append(stack.pop())
            stack.append(ops[stack.pop()](args[::-1]))
        else:
            stack.append(int(tok))
    assert len(stack) == 1
    return stack[0]


@pytest.fixture(scope="module")
def generated():
    return generate(300, seed=7, progress=False)


def test_lengths_within_bounds(generated):
    lengths = [len(tokenize(src, append_eos=False)) for src, _ in generated]
    assert all(500 < n < 2000 for n in lengths)
    assert len({src for src, _ in generated}) == len(generated)  # distinct


def test_labels_match_independent_evaluation(generated):
    for src, label in generated:
        assert stack_evaluate(src) == label
    assert {label for _, label in generated} == set(range(10))


def test_operators_and_depth(generated):
    tokens = {tok for src, _ in generated for tok in src.split()}
    assert set(listops.OPERATORS) <= tokens
    assert tokens <= set(listops.VOCAB) | {"(", ")"}
    for src, _ in generated[:50]:
        depth = max_depth = 0
        for tok in src.split():
            depth += tok in listops.OPERATORS
            depth -= tok == "]"
            max_depth = max(max_depth, depth)
        assert max_depth <= 10


def test_same_seed_same_data_and_independent_of_processes(monkeypatch):
    monkeypatch.setattr(listops, "SHARD_SIZE", 20)
    a = generate(50, seed=3, progress=False)
    b = generate(50, seed=3, num_proc=2, progress=False)
    c = generate(50, seed=4, progress=False)
    assert a == b
    assert a != c


def test_render_matches_official_format():
    tree = ("[MAX", [2, ("[SM", [3, 9]), 1])
    assert listops.render(tree) == "( ( ( ( [MAX 2 ) ( ( ( [SM 3 ) 9 ) ] ) ) 1 ) ] )"
    assert stack_evaluate(listops.render(tree)) == listops.evaluate(tree) == 2


def test_read_tsv_official_format(tmp_path):
    path = tmp_path / "basic_test.tsv"
    path.write_text("Source\tTarget\n( ( ( [MAX 2 ) 9 ) ] )\t9\n( ( ( ( [SM 4 ) 7 ) 5 ) ] )\t6\n")
    rows = read_tsv(path)
    assert rows == [("( ( ( [MAX 2 ) 9 ) ] )", 9), ("( ( ( ( [SM 4 ) 7 ) 5 ) ] )", 6)]
    assert tokenize(rows[0][0]) == [listops.TOKEN_ID[t] for t in ("[MAX", "2", "9", "]")] + [EOS_ID]


def test_read_tsv_rejects_wrong_header(tmp_path):
    path = tmp_path / "basic_train.tsv"
    path.write_text("text\tlabel\n1\t1\n")
    with pytest.raises(ValueError, match="Source"):
        read_tsv(path)


def test_datamodule_reads_official_files(tmp_path):
    rows = generate(12, seed=1, progress=False)
    for split, part in (("train", rows[:6]), ("val", rows[6:9]), ("test", rows[9:])):
        write_tsv(tmp_path / "listops-1000" / f"basic_{split}.tsv", part)
    dm = ListOpsDataModule(data_dir=str(tmp_path), generate=False, batch_size=4)
    dm.setup()
    assert len(dm.splits["train"]) == 6 and len(dm.splits["test"]) == 3
    batch = next(iter(dm.val_dataloader()))
    assert batch["x"].shape[0] == 3 and batch["mask"].shape == batch["x"].shape
    assert batch["y"].tolist() == [label for _, label in rows[6:9]]
    lengths = batch["mask"].sum(1).tolist()
    assert lengths == [len(tokenize(src)) for src, _ in rows[6:9]]
    assert (batch["x"][~batch["mask"]] == 0).all()
    # the second set-up loads the cache instead of rebuilding it
    dm2 = ListOpsDataModule(data_dir=str(tmp_path), generate=False, batch_size=4)
    assert dm2.cache_dir == dm.cache_dir and (dm.cache_dir / "done.json").exists()


def test_missing_official_files_name_the_command(tmp_path):
    dm = ListOpsDataModule(data_dir=str(tmp_path / "nothing"), generate=False)
    with pytest.raises(MissingDataError, match=r"basic_train\.tsv.*python -m lra\.prepare"):
        dm.prepare_data()


def test_generated_datamodule_with_limits(tmp_path):
    dm = ListOpsDataModule(data_dir=str(tmp_path), batch_size=5, limit_train=10, limit_val=4, limit_test=4, num_proc=1)
    dm.setup()
    assert [len(dm.splits[s]) for s in ("train", "val", "test")] == [10, 4, 4]
    batches = list(dm.train_dataloader())
    assert sum(len(b["y"]) for b in batches) == 10
    x = batches[0]["x"]
    assert x.dtype == torch.long and int(x.max()) < ListOpsDataModule.vocab_size


def test_bad_arguments():
    with pytest.raises(ValueError, match="generate"):
        ListOpsDataModule(generate="sometimes")
    with pytest.raises(ValueError, match="batch_size"):
        ListOpsDataModule(batch_size=0)
    with pytest.raises(ValueError, match="num_train"):
        ListOpsDataModule(num_train=0)
