"""eval.py on tiny trained checkpoints: length extrapolation, LRA test accuracy, noise robustness."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from eval import _parse_lengths, evaluate
from train import train

CONFIG_DIR = Path(__file__).resolve().parents[2] / "configs"
# the experiment's own block (DeltaProduct), tiny
TINY_STATE = ["experiment=state_parity", "debug=smoke", "model.d_model=16", "model.layer.n_heads=2", "data.train_length=16", "data.test_length=32"]
# S4D with the Lin init (LegS needs ssm.ptd, which is not on this branch yet)
TINY_LISTOPS = ["experiment=lra_listops", "debug=smoke", "model.layer.d_state=8", "model.layer.init=lin", "model.d_model=16", "data.limit_train=24", "data.batch_size=8"]


def _compose(config_name: str, overrides: list[str]):
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        return compose(config_name=config_name, overrides=["trainer.accelerator=cpu", *overrides])


def _train(out: Path, data_root: Path, overrides: list[str]) -> tuple[Path, dict]:
    metrics = train(_compose("train", [f"paths.output_dir={out}", f"paths.data_dir={data_root}", *overrides, "trainer.max_steps=3"]))
    return out / "checkpoints" / "last.ckpt", metrics


def _read(path: Path) -> list[dict]:
    with path.open() as f:
        return list(csv.DictReader(f))


def _is_png(path: Path) -> bool:
    return path.exists() and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def parity_ckpt(tmp_path_factory, data_root):
    return _train(tmp_path_factory.mktemp("train_parity"), data_root, TINY_STATE)


def test_length_extrapolation_writes_csv_and_png(parity_ckpt, tmp_path, data_root):
    ckpt, train_metrics = parity_ckpt
    cfg = _compose("eval", [f"paths.output_dir={tmp_path}", f"paths.data_dir={data_root}", *TINY_STATE, f"ckpt_path={ckpt}", "lengths=[16,32]", "num_eval=16"])
    result = evaluate(cfg)
    rows = _read(tmp_path / "metrics.csv")
    assert {(r["length"], r["metric"]) for r in rows} == {(n, m) for n in ("16", "32") for m in ("acc", "seq_acc", "loss")}
    assert all(0.0 <= float(r["value"]) <= 1.0 for r in rows if r["metric"] != "loss")
    prefix = _read(tmp_path / "prefix_accuracy.csv")
    assert len(prefix) == 16 + 32
    curve = [float(r["prefix_seq_acc"]) for r in prefix if r["length"] == "32"]
    assert all(a >= b for a, b in zip(curve, curve[1:]))  # cumulative: never increases
    seq_acc_32 = next(float(r["value"]) for r in rows if r["length"] == "32" and r["metric"] == "seq_acc")
    assert curve[-1] == pytest.approx(seq_acc_32)
    assert _is_png(tmp_path / "length_extrapolation.png")
    # the 16 test sequences of length 32 are the training run's test split: same accuracy as trainer.test
    acc_32 = next(r["value"] for r in result["metrics"] if r["length"] == 32 and r["metric"] == "acc")
    assert acc_32 == pytest.approx(train_metrics["test/acc"], abs=1e-6)


def test_prefix_curve_counts_elements_after_a_bos_token(tmp_path, data_root):
    """With data.bos=true the curve starts at the first group element: t = 1..length, every position scored."""
    tiny = [*TINY_STATE, "data.bos=true"]
    ckpt, _ = _train(tmp_path / "run", data_root, tiny)
    cfg = _compose("eval", [f"paths.output_dir={tmp_path / 'eval'}", f"paths.data_dir={data_root}", *tiny, f"ckpt_path={ckpt}", "lengths=[16,32]", "num_eval=16"])
    evaluate(cfg)
    prefix = _read(tmp_path / "eval" / "prefix_accuracy.csv")
    for length in (16, 32):
        rows = [r for r in prefix if r["length"] == str(length)]
        assert [int(r["t"]) for r in rows] == list(range(1, length + 1))
        assert all(0.0 <= float(r["position_acc"]) <= 1.0 for r in rows)  # no unscored (NaN) BOS entry


def test_several_checkpoints_with_labels_and_robustness(parity_ckpt, tmp_path, data_root):
    ckpt, _ = parity_ckpt
    cfg = _compose(
        "eval",
        [f"paths.output_dir={tmp_path}", f"paths.data_dir={data_root}", *TINY_STATE, f"ckpt_paths=[{ckpt},{ckpt}]", "labels=[first,second]",
         "lengths=[8,16]", "num_eval=8", "robustness.enabled=true", "robustness.eps=[0.0,0.5]", "robustness.omega=[0.3,1.0]"],
    )
    evaluate(cfg)
    rows = _read(tmp_path / "metrics.csv")
    assert {r["label"] for r in rows} == {"first", "second"}
    # same weights, same data: same numbers
    by_label = {lab: [r["value"] for r in rows if r["label"] == lab] for lab in ("first", "second")}
    assert by_label["first"] == by_label["second"]
    robust = _read(tmp_path / "robustness.csv")
    assert len(robust) == 2 * 2 * 2 * 3  # labels x omegas x eps x metrics
    assert {float(r["eps"]) for r in robust} == {0.0, 0.5}
    assert _is_png(tmp_path / "robustness.png") and _is_png(tmp_path / "length_extrapolation.png")


def test_wrong_experiment_fails_clearly(parity_ckpt, tmp_path, data_root):
    ckpt, _ = parity_ckpt
    cfg = _compose("eval", [f"paths.output_dir={tmp_path}", "experiment=state_s3", f"ckpt_path={ckpt}", "lengths=[8]"])
    with pytest.raises(ValueError, match="experiment=state_parity"):
        evaluate(cfg)
    # same dims (two classes), another group
    cfg = _compose("eval", [f"paths.output_dir={tmp_path}", "experiment=state_parity", "data.group=S2", f"ckpt_path={ckpt}", "lengths=[8]"])
    with pytest.raises(ValueError, match="'group': 'S2'"):
        evaluate(cfg)
    # same experiment, a data override the run did not have: the message names the key
    cfg = _compose("eval", [f"paths.output_dir={tmp_path}", "experiment=state_parity", "data.bos=true", f"ckpt_path={ckpt}", "lengths=[8]"])
    with pytest.raises(ValueError, match="bos: trained False, evaluating True.*vocab_size: trained 3, evaluating 4"):
        evaluate(cfg)
    with pytest.raises(ValueError, match="no checkpoint"):
        evaluate(_compose("eval", [f"paths.output_dir={tmp_path}"]))


def test_lra_test_accuracy_and_robustness(tmp_path, data_root):
    ckpt, train_metrics = _train(tmp_path / "train", data_root, TINY_LISTOPS)
    out = tmp_path / "eval"
    cfg = _compose("eval", [f"paths.output_dir={out}", f"paths.data_dir={data_root}", *TINY_LISTOPS, f"ckpt_path={ckpt}", "robustness.enabled=true", "robustness.eps=[0.0,1.0]"])
    evaluate(cfg)
    rows = _read(out / "metrics.csv")
    assert {r["metric"] for r in rows} == {"acc", "loss"} and all(r["length"] == "" for r in rows)
    acc = next(float(r["value"]) for r in rows if r["metric"] == "acc")
    assert acc == pytest.approx(train_metrics["test/acc"], abs=1e-6)
    robust = _read(out / "robustness.csv")
    assert {(float(r["eps"]), r["metric"]) for r in robust} == {(e, m) for e in (0.0, 1.0) for m in ("acc", "loss")}
    clean = next(float(r["value"]) for r in robust if float(r["eps"]) == 0.0 and r["metric"] == "acc")
    assert clean == pytest.approx(acc)
    assert _is_png(out / "robustness.png")
    assert not (out / "length_extrapolation.png").exists()


@pytest.mark.parametrize("raw, expected", [(None, None), ([], None), (128, [128]), ([16, 32], [16, 32])])
def test_lengths_accepted(raw, expected):
    assert _parse_lengths(raw) == expected


@pytest.mark.parametrize("raw", [[0], [16, -1], "abc", 1.5, [True], [16.0]])
def test_lengths_rejected_naming_the_key(raw):
    with pytest.raises(ValueError, match=r"^lengths: expected positive integers.*got"):
        _parse_lengths(raw)
