"""scripts/reproduce_state_tracking_cpu.sh runs end to end (on tiny settings, so that it cannot rot).

The real settings are the script's own; here REPRO_TRAIN_OVERRIDES / REPRO_EVAL_OVERRIDES shrink
every run to a few steps on a few sequences. What is checked: the four trainings and two
evaluations run, the CSVs hold one row per checkpoint, length and metric with the script's
labels and lengths, the plots are written, and a second call skips the finished runs.
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys

from conftest import ROOT

SCRIPT = ROOT / "scripts" / "reproduce_state_tracking_cpu.sh"
TINY_TRAIN = (
    "data.limit_train=128 data.limit_val=16 data.limit_test=16 "
    "trainer.max_steps=3 trainer.val_check_interval=2 trainer.max_epochs=2"
)


def _run(out):
    env = dict(
        os.environ,
        PYTHON=sys.executable,
        REPRO_TRAIN_OVERRIDES=TINY_TRAIN,
        REPRO_EVAL_OVERRIDES="num_eval=8",
        HYDRA_FULL_ERROR="1",
    )
    return subprocess.run(["bash", str(SCRIPT), str(out)], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=600)


def test_reproduction_script_runs_end_to_end(tmp_path):
    out = tmp_path / "repro"
    proc = _run(out)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    runs = ["parity_deltanet_neg", "parity_deltanet_pos", "s3_deltaproduct_nh2", "s3_deltanet_nh1"]
    for name in runs:
        assert (out / name / "checkpoints" / "last.ckpt").is_file(), name
        assert (out / name / "done").is_file(), name

    expected = {
        "eval_parity": ({"DeltaNet [-1,1]", "DeltaNet [0,1]"}, {128, 256, 512, 1024, 2048}),
        "eval_s3": ({"DeltaProduct n_h=2 [-1,1]", "DeltaNet n_h=1 [-1,1]"}, {16, 32, 64, 128}),
    }
    for folder, (labels, lengths) in expected.items():
        assert (out / folder / "length_extrapolation.png").stat().st_size > 10_000
        with open(out / folder / "metrics.csv", newline="") as f:
            rows = list(csv.DictReader(f))
        assert {r["label"] for r in rows} == labels
        assert {int(r["length"]) for r in rows} == lengths
        assert len(rows) == len(labels) * len(lengths) * 3  # acc, seq_acc, loss
        for r in rows:
            value = float(r["value"])
            assert value >= 0.0 and (r["metric"] == "loss" or value <= 1.0), r

    # finished runs are not trained again
    again = _run(out)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert again.stdout.count("done already") == 4
