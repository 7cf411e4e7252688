"""ListOps (Long Range Arena): nested list operations over the digits 0-9, ten classes.

Two sources, one data module:

* the official release, ``basic_{train,val,test}.tsv`` (header ``Source\\tTarget``) in
  ``data_dir`` or ``data_dir/listops-1000``;
* otherwise a freshly generated data set with the distribution of the LRA generator
  (operators ``[MIN``, ``[MAX``, ``[MED``, ``[SM``; values 0-9; depth <= 10; 2-10
  arguments; kept only when 500 < length < 2000 tokens; 96k / 2k / 2k examples).

The sampler follows the LRA release: a node above the maximum depth becomes an
operator with probability ``branch_prob`` = 0.25 and a digit otherwise.  (With 0.75 the
trees would almost surely exceed 2000 tokens.)  Generated expressions are rendered in
the official text format, parentheses included, so both sources go through the same
tokeniser.  The median of an even number of arguments is the mean of the two middle
values rounded down.

Tokenisation: drop the parentheses, split on whitespace; the 15 symbols (4 operators,
``]``, 10 digits) get ids after ``<pad>`` (0), ``<unk>`` (1) and ``<eos>`` (2), and
``<eos>`` ends every sequence.

Run ``python -m lra.listops --dest data/listops`` to write the generated data
set as TSV files in the official format.
"""

from __future__ import annotations

import argparse
import csv
import math
import random
import statistics
import sys
from functools import partial
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Union

from tqdm.auto import tqdm

from lra.base import MissingDataError, SequenceDataModule

OPERATORS = ("[MIN", "[MAX", "[MED", "[SM")
END = "]"
DIGITS = tuple(str(d) for d in range(10))
SPECIALS = ("<pad>", "<unk>", "<eos>")
VOCAB = SPECIALS + OPERATORS + (END,) + DIGITS
TOKEN_ID = {tok: i for i, tok in enumerate(VOCAB)}
UNK_ID, EOS_ID = TOKEN_ID["<unk>"], TOKEN_ID["<eos>"]

# A tree is a digit, or (operator, [children]).
Tree = Union[int, tuple[str, list["Tree"]]]

# Examples generated per shard.  Fixed, so the data set depends on the seed only and
# not on how many processes generate it.
SHARD_SIZE = 1000


def apply_operator(op: str, values: list[int]) -> int:
    if op == "[MIN":
        return min(values)
    if op == "[MAX":
        return max(values)
    if op == "[MED":
        return int(statistics.median(values))
    if op == "[SM":
        return sum(values) % 10
    raise ValueError(f"unknown ListOps operator {op!r}; expected one of {OPERATORS}")


class _TooLong(Exception):
    pass


def sample_tree(rng: random.Random, max_depth: int = 10, max_args: int = 10, branch_prob: float = 0.25, max_length: int | None = None) -> tuple[Tree | None, int]:
    """Sample an expression; returns the tree and its length in tokens (operators, digits and ``]``).

    With ``max_length``, sampling stops as soon as the expression reaches that many tokens
    and ``(None, max_length)`` is returned: rejecting long trees early leaves the
    distribution of the accepted ones unchanged and saves building huge trees.
    """
    count = [0]

    def grow(depth: int) -> Tree:
        if depth < max_depth and rng.random() < branch_prob:
            count[0] += 2  # the operator and its closing bracket
            n_args = rng.randint(2, max_args)
            op = rng.choice(OPERATORS)
            children = [grow(depth + 1) for _ in range(n_args)]
            return (op, children)
        count[0] += 1
        if max_length is not None and count[0] >= max_length:
            raise _TooLong
        return rng.randrange(10)

    try:
        tree = grow(1)
    except _TooLong:
        return None, max_length
    return tree, count[0]


def evaluate(tree: Tree) -> int:
    if isinstance(tree, int):
        return tree
    op, children = tree
    return apply_operator(op, [evaluate(c) for c in children])


def render(tree: Tree) -> str:
    """The official text form: the LRA generator nests (operator, arg1), then (.., arg_i), then (.., ']') pairs."""
    if isinstance(tree, int):
        return str(tree)
    op, children = tree
    parts = ["( " * (len(children) + 1) + op + " " + render(children[0]) + " )"]
    parts += [render(c) + " )" for c in children[1:]]
    parts.append("] )")
    return " ".join(parts)


def tokenize(source: str, append_eos: bool = True) -> list[int]:
    ids = [TOKEN_ID.get(tok, UNK_ID) for tok in source.split() if tok not in ("(", ")")]
    return ids + [EOS_ID] if append_eos else ids


def _generate_shard(shard: int, count: int, seed: int, min_length: int, max_length: int, max_depth: int, max_args: int, branch_prob: float) -> list[tuple[str, int]]:
    rng = random.Random(seed * 1_000_003 + shard)
    limit = max(sys.getrecursionlimit(), 4 * max_depth + 100)
    sys.setrecursionlimit(limit)
    out, seen = [], set()
    while len(out) < count:
        tree, length = sample_tree(rng, max_depth, max_args, branch_prob, max_length=max_length)
        if tree is None or not (min_length < length < max_length):
            continue
        source = render(tree)
        if source in seen:
            continue
        seen.add(source)
        out.append((source, evaluate(tree)))
    return out


def generate(
    num_examples: int,
    seed: int = 0,
    min_length: int = 500,
    max_length: int = 2000,
    max_depth: int = 10,
    max_args: int = 10,
    branch_prob: float = 0.25,
    num_proc: int = 1,
    progress: bool = True,
) -> list[tuple[str, int]]:
    """Generate ``num_examples`` distinct (source, label) pairs with lengths strictly between the bounds.

    The result depends only on the arguments, not on ``num_proc``: work is split into fixed
    shards of ``SHARD_SIZE`` examples, each with its own seeded generator.
    """
    if num_examples < 1:
        raise ValueError(f"num_examples must be positive, got {num_examples}")
    if not 0 <= min_length < max_length:
        raise ValueError(f"need 0 <= min_length < max_length, got min_length={min_length}, max_length={max_length}")
    num_shards = math.ceil(num_examples / SHARD_SIZE)
    counts = [min(SHARD_SIZE, num_examples - i * SHARD_SIZE) for i in range(num_shards)]
    work = partial(_generate_shard, seed=seed, min_length=min_length, max_length=max_length, max_depth=max_depth, max_args=max_args, branch_prob=branch_prob)
    bar = tqdm(total=num_examples, desc="generating ListOps", unit="ex", disable=not progress)
    shards: list[list[tuple[str, int]]] = []
    if num_proc > 1 and num_shards > 1:
        with get_context("fork").Pool(min(num_proc, num_shards)) as pool:
            for part in pool.imap(_shard_star, [(work, i, c) for i, c in enumerate(counts)]):
                shards.append(part)
                bar.update(len(part))
    else:
        for i, c in enumerate(counts):
            shards.append(work(i, c))
            bar.update(c)
    bar.close()
    # Distinct across shards as well (collisions are astronomically rare at these lengths).
    out, seen = [], set()
    for part in shards:
        for source, label in part:
            if source not in seen:
                seen.add(source)
                out.append((source, label))
    while len(out) < num_examples:  # top up after a collision, from a shard index no one used
        num_shards += 1
        for source, label in work(num_shards, num_examples - len(out)):
            if source not in seen:
                seen.add(source)
                out.append((source, label))
    return out


def _shard_star(args):
    work, shard, count = args
    return work(shard, count)


def read_tsv(path: str | Path) -> list[tuple[str, int]]:
    """Read an official ListOps TSV (header ``Source\\tTarget``) into (source, label) pairs."""
    path = Path(path)
    rows = []
    with path.open(newline="") as f:
        reader = csv.reader(f, delimiter="\t")
        header = next(reader, None)
        if header is None or [h.strip() for h in header[:2]] != ["Source", "Target"]:
            raise ValueError(f"{path} does not start with the ListOps header 'Source\\tTarget' (got {header!r})")
        for lineno, row in enumerate(reader, start=2):
            if not row:
                continue
            if len(row) < 2:
                raise ValueError(f"{path}:{lineno}: expected two tab-separated columns, got {row!r}")
            label = int(row[1])
            if not 0 <= label <= 9:
                raise ValueError(f"{path}:{lineno}: label must be a digit 0-9, got {label}")
            rows.append((row[0], label))
    return rows


def write_tsv(path: str | Path, rows: list[tuple[str, int]]) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        writer = csv.writer(f, delimiter="\t", lineterminator="\n")
        writer.writerow(["Source", "Target"])
        writer.writerows(rows)


def find_official(data_dir: Path) -> dict[str, Path] | None:
    """The three official TSVs under ``data_dir`` (or ``data_dir/listops-1000``), or None if absent."""
    for folder in (data_dir, data_dir / "listops-1000"):
        files = {s: folder / f"basic_{s}.tsv" for s in ("train", "val", "test")}
        if all(p.exists() for p in files.values()):
            return files
    return None


class ListOpsDataModule(SequenceDataModule):
    """ListOps from the official TSVs in ``data_dir``, or generated when they are absent.

    Args:
        data_dir: folder with ``basic_{train,val,test}.tsv`` (or ``listops-1000/`` inside it);
            generated data and caches are stored under it.
        generate: ``"auto"`` generates when the official files are absent, ``True`` always
            generates, ``False`` requires the official files.
        num_train, num_val, num_test: sizes of the generated splits (96k / 2k / 2k as in LRA).
            With ``limit_*`` set, only that many are generated.
        min_length, max_length: exclusive bounds on the expression length in tokens.
        max_depth, max_args, branch_prob: the LRA sampler's settings.
        gen_seed: seed of the generator (a different seed gives a different data set).
        num_proc: processes used for generation (the result does not depend on it).
        append_eos: end every sequence with ``<eos>``.
        **kwargs: batching options of ``lra.base.SequenceDataModule``.
    """

    name = "listops"
    vocab_size = len(VOCAB)
    num_classes = 10

    def __init__(
        self,
        data_dir: str = "data/listops",
        generate: Any = "auto",
        num_train: int = 96_000,
        num_val: int = 2_000,
        num_test: int = 2_000,
        min_length: int = 500,
        max_length: int = 2000,
        max_depth: int = 10,
        max_args: int = 10,
        branch_prob: float = 0.25,
        gen_seed: int = 0,
        num_proc: int = 4,
        append_eos: bool = True,
        **kwargs,
    ):
        super().__init__(data_dir=data_dir, **kwargs)
        if generate not in ("auto", True, False):
            raise ValueError(f"generate must be 'auto', true or false, got {generate!r}")
        self.generate = generate
        self.sizes = {"train": num_train, "val": num_val, "test": num_test}
        for split, n in self.sizes.items():
            if n < 1:
                raise ValueError(f"num_{split} must be a positive integer, got {n}")
        self.gen_settings = dict(min_length=min_length, max_length=max_length, max_depth=max_depth, max_args=max_args, branch_prob=branch_prob)
        self.gen_seed = int(gen_seed)
        self.num_proc = int(num_proc)
        self.append_eos = bool(append_eos)

    def _use_official(self) -> dict[str, Path] | None:
        if self.generate is True:
            return None
        files = find_official(self.data_dir)
        if files is None and self.generate is False:
            wanted = ", ".join(f"basic_{s}.tsv" for s in ("train", "val", "test"))
            raise MissingDataError(
                f"ListOps files not found in {self.data_dir} (looked for {wanted} there and in "
                f"{self.data_dir / 'listops-1000'}). Prepare them with "
                f"`python -m lra.prepare --source <lra_release folder or archive> --dest {self.data_dir.parent}`, "
                f"or set data.generate=auto to generate the data set."
            )
        return files

    def _generated_sizes(self) -> dict[str, int]:
        return {s: n if self.limits[s] is None else min(n, self.limits[s]) for s, n in self.sizes.items()}

    def cache_settings(self) -> dict[str, Any]:
        files = self._use_official()
        common = {"append_eos": self.append_eos, "vocab": VOCAB}
        if files is not None:
            stats = {s: [str(p.resolve()), p.stat().st_size, p.stat().st_mtime_ns] for s, p in files.items()}
            return {"source": "official", "files": stats, **common}
        return {"source": "generated", "sizes": self._generated_sizes(), "seed": self.gen_seed, **self.gen_settings, **common}

    def build_splits(self) -> dict[str, Any]:
        import datasets

        files = self._use_official()
        if files is not None:
            rows = {s: read_tsv(p) for s, p in files.items()}
        else:
            sizes = self._generated_sizes()
            pool = generate(sum(sizes.values()), seed=self.gen_seed, num_proc=self.num_proc, **self.gen_settings)
            rows, start = {}, 0
            for split in ("train", "val", "test"):
                rows[split] = pool[start : start + sizes[split]]
                start += sizes[split]
        out = {}
        for split, pairs in rows.items():
            ids = [tokenize(src, self.append_eos) for src, _ in tqdm(pairs, desc=f"tokenising ListOps {split}", unit="ex", leave=False)]
            out[split] = datasets.Dataset.from_dict(
                {"x": ids, "y": [label for _, label in pairs], "length": [len(t) for t in ids]},
                features=datasets.Features(
                    {"x": datasets.Sequence(datasets.Value("int8")), "y": datasets.Value("int64"), "length": datasets.Value("int32")}
                ),
            )
        return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Generate the ListOps data set and export it as official-format TSV files.")
    parser.add_argument("--dest", required=True, help="folder that receives basic_{train,val,test}.tsv")
    parser.add_argument("--num-train", type=int, default=96_000)
    parser.add_argument("--num-val", type=int, default=2_000)
    parser.add_argument("--num-test", type=int, default=2_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--num-proc", type=int, default=4)
    args = parser.parse_args(argv)
    sizes = {"train": args.num_train, "val": args.num_val, "test": args.num_test}
    pool = generate(sum(sizes.values()), seed=args.seed, num_proc=args.num_proc)
    start = 0
    for split, n in sizes.items():
        write_tsv(Path(args.dest) / f"basic_{split}.tsv", pool[start : start + n])
        start += n
    print(f"wrote {sum(sizes.values())} examples to {args.dest}")


if __name__ == "__main__":
    main()
