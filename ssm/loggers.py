"""Logger factories used by the ``logger/`` configs."""

from __future__ import annotations

import netrc
import os
from pathlib import Path


def wandb_credentials_available() -> bool:
    """True when a W&B API key is configured (environment variable or ``~/.netrc`` entry)."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        return netrc.netrc(os.environ.get("NETRC", str(Path.home() / ".netrc"))).authenticators("api.wandb.ai") is not None
    except (FileNotFoundError, netrc.NetrcParseError, OSError):
        return False


def wandb_logger(offline: bool | None = None, **kwargs):
    """A Lightning ``WandbLogger`` that runs offline when no API key is configured.

    Args:
        offline: force offline (True) or online (False) logging; None decides from the
            credentials (``WANDB_API_KEY`` or ``~/.netrc``) and ``WANDB_MODE``.
        **kwargs: passed to ``lightning.pytorch.loggers.WandbLogger`` (project, name, save_dir, tags, ...).
    """
    from lightning.pytorch.loggers import WandbLogger

    if offline is None:
        mode = os.environ.get("WANDB_MODE", "")
        offline = mode in ("offline", "dryrun") or (mode != "online" and not wandb_credentials_available())
        if offline:
            print("wandb: no API key found (WANDB_API_KEY or ~/.netrc), logging offline; upload later with `wandb sync`.")
    if kwargs.get("save_dir"):
        Path(kwargs["save_dir"]).mkdir(parents=True, exist_ok=True)
    return WandbLogger(offline=offline, **kwargs)
