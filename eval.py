"""Evaluate trained checkpoints: length extrapolation, test accuracy, noise robustness.

``python eval.py experiment=state_s3 ckpt_path=<ckpt> lengths=[128,256,512,1024]``

Hydra composes ``configs/eval.yaml`` (which includes everything of ``train.yaml``);
``evaluate(cfg)`` does the work and can be called from Python (the tests do).  The model
of every checkpoint is rebuilt from the run configuration the LightningModule stores in
it (``checkpoint["run_config"]``); the evaluation data come from the composed config
(``experiment=...``) or, with ``data_from=checkpoint``, from the checkpoint.

Written to the run directory (``outputs/<task>/evals/<date>/``, or ``paths.output_dir``):

* ``metrics.csv``: one row per checkpoint, length and metric (``acc``, ``seq_acc``, ``loss``);
  without ``lengths`` one row per metric on the test split (``length`` empty);
* ``prefix_accuracy.csv`` (per-position tasks): per checkpoint, length and position t,
  the cumulative sequence accuracy of the first t positions and the accuracy at t;
* ``length_extrapolation.png``: accuracy and sequence accuracy against length, with the
  training length marked, and the cumulative sequence accuracy per prefix length at the
  longest evaluated length;
* with ``robustness.enabled=true``: ``robustness.csv`` (checkpoint, omega, eps, metric,
  value) and ``robustness.png`` (accuracy against eps).
"""

from __future__ import annotations

import csv
import math
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import hydra
import torch
import torch.nn.functional as F
from omegaconf import DictConfig, ListConfig, OmegaConf

from lra.base import IGNORE_INDEX
from ssm.backbone import ResidualBlock
from statetrack.metrics import PrefixAccuracy
from train import build, report_errors


# ------------------------------------------------------------------ checkpoints
def load_checkpoint(path: str | Path, fallback_cfg: DictConfig | None = None) -> tuple[torch.nn.Module, DictConfig, Any]:
    """The LightningModule of a checkpoint (weights loaded, eval mode), its run configuration and the
    data module it was trained with (not set up: nothing is read or generated).

    The model is rebuilt from ``checkpoint["run_config"]``; a checkpoint without one (not
    written by train.py) is rebuilt from ``fallback_cfg``, which must then describe the same model.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    ckpt = torch.load(path, map_location="cpu", weights_only=False)
    if ckpt.get("run_config") is not None:
        run_cfg = OmegaConf.create(ckpt["run_config"])
    elif fallback_cfg is not None:
        print(f"{path} holds no run_config: rebuilding the model from the composed configuration")
        run_cfg = fallback_cfg
    else:
        raise ValueError(f"{path} holds no run_config (not written by train.py) and no configuration was given to rebuild the model")
    datamodule, module = build(run_cfg)
    module.load_state_dict(ckpt["state_dict"])
    return module.eval(), run_cfg, datamodule


def _task(datamodule) -> dict:
    """What a model's outputs mean: its dims and, for generated tasks, the task settings (group, modulus, ...)."""
    settings = datamodule.task_settings() if hasattr(datamodule, "task_settings") else {}
    return {"data": type(datamodule).__name__, **datamodule.dims, **settings}


def _check_same_task(path, run_cfg: DictConfig, trained_on, datamodule) -> None:
    want, have = _task(trained_on), _task(datamodule)
    if want != have:
        differ = ", ".join(f"{key}: trained {want.get(key)!r}, evaluating {have.get(key)!r}" for key in sorted(want.keys() | have.keys()) if want.get(key) != have.get(key))
        raise ValueError(
            f"{path} was trained on {want} (task {run_cfg.get('task_name')!r}) but the evaluation data are "
            f"{have} ({differ}): pass the experiment and data overrides it was trained with "
            f"(experiment={run_cfg.get('task_name')}) or data_from=checkpoint"
        )


def _default_label(run_cfg: DictConfig) -> str:
    """``task/Layer``, with the DeltaProduct settings that the state-tracking claims are about."""
    layer = OmegaConf.select(run_cfg, "model.layer", default=None) or {}
    label = f"{run_cfg.get('task_name', 'run')}/{str(layer.get('_target_', 'model')).rsplit('.', 1)[-1]}"
    if "n_householder" in layer:
        label += f" n_h={layer['n_householder']}" + (" [-1,1]" if layer.get("allow_neg_eigval") else " [0,1]")
    return label


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


# ------------------------------------------------------------------ evaluation
@contextmanager
def fourier_noise(model: torch.nn.Module, eps: float, omega: float) -> Iterator[dict]:
    """Add ``eps * cos(omega * t)`` (t = 0, 1, ... the position) to the input of every residual block's sequence layer.

    Yields a dict whose ``"mask"`` entry the caller sets to the batch's (B, L) mask, so that
    padded positions stay zero.  The hooks are removed on exit.
    """
    state: dict[str, Any] = {"mask": None}

    def hook(layer, args):
        z = args[0]  # (B L D)
        t = torch.arange(z.shape[1], device=z.device, dtype=z.dtype)
        noise = (eps * torch.cos(omega * t)).view(1, -1, 1)  # (1 L 1)
        if state["mask"] is not None:
            noise = noise * state["mask"].reshape(-1, z.shape[1], 1).to(z.dtype)  # (B L 1)
        return (z + noise, *args[1:])

    blocks = [m for m in model.modules() if isinstance(m, ResidualBlock)]
    if not blocks:
        raise ValueError(f"{type(model).__name__} has no ssm.backbone.ResidualBlock to perturb")
    handles = [b.layer.register_forward_pre_hook(hook) for b in blocks]
    try:
        yield state
    finally:
        for h in handles:
            h.remove()


@torch.no_grad()
def run(module: torch.nn.Module, loader, device: torch.device, noise_state: dict | None = None) -> dict[str, Any]:
    """Loss and accuracies of a module on a loader: ``loss``, ``acc``, and for per-position outputs
    ``seq_acc``, ``prefix_seq_acc`` and ``position_acc`` (see ``statetrack.metrics``)."""
    module.to(device).eval()
    meter = PrefixAccuracy()
    loss_sum, loss_count, correct, count = 0.0, 0, 0, 0
    per_position = None
    for batch in loader:
        x, mask, y = batch["x"].to(device), batch["mask"].to(device), batch["y"].to(device)
        if noise_state is not None:
            noise_state["mask"] = mask
        logits = module(x, mask)
        per_position = logits.dim() == 3
        flat_logits, flat_y = logits.reshape(-1, logits.shape[-1]).float(), y.reshape(-1)
        scored = int((flat_y != IGNORE_INDEX).sum())
        loss_sum += float(F.cross_entropy(flat_logits, flat_y, ignore_index=IGNORE_INDEX, reduction="sum"))
        loss_count += scored
        if per_position:
            meter.update(logits.argmax(-1), y)
        else:
            correct += int((logits.argmax(-1) == y).sum())
            count += y.numel()
    if per_position is None:
        raise ValueError("the evaluation loader yielded no batches")
    out: dict[str, Any] = {"loss": loss_sum / max(loss_count, 1)}
    if per_position:
        out.update(meter.compute())
    else:
        out["acc"] = correct / max(count, 1)
    return out


def _loaders(datamodule, lengths, num_eval, batch_size) -> list[tuple[int | None, Any]]:
    """(length, loader) pairs: one per requested length, or the test split alone (``lengths`` empty).

    Generated tasks (with ``length_dataloader``) make their test split at its length directly,
    without building the training set; other tasks (LRA) are set up and give their test loader,
    with length None.
    """
    generated = hasattr(datamodule, "length_dataloader")
    if lengths and not generated:
        raise ValueError(f"{type(datamodule).__name__} cannot generate data at other lengths; leave lengths=null to evaluate its test split")
    if generated:
        lengths = lengths or [datamodule.lengths["test"]]
        return [(int(n), datamodule.length_dataloader(int(n), num=num_eval, batch_size=batch_size)) for n in lengths]
    datamodule.prepare_data()
    datamodule.setup("test")
    if batch_size:
        datamodule.eval_batch_size = int(batch_size)
    return [(None, datamodule.test_dataloader())]


def _parse_lengths(raw) -> list[int] | None:
    """``lengths`` from the config: null or [] (the test split), one integer, or a list of them."""
    if raw is None:
        return None
    values = [raw] if isinstance(raw, int) else list(raw) if isinstance(raw, (list, tuple, ListConfig)) else None
    if values is None or not all(isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in values):
        raise ValueError(f"lengths: expected positive integers, e.g. lengths=[128,256], got {raw!r}")
    return values or None


def evaluate(cfg: DictConfig) -> dict[str, list[dict]]:
    """Evaluate the checkpoints of ``cfg`` and write CSV files and plots to ``cfg.paths.output_dir``.

    Returns ``{"metrics": rows, "prefix": rows, "robustness": rows}`` (the CSV rows).
    """
    paths = ([cfg.ckpt_path] if cfg.get("ckpt_path") else []) + list(cfg.get("ckpt_paths") or [])
    if not paths:
        raise ValueError("no checkpoint given: set ckpt_path=<file.ckpt> or ckpt_paths=[a.ckpt,b.ckpt]")
    labels = list(cfg.get("labels") or [])
    if labels and len(labels) != len(paths):
        raise ValueError(f"labels has {len(labels)} entries for {len(paths)} checkpoints")
    out_dir = Path(cfg.paths.output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    device = _device(cfg.get("device", "auto"))

    loaded = [load_checkpoint(p, fallback_cfg=cfg) for p in paths]
    if cfg.get("data_from", "config") == "checkpoint":
        data_cfg = loaded[0][1].data
    elif cfg.get("data_from", "config") == "config":
        data_cfg = cfg.data
    else:
        raise ValueError(f"data_from must be 'config' or 'checkpoint', got {cfg.data_from!r}")
    datamodule = hydra.utils.instantiate(data_cfg)
    for path, (_, run_cfg, trained_on) in zip(paths, loaded):
        _check_same_task(path, run_cfg, trained_on, datamodule)
    labels = labels or [_default_label(run_cfg) for _, run_cfg, _ in loaded]
    train_lengths = [OmegaConf.select(run_cfg, "data.train_length", default=None) for _, run_cfg, _ in loaded]

    lengths = _parse_lengths(cfg.get("lengths"))
    loaders = _loaders(datamodule, lengths, cfg.get("num_eval"), cfg.get("batch_size"))
    test_loader = loaders[0][1] if not lengths else None
    metric_rows, prefix_rows = [], []
    for (module, _, _), label, path in zip(loaded, labels, paths):
        for length, loader in loaders:
            result = run(module, loader, device)
            metric_rows += _metric_rows(result, label=label, checkpoint=str(path), length=length)
            if "prefix_seq_acc" in result:
                skip = getattr(datamodule, "lead_positions", 0)  # positions before the first element (BOS)
                pairs = zip(result["prefix_seq_acc"][skip:], result["position_acc"][skip:])
                for t, (prefix, position) in enumerate(pairs, start=1):
                    prefix_rows.append({"label": label, "length": length, "t": t, "prefix_seq_acc": prefix, "position_acc": position})
    _write_csv(out_dir / "metrics.csv", metric_rows, ["label", "checkpoint", "length", "metric", "value"])
    if prefix_rows:
        _write_csv(out_dir / "prefix_accuracy.csv", prefix_rows, ["label", "length", "t", "prefix_seq_acc", "position_acc"])
    _print_table(metric_rows, "length")

    robustness_rows = []
    if cfg.robustness.enabled:
        if test_loader is None:
            ((_, test_loader),) = _loaders(datamodule, None, cfg.get("num_eval"), cfg.get("batch_size"))
        for (module, _, _), label, path in zip(loaded, labels, paths):
            for omega in _as_list(cfg.robustness.omega):
                for eps in _as_list(cfg.robustness.eps):
                    with fourier_noise(module, float(eps), float(omega)) as state:
                        result = run(module, test_loader, device, noise_state=state)
                    robustness_rows += _metric_rows(result, label=label, checkpoint=str(path), omega=float(omega), eps=float(eps))
        _write_csv(out_dir / "robustness.csv", robustness_rows, ["label", "checkpoint", "omega", "eps", "metric", "value"])
        _print_table(robustness_rows, "eps")

    if cfg.get("plot", True):
        if lengths:
            plot_lengths(out_dir / "length_extrapolation.png", metric_rows, prefix_rows if getattr(datamodule, "prefix_curve", True) else [], train_lengths, labels)
        if robustness_rows:
            plot_robustness(out_dir / "robustness.png", robustness_rows)
    print(f"\nresults written to {out_dir}")
    return {"metrics": metric_rows, "prefix": prefix_rows, "robustness": robustness_rows}


def _metric_rows(result: dict[str, Any], **keys) -> list[dict]:
    """One CSV row per scalar metric of a ``run`` result, each carrying ``keys`` (label, checkpoint, length, ...)."""
    return [{**keys, "metric": m, "value": result[m]} for m in ("acc", "seq_acc", "loss") if m in result]


def _as_list(value) -> list:
    return list(value) if isinstance(value, (list, tuple)) or OmegaConf.is_list(value) else [value]


# ------------------------------------------------------------------ output
def _write_csv(path: Path, rows: list[dict], fields: list[str]) -> None:
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows({k: ("" if r.get(k) is None else r[k]) for k in fields} for r in rows)


def _print_table(rows: list[dict], key: str) -> None:
    """Rows (label, key) x metric columns."""
    metrics = list(dict.fromkeys(r["metric"] for r in rows))
    table: dict[tuple, dict[str, float]] = {}
    for r in rows:
        table.setdefault((r["label"], r.get("omega"), r[key]), {})[r["metric"]] = r["value"]
    width = max([len("label")] + [len(k[0]) for k in table])
    has_omega = any(k[1] is not None for k in table)
    head = f"{'label':<{width}}  " + (f"{'omega':>7}  " if has_omega else "") + f"{key:>7}  " + "  ".join(f"{m:>8}" for m in metrics)
    print("\n" + head + "\n" + "-" * len(head))
    for (label, omega, k), values in table.items():
        cells = "  ".join(f"{values.get(m, math.nan):>8.4f}" for m in metrics)
        print(f"{label:<{width}}  " + (f"{omega:>7g}  " if has_omega else "") + f"{'test' if k is None else k:>7}  {cells}")


def plot_lengths(path: Path, metric_rows: list[dict], prefix_rows: list[dict], train_lengths: list, labels: list[str]) -> None:
    """Accuracy against length (training length marked) and, if given, the prefix curve at the longest length."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    panels = 2 if prefix_rows else 1
    fig, axes = plt.subplots(1, panels, figsize=(6 * panels, 5.0), squeeze=False)
    ax = axes[0, 0]
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, label in enumerate(labels):
        color = colors[i % len(colors)]
        for metric, style in (("seq_acc", "-o"), ("acc", "--s")):
            pts = sorted((r["length"], r["value"]) for r in metric_rows if r["label"] == label and r["metric"] == metric)
            if pts:
                ax.plot([p[0] for p in pts], [p[1] for p in pts], style, color=color, label=f"{label} {metric}", markersize=4)
    for n in sorted({n for n in train_lengths if n}):
        ax.axvline(n, color="grey", linestyle=":", label=f"train length {n}")
    ax.set_xscale("log", base=2)
    ticks = sorted({r["length"] for r in metric_rows if r["length"] is not None} | {n for n in train_lengths if n})
    ax.set_xticks(ticks, [str(n) for n in ticks])
    ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
    ax.set_xlabel("evaluation length")
    ax.set_ylabel("accuracy")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title("length extrapolation")
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2, frameon=False)
    ax.grid(alpha=0.3)
    if prefix_rows:
        ax = axes[0, 1]
        longest = max(r["length"] for r in prefix_rows)
        for i, label in enumerate(labels):
            pts = [(r["t"], r["prefix_seq_acc"]) for r in prefix_rows if r["label"] == label and r["length"] == longest]
            if pts:
                ax.plot([p[0] for p in pts], [p[1] for p in pts], color=colors[i % len(colors)], label=label)
        for n in sorted({n for n in train_lengths if n}):
            ax.axvline(n, color="grey", linestyle=":", label=f"train length {n}")
        ax.set_xlabel("prefix length t")
        ax.set_ylabel("sequences with positions 1..t all right")
        ax.set_ylim(-0.02, 1.02)
        ax.set_title(f"cumulative sequence accuracy (length {longest})")
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2, frameon=False)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_robustness(path: Path, rows: list[dict]) -> None:
    """Accuracy against the noise amplitude eps, one line per checkpoint and omega."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 5.0))
    for label, omega in dict.fromkeys((r["label"], r["omega"]) for r in rows):
        pts = sorted((r["eps"], r["value"]) for r in rows if r["label"] == label and r["omega"] == omega and r["metric"] == "acc")
        ax.plot([p[0] for p in pts], [p[1] for p in pts], "-o", markersize=4, label=f"{label}, ω={omega:g}")
    eps = sorted({r["eps"] for r in rows if r["eps"] > 0})
    ax.set_xscale("symlog", linthresh=eps[0] if eps else 1e-3)
    ax.set_xlabel("ε (input perturbation ε·cos(ω t))")
    ax.set_ylabel("test accuracy")
    ax.set_ylim(-0.02, 1.02)
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2, frameon=False)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


@hydra.main(version_base="1.3", config_path="configs", config_name="eval")
def main(cfg: DictConfig) -> None:
    report_errors(evaluate, cfg)


if __name__ == "__main__":
    main()
