"""scripts/reproduce_state_tracking.sh runs end to end at both scales (on tiny settings, so that it cannot rot).

The real settings are the script's own; here REPRO_TRAIN_OVERRIDES / REPRO_EVAL_OVERRIDES shrink
every run to a few steps on a few sequences. What is checked: the trainings and evaluations run,
the CSVs hold one row per checkpoint, length and metric with the script's labels and lengths, the
plots are written, a second call skips the finished runs, an interrupted run resumes from its
checkpoint, and a bad scale or a paper-scale call without a GPU stops with a clear message.
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys

import pytest
import torch

from conftest import ROOT

SCRIPT = ROOT / "scripts" / "reproduce_state_tracking.sh"
TINY_TRAIN = (
    "data.limit_train=128 data.limit_val=16 data.limit_test=16 data.batch_size=32 "
    "trainer.max_steps=3 trainer.val_check_interval=2 trainer.max_epochs=2"
)
PARITY = ({"DeltaNet [-1,1]", "DeltaNet [0,1]"}, {128, 256, 512, 1024, 2048})


def _run(*args, **env_extra):
    env = dict(
        os.environ,
        PYTHON=sys.executable,
        REPRO_TRAIN_OVERRIDES=TINY_TRAIN,
        REPRO_EVAL_OVERRIDES="num_eval=8",
        HYDRA_FULL_ERROR="1",
        **env_extra,
    )
    return subprocess.run(["bash", str(SCRIPT), *map(str, args)], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=900)


def _check_outputs(out, runs, evals):
    for name in runs:
        assert (out / name / "checkpoints" / "last.ckpt").is_file(), name
        assert (out / name / "done").is_file(), name
    for folder, (labels, lengths) in evals.items():
        assert (out / folder / "length_extrapolation.png").stat().st_size > 10_000
        with open(out / folder / "metrics.csv", newline="") as f:
            rows = list(csv.DictReader(f))
        assert {r["label"] for r in rows} == labels
        assert {int(r["length"]) for r in rows} == lengths
        assert len(rows) == len(labels) * len(lengths) * 3  # acc, seq_acc, loss
        for r in rows:
            value = float(r["value"])
            assert value >= 0.0 and (r["metric"] == "loss" or value <= 1.0), r


def test_cpu_scale_runs_end_to_end_and_skips_finished_runs(tmp_path):
    out = tmp_path / "repro"
    proc = _run("cpu", out)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    runs = ["parity_deltanet_neg", "parity_deltanet_pos", "s3_deltaproduct_nh2", "s3_deltanet_nh1"]
    _check_outputs(out, runs, {
        "eval_parity": PARITY,
        "eval_s3": ({"DeltaProduct n_h=2 [-1,1]", "DeltaNet n_h=1 [-1,1]"}, {16, 32, 64, 128}),
    })
    assert not (out / "eval_s5").exists()  # S_5 is paper scale only

    # finished runs are not trained again
    again = _run("cpu", out)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert again.stdout.count("done already") == 4


def test_paper_scale_runs_end_to_end_and_resumes_an_interrupted_run(tmp_path):
    out = tmp_path / "repro"
    proc = _run("paper", out, REPRO_ALLOW_CPU="1")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    runs = ["parity_deltanet_neg", "parity_deltanet_pos", "s3_deltaproduct_nh2", "s3_deltanet_nh1",
            "s5_deltaproduct_nh4", "s5_deltaproduct_nh3"]
    _check_outputs(out, runs, {
        "eval_parity": PARITY,
        "eval_s3": ({"DeltaProduct n_h=2 [-1,1]", "DeltaNet n_h=1 [-1,1]"}, {128, 256, 512, 1024}),
        "eval_s5": ({"DeltaProduct n_h=4 [-1,1]", "DeltaProduct n_h=3 [-1,1]"}, {128, 192, 256, 512}),
    })
    # the paper-scale runs use the experiment files (d_model 128, training length 128) with 8 heads for S_3 and S_5
    def run_config(name):
        return torch.load(out / name / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)["run_config"]

    config = run_config("s5_deltaproduct_nh4")
    assert config["model"]["d_model"] == 128 and config["data"]["train_length"] == 128
    assert config["model"]["layer"]["n_householder"] == 4 and config["data"]["group"] == "S5"
    assert config["model"]["layer"]["n_heads"] == 8 and run_config("s3_deltaproduct_nh2")["model"]["layer"]["n_heads"] == 8
    assert run_config("parity_deltanet_neg")["model"]["layer"]["n_heads"] == 4

    # a run without its "done" marker (interrupted) resumes from its checkpoint; the others are skipped
    (out / "s5_deltaproduct_nh3" / "done").unlink()
    again = _run("paper", out, REPRO_ALLOW_CPU="1")
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert again.stdout.count("done already") == 5
    assert "s5_deltaproduct_nh3: resuming from" in again.stdout
    assert "---- resumed" in (out / "s5_deltaproduct_nh3" / "train.log").read_text()
    assert (out / "s5_deltaproduct_nh3" / "done").is_file()


def test_bad_scale_is_refused_with_usage(tmp_path):
    proc = _run("gpu", tmp_path / "x")
    assert proc.returncode == 2
    assert "scale" in proc.stderr and "'paper' or 'cpu'" in proc.stderr and "'gpu'" in proc.stderr
    assert not (tmp_path / "x").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without a CUDA GPU")
def test_paper_scale_without_gpu_is_refused(tmp_path):
    proc = _run("paper", tmp_path / "x")
    assert proc.returncode == 2
    assert "need a CUDA GPU" in proc.stderr and "reproduce_state_tracking.sh cpu" in proc.stderr
