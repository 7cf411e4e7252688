"""The code in docs/blocks.md runs (and its assertions hold)."""

from __future__ import annotations

import re
from pathlib import Path

import torch

DOC = Path(__file__).resolve().parents[2] / "docs" / "blocks.md"


def test_blocks_doc_example_runs(capsys):
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)
    runnable = [b for b in blocks if "import" in b]
    assert len(runnable) >= 2
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for code in runnable:
            exec(compile(code, str(DOC), "exec"), {"__name__": "docs_blocks"})
    finally:
        torch.set_num_threads(n)
    out = capsys.readouterr().out
    loss = float(re.search(r"loss after training: ([0-9.]+)", out).group(1))
    assert loss < 1.0
