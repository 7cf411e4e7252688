"""Modular arithmetic: an expression over the numbers 0..m-1 with +, -, * (and brackets), answer after ``=``.

An expression with n operands is sampled as a random binary tree: n operands are split
into a left part of k ~ U{1..n-1} operands and a right part of n-k, each built the same
way, joined by an operator drawn uniformly from ``operators``; a part with more than one
operand is wrapped in brackets with probability ``bracket_prob``.  The *written* string
is what counts: its value is computed with the usual precedence (``*`` before ``+`` and
``-``, left to right within a level, brackets first) and reduced mod m, exactly as
Python's ``eval(expr) % m`` would.  With ``bracket_prob = 0`` the tree's shape is
invisible and the task is a flat expression such as ``3 + 4 * 2 - 1``.

Tokens (id 0 is the padding id of the batch contract)::

    1..m: the numbers 0..m-1,  m+1: "+",  m+2: "-",  m+3: "*",  m+4: "(",  m+5: ")",  m+6: "="

Every sequence ends with ``=``; the target sits on that last position (the answer
class, 0..m-1), and every other position carries IGNORE_INDEX.  So in the per-position
contract token accuracy and sequence accuracy both equal the accuracy of the answer.
"""

from __future__ import annotations

import numpy as np

OPERATORS = ("+", "-", "*")
SYMBOLS = ("+", "-", "*", "(", ")", "=")


def vocab(modulus: int) -> tuple[str, ...]:
    """Token strings by id; id 0 is padding."""
    return ("<pad>", *(str(v) for v in range(modulus)), *SYMBOLS)


def sample_expression(rng: np.random.Generator, num_operands: int, modulus: int, bracket_prob: float = 0.0, operators: str = "+-*") -> list:
    """A random expression as a list of ints (numbers) and strings (operators, brackets), without ``=``."""
    if num_operands < 1:
        raise ValueError(f"num_operands must be a positive integer, got {num_operands}")
    n = num_operands
    draws = _Draws(rng, 1, n, modulus, len(operators))
    return _build(draws, 0, n, bracket_prob, operators)


class _Draws:
    """All the random numbers of ``num`` expressions with n operands, drawn at once (per-scalar draws are slow)."""

    def __init__(self, rng: np.random.Generator, num: int, n: int, modulus: int, num_ops: int):
        self.numbers = rng.integers(modulus, size=(num, n)).tolist()
        self.splits = rng.random((num, max(n - 1, 1))).tolist()
        self.ops = rng.integers(num_ops, size=(num, max(n - 1, 1))).tolist()
        self.coins = rng.random((num, max(n - 1, 1), 2)).tolist()


def _build(draws: _Draws, row: int, num_operands: int, bracket_prob: float, operators: str) -> list:
    numbers, splits, ops, coins = draws.numbers[row], draws.splits[row], draws.ops[row], draws.coins[row]
    out: list = []
    # Iterative, so that long expressions do not hit Python's recursion limit.  The stack holds
    # pending work: an int n means "an n-operand expression goes here", a str is emitted as is.
    stack: list = [num_operands]
    next_number = next_node = 0
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            out.append(item)
            continue
        if item == 1:
            out.append(numbers[next_number])
            next_number += 1
            continue
        node = next_node
        next_node += 1
        k = 1 + int(splits[node] * (item - 1))  # uniform on 1..n-1
        pieces = []
        for side, size in enumerate((k, item - k)):
            pieces += ["(", size, ")"] if size > 1 and coins[node][side] < bracket_prob else [size]
            if side == 0:
                pieces.append(operators[ops[node]])
        stack.extend(reversed(pieces))  # left part, operator, right part come out in order
    return out


def evaluate_mod(tokens: list, modulus: int) -> int:
    """Value mod m of an expression (list of ints and "+", "-", "*", "(", ")") with the usual precedence."""
    # Two stacks (shunting-yard), every intermediate reduced mod m.
    precedence = {"+": 1, "-": 1, "*": 2}
    values: list[int] = []
    ops: list[str] = []

    def reduce_top() -> None:
        op = ops.pop()
        b, a = values.pop(), values.pop()
        values.append((a + b) % modulus if op == "+" else (a - b) % modulus if op == "-" else (a * b) % modulus)

    for tok in tokens:
        if isinstance(tok, (int, np.integer)):
            values.append(int(tok) % modulus)
        elif tok == "(":
            ops.append(tok)
        elif tok == ")":
            while ops[-1] != "(":
                reduce_top()
            ops.pop()
        else:
            while ops and ops[-1] != "(" and precedence[ops[-1]] >= precedence[tok]:
                reduce_top()
            ops.append(tok)
    while ops:
        reduce_top()
    if len(values) != 1:
        raise ValueError(f"malformed expression {to_text(tokens)!r}")
    return values[0]


def to_text(tokens: list) -> str:
    return " ".join(str(t) for t in tokens)


def encode(tokens: list, modulus: int) -> list[int]:
    """Token ids of an expression followed by ``=``."""
    symbol_id = {s: modulus + 1 + i for i, s in enumerate(SYMBOLS)}
    return [int(t) + 1 if isinstance(t, (int, np.integer)) else symbol_id[t] for t in tokens] + [symbol_id["="]]


def decode(ids, modulus: int) -> str:
    """The text of a sequence of token ids (padding dropped)."""
    words = vocab(modulus)
    return " ".join(words[int(i)] for i in ids if int(i) != 0)


def check_settings(modulus: int, bracket_prob: float, operators: str) -> None:
    """Raise a ValueError naming the argument unless modulus >= 2, bracket_prob in [0, 1] and operators valid."""
    if modulus < 2:
        raise ValueError(f"modulus must be at least 2, got {modulus}")
    if not operators or any(op not in OPERATORS for op in operators):
        raise ValueError(f"operators must be a non-empty string of {''.join(OPERATORS)!r}, got {operators!r}")
    if not 0.0 <= bracket_prob <= 1.0:
        raise ValueError(f"bracket_prob must be in [0, 1], got {bracket_prob}")


def sample_batch(rng: np.random.Generator, num: int, num_operands: int, modulus: int, bracket_prob: float = 0.0, operators: str = "+-*") -> tuple[list[list[int]], np.ndarray]:
    """``num`` encoded expressions with ``num_operands`` operands and their answers (num,)."""
    check_settings(modulus, bracket_prob, operators)
    ids, answers = [], np.empty(num, dtype=np.int64)
    draws = _Draws(rng, num, num_operands, modulus, len(operators))
    for i in range(num):
        expr = _build(draws, i, num_operands, bracket_prob, operators)
        ids.append(encode(expr, modulus))
        answers[i] = evaluate_mod(expr, modulus)
    return ids, answers
