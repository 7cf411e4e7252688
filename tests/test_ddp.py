"""Two processes with the gloo backend on CPU: different data per rank, identical weights at the end."""

from __future__ import annotations

import os
import subprocess
import sys

import torch

from conftest import ROOT


def test_ddp_two_cpu_processes(tmp_path, data_root):
    probe = tmp_path / "probe"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "tests"), str(ROOT)]), "HYDRA_FULL_ERROR": "1"}
    args = [
        "experiment=lra_listops",
        "debug=smoke",
        "trainer=ddp",
        "trainer.accelerator=cpu",
        "trainer.devices=2",
        "trainer.sync_batchnorm=false",  # SyncBatchNorm needs GPUs
        "trainer.max_steps=3",
        "model.d_model=16",
        "model.layer.d_state=8",
        "data.limit_train=40",
        "data.batch_size=4",
        "+data.min_length=20",
        "+data.max_length=120",
        f"paths.data_dir={data_root}",
        f"hydra.run.dir={tmp_path / 'run'}",
        "+callbacks.probe._target_=ddp_probe.RecordRankData",
        f"+callbacks.probe.out={probe}",
    ]
    result = subprocess.run([sys.executable, "train.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    ranks = [torch.load(probe / f"rank{r}.pt", weights_only=False) for r in (0, 1)]
    assert [r["world"] for r in ranks] == [2, 2]
    seen = [{tuple(s) for s in r["sequences"]} for r in ranks]
    assert len(ranks[0]["sequences"]) == len(ranks[1]["sequences"]) == 3 * 4
    assert not seen[0] & seen[1], "both ranks trained on the same sequences"
    # parameters are identical; batch-norm running statistics stay rank-local without SyncBatchNorm
    a, b = ranks[0]["state_dict"], ranks[1]["state_dict"]
    params = [k for k in a if not k.endswith(("running_mean", "running_var", "num_batches_tracked"))]
    assert len(params) > 10
    for k in params:
        assert torch.equal(a[k], b[k]), k
    assert "test/acc" in result.stdout
