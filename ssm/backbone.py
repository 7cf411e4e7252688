"""The sequence model shared by every task: encoder, residual blocks, pooling, head.

    x (B, L) tokens | (B, L, d_input) features
      -> encoder                               (B, L, d_model)
      -> n_layers x ResidualBlock:  [norm] -> sequence layer -> activation -> Linear/GLU -> dropout -> + skip [-> norm]
                                    (ffn_ratio > 0: then [norm] -> SwiGLU feed-forward -> dropout -> + skip [-> norm])
      -> masked mean pooling (output="pool")   (B, d_model)        or per position (output="token")
      -> head                                  (B, num_classes)    or (B, L, num_classes)

The sequence layer (S4D, S5, DeltaProduct, ...) is injected as a factory taking
``d_model``; it mixes along the sequence, the block adds the position-wise non-linearity.
Padded positions are zeroed before every sequence layer, so a recurrence run backwards
(bidirectional layers) starts from the last real token with a zero state.

``SequenceModel.initial_state`` / ``step`` run a model of causal layers token by token
(recurrent inference); with batch norm this needs eval mode, where the norm is the same
affine map at every position.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

NORMS = ("batch", "layer", "none")
MLPS = ("glu", "linear", "none")


class Norm(nn.Module):
    """Batch norm over (batch, length) or layer norm over channels, for (B, L, D) inputs."""

    def __init__(self, d_model: int, kind: str = "layer"):
        super().__init__()
        if kind not in NORMS:
            raise ValueError(f"norm must be one of {NORMS}, got {kind!r}")
        self.kind = kind
        if kind == "batch":
            self.norm = nn.BatchNorm1d(d_model)
        elif kind == "layer":
            self.norm = nn.LayerNorm(d_model)
        else:
            self.norm = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.kind == "batch":
            return self.norm(x.transpose(1, 2)).transpose(1, 2)  # BatchNorm1d wants (B D L)
        return self.norm(x)

    def step(self, x_t: torch.Tensor) -> torch.Tensor:
        """One position, (B, D).  Batch norm must be in eval mode: its running statistics make it
        the same affine map at every position, so a step equals the sequence computation."""
        if self.kind == "batch" and self.training:
            raise RuntimeError(
                "step with norm='batch' needs eval mode (model.eval()): in training mode batch norm "
                "normalises with statistics over the whole (batch, length) input, which a step cannot see"
            )
        return self.norm(x_t)


class FeedForward(nn.Module):
    """Position-wise SwiGLU feed-forward map: (.., d_model) -> (.., d_model) through ``hidden`` units,
    ``W_down (silu(W_gate x) * W_up x)``, as in the transformer-style blocks of gated linear-attention
    models (token mixer, then feed-forward, each in its own residual branch)."""

    def __init__(self, d_model: int, hidden: int):
        super().__init__()
        self.up = nn.Linear(d_model, 2 * hidden, bias=False)  # gate and up projections in one matmul
        self.down = nn.Linear(hidden, d_model, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate, up = self.up(x).chunk(2, dim=-1)  # (.. hidden) each
        return self.down(F.silu(gate) * up)


class ResidualBlock(nn.Module):
    """norm -> sequence layer -> activation -> position-wise Linear or GLU -> dropout -> residual,
    then, with ``ffn_ratio > 0``, norm -> SwiGLU feed-forward (hidden width ffn_ratio * d_model)
    -> dropout -> residual.

    With ``prenorm`` each norm is applied to its branch's input, otherwise to the sum.
    """

    def __init__(
        self,
        d_model: int,
        layer: Callable[..., nn.Module],
        norm: str = "batch",
        prenorm: bool = False,
        dropout: float = 0.0,
        activation: str = "gelu",
        mlp: str = "glu",
        ffn_ratio: float = 0.0,
    ):
        super().__init__()
        if mlp not in MLPS:
            raise ValueError(f"mlp must be one of {MLPS}, got {mlp!r}")
        if isinstance(ffn_ratio, bool) or not isinstance(ffn_ratio, (int, float)) or not ffn_ratio >= 0:
            raise ValueError(f"ffn_ratio must be a number >= 0 (0: no feed-forward branch), got {ffn_ratio!r}")
        hidden = round(ffn_ratio * d_model)
        if ffn_ratio > 0 and hidden < 1:
            raise ValueError(f"ffn_ratio * d_model must give at least one hidden unit, got ffn_ratio={ffn_ratio} with d_model={d_model}")
        self.layer = layer(d_model=d_model)
        self.norm = Norm(d_model, norm)
        self.prenorm = prenorm
        if activation not in ("gelu", "silu", "none"):
            raise ValueError(f"activation must be 'gelu', 'silu' or 'none', got {activation!r}")
        self.activation = {"gelu": nn.GELU(), "silu": nn.SiLU(), "none": nn.Identity()}[activation]
        if mlp == "glu":
            self.out = nn.Sequential(nn.Linear(d_model, 2 * d_model), nn.GLU(dim=-1))
        elif mlp == "linear":
            self.out = nn.Linear(d_model, d_model)
        else:
            self.out = nn.Identity()
        self.dropout = nn.Dropout(dropout)
        self.ffn = FeedForward(d_model, hidden) if hidden > 0 else None
        self.ffn_norm = Norm(d_model, norm) if hidden > 0 else None

    def _feed_forward(self, x: torch.Tensor, step: bool = False) -> torch.Tensor:
        """The feed-forward residual branch (identity without one), on a sequence or one position."""
        if self.ffn is None:
            return x
        norm = self.ffn_norm.step if step else self.ffn_norm
        if self.prenorm:
            return x + self.dropout(self.ffn(norm(x)))
        return norm(x + self.dropout(self.ffn(x)))

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        z = self.norm(x) if self.prenorm else x  # (B L D)
        if mask is not None:
            z = z * mask.unsqueeze(-1)
        z = self.layer(z)  # (B L D)
        z = self.dropout(self.out(self.activation(z)))
        x = x + z
        x = x if self.prenorm else self.norm(x)
        return self._feed_forward(x)

    def step(self, x_t: torch.Tensor, state):
        """One position: x_t (B, D) and the layer's state -> (B, D) and the new state."""
        z = self.norm.step(x_t) if self.prenorm else x_t  # (B D)
        z, state = self.layer.step(z, state)
        z = self.dropout(self.out(self.activation(z)))
        x_t = x_t + z
        x_t = x_t if self.prenorm else self.norm.step(x_t)
        return self._feed_forward(x_t, step=True), state


class SequenceModel(nn.Module):
    """A stack of residual sequence blocks with an encoder and a classification head.

    Args:
        layer: factory ``layer(d_model=...) -> nn.Module`` mapping (B, L, d_model) to the same
            shape (``functools.partial`` or a Hydra ``_partial_`` config).
        num_classes: classes of the head.
        d_model: width of the residual stream.
        n_layers: number of residual blocks.
        vocab_size: token inputs (B, L) with id 0 as padding; mutually exclusive with ``d_input``.
        d_input: feature inputs (B, L, d_input).
        output: ``"pool"`` (one prediction per sequence, masked mean/last pooling) or
            ``"token"`` (one per position).
        dual: inputs are pairs of documents (B, 2, L), encoded with shared weights and
            classified from [u, v, u*v, u-v] (LRA Retrieval).
        norm: ``"batch"``, ``"layer"`` or ``"none"``.
        prenorm: normalise block inputs (True) or block outputs (False).
        dropout: dropout inside every block.
        activation: ``"gelu"``, ``"silu"`` or ``"none"`` after the sequence layer.
        mlp: position-wise map after the activation: ``"glu"``, ``"linear"`` or ``"none"``.
        ffn_ratio: 0 (default) for the S4-style block above; > 0 adds to every block a second
            residual branch, [norm ->] SwiGLU feed-forward with ``round(ffn_ratio * d_model)``
            hidden units (the token-mixer + MLP layer of transformer-style stacks).
        pool: ``"mean"`` (masked mean over real positions) or ``"last"`` (last real position).

    Example:
        >>> from functools import partial
        >>> from ssm import S4D
        >>> model = SequenceModel(partial(S4D, d_state=16), num_classes=10, d_model=32, n_layers=2, vocab_size=20)
        >>> x = torch.randint(1, 20, (4, 100)); mask = torch.ones(4, 100, dtype=torch.bool)
        >>> model(x, mask).shape
        torch.Size([4, 10])
    """

    def __init__(
        self,
        layer: Callable[..., nn.Module],
        num_classes: int,
        d_model: int = 128,
        n_layers: int = 4,
        vocab_size: int | None = None,
        d_input: int | None = None,
        output: str = "pool",
        dual: bool = False,
        norm: str = "batch",
        prenorm: bool = False,
        dropout: float = 0.0,
        activation: str = "gelu",
        mlp: str = "glu",
        pool: str = "mean",
        ffn_ratio: float = 0.0,
    ):
        super().__init__()
        if (vocab_size is None) == (d_input is None):
            raise ValueError(f"give exactly one of vocab_size (token inputs) and d_input (feature inputs); got vocab_size={vocab_size}, d_input={d_input}")
        if output not in ("pool", "token"):
            raise ValueError(f"output must be 'pool' or 'token', got {output!r}")
        if pool not in ("mean", "last"):
            raise ValueError(f"pool must be 'mean' or 'last', got {pool!r}")
        if dual and output != "pool":
            raise ValueError("dual (paired documents) needs output='pool'")
        for name, value in (("num_classes", num_classes), ("d_model", d_model), ("n_layers", n_layers)):
            if int(value) < 1:
                raise ValueError(f"{name} must be a positive integer, got {value}")
        self.vocab_size, self.d_input = vocab_size, d_input
        self.output, self.dual, self.pool = output, dual, pool
        self.d_model = d_model
        self.encoder = nn.Embedding(vocab_size, d_model, padding_idx=0) if vocab_size is not None else nn.Linear(d_input, d_model)
        self.blocks = nn.ModuleList(
            ResidualBlock(d_model, layer, norm=norm, prenorm=prenorm, dropout=dropout, activation=activation, mlp=mlp, ffn_ratio=ffn_ratio)
            for _ in range(n_layers)
        )
        self.final_norm = Norm(d_model, norm) if prenorm else nn.Identity()
        if dual:
            self.head = nn.Sequential(nn.Linear(4 * d_model, d_model), nn.GELU(), nn.Linear(d_model, num_classes))
        else:
            self.head = nn.Linear(d_model, num_classes)

    def _check_input(self, x: torch.Tensor, mask: torch.Tensor) -> None:
        want_rank = (3 if self.dual else 2) + (self.d_input is not None)
        if x.dim() != want_rank:
            layout = "(B, 2, L)" if self.dual else "(B, L)" if self.vocab_size is not None else "(B, L, d_input)"
            raise ValueError(f"x must have shape {layout}, got {tuple(x.shape)}")
        if self.vocab_size is not None and x.is_floating_point():
            raise ValueError(f"x must hold integer token ids for a token model (vocab_size={self.vocab_size}), got dtype {x.dtype}")
        if self.d_input is not None and x.shape[-1] != self.d_input:
            raise ValueError(f"x must have d_input={self.d_input} features in its last dimension, got {x.shape[-1]}")
        lead = x.shape[:-1] if self.d_input is not None else x.shape
        if mask.shape != lead or mask.dtype != torch.bool:
            raise ValueError(f"mask must be a bool tensor of shape {tuple(lead)}, got {mask.dtype} {tuple(mask.shape)}")
        if x.shape[-1 if self.d_input is None else -2] == 0:
            raise ValueError("x has length 0: sequences need at least one position")
        if x.shape[0] == 0:
            raise ValueError(f"x has batch size 0, got shape {tuple(x.shape)}")

    def features(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Encoder and residual blocks: (B, L) or (B, L, d_input) -> (B, L, d_model)."""
        h = self.encoder(x)  # (B L D)
        for block in self.blocks:
            h = block(h, mask)
        return self.final_norm(h)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Logits: (B, num_classes) for output="pool", (B, L, num_classes) for output="token"."""
        if mask is None:
            mask = torch.ones(x.shape[: x.dim() - (self.d_input is not None)], dtype=torch.bool, device=x.device)
        self._check_input(x, mask)
        if self.dual:
            b = x.shape[0]
            h = self.features(x.flatten(0, 1), mask.flatten(0, 1))  # (2B L D)
            pooled = self._pool(h, mask.flatten(0, 1))  # (2B D)
            u, v = pooled.view(b, 2, -1).unbind(1)  # (B D) each: first and second document
            return self.head(torch.cat([u, v, u * v, u - v], dim=-1))
        h = self.features(x, mask)
        if self.output == "token":
            return self.head(h)  # (B L C)
        return self.head(self._pool(h, mask))  # (B C)

    def initial_state(self, batch_size: int) -> dict:
        """State before the first token for ``step``: every layer's state and the running pooled sum."""
        if self.dual:
            raise RuntimeError("step is not defined for paired documents (dual=True)")
        device = self.head.weight.device if isinstance(self.head, nn.Linear) else None
        return {
            "layers": [block.layer.initial_state(batch_size) for block in self.blocks],
            "sum": torch.zeros(batch_size, self.d_model, device=device),  # (B D) sum of features so far
            "count": 0,
        }

    def step(self, x_t: torch.Tensor, state: dict) -> tuple[torch.Tensor, dict]:
        """Token-by-token inference through the whole stack (causal layers, eval mode with batch norm).

        x_t: (B,) token ids or (B, d_input) features.  Returns the logits (B, num_classes) of the
        prefix read so far, equal to ``forward`` on that prefix (all positions real): for
        output="token" the prediction at this position, for output="pool" the pooled
        (mean or last) prediction of the prefix.

        Example:
            >>> from functools import partial
            >>> from ssm import S4D
            >>> model = SequenceModel(partial(S4D, d_state=16), num_classes=10, d_model=32, n_layers=2, vocab_size=20).eval()
            >>> state = model.initial_state(4)
            >>> for token in torch.randint(1, 20, (6, 4)):
            ...     logits, state = model.step(token, state)
            >>> logits.shape
            torch.Size([4, 10])
        """
        want = 1 + (self.d_input is not None)
        if x_t.dim() != want or (self.d_input is not None and x_t.shape[-1] != self.d_input):
            layout = "(B,) token ids" if self.d_input is None else f"(B, d_input={self.d_input})"
            raise ValueError(f"x_t must have shape {layout}, got {tuple(x_t.shape)}")
        h = self.encoder(x_t)  # (B D)
        layer_states = []
        for block, s in zip(self.blocks, state["layers"]):
            h, s = block.step(h, s)
            layer_states.append(s)
        h = self.final_norm.step(h) if isinstance(self.final_norm, Norm) else h  # (B D)
        state = {"layers": layer_states, "sum": state["sum"] + h, "count": state["count"] + 1}
        if self.output == "token" or self.pool == "last":
            return self.head(h), state
        return self.head(state["sum"] / state["count"]), state

    def _pool(self, h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        m = mask.unsqueeze(-1).to(h.dtype)  # (B L 1)
        if self.pool == "mean":
            return (h * m).sum(1) / m.sum(1).clamp_min(1.0)
        last = mask.long().cumsum(1).argmax(1)  # index of the last real position, (B,)
        return h[torch.arange(h.shape[0], device=h.device), last]
